"""The compiled sequence kernels equal the NumPy reference loops, option by option.

Each test runs one direction twice through :func:`lstm_trace.engine.run_direction`: with the
kernel, and with the kernels switched off (``sequence_kernel`` → ``None``, the fused NumPy
LSTM loop off too), which runs the plain step loops ``lstm_steps`` / ``gru_steps`` /
``simple_rnn_steps``. Random cells with saturating but not chaotic weights, random initial
states, every option the kernels implement. float64 agrees to 1e-12; float32 to a few ulps
(the kernels' float32 tanh is a polynomial, NumPy's is its own SIMD routine; both within
~1 ulp of the true value). The framework tests run the kernels against Keras as well.

The compiled library is a hard requirement here: if this tree has not built it yet, the
module builds it in place (``setup.py build_ext --inplace``) before testing, and fails if
it cannot.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstm_trace import engine, kernels, step_loops
from lstm_trace.kernels import _native
from lstm_trace.network import QUANTITIES, Cell

ROOT = Path(__file__).resolve().parent.parent
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}


@pytest.fixture(scope="module", autouse=True)
def compiled_kernels():
    if _native.library_path() is None:
        proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                              cwd=ROOT, capture_output=True, text=True, check=False)
        _native.library.cache_clear()
        assert proc.returncode == 0, f"building the kernels failed:\n{proc.stderr[-2000:]}"
    lib = _native.library()
    assert lib is not None, "the compiled kernels do not load (see lstm_trace/kernels/_native.py)"
    return lib


def random_cell(kind: str, units: int, features: int, dtype: str, seed: int, proj: int | None = None,
                **options) -> Cell:
    rng = np.random.default_rng(seed)
    state = proj or units
    width = GATES[kind] * units
    if proj:
        options["projection"] = rng.normal(0, 1 / np.sqrt(units), (units, proj)).astype(dtype)
    return Cell(
        kind=kind, units=units,
        kernel=rng.normal(0, 1.2 / np.sqrt(features), (features, width)).astype(dtype),
        recurrent_kernel=rng.normal(0, 1.2 / np.sqrt(state), (state, width)).astype(dtype),
        bias=rng.normal(0, 0.5, width).astype(dtype), **options,
    )


def run_both(cell: Cell, batch: int, steps: int, *, reverse: bool, masked: bool, seed: int = 1):
    dtype = cell.kernel.dtype
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (batch, steps, cell.input_size)).astype(dtype)
    h0 = rng.normal(0, 0.5, (batch, cell.state_size)).astype(dtype)
    c0 = rng.normal(0, 0.5, (batch, cell.units)).astype(dtype)
    mask = rng.random((batch, steps)) > 0.3 if masked else None
    kwargs = {"reverse": reverse, "mask": mask, "initial_hidden": h0, "initial_cell": c0}
    assert kernels.sequence_kernel(cell, dtype) is not None
    fast = engine.run_direction(cell, x, **kwargs)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(engine, "sequence_kernel", lambda *args: None)
        m.setattr(step_loops, "lstm_fusable", lambda cell, mask: False)
        reference = engine.run_direction(cell, x, **kwargs)
    return fast, reference


def assert_same(fast, reference, dtype, ulps: int = 8) -> None:
    # float32: a few ulps of 1 (every recorded quantity here is O(1)); float64: 1e-12.
    atol = ulps * np.finfo(np.float32).eps if dtype == np.float32 else 1e-12
    assert fast.arrays.keys() == reference.arrays.keys()
    for q, ref in reference.arrays.items():
        got = fast.arrays[q]
        assert got.dtype == ref.dtype and got.shape == ref.shape, q
        np.testing.assert_allclose(got, ref, rtol=atol, atol=atol, err_msg=q)
    np.testing.assert_allclose(fast.final_hidden, reference.final_hidden, rtol=atol, atol=atol)
    if reference.final_cell is not None:
        np.testing.assert_allclose(fast.final_cell, reference.final_cell, rtol=atol, atol=atol)


LSTM_OPTIONS = {
    "plain": {},
    "peepholes": {"peepholes": "ifo"},
    "input_peephole_only": {"peepholes": "i"},
    "projection": {"proj": 3},
    "clips": {"proj": 3, "cell_clip": 0.7, "proj_clip": 0.4},
    "cell_clip": {"cell_clip": 0.5},
    "forget_bias": {"forget_bias": 1.0},
    "hard_sigmoid": {"recurrent_activation": "hard_sigmoid"},
    "hard_sigmoid_keras2_relu": {"recurrent_activation": "hard_sigmoid_keras2", "activation": "relu"},
    "linear": {"activation": "linear", "cell_clip": 1.0},  # clipped: an unclipped linear LSTM explodes
    "everything": {"peepholes": "ifo", "proj": 4, "cell_clip": 0.9, "proj_clip": 0.6, "forget_bias": 0.5},
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("option", sorted(LSTM_OPTIONS))
def test_lstm_kernel_equals_reference_loop(dtype, reverse, masked, option, row_blocks):
    options = dict(LSTM_OPTIONS[option])
    letters = options.pop("peepholes", "")
    rng = np.random.default_rng(7)
    names = {"i": "input_gate", "f": "forget_gate", "o": "output_gate"}
    if letters:
        options["peepholes"] = {names[k]: rng.normal(0, 0.5, 6).astype(dtype) for k in letters}
    cell = random_cell("lstm", 6, 5, dtype, seed=len(option), **options)
    fast, reference = run_both(cell, 4, 30, reverse=reverse, masked=masked)
    assert_same(fast, reference, np.dtype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("recurrent_bias", [True, False])
def test_gru_kernel_equals_reference_loop(dtype, reverse, masked, reset_after, recurrent_bias, row_blocks):
    rb = np.random.default_rng(3).normal(0, 0.5, 21).astype(dtype) if recurrent_bias else None
    cell = random_cell("gru", 7, 4, dtype, seed=11, reset_after=reset_after, recurrent_bias=rb)
    fast, reference = run_both(cell, 3, 30, reverse=reverse, masked=masked)
    assert_same(fast, reference, np.dtype(dtype))


@pytest.mark.parametrize("activations", [("hard_sigmoid", "relu"), ("hard_sigmoid_keras2", "linear")])
def test_gru_kernel_other_activations(activations):
    cell = random_cell("gru", 5, 3, "float32", seed=2, recurrent_activation=activations[0],
                       activation=activations[1], reset_after=False)
    fast, reference = run_both(cell, 2, 25, reverse=False, masked=True)
    assert_same(fast, reference, np.dtype(np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_simple_rnn_kernel_equals_reference_loop(dtype, reverse, masked, activation, row_blocks):
    cell = random_cell("simple_rnn", 9, 4, dtype, seed=5, activation=activation)
    fast, reference = run_both(cell, 3, 30, reverse=reverse, masked=masked)
    assert_same(fast, reference, np.dtype(dtype))


@pytest.mark.parametrize(("kind", "batch", "steps"), [("lstm", 1, 1), ("gru", 1, 200), ("lstm", 33, 3),
                                                      ("simple_rnn", 5, 0), ("lstm", 0, 4)])
def test_kernels_on_edge_shapes(kind, batch, steps, row_blocks):
    cell = random_cell(kind, 3, 2, "float32", seed=1)
    fast, reference = run_both(cell, batch, steps, reverse=True, masked=True)
    assert_same(fast, reference, np.dtype(np.float32))


def test_wide_lstm_float32_stays_within_a_few_ulps():
    """128 units, 100 steps: the polynomial tanh's ulps do not grow through the recurrence."""
    cell = random_cell("lstm", 128, 16, "float32", seed=4)
    fast, reference = run_both(cell, 8, 100, reverse=False, masked=False)
    assert_same(fast, reference, np.dtype(np.float32))


