"""Exports PyTorch nn.LSTM / nn.GRU / nn.RNN models with torch.onnx.export, with torch's own states.

    python onnx_torch.py OUTDIR

Per case: ``model.onnx`` (the TorchScript-based exporter, ``dynamo=False``, or the
dynamo exporter, which needs onnxscript), ``feeds.npz`` (``x`` as onnxruntime is fed), and
``reference.npz`` from torch: for every layer ``k`` and direction, ``hidden_<k>_<dir>`` and
``cell_<k>_<dir>`` ``(batch, steps, H)`` at every input position. Each layer is re-run as a
one-layer module with the same weights on the previous layer's output: its output gives
``hidden``; runs on prefixes (suffixes for the backward direction) give ``cell``. The
manifest names the exported recurrent nodes, which become the trace's layers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CASES: list[dict] = [
    {"name": "lstm_batch_first", "cell": "LSTM", "batch_first": True, "bidirectional": False,
     "layers": 1},
    {"name": "lstm_seq_first_2layers", "cell": "LSTM", "batch_first": False, "bidirectional": False,
     "layers": 2},
    {"name": "lstm_bidirectional_2layers", "cell": "LSTM", "batch_first": True, "bidirectional": True,
     "layers": 2},
    {"name": "lstm_bidirectional_seq_first", "cell": "LSTM", "batch_first": False,
     "bidirectional": True, "layers": 1},
    {"name": "gru_batch_first_2layers", "cell": "GRU", "batch_first": True, "bidirectional": False,
     "layers": 2},
    {"name": "gru_bidirectional_seq_first_2layers", "cell": "GRU", "batch_first": False,
     "bidirectional": True, "layers": 2},
    {"name": "rnn_tanh_bidirectional", "cell": "RNN", "batch_first": True, "bidirectional": True,
     "layers": 1},
    {"name": "rnn_relu_2layers", "cell": "RNN", "batch_first": False, "bidirectional": False,
     "layers": 2, "nonlinearity": "relu"},
    {"name": "embedding_lstm", "cell": "LSTM", "batch_first": True, "bidirectional": False,
     "layers": 1, "front": "embedding"},
    {"name": "linear_relu_gru", "cell": "GRU", "batch_first": True, "bidirectional": True,
     "layers": 1, "front": "linear_relu"},
    {"name": "conv1d_tanh_lstm", "cell": "LSTM", "batch_first": True, "bidirectional": False,
     "layers": 2, "front": "conv1d"},
    # The dynamo exporter (torch.export + onnxscript): LSTM/GRU nodes with its own glue.
    # (It unrolls nn.RNN into MatMul/Tanh ops: no recurrent node to trace.)
    {"name": "dynamo_lstm_bidirectional_2layers", "cell": "LSTM", "batch_first": True,
     "bidirectional": True, "layers": 2, "exporter": "dynamo"},
    {"name": "dynamo_gru_seq_first_2layers", "cell": "GRU", "batch_first": False,
     "bidirectional": False, "layers": 2, "exporter": "dynamo"},
]
FEATURES, HIDDEN, BATCH, STEPS, VOCAB = 3, 5, 2, 6, 11


def main(out: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    torch.manual_seed(12)

    class Model(torch.nn.Module):
        def __init__(self, c: dict):
            super().__init__()
            self.c = c
            features = FEATURES
            front = c.get("front")
            if front == "embedding":
                self.front = torch.nn.Embedding(VOCAB, 4)
                features = 4
            elif front == "linear_relu":
                self.front = torch.nn.Sequential(torch.nn.Linear(FEATURES, 4), torch.nn.ReLU())
                features = 4
            elif front == "conv1d":
                self.front = torch.nn.Conv1d(FEATURES, 4, kernel_size=3, padding=1)
                features = 4
            else:
                self.front = None
            kw = {"nonlinearity": c["nonlinearity"]} if "nonlinearity" in c else {}
            self.rnn = getattr(torch.nn, c["cell"])(
                features, HIDDEN, num_layers=c["layers"], batch_first=c["batch_first"],
                bidirectional=c["bidirectional"], **kw)

        def rnn_input(self, x):
            if self.c.get("front") == "conv1d":
                y = torch.tanh(self.front(x.transpose(1, 2))).transpose(1, 2)
            elif self.front is not None:
                y = self.front(x)
            else:
                return x
            return y if self.c["batch_first"] else y.transpose(0, 1)

        def forward(self, x):
            return self.rnn(self.rnn_input(x))

    manifest = []
    for c in CASES:
        d = out / c["name"]
        d.mkdir(parents=True)
        model = Model(c).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * 0.5)
        if c.get("front") == "embedding":
            x = torch.randint(0, VOCAB, (BATCH, STEPS))
        elif c.get("front") or c["batch_first"]:
            x = torch.randn(BATCH, STEPS, FEATURES)
        else:
            x = torch.randn(STEPS, BATCH, FEATURES)
        outputs = ["output", "h_n"] + (["c_n"] if c["cell"] == "LSTM" else [])
        if c.get("exporter") == "dynamo":
            torch.onnx.export(model, (x,), str(d / "model.onnx"), dynamo=True, input_names=["x"],
                              output_names=outputs, verbose=False)
        else:
            torch.onnx.export(model, (x,), str(d / "model.onnx"), dynamo=False, input_names=["x"],
                              output_names=outputs, dynamic_axes={"x": {0: "a", 1: "b"}})
        np.savez(d / "feeds.npz", x=x.numpy())
        graph = onnx.load(str(d / "model.onnx")).graph
        nodes = [n.name for n in graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
        ref = {}
        with torch.no_grad():
            seq = model.rnn_input(x)
            if not c["batch_first"]:
                seq = seq.transpose(0, 1)  # (batch, steps, features)
            mine = model(x)[0].numpy()
            ort_out = ort.InferenceSession(str(d / "model.onnx")).run(None, {"x": x.numpy()})[0]
            assert np.abs(mine - ort_out).max() < 1e-5, "onnxruntime disagrees with torch"
            dirs = ["forward", "backward"] if c["bidirectional"] else ["forward"]
            for k in range(c["layers"]):
                kw = {"nonlinearity": c["nonlinearity"]} if "nonlinearity" in c else {}
                one = getattr(torch.nn, c["cell"])(seq.shape[-1], HIDDEN, batch_first=True,
                                                   bidirectional=c["bidirectional"], **kw)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    for suffix in ("", "_reverse")[:len(dirs)]:
                        getattr(one, f"{name}_l0{suffix}").copy_(
                            getattr(model.rnn, f"{name}_l{k}{suffix}"))
                y = one(seq)[0]
                for j, direction in enumerate(dirs):
                    ref[f"hidden_{k}_{direction}"] = y[..., j * HIDDEN:(j + 1) * HIDDEN].numpy()
                    if c["cell"] != "LSTM":
                        continue
                    cells = np.zeros((BATCH, STEPS, HIDDEN), np.float32)
                    for t in range(STEPS):
                        part = seq[:, t:] if direction == "backward" else seq[:, :t + 1]
                        cells[:, t] = one(part)[1][1][j].numpy()
                    ref[f"cell_{k}_{direction}"] = cells
                seq = y
        np.savez(d / "reference.npz", **ref)
        manifest.append({**c, "nodes": nodes})
    (out / "manifest.json").write_text(json.dumps({"cases": manifest}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
