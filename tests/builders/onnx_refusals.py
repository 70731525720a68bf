"""ONNX graphs that lstm-trace refuses, with the reason, written with onnx.helper.

    python onnx_refusals.py OUTDIR

- ``quantized_lstm.onnx``: onnxruntime's ``DynamicQuantizeLSTM`` (domain ``com.microsoft``,
  int8 ``W``/``R`` with scales and zero points), as ``quantize_dynamic`` writes for an LSTM
  (ddddocr's ``common_old.onnx`` has one). Checked by ``onnx.checker`` only: it need not run.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(out: Path) -> None:
    import numpy as np
    import onnx
    from common import write_manifest
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    I, H = 3, 4
    W = rng.integers(-127, 128, (1, I, 4 * H)).astype(np.int8)  # [D, input, 4H] (transposed)
    R = rng.integers(-127, 128, (1, H, 4 * H)).astype(np.int8)
    B = rng.standard_normal((1, 8 * H)).astype(np.float32)
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
             numpy_helper.from_array(B, "B"),
             numpy_helper.from_array(np.full((1,), 0.02, np.float32), "W_scale"),
             numpy_helper.from_array(np.zeros((1,), np.int8), "W_zero_point"),
             numpy_helper.from_array(np.full((1,), 0.03, np.float32), "R_scale"),
             numpy_helper.from_array(np.zeros((1,), np.int8), "R_zero_point")]
    node = helper.make_node(
        "DynamicQuantizeLSTM",
        ["X", "W", "R", "B", "", "", "", "", "W_scale", "W_zero_point", "R_scale", "R_zero_point"],
        ["Y"], name="lstm_quant", domain="com.microsoft", hidden_size=H, direction="forward")
    graph = helper.make_graph(
        [node], "quantized", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1, I])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1, 1, H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14),
                                                    helper.make_opsetid("com.microsoft", 1)])
    onnx.checker.check_model(model)
    onnx.save(model, out / "quantized_lstm.onnx")
    np.save(out / "x.npy", rng.standard_normal((5, 1, I)).astype(np.float32))
    write_manifest(out, [{"name": "quantized_lstm", "file": "quantized_lstm.onnx",
                          "input": "x.npy"}])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