def test_kernel_states_are_contiguous_and_inputs_unchanged():
    """Gates are views of the fused x W + b buffer they overwrite; c and h are contiguous."""
    cell = random_cell("lstm", 5, 3, "float32", seed=3, proj=2, peepholes=None)
    before = {f: getattr(cell, f).copy() for f in ("kernel", "recurrent_kernel", "bias", "projection")}
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(np.float32)
    x_before = x.copy()
    fast = engine.run_direction(cell, x)
    for q in ("cell", "hidden"):
        assert fast.arrays[q].flags.c_contiguous
    for q in QUANTITIES["lstm"][:4]:
        assert np.may_share_memory(fast.arrays[q], fast.arrays["input_gate"])
    for f, value in before.items():
        np.testing.assert_array_equal(getattr(cell, f), value)
    np.testing.assert_array_equal(x, x_before)


def test_float32_tanh_of_the_kernels_is_within_two_ulps():
    """The kernels' tanh against float64 tanh on a dense grid, through a linear SimpleRNN step."""
    x = np.concatenate([np.linspace(-12, 12, 200_001), np.geomspace(1e-8, 1, 1000)]).astype(np.float32)
    cell = Cell(kind="simple_rnn", units=1, kernel=np.ones((1, 1), np.float32),
                recurrent_kernel=np.zeros((1, 1), np.float32), activation="tanh")
    out = engine.run_direction(cell, x.reshape(-1, 1, 1)).arrays["hidden"].ravel()
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - exact) / ulp) <= 2


