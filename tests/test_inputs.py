"""INPUT files: reading .npy/.npz/.csv by content, never unpickling, and one-line errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from lstm_trace.inputs import InputError, detect_format, load_input, read_input, validate_input

ROOT = Path(__file__).resolve().parent.parent


class _Trap:
    """Unpickling this touches a marker file: proof that nothing was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _error(func, *args, **kwargs) -> str:
    with pytest.raises(InputError) as err:
        func(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    assert isinstance(err.value, ValueError)
    return message


# ------------------------------------------------------------------ reading

def test_npy_sequence_becomes_a_batch_of_one(tmp_path):
    path = tmp_path / "input.npy"
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(path, x)
    out = load_input(path, features=3)
    assert out.shape == (1, 4, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], x)


def test_npy_batch_is_kept_and_int_features_become_float(tmp_path):
    path = tmp_path / "input.npy"
    np.save(path, np.arange(24, dtype=np.int32).reshape(2, 4, 3))
    out = load_input(path, features=3)
    assert out.shape == (2, 4, 3) and out.dtype.kind == "f"
    assert out[1, 3, 2] == 23.0


def test_pickled_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    message = _error(read_input, path)
    assert str(path) in message and "Python objects" in message
    assert not marker.exists()


def test_pickled_member_of_npz_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([_Trap(marker)], dtype=object))
    message = _error(read_input, path)
    assert str(path) in message and "Python objects" in message
    assert not marker.exists()


def test_npz_with_one_array_needs_no_key(tmp_path):
    path = tmp_path / "input.npz"
    np.savez(path, sequences=np.ones((2, 5, 3), np.float32))
    assert read_input(path).shape == (2, 5, 3)


def test_npz_with_several_arrays_lists_keys_and_key_picks(tmp_path):
    path = tmp_path / "input.npz"
    np.savez(path, a=np.ones((5, 3)), b=np.zeros((7, 3)))
    message = _error(read_input, path)
    assert str(path) in message and "a, b" in message and "--input-key" in message
    assert read_input(path, key="b").shape == (7, 3)
    message = _error(read_input, path, key="c")
    assert "'c'" in message and "a, b" in message


def test_input_key_on_a_npy_file_is_an_error(tmp_path):
    path = tmp_path / "input.npy"
    np.save(path, np.ones((5, 3)))
    assert "--input-key" in _error(read_input, path, key="x")


def test_csv_skips_a_header_and_reads_float64_rows(tmp_path):
    path = tmp_path / "input.csv"
    path.write_text("f0,f1,f2\n0.1,0.2,0.3\n1,2,3.5\n")
    x = read_input(path)
    assert x.shape == (2, 3) and x.dtype == np.float64
    assert x[0, 0] == 0.1 and x[1, 2] == 3.5
    assert load_input(path, features=3).shape == (1, 2, 3)


