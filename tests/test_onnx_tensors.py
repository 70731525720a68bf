"""ONNX TensorProto decoding by lstm-trace's wire reader, checked against onnx.numpy_helper.

Every common dtype, in ``raw_data`` and in the typed repeated fields (packed, as
onnx writes them), and external data at an offset inside the model's folder.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper  # a test dependency: builds the tensors

from lstm_trace.loaders import protobuf_wire as pw
from lstm_trace.loaders.errors import LoadError
from lstm_trace.loaders.onnx.proto import TensorReader

DTYPES = {
    TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16, TensorProto.DOUBLE: np.float64,
    TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8, TensorProto.INT16: np.int16,
    TensorProto.UINT16: np.uint16, TensorProto.INT32: np.int32, TensorProto.INT64: np.int64,
    TensorProto.UINT32: np.uint32, TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_,
}


def _values(dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(7)
    if dtype is np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.floating):
        return (rng.standard_normal(shape) * 3).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape).astype(dtype)


@pytest.mark.parametrize("raw", [True, False], ids=["raw_data", "typed_fields"])
@pytest.mark.parametrize("elem", list(DTYPES), ids=[TensorProto.DataType.Name(e) for e in DTYPES])
def test_tensor_decodes_like_onnx(tmp_path, elem, raw):
    array = _values(DTYPES[elem], (2, 3, 4))
    if raw:
        proto = numpy_helper.from_array(array, "t")
    else:
        vals = array.view(np.uint16).ravel() if elem == TensorProto.FLOAT16 else array.ravel()
        proto = helper.make_tensor("t", elem, array.shape, vals.tolist(), raw=False)
    expected = numpy_helper.to_array(proto)
    name, got = TensorReader(tmp_path, "m.onnx").read(pw.parse_message(proto.SerializeToString()))
    assert name == "t"
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_bfloat16_becomes_float32(tmp_path):
    values = np.array([1.0, -2.5, 0.15625, 3e5], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)
    proto = helper.make_tensor("b", TensorProto.BFLOAT16, [4], bits.tobytes(), raw=True)
    _, got = TensorReader(tmp_path, "m.onnx").read(pw.parse_message(proto.SerializeToString()))
    np.testing.assert_array_equal(got, (bits.astype(np.uint32) << 16).view(np.float32))


def test_external_data_at_an_offset_inside_the_folder(tmp_path):
    array = _values(np.float32, (3, 5))
    (tmp_path / "data.bin").write_bytes(b"\0" * 16 + array.tobytes() + b"tail")
    proto = TensorProto(name="e", data_type=TensorProto.FLOAT, dims=[3, 5],
                        data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "data.bin"), ("offset", "16"), ("length", str(array.nbytes))):
        entry = proto.external_data.add()
        entry.key, entry.value = key, value
    _, got = TensorReader(tmp_path, "m.onnx").read(pw.parse_message(proto.SerializeToString()))
    np.testing.assert_array_equal(got, array)
    proto.external_data[2].value = "12"  # a length that contradicts the shape
    with pytest.raises(LoadError, match="external length of 12"):
        TensorReader(tmp_path, "m.onnx").read(pw.parse_message(proto.SerializeToString()))


def test_typed_field_with_fewer_values_than_its_shape_is_refused(tmp_path):
    proto = TensorProto(name="t", data_type=TensorProto.FLOAT, dims=[1000, 1000], float_data=[1.0, 2.0])
    with pytest.raises(LoadError, match=r"declares shape \[1000, 1000\] \(1000000 values\) but holds 2"):
        TensorReader(tmp_path, "m.onnx").read(pw.parse_message(proto.SerializeToString()))