def test_cells_the_kernels_do_not_implement_take_the_reference_loop():
    cell = random_cell("lstm", 4, 3, "float32", seed=0)
    assert kernels.sequence_kernel(cell, np.float32) is not None
    assert kernels.sequence_kernel(cell, np.float16) is None
    elu = random_cell("gru", 4, 3, "float32", seed=0, activation="elu")
    assert kernels.sequence_kernel(elu, np.float32) is None
    odd_peephole = random_cell("lstm", 4, 3, "float32", seed=0, peepholes={"cell": np.ones(4, np.float32)})
    assert kernels.sequence_kernel(odd_peephole, np.float32) is None


def test_a_cell_feature_the_kernels_do_not_know_sends_the_cell_to_the_reference_loop():
    """A field added to Cell later must not be silently ignored here."""
    Extended = dataclasses.make_dataclass(
        "Extended", [("future_option", float | None, dataclasses.field(default=None))], bases=(Cell,))
    base = random_cell("lstm", 4, 3, "float32", seed=0)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Cell)}
    assert kernels.sequence_kernel(Extended(**fields), np.float32) is not None
    assert kernels.sequence_kernel(Extended(**fields, future_option=2.0), np.float32) is None


def test_kernels_can_be_switched_off(monkeypatch):
    monkeypatch.setenv(_native.DISABLE_ENV, "numpy")
    _native.library.cache_clear()
    try:
        assert kernels.sequence_kernel(random_cell("lstm", 4, 3, "float32", seed=0), np.float32) is None
    finally:
        monkeypatch.delenv(_native.DISABLE_ENV)
        _native.library.cache_clear()


def test_cells_loaded_from_a_file_take_the_kernel():
    """Loader metadata (layout, tensor names) must not push real cells off the fast path."""
    import lstm_trace

    network = lstm_trace.load(ROOT / "sample_models" / "brackets.keras")
    cells = [d.cell for layer in network.recurrent_layers for d in layer.directions]
    assert cells
    for cell in cells:
        assert kernels.sequence_kernel(cell.astype(np.dtype(np.float32)), np.float32) is not None


@pytest.mark.parametrize(("kind", "units", "batch", "options"), [
    ("lstm", 64, 600, {"proj": 48, "cell_clip": 0.8, "proj_clip": 0.5}),
    ("lstm", 64, 601, {"forget_bias": 1.0}),
    ("gru", 64, 700, {"reset_after": True}),
    ("gru", 64, 2100, {"reset_after": False}),
    ("simple_rnn", 128, 1100, {}),
])
def test_big_work_split_over_threads_equals_the_reference_loop(monkeypatch, kind, units, batch, options):
    """Work of at least SPLIT_MIN_VALUES runs blocks of batch rows on threads of their own.

    A block's ``h U`` is a product of fewer rows than the whole batch's, and BLAS may round
    its edge tiles differently (seen: 1.04e-6 on one value of a SimpleRNN(128)), so this
    allows 32 float32 ulps of 1 where the single-block tests allow 8.
    """
    from lstm_trace.kernels import sequences

    monkeypatch.setattr(sequences, "THREADS", 3)
    cell = random_cell(kind, units, 4, "float32", seed=9, **options)
    fast, reference = run_both(cell, batch, 4, reverse=True, masked=True)
    assert batch * 4 * cell.kernel.shape[1] >= sequences.SPLIT_MIN_VALUES
    assert_same(fast, reference, np.dtype(np.float32), ulps=32)


@pytest.fixture(params=[1, 3], ids=["one block", "three blocks"])
def row_blocks(request, monkeypatch):
    """Runs a test with the whole batch in one kernel call, then split into 3 blocks of rows."""
    from lstm_trace.kernels import sequences

    if request.param > 1:
        monkeypatch.setattr(sequences, "THREADS", request.param)
        monkeypatch.setattr(sequences, "SPLIT_MIN_VALUES", 0)
    return request.param


@pytest.mark.parametrize("feature", [{"gate_clip": 2.0}, {"coupled_input_forget": True},
                                     {"output_activation": "sigmoid"}])
def test_canonical_cell_features_without_a_kernel_take_the_reference_loop(feature):
    cell = random_cell("lstm", 4, 3, "float32", seed=0, **feature)
    assert kernels.sequence_kernel(cell, np.float32) is None


def test_small_work_does_not_load_the_library_for_itself(monkeypatch):
    cell = random_cell("lstm", 4, 3, "float32", seed=0)
    monkeypatch.setenv(_native.DISABLE_ENV, "auto")
    monkeypatch.setattr(_native, "loaded", lambda: False)
    assert kernels.sequence_kernel(cell, np.float32, 2, 10) is None
    assert kernels.sequence_kernel(cell, np.float32, 1, kernels.SMALL_STEPS) is not None
    monkeypatch.setattr(_native, "loaded", lambda: True)
    assert kernels.sequence_kernel(cell, np.float32, 2, 10) is not None
