"""``lstm-trace plot`` makes plots a person can read at any size: measured on the figures.

Every property is checked on the figure itself (text extents from matplotlib's renderer,
pixels of the saved PNG), never by comparing an image with another image: the PNG has
the pixels asked for, no two labels overlap and all stay inside the figure, tick labels
are nice numbers, masked steps are grey and get no token label, ``--steps`` zooms in,
more steps than pixels are averaged in blocks, and the font follows the figure's size.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from workflow_common import input_file, invoke, model_file

import lstm_trace
from lstm_trace.writers.plot import MASKED_GREY, _block_means, build_figure, nice_ticks

SAMPLE = "sample_models/brackets.keras"
SAMPLE_INPUT = "sample_models/brackets_input.npy"


@pytest.fixture(scope="module")
def sample():
    network = lstm_trace.load(SAMPLE)
    return network, network.trace(np.load(SAMPLE_INPUT))


@pytest.fixture(scope="module")
def long_trace(sample):
    network, _ = sample
    x = np.eye(6, dtype=np.float32)[np.random.default_rng(0).integers(0, 6, 20000)]
    return network, network.trace(x)


def _texts(fig):
    """Every visible, non-empty text of the figure with its extent in pixels."""
    renderer = fig.canvas.get_renderer()
    found = [t for t in fig.texts]
    for ax in fig.axes:
        found += [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label, ax.yaxis.label,
                  ax.title, ax._left_title, ax._right_title]
    out = []
    for text in found:
        if text.get_visible() and text.get_text().strip():
            out.append((text.get_text(), text.get_window_extent(renderer)))
    return out


def assert_readable(fig):
    """No two texts overlap, every text is inside the figure, no text is tiny."""
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    texts = _texts(fig)
    assert texts
    for label, box in texts:
        assert box.x0 >= -0.5 and box.y0 >= -0.5, (label, box)
        assert box.x1 <= width + 0.5 and box.y1 <= height + 0.5, (label, box, width, height)
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        overlap_w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert overlap_w <= 0.5 or overlap_h <= 0.5, (a, b, box_a, box_b)
    for ax in fig.axes:
        for text in ax.get_xticklabels() + ax.get_yticklabels():
            if text.get_visible() and text.get_text():
                assert text.get_fontsize() >= 3.5


def _bottom_labels(fig):
    """Step tick labels of the panels that show them."""
    return [[t.get_text() for t in ax.get_xticklabels() if t.get_text()]
            for ax in fig.axes if ax.get_xlabel().startswith("step")]


def _is_nice(values: list[int]) -> bool:
    if len(values) < 2:
        return True
    step = values[1] - values[0]
    mantissa = step / 10 ** int(np.floor(np.log10(step)))
    return (mantissa in (1, 2, 5) and all(v % step == 0 for v in values)
            and all(b - a == step for a, b in itertools.pairwise(values)))


@pytest.mark.parametrize("size", [(400, 300), (300, 250), (1000, 400), (250, 900), (1600, 1200)])
def test_png_has_the_pixels_asked_for_and_readable_labels(sample, size, tmp_path):
    network, trace = sample
    out = tmp_path / "p.png"
    result = invoke("plot", SAMPLE, SAMPLE_INPUT, "-o", out, "--size", f"{size[0]}x{size[1]}")
    assert result.exit_code == 0, result.output
    import matplotlib.image

    assert matplotlib.image.imread(out).shape[:2] == (size[1], size[0])
    assert_readable(build_figure(trace, network=network, size=size))


def test_font_follows_the_figure_size(sample):
    network, trace = sample
    small = build_figure(trace, network=network, size=(400, 300))
    large = build_figure(trace, network=network, size=(1600, 1200))
    label = {fig: next(ax.yaxis.label.get_fontsize() for ax in fig.axes if ax.get_ylabel())
             for fig in (small, large)}
    assert label[small] < label[large]


def test_single_unit_rows_stay_apart(sample, tmp_path):
    network, trace = sample
    fig = build_figure(trace, network=network, units=[7])
    assert_readable(fig)
    heatmaps = [ax for ax in fig.axes if ax.get_images() and ax.get_label().startswith("lstm/")]
    assert len(heatmaps) == 6
    for ax in heatmaps:
        assert [t.get_text() for t in ax.get_yticklabels()] == ["7"]
    boxes = sorted((ax.get_position() for ax in heatmaps), key=lambda b: -b.y0)
    for upper, lower in itertools.pairwise(boxes):
        assert lower.y1 < upper.y0  # a gap between every two rows


def test_step_axis_is_labelled_with_nice_numbers(sample):
    network, trace = sample
    fig = build_figure(trace, network=network)
    (labels,) = _bottom_labels(fig)
    assert _is_nice([int(t) for t in labels]) and labels[0] == "0"
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()] == ["step"]


def test_twenty_thousand_steps_get_nice_ticks_and_block_means(long_trace):
    network, trace = long_trace
    fig = build_figure(trace, network=network)
    assert_readable(fig)
    (labels,) = _bottom_labels(fig)
    ticks = [int(t) for t in labels]
    assert _is_nice(ticks) and 4 <= len(ticks) <= 25 and ticks[-1] <= 19999
    assert ticks[1] - ticks[0] in (1000, 2000, 5000)
    hidden = next(ax for ax in fig.axes if ax.get_label() == "lstm/hidden")
    image = hidden.get_images()[0]
    columns = image.get_array().shape[1]
    block = int(np.ceil(20000 / columns))
    assert columns * 72 / fig.dpi <= hidden.get_window_extent().width * 72 / fig.dpi + 1
    expected = trace["lstm/hidden"][0, :block, 0].mean()
    assert image.get_array()[0, 0] == pytest.approx(expected, abs=1e-6)
    titles = [ax.get_title(loc="right") for ax in fig.axes if ax.get_title(loc="right")]
    assert titles == [f"mean of {block} steps per column (zoom in with --steps)"]


def test_steps_zooms_in(long_trace, tmp_path):
    network, trace = long_trace
    fig = build_figure(trace, network=network, steps=slice(1000, 1060))
    assert_readable(fig)
    (labels,) = _bottom_labels(fig)
    ticks = [int(t) for t in labels]
    assert _is_nice(ticks) and ticks[0] >= 1000 and ticks[-1] <= 1059
    hidden = next(ax for ax in fig.axes if ax.get_label() == "lstm/hidden")
    np.testing.assert_allclose(hidden.get_images()[0].get_array(),
                               trace["lstm/hidden"][0, 1000:1060].T, atol=1e-6)
    assert not [ax.get_title(loc="right") for ax in fig.axes if ax.get_title(loc="right")]


def test_steps_option_through_the_cli(tmp_path):
    out = tmp_path / "z.png"
    result = invoke("plot", SAMPLE, SAMPLE_INPUT, "-o", out, "--steps", "5:15")
    assert result.exit_code == 0, result.output
    result = invoke("plot", SAMPLE, SAMPLE_INPUT, "-o", tmp_path / "bad.png", "--steps", "40:50")
    assert result.exit_code == 2
    assert result.stderr == "error: --steps 40:50: step 40 is out of range: there are 20 steps (0 to 19)\n"
    assert not (tmp_path / "bad.png").exists()


@pytest.fixture(scope="module")
def padded(wf3):
    """The token model's sample 1: its last 3 steps are padding (id 0, masked)."""
    network = lstm_trace.load(model_file(wf3, "tokens"))
    x = np.load(input_file(wf3, "tokens"))
    vocab = ["<pad>"] + [f"word{k}" for k in range(1, 12)]
    return network, network.trace(x), [vocab[int(t)] for t in x[1]]


