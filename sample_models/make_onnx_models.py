"""Write the ONNX sample models from the trained bracket counters (no training here).

    python sample_models/make_onnx_models.py

Needs torch and onnx (the ``test`` extra); lstm-trace itself never does. Writes, next to
this script:

- ``brackets_torch.onnx``: the trained PyTorch model (``brackets_torch.safetensors``:
  ``nn.LSTM(6, 8, batch_first=True)`` then ``nn.Linear(8, 1)``) exported by
  ``torch.onnx.export`` (graph input ``x`` ``[batch, steps, 6]``, output ``depth``);
- ``brackets_padded.onnx``: the trained Keras model's LSTM (``brackets.keras``) as a bare
  ONNX ``LSTM`` node named ``lstm`` with a ``sequence_lens`` graph input (graph inputs
  ``X`` ``[steps, batch, 6]``, ``sequence_lens`` ``[batch]``), built with ``onnx.helper``;
- ``brackets_padded.npz``: its inputs, keys ``X`` (``brackets_batch.npy`` as
  ``(steps, batch, 6)``) and ``sequence_lens`` (each sequence cut at a different length).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LENGTHS = [30, 12, 25, 7, 30, 18, 9, 21]


def main(out: Path = HERE) -> None:
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.torch import load_file
    from torch import nn

    import lstm_trace
    from lstm_trace.export_onnx import onnx_node

    class BracketCounter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(6, 8, batch_first=True)
            self.depth = nn.Linear(8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.depth(self.lstm(x)[0])

    model = BracketCounter()
    model.load_state_dict(load_file(out / "brackets_torch.safetensors"))
    model.eval()
    example = torch.from_numpy(np.load(out / "brackets_batch.npy"))
    torch.onnx.export(model, (example,), str(out / "brackets_torch.onnx"), dynamo=False,
                      input_names=["x"], output_names=["depth"],
                      dynamic_axes={"x": {0: "batch", 1: "steps"}, "depth": {0: "batch", 1: "steps"}})

    node = onnx_node(lstm_trace.load(out / "brackets.keras").layer("lstm"))
    inits = [numpy_helper.from_array(v, k) for k, v in node.initializers.items()]
    lstm = helper.make_node("LSTM", ["X", "W", "R", "B", "sequence_lens"], ["Y", "Y_h", "Y_c"],
                            name="lstm", **node.attributes)
    graph = helper.make_graph(
        [lstm], "brackets_padded",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["steps", "batch", 6]),
         helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["batch"])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["steps", 1, "batch", 8])], inits)
    padded = helper.make_model(graph, producer_name="make_onnx_models.py",
                               opset_imports=[helper.make_opsetid("", 14)])
    padded.ir_version = 8
    onnx.checker.check_model(padded)
    onnx.save(padded, out / "brackets_padded.onnx")
    batch = np.load(out / "brackets_batch.npy")
    np.savez(out / "brackets_padded.npz", X=batch.transpose(1, 0, 2),
             sequence_lens=np.array(LENGTHS, dtype=np.int32))


if __name__ == "__main__":
    main()
