"""The glue ops lstm-trace replays in NumPy give what onnxruntime gives, node by node.

One-node graphs (tests/builders/onnx_ops.py) are decoded by lstm-trace's reader and the
node is run by :func:`lstm_trace.loaders.onnx.ops.run_node` on the same input, with the
graph's initializers as its constant inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.onnx_ops import CASES

from lstm_trace.loaders.onnx.ops import run_node
from lstm_trace.loaders.onnx.proto import read_model


@pytest.fixture(scope="session")
def onnx_ops():
    from conftest import build_fixtures

    return build_fixtures("onnx_ops")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_op_matches_onnxruntime(onnx_ops, case):
    model = read_model(onnx_ops / f"{case['name']}.onnx")
    data = np.load(onnx_ops / f"{case['name']}.npz")
    env = {**model.graph.initializers, "x": data["x"]}
    (node,) = model.graph.nodes
    outputs = run_node(node, [env[name] if name else None for name in node.inputs], model.opset)
    for k, y in enumerate(outputs[:len(node.outputs)]):
        expected = data["y" if k == 0 else f"y{k}"]
        assert y.shape == expected.shape
        assert y.dtype == expected.dtype
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


def test_an_unknown_op_names_the_node():
    from lstm_trace.loaders.onnx.proto import Node

    with pytest.raises(ValueError, match=r"node 'n' \(Erf\) cannot be replayed in NumPy"):
        run_node(Node("Erf", "n", ["x"], ["y"]), [np.zeros(2)], 14)