def test_masked_steps_are_grey_and_get_no_token_label(padded):
    network, trace, labels = padded
    assert labels[-3:] == ["<pad>"] * 3
    fig = build_figure(trace, network=network, sample=1, labels=labels)
    assert_readable(fig)
    (shown,) = _bottom_labels(fig)
    assert shown == labels[:5] and "<pad>" not in shown
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    grey = tuple(int(MASKED_GREY[i:i + 2], 16) for i in (1, 3, 5))
    height = pixels.shape[0]
    for name in ("lstm_1/input_gate", "lstm_1/cell", "lstm_1/hidden"):
        ax = next(a for a in fig.axes if a.get_label() == name)
        box = ax.get_window_extent()
        row = int(height - (box.y0 + box.y1) / 2)
        for step in range(8):
            x = int(box.x0 + (step + 0.5) * box.width / 8)
            colour = tuple(int(v) for v in pixels[row, x])
            if step >= 5:
                assert max(abs(a - b) for a, b in zip(colour, grey, strict=True)) <= 2, (name, step)
            else:
                assert colour != grey


def test_long_token_labels_are_cut_and_thinned(padded):
    network, trace, labels = padded
    long = [f"a_very_long_token_{k}" for k in range(len(labels))]
    fig = build_figure(trace, network=network, sample=0, labels=long, size=(300, 500))
    assert_readable(fig)
    (shown,) = _bottom_labels(fig)
    assert all(len(t) <= 12 for t in shown) and shown[0].endswith("…")


def test_nice_ticks():
    assert nice_ticks(0, 19999, 6) == [0, 5000, 10000, 15000]
    assert nice_ticks(0, 19, 12) == list(range(0, 20, 2))
    assert nice_ticks(1000, 1059, 8) == [1000, 1010, 1020, 1030, 1040, 1050]
    assert nice_ticks(7, 7, 3) == [7]
    assert nice_ticks(3, 4, 1) == [4]
    for first, last, most in [(0, 1, 1), (13, 977, 5), (0, 123456, 9), (5, 6, 10)]:
        ticks = nice_ticks(first, last, most)
        assert 1 <= len(ticks) <= most and first <= ticks[0] and ticks[-1] <= last


def test_block_means_leave_masked_steps_out():
    data = np.array([[1.0, 2.0, 3.0, np.nan, 5.0, np.nan]])
    np.testing.assert_array_equal(_block_means(data, 2), [[1.5, 3.0, 5.0]])
    assert np.isnan(_block_means(np.array([[np.nan, np.nan]]), 2)).all()
