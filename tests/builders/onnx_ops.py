"""One-node ONNX graphs of the glue ops lstm-trace replays, run by onnxruntime.

    python onnx_ops.py OUTDIR

Per case ``<name>.onnx`` (graph input ``x``, constant inputs as initializers) and
``<name>.npz`` (``x`` and onnxruntime's output ``y``, then ``y1``... for an op with
several outputs). ``CASES`` is plain data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# name, op, opset, input shape, attributes, extra constant inputs [(name, values, dtype)]
CASES: list[dict] = [
    {"name": "transpose", "op": "Transpose", "shape": [2, 3, 4], "attrs": {"perm": [1, 0, 2]}},
    {"name": "squeeze_13", "op": "Squeeze", "shape": [2, 1, 4], "inputs": [([1], "int64")]},
    {"name": "squeeze_11", "op": "Squeeze", "opset": 11, "shape": [2, 1, 4], "attrs": {"axes": [-2]}},
    {"name": "unsqueeze_13", "op": "Unsqueeze", "shape": [2, 4], "inputs": [([0, 3], "int64")]},
    {"name": "unsqueeze_11", "op": "Unsqueeze", "opset": 11, "shape": [2, 4], "attrs": {"axes": [1]}},
    {"name": "reshape_zero_minus_one", "op": "Reshape", "shape": [2, 3, 4],
     "inputs": [([0, -1], "int64")]},
    {"name": "flatten", "op": "Flatten", "shape": [2, 3, 4], "attrs": {"axis": 2}},
    {"name": "slice", "op": "Slice", "shape": [5, 6],
     "inputs": [([1, -4], "int64"), ([4, 100], "int64"), ([0, 1], "int64"), ([2, 1], "int64")]},
    {"name": "slice_reverse", "op": "Slice", "shape": [5, 6],
     "inputs": [([-1], "int64"), ([-9223372036854775807], "int64"), ([0], "int64"),
                ([-1], "int64")]},
    {"name": "slice_opset9", "op": "Slice", "opset": 9, "shape": [5, 6],
     "attrs": {"starts": [1], "ends": [3], "axes": [1]}},
    {"name": "concat", "op": "Concat", "shape": [2, 3], "attrs": {"axis": 1},
     "inputs": [([[1.0], [2.0]], "float32")]},
    {"name": "shape_slice", "op": "Shape", "opset": 15, "shape": [2, 3, 4], "attrs": {"start": 1}},
    {"name": "gather_embedding", "op": "Gather", "shape": [2, 3], "int_input": 7,
     "table": [7, 5], "attrs": {"axis": 0}},
    {"name": "gather_axis1", "op": "Gather", "shape": [3, 4], "attrs": {"axis": 1},
     "inputs": [([2, -1], "int64")]},
    {"name": "expand", "op": "Expand", "shape": [1, 3], "inputs": [([4, 1, 3], "int64")]},
    {"name": "tile", "op": "Tile", "shape": [2, 3], "inputs": [([2, 1], "int64")]},
    {"name": "cast_double", "op": "Cast", "shape": [2, 3], "attrs": {"to": 11}},
    {"name": "matmul", "op": "MatMul", "shape": [2, 3, 4], "inputs": [("rand", [4, 5])]},
    {"name": "gemm_trans", "op": "Gemm", "shape": [4, 3],
     "attrs": {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0},
     "inputs": [("rand", [5, 4]), ("rand", [5])]},
    {"name": "add_broadcast", "op": "Add", "shape": [2, 3, 4], "inputs": [("rand", [4])]},
    {"name": "sub", "op": "Sub", "shape": [2, 3], "inputs": [("rand", [2, 3])]},
    {"name": "mul", "op": "Mul", "shape": [2, 3], "inputs": [("rand", [3])]},
    {"name": "div", "op": "Div", "shape": [2, 3], "inputs": [("rand", [3])]},
    {"name": "relu", "op": "Relu", "shape": [3, 4]},
    {"name": "tanh", "op": "Tanh", "shape": [3, 4]},
    {"name": "sigmoid", "op": "Sigmoid", "shape": [3, 4]},
    {"name": "leaky_relu", "op": "LeakyRelu", "shape": [3, 4], "attrs": {"alpha": 0.2}},
    {"name": "neg", "op": "Neg", "shape": [3, 4]},
    {"name": "conv1d_pads", "op": "Conv", "shape": [2, 3, 9], "attrs": {"pads": [2, 1]},
     "inputs": [("rand", [4, 3, 3]), ("rand", [4])]},
    {"name": "conv1d_stride_dilation", "op": "Conv", "shape": [2, 3, 12],
     "attrs": {"strides": [2], "dilations": [2]}, "inputs": [("rand", [5, 3, 3])]},
    {"name": "conv1d_groups_same", "op": "Conv", "shape": [1, 4, 7],
     "attrs": {"group": 2, "auto_pad": "SAME_UPPER"}, "inputs": [("rand", [6, 2, 4])]},
    # 2-D Conv (CRNN fronts: ddddocr's common.onnx), depthwise and grouped
    {"name": "conv2d_pads_strides", "op": "Conv", "shape": [2, 3, 9, 11],
     "attrs": {"pads": [1, 2, 0, 1], "strides": [2, 3]}, "inputs": [("rand", [4, 3, 3, 3]), ("rand", [4])]},
    {"name": "conv2d_stride_same_lower", "op": "Conv", "shape": [1, 2, 7, 8],
     "attrs": {"strides": [2, 1], "auto_pad": "SAME_LOWER"}, "inputs": [("rand", [3, 2, 2, 3])]},
    {"name": "conv2d_depthwise", "op": "Conv", "shape": [2, 4, 6, 5],
     "attrs": {"group": 4, "pads": [1, 1, 1, 1]}, "inputs": [("rand", [4, 1, 3, 3]), ("rand", [4])]},
    {"name": "conv2d_groups_valid", "op": "Conv", "shape": [1, 4, 5, 6],
     "attrs": {"group": 2, "auto_pad": "VALID"}, "inputs": [("rand", [6, 2, 2, 2])]},
    {"name": "conv3d_dilation", "op": "Conv", "shape": [1, 2, 4, 5, 3],
     "attrs": {"pads": [1, 0, 1, 1, 0, 0], "dilations": [1, 2, 1]},
     "inputs": [("rand", [3, 2, 2, 2, 2])]},
    {"name": "dequantize_per_tensor", "op": "DequantizeLinear", "shape": [3, 4], "int_input": 100,
     "int_dtype": "int8", "inputs": [(0.05, "float32"), (7, "int8")]},
    {"name": "dequantize_per_axis", "op": "DequantizeLinear", "shape": [2, 3, 4], "int_input": 100,
     "int_dtype": "int8", "attrs": {"axis": 1},
     "inputs": [([0.1, 0.02, 0.5], "float32"), ([1, -3, 9], "int8")]},
    {"name": "dequantize_uint8_no_zero_point", "op": "DequantizeLinear", "shape": [4, 5],
     "int_input": 250, "int_dtype": "uint8", "inputs": [(0.01, "float32")]},
    {"name": "reverse_sequence", "op": "ReverseSequence", "shape": [5, 3, 2],
     "attrs": {"batch_axis": 1, "time_axis": 0}, "inputs": [([5, 2, 0], "int64")]},
    {"name": "reverse_sequence_batch_major", "op": "ReverseSequence", "shape": [3, 5, 2],
     "attrs": {"batch_axis": 0, "time_axis": 1}, "inputs": [([4, 5, 1], "int64")]},
    {"name": "constant_of_shape", "op": "ConstantOfShape", "shape": [3], "int_input": 5,
     "attrs": {"value": ("tensor", 1.5)}},
    # Pad / Pow / Sqrt: silero-vad's STFT front end (Pad reflect -> Conv -> Pow, Add, Sqrt)
    {"name": "pad_constant_value", "op": "Pad", "shape": [2, 3, 4],
     "inputs": [([0, 1, 2, 0, 0, 1], "int64"), (0.5, "float32")]},
    {"name": "pad_reflect", "op": "Pad", "shape": [3, 10], "attrs": {"mode": "reflect"},
     "inputs": [([0, 3, 0, 3], "int64")]},
    {"name": "pad_edge", "op": "Pad", "shape": [2, 5], "attrs": {"mode": "edge"},
     "inputs": [([1, 2, 0, 1], "int64")]},
    {"name": "pad_wrap", "op": "Pad", "opset": 19, "shape": [2, 5], "attrs": {"mode": "wrap"},
     "inputs": [([0, 2, 0, 3], "int64")]},
    {"name": "pad_negative_crops", "op": "Pad", "shape": [2, 6],
     "inputs": [([0, -1, 1, 2], "int64")]},
    {"name": "pad_axes_18", "op": "Pad", "opset": 18, "shape": [2, 3, 5],
     "inputs": [([2, 1], "int64"), (0.0, "float32"), ([-1], "int64")]},
    {"name": "pad_opset2", "op": "Pad", "opset": 2, "shape": [2, 3],
     "attrs": {"pads": [0, 1, 1, 0], "value": -2.0}},
    {"name": "pow_float", "op": "Pow", "shape": [3, 4], "inputs": [(2.0, "float32")]},
    {"name": "pow_int_exponent", "op": "Pow", "opset": 15, "shape": [3, 4],
     "inputs": [([3], "int64")]},
    {"name": "sqrt", "op": "Sqrt", "shape": [3, 4], "positive": True},
    # If conditions (silero-vad: Equal of the sampling rate, Size of the state, Not)
    {"name": "equal_int", "op": "Equal", "shape": [3, 4], "int_input": 3,
     "inputs": [([0, 1, 2, 1], "int64")]},
    {"name": "equal_float", "op": "Equal", "shape": [2, 3], "inputs": [("rand", [3])]},
    {"name": "greater", "op": "Greater", "shape": [2, 3], "inputs": [([0.0, 0.5, -0.5], "float32")]},
    {"name": "less", "op": "Less", "shape": [4], "int_input": 9, "inputs": [(4, "int64")]},
    {"name": "greater_or_equal", "op": "GreaterOrEqual", "opset": 16, "shape": [4], "int_input": 9,
     "inputs": [(4, "int64")]},
    {"name": "less_or_equal", "op": "LessOrEqual", "opset": 16, "shape": [2, 3],
     "inputs": [([0.0, 0.5, -0.5], "float32")]},
    {"name": "not", "op": "Not", "shape": [2, 3], "int_input": 2, "int_dtype": "bool"},
    {"name": "and", "op": "And", "shape": [2, 3], "int_input": 2, "int_dtype": "bool",
     "inputs": [([True, False, True], "bool")]},
    {"name": "or", "op": "Or", "shape": [2, 3], "int_input": 2, "int_dtype": "bool",
     "inputs": [([True, False, False], "bool")]},
    {"name": "xor", "op": "Xor", "shape": [2, 3], "int_input": 2, "int_dtype": "bool",
     "inputs": [([True, False, True], "bool")]},
    # Attention and packing fronts (pythainlp's thai2rom: ReduceSum, Softmax, Where, TopK)
    {"name": "reduce_sum_13", "op": "ReduceSum", "opset": 13, "shape": [2, 3, 4],
     "inputs": [([1, -1], "int64")], "attrs": {"keepdims": 0}},
    {"name": "reduce_sum_all", "op": "ReduceSum", "opset": 13, "shape": [2, 3]},
    {"name": "reduce_sum_11", "op": "ReduceSum", "opset": 11, "shape": [2, 3, 4], "attrs": {"axes": [2]}},
    {"name": "reduce_mean", "op": "ReduceMean", "shape": [2, 3, 4], "attrs": {"axes": [0, 2]}},
    {"name": "reduce_max_18", "op": "ReduceMax", "opset": 18, "shape": [2, 3, 4],
     "inputs": [([1], "int64")]},
    {"name": "reduce_min", "op": "ReduceMin", "shape": [3, 4], "attrs": {"keepdims": 0}},
    {"name": "reduce_prod", "op": "ReduceProd", "shape": [3, 4], "attrs": {"axes": [-1]}},
    {"name": "softmax_13", "op": "Softmax", "opset": 13, "shape": [2, 3, 4], "attrs": {"axis": 1}},
    {"name": "softmax_11", "op": "Softmax", "opset": 11, "shape": [2, 3, 4]},
    {"name": "where", "op": "Where", "shape": [2, 3], "int_input": 2, "int_dtype": "bool",
     "inputs": [("rand", [2, 3]), ("rand", [3])]},
    {"name": "top_k_largest_ties", "op": "TopK", "shape": [2, 7], "int_input": 3,
     "inputs": [([4], "int64")], "outputs": 2},
    {"name": "top_k_smallest_axis0", "op": "TopK", "shape": [5, 3], "attrs": {"axis": 0, "largest": 0},
     "inputs": [([5], "int64")], "outputs": 2},
    {"name": "size", "op": "Size", "shape": [2, 3, 4]},
    {"name": "size_empty", "op": "Size", "shape": [2, 0, 4]},
]


def main(out: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(21)
    for c in CASES:
        shape = c["shape"]
        if "int_input" in c:
            x = rng.integers(0, c["int_input"], shape).astype(c.get("int_dtype", "int64"))
            elem = helper.np_dtype_to_tensor_dtype(x.dtype)
        else:
            x = rng.standard_normal(shape).astype(np.float32)
            if c.get("positive"):
                x = np.abs(x)
            elem = TensorProto.FLOAT
        inits, names = [], ["x"]
        if "table" in c:  # Gather as an embedding: the table is input 0, ids the graph input
            inits.append(numpy_helper.from_array(rng.standard_normal(c["table"]).astype(np.float32), "table"))
            names = ["table", "x"]
        for k, spec in enumerate(c.get("inputs", [])):
            if spec[0] == "rand":
                value = rng.standard_normal(spec[1]).astype(np.float32)
            else:
                value = np.array(spec[0], dtype=spec[1])
            inits.append(numpy_helper.from_array(value, f"c{k}"))
            names.append(f"c{k}")
        attrs = {}
        for key, value in c.get("attrs", {}).items():
            if isinstance(value, tuple) and value[0] == "tensor":
                value = numpy_helper.from_array(np.array([value[1]], dtype=np.float32))
            attrs[key] = value
        outputs = ["y", *(f"y{k}" for k in range(1, c.get("outputs", 1)))]
        node = helper.make_node(c["op"], names, outputs, name=c["name"], **attrs)
        graph = helper.make_graph([node], c["name"], [helper.make_tensor_value_info("x", elem, shape)],
                                  [helper.make_empty_tensor_value_info(o) for o in outputs],
                                  inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", c.get("opset", 14))])
        model.ir_version = 8
        onnx.save(model, out / f"{c['name']}.onnx")
        ys = ort.InferenceSession(str(out / f"{c['name']}.onnx")).run(None, {"x": x})
        np.savez(out / f"{c['name']}.npz", x=x, **dict(zip(outputs, ys, strict=True)))
    (out / "manifest.json").write_text(json.dumps({"cases": CASES}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