def test_csv_of_integers_reads_as_int_and_one_column_is_token_ids(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("token\n3\n1\n4\n1\n5\n")
    x = read_input(path)
    assert x.dtype == np.int64 and x.shape == (5, 1)
    ids = validate_input(x, features=None, integer_ids=True, path=path)
    assert ids.shape == (1, 5) and ids.tolist() == [[3, 1, 4, 1, 5]]
    # The same integers are fine as float features for a model without an Embedding.
    assert validate_input(x, features=1, integer_ids=False, path=path).dtype.kind == "f"


def test_csv_with_semicolons_tabs_spaces_blank_lines_and_comments(tmp_path):
    for text in ("1;2\n3;4\n", "1\t2\n3\t4\n", "# comment\n1 2\n\n3   4\n"):
        path = tmp_path / "input.csv"
        path.write_text(text)
        np.testing.assert_array_equal(read_input(path), [[1, 2], [3, 4]])


def test_csv_errors_name_the_line_and_column(tmp_path):
    path = tmp_path / "input.csv"
    path.write_text("a,b\n1,2\n3\n")
    message = _error(read_input, path)
    assert str(path) in message and "line 3 has 1 values but line 2 has 2" in message
    path.write_text("1,2\n3,oops\n")
    message = _error(read_input, path)
    assert "line 2, column 2: 'oops' is not a number" in message
    path.write_text("1,2\n3,\n")
    assert "line 2, column 2 is empty" in _error(read_input, path)
    path.write_text("a,b\n")
    assert "no data rows" in _error(read_input, path)
    path.write_text("\n# only a comment\n")
    assert "no rows" in _error(read_input, path)


def test_format_is_detected_by_content_not_only_extension(tmp_path):
    with open(tmp_path / "data.dat", "wb") as handle:  # np.save(path) would add ".npy"
        np.save(handle, np.ones((3, 2)))
    assert detect_format(tmp_path / "data.dat") == "npy"
    assert read_input(tmp_path / "data.dat").shape == (3, 2)
    npz = tmp_path / "arrays.npz"
    np.savez(npz, x=np.ones((3, 2)))
    npz.rename(tmp_path / "arrays.bin")
    assert detect_format(tmp_path / "arrays.bin") == "npz"
    assert read_input(tmp_path / "arrays.bin").shape == (3, 2)
    text = tmp_path / "values"
    text.write_text("1,2\n3,4\n")
    assert detect_format(text) == "csv"


def test_wrong_content_for_the_extension_is_reported(tmp_path):
    fake = tmp_path / "input.npy"
    fake.write_text("1,2,3\n")
    assert "not a NumPy .npy file" in _error(read_input, fake)
    fake_npz = tmp_path / "input.npz"
    fake_npz.write_bytes(b"\x00\x01binary")
    assert "not a NumPy .npz file" in _error(read_input, fake_npz)
    binary = tmp_path / "input.bin"
    binary.write_bytes(b"\x00\x01\x02\x03")
    assert "unsupported input format" in _error(read_input, binary)


def test_missing_empty_directory_and_corrupt_files(tmp_path):
    assert "no such file" in _error(read_input, tmp_path / "nope.npy")
    assert "is a directory" in _error(read_input, tmp_path)
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    assert "empty" in _error(read_input, empty)

    good = tmp_path / "good.npy"
    np.save(good, np.ones((100, 3), np.float32))
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(good.read_bytes()[:200])
    message = _error(read_input, truncated)
    assert str(truncated) in message and "cannot read as .npy" in message

    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04" + b"garbage" * 10)
    message = _error(read_input, broken)
    assert str(broken) in message and "cannot read as .npz" in message

    raw = tmp_path / "raw.npz"
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("notes.txt", "not an array")
    assert "not a NumPy array" in _error(read_input, raw)


# ------------------------------------------------------------------ validation

def test_wrong_feature_count_names_file_expected_and_found():
    message = _error(validate_input, np.ones((10, 4), np.float32), features=3, integer_ids=False,
                     path="input.npy")
    assert message == (
        "input.npy: expected (steps, 3) or (batch, steps, 3) float features, found shape (10, 4)"
    )


@pytest.mark.parametrize(
    ("x", "found"),
    [
        (np.ones(10, np.float32), "found shape (10,); one feature per step is (steps, 1)"),
        (np.ones((1, 2, 3, 3), np.float32), "found shape (1, 2, 3, 3)"),
        (np.ones((0, 3), np.float32), "found shape (0, 3) (no steps)"),
        (np.ones((0, 5, 3), np.float32), "found shape (0, 5, 3) (no samples)"),
        (np.array([["a", "b", "c"]]), "found strings (dtype <U1)"),
        (np.ones((4, 3), np.complex64), "found complex numbers (dtype complex64)"),
        (np.array([[1.0, None, 2.0]], dtype=object), "found Python objects (dtype object)"),
        (np.zeros((4,), dtype=[("a", "f4"), ("b", "f4")]), "found a structured array (fields a, b)"),
    ],
)
def test_bad_feature_arrays_are_refused_in_one_line(x, found):
    message = _error(validate_input, x, features=3, integer_ids=False, path="seq.npy")
    assert message.startswith("seq.npy: expected (steps, 3) or (batch, steps, 3) float features, ")
    assert message.endswith(found)


def test_nan_and_inf_are_refused_with_the_first_position():
    x = np.zeros((2, 5, 3), np.float32)
    x[1, 3, 2] = np.nan
    x[1, 4, 0] = np.inf
    message = _error(validate_input, x, features=3, integer_ids=False, path="in.npy")
    assert message == (
        "in.npy: expected finite numbers, found nan at sample 1, step 3, feature 2 "
        "(2 non-finite values in all)"
    )
    y = np.zeros((5, 3))
    y[2, 1] = -np.inf
    assert "found -inf at sample 0, step 2, feature 1" in _error(
        validate_input, y, features=None, integer_ids=False, path="in.csv")


def test_unknown_feature_count_accepts_any_width():
    out = validate_input(np.ones((5, 7)), features=None, integer_ids=False, path="x.npy")
    assert out.shape == (1, 5, 7)


def test_token_ids_are_normalised_to_batch_steps():
    ids = validate_input(np.array([3, 1, 4]), features=None, integer_ids=True, path="ids.npy")
    assert ids.shape == (1, 3) and ids.dtype == np.int64
    batch = validate_input(np.array([[3, 1], [4, 1]], np.uint8), features=None, integer_ids=True,
                           path="ids.npy")
    assert batch.shape == (2, 2) and batch.dtype == np.int64
    whole = validate_input(np.array([[3.0, 1.0]]), features=None, integer_ids=True, path="ids.npy")
    assert whole.dtype == np.int64 and whole.tolist() == [[3, 1]]


@pytest.mark.parametrize(
    ("x", "found"),
    [
        (np.array([[0.5, 1.0]]),
         "found float values that are not whole numbers (first: 0.5 at sample 0, step 0)"),
        (np.array([[1, -2]]), "found a negative id -2 at sample 0, step 1"),
        (np.ones((2, 3, 4), np.int64), "found shape (2, 3, 4)"),
        (np.zeros((2, 0), np.int64), "found shape (2, 0) (no steps)"),
        (np.array([True, False]), "found booleans (dtype bool)"),
        (np.array(["1", "2"]), "found strings (dtype <U1)"),
    ],
)
def test_bad_token_ids_are_refused_in_one_line(x, found):
    message = _error(validate_input, x, features=None, integer_ids=True, path="ids.npy")
    assert message.startswith("ids.npy: expected integer token ids (steps,) or (batch, steps), ")
    assert message.endswith(found)


def test_nan_in_float_token_ids_is_refused():
    message = _error(validate_input, np.array([[1.0, np.nan]]), features=None, integer_ids=True,
                     path="ids.npy")
    assert "found nan at sample 0, step 1" in message


def test_a_model_zip_given_as_input_is_named_as_not_an_npz(tmp_path):
    """``lstm-trace model.keras model.keras``: the .keras zip holds no .npy arrays."""
    import shutil

    model = tmp_path / "model.keras"
    shutil.copy(ROOT / "sample_models" / "brackets.keras", model)
    with pytest.raises(InputError, match=r"model.keras: a zip archive of .*config.json.*not of \.npy "
                                         r"arrays \(a model file\? MODEL comes first, then INPUT\)"):
        read_input(model)
