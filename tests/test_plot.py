"""``lstm-trace plot``: real PNGs of the expected size that are not blank, and the errors."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest
from workflow_common import (
    assert_user_error,
    input_file,
    invoke,
    model_file,
)

import lstm_trace

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_real_image(path, size: tuple[int, int]) -> np.ndarray:
    import matplotlib.image

    assert png_size(path) == size
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (size[1], size[0])
    assert pixels[..., :3].var() > 1e-3  # not blank
    return pixels


def expected_size(trace, units: int | None = None, dpi: int = 100) -> tuple[int, int]:
    """The automatic size the docs state, from the trace's shape (not from the plot code).

    One column per layer direction, ``clip(1.6 + 0.16 * steps, 3.5, 12)`` in wide, plus
    0.8 in; one row per quantity, ``0.55 + 0.1 * units shown`` in tall (1 row for a mask,
    at most 48), plus 0.6 in.
    """
    columns = list(trace.rows())
    rows: dict[int, int] = {}
    for _, _, arrays in columns:
        for r, (q, a) in enumerate(arrays.items()):
            shown = 1 if q == "mask" else (a.shape[2] if units is None else min(units, a.shape[2]))
            rows[r] = max(rows.get(r, 1), shown)
    width = 0.8 + len(columns) * min(max(3.5, 1.6 + 0.16 * trace.steps), 12.0)
    height = 0.6 + sum(0.55 + 0.1 * min(h, 48) for h in rows.values())
    return round(width * dpi), round(height * dpi)


def _plot(directory, name, out, *args, fmt="keras"):
    result = invoke("plot", model_file(directory, name, fmt), input_file(directory, name), "-o", out,
                    *args)
    return result


def test_stacked_lstm_png_has_the_reported_size(wf3, tmp_path):
    out = tmp_path / "gates.png"
    result = _plot(wf3, "stacked_lstm", out)
    assert result.exit_code == 0, result.output
    width, height = (int(v) for v in result.stderr.split("(")[1].split(" ")[0].split("x"))
    trace = lstm_trace.load(model_file(wf3, "stacked_lstm")).trace(np.load(input_file(wf3, "stacked_lstm")))
    assert (width, height) == expected_size(trace)
    assert_real_image(out, (width, height))


def test_size_option_sets_pixels(wf3, tmp_path):
    out = tmp_path / "gates.png"
    result = _plot(wf3, "bigru", out, "--size", "900x500", "--dpi", "80", "--title", "bigru")
    assert result.exit_code == 0, result.output
    assert_real_image(out, (900, 500))


def test_keras2_file_plots(wf2, tmp_path):
    out = tmp_path / "gates.png"
    result = _plot(wf2, "bilstm", out, "--size", "1000x400", fmt="h5")
    assert result.exit_code == 0, result.output
    assert_real_image(out, (1000, 400))


def test_units_option_makes_a_shorter_figure(wf3, tmp_path):
    full, few = tmp_path / "full.png", tmp_path / "few.png"
    assert _plot(wf3, "stacked_lstm", full).exit_code == 0
    result = _plot(wf3, "stacked_lstm", few, "--units", "0:2", "--layer", "lstm_0", "--sample", "2")
    assert result.exit_code == 0, result.output
    assert png_size(few)[1] < png_size(full)[1]
    network = lstm_trace.load(model_file(wf3, "stacked_lstm"))
    x = np.load(input_file(wf3, "stacked_lstm"))
    assert_real_image(full, expected_size(network.trace(x)))
    assert_real_image(few, expected_size(network.trace(x, layers=["lstm_0"]), units=2))


def test_svg_and_pdf(wf3, tmp_path):
    for suffix, magic in ((".svg", b"<?xml"), (".pdf", b"%PDF")):
        out = tmp_path / f"gates{suffix}"
        assert _plot(wf3, "simple_rnn", out).exit_code == 0
        assert out.read_bytes().startswith(magic)


def test_vocab_labels_steps(wf3, tmp_path):
    """A file with one line per step labels the steps of float input."""
    vocab = tmp_path / "steps.txt"
    vocab.write_text("".join(f"t{k}\n" for k in range(10)))
    out = tmp_path / "gates.png"
    result = _plot(wf3, "stacked_lstm", out, "--vocab", vocab)
    assert result.exit_code == 0, result.output


def test_step_labels_from_token_ids_and_one_hot():
    from lstm_trace.writers.plot import step_labels

    vocab = ["<pad>", "a", "b", "c"]
    ids = np.array([[1, 2, 3, 0], [3, 3, 1, 0]], np.int32)
    assert step_labels(ids, vocab, 1, 4) == ["c", "c", "a", "<pad>"]
    one_hot = np.eye(4, dtype=np.float32)[[2, 1, 0]]
    assert step_labels(one_hot, vocab, 0, 3) == ["b", "a", "<pad>"]
    with pytest.raises(ValueError, match="token id 7"):
        step_labels(np.array([7]), vocab, 0, 1)
    with pytest.raises(ValueError, match="4 lines"):
        step_labels(np.zeros((5, 2), np.float32), vocab, 0, 5)


def test_token_model_with_vocab(wf3, tmp_path):
    network = lstm_trace.load(model_file(wf3, "tokens"))
    assert network.layers[0].replayable
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"w{k}\n" for k in range(12)))
    out = tmp_path / "tokens.png"
    result = _plot(wf3, "tokens", out, "--vocab", vocab, "--sample", "1")
    assert result.exit_code == 0, result.output
    assert_real_image(out, expected_size(network.trace(np.load(input_file(wf3, "tokens")))))


def test_gates_share_a_unit_scale_and_tanh_quantities_a_symmetric_one(wf3):
    from lstm_trace.writers.plot import colour_scales

    network = lstm_trace.load(model_file(wf3, "stacked_lstm"))
    trace = network.trace(np.load(input_file(wf3, "stacked_lstm")))
    scales = colour_scales(trace, network)
    for gate in ("input_gate", "forget_gate", "output_gate"):
        assert (scales[gate].vmin, scales[gate].vmax) == (0.0, 1.0)
    assert (scales["candidate"].vmin, scales["candidate"].vmax) == (-1.0, 1.0)
    peak = max(np.abs(trace[k][0]).max() for k in trace if k.endswith("/cell"))
    assert scales["cell"].vmax == pytest.approx(peak) and scales["cell"].vmin == -scales["cell"].vmax
    relu = lstm_trace.load(model_file(wf3, "relu_lstm"))
    relu_trace = relu.trace(np.load(input_file(wf3, "relu_lstm")))
    candidate = colour_scales(relu_trace, relu)["candidate"]
    assert candidate.vmax == pytest.approx(np.abs(relu_trace["lstm_0/candidate"][0]).max())


def test_bad_suffix_and_sample_and_size(wf3, tmp_path):
    assert_user_error(_plot(wf3, "bigru", tmp_path / "g.jpg"), ".jpg")
    assert_user_error(_plot(wf3, "bigru", tmp_path / "g.png", "--sample", "5"), "sample 5 is out of range")
    assert_user_error(_plot(wf3, "bigru", tmp_path / "g.png", "--size", "big"), "--size")
    assert_user_error(_plot(wf3, "bigru", tmp_path / "g.png", "--units", "x"), "bad range")
    assert not (tmp_path / "g.png").exists()


def test_vocab_that_fits_nothing(wf3, tmp_path):
    vocab = tmp_path / "v.txt"
    vocab.write_text("a\nb\n")
    assert_user_error(_plot(wf3, "bigru", tmp_path / "g.png", "--vocab", vocab), "2 lines")
    assert_user_error(_plot(wf3, "bigru", tmp_path / "g.png", "--vocab", tmp_path / "none.txt"),
                      "none.txt")


def test_missing_matplotlib_says_what_to_install(wf3, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = _plot(wf3, "bigru", tmp_path / "g.png")
    assert_user_error(result, "install lstm-trace[plot]")
