"""Writes the ONNX project's own LSTM/GRU/RNN node test vectors (from the installed ``onnx``).

    python onnx_backend_vectors.py OUTDIR

The ``onnx`` wheel ships the generators of its backend node tests
(``onnx.backend.test.case.node.lstm`` / ``gru`` / ``rnn``): each builds a one-node model
and its expected outputs with ONNX's own NumPy reference (``LSTMHelper``...), the files
other runtimes are tested against (``test_lstm_defaults``, ``test_gru_batchwise``...).
Per case, in ``OUTDIR/<case>/``:

- ``model.onnx``: the model as ONNX writes it (W, R, B, P are graph inputs, fed at run time);
- ``stored.onnx``: the same node with W, R, B, P stored as initializers (a deployed model);
- ``feeds.npz``: the remaining graph inputs (X, sequence_lens, initial_h, initial_c) by name;
- ``expected.npz``: ONNX's expected outputs by output name (Y, Y_h, Y_c).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.backend.test.case.node as node_cases
from onnx import numpy_helper

WEIGHT_INPUTS = (1, 2, 3, 7)  # W, R, B, P


def main(out: Path) -> None:
    # Importing a case module runs its ``export_*`` methods, which register the test cases.
    from onnx.backend.test.case.node import gru, lstm, rnn  # noqa: F401

    cases = []
    for tc in node_cases._NodeTestCases:
        graph = tc.model.graph
        node = graph.node[0]
        if node.op_type not in ("LSTM", "GRU", "RNN"):
            continue
        d = out / tc.name
        d.mkdir()
        onnx.save(tc.model, d / "model.onnx")
        inputs, outputs = tc.data_sets[0]
        given = {vi.name: np.asarray(a) for vi, a in zip(graph.input, inputs, strict=True)}
        np.savez(d / "expected.npz",
                 **{vi.name: np.asarray(a) for vi, a in zip(graph.output, outputs, strict=True)})
        weights = {node.input[k] for k in WEIGHT_INPUTS if k < len(node.input) and node.input[k]}
        stored = onnx.ModelProto()
        stored.CopyFrom(tc.model)
        kept = [vi for vi in stored.graph.input if vi.name not in weights]
        del stored.graph.input[:]
        stored.graph.input.extend(kept)
        stored.graph.initializer.extend(numpy_helper.from_array(given[n], n) for n in sorted(weights))
        onnx.checker.check_model(stored)
        onnx.save(stored, d / "stored.onnx")
        np.savez(d / "feeds.npz", **{vi.name: given[vi.name] for vi in kept})
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        cases.append({
            "name": tc.name, "op": node.op_type,
            "direction": attrs.get("direction", b"forward").decode(),
            "layout": int(attrs.get("layout", 0)),
            "outputs": [o for o in node.output],
            "weights": sorted(weights),
        })
    (out / "manifest.json").write_text(json.dumps({"onnx": onnx.__version__, "cases": cases},
                                                   indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
