"""Chunked replay (lstm_trace.streaming) records exactly what one replay of the whole input does.

The one-shot replay is checked against the frameworks elsewhere (test_keras_*, test_tf*);
here every chunking of samples and steps, at odd sizes that cut sequences anywhere, must
give the very same arrays, for every cell kind, masks, stacked and bidirectional layers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from streaming_cases import NETWORKS

from lstm_trace import engine
from lstm_trace.step_chunks import reversed_layers
from lstm_trace.streaming import TraceSource, open_npy, step_streaming_blocker, trace_chunks


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize(("batch_size", "chunk_steps"),
                         [(5, 1), (5, 2), (5, 11), (5, 36), (1, 1), (2, 5), (3, 11), (4, 64)])
def test_chunked_replay_records_the_one_shot_replay(name, batch_size, chunk_steps):
    """Chunk borders at odd places, sample blocks of every width.

    Equal to float32 rounding: the BLAS may round a matmul of another shape (a narrower
    batch in ``h U``, a few rows in ``x W``, where OpenBLAS uses its small-matrix kernels)
    differently in the last bit.
    """
    network, x = NETWORKS[name]
    expected = network.trace(x)
    got = trace_chunks(network, x, batch_size=batch_size, chunk_steps=chunk_steps).to_trace()
    assert list(got) == list(expected)
    assert got.layers == expected.layers
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
        if key.endswith("/mask"):
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_chunked_replay_is_the_same_computation_in_float64(name):
    """In float64 the BLAS's rounding by shape is far below the tolerance: what is left
    would be a chunk border handled wrong (a state, a mask, a reversed position)."""
    network, x = NETWORKS[name]
    expected = network.trace(x, dtype="float64")
    for batch_size, chunk_steps in [(5, 1), (2, 5), (3, 11), (1, 36)]:
        got = trace_chunks(network, x, batch_size=batch_size, chunk_steps=chunk_steps,
                           dtype="float64").to_trace()
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_automatic_sizes_cut_steps_and_keep_the_batch(name):
    """Automatic sizes: the whole batch per block, at least 64 steps per chunk; the arrays
    those of one replay (short chunks of small matmuls: bit for bit, but for a layer after
    a bidirectional one, whose wider input projection the BLAS rounds per chunk shape)."""
    network, x = NETWORKS[name]
    x = np.concatenate([x] * 9, axis=1)  # 333 steps: five chunks of 64 and one of 13
    expected = network.trace(x)
    assert step_streaming_blocker(engine.plan_replay(network)) is None
    source = trace_chunks(network, x, budget=1)  # a tiny budget forces step chunks
    assert source.step_chunked
    assert source.batch_size == len(x)
    assert source.chunk_steps == 64
    got = source.to_trace()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
        if not reversed_layers(engine.plan_replay(network)):
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_chunks_tile_the_input_in_order():
    network, x = NETWORKS["stacked_masked"]
    source = trace_chunks(network, x, batch_size=2, chunk_steps=10)
    assert source.step_chunked
    spans = [(c.samples, c.steps) for c in source]
    assert spans[:5] == [((0, 2), (0, 10)), ((0, 2), (10, 20)), ((0, 2), (20, 30)),
                         ((0, 2), (30, 37)), ((2, 4), (0, 10))]
    assert sum((s1 - s0) * (t1 - t0) for (s0, s1), (t0, t1) in spans) == x.size


@pytest.mark.parametrize("name", ["bidirectional", "go_backwards_masked", "bidirectional_stacked_masked",
                                  "go_backwards_stack_masked"])
def test_reversed_directions_run_in_step_chunks(name):
    """The backward passes run first; the chunks still come in sample-block, step order."""
    network, x = NETWORKS[name]
    assert reversed_layers(engine.plan_replay(network))
    source = trace_chunks(network, x, batch_size=2, chunk_steps=10)
    assert source.step_chunked
    spans = [(c.samples, c.steps) for c in source]
    assert spans[:5] == [((0, 2), (0, 10)), ((0, 2), (10, 20)), ((0, 2), (20, 30)),
                         ((0, 2), (30, 37)), ((2, 4), (0, 10))]


def test_a_backward_direction_that_does_not_run_backward_is_chunked_by_samples_only():
    """Bidirectional's backward layer with go_backwards=False hands on a forward-running
    sequence flipped: no step chunks for that."""
    network, x = NETWORKS["bidirectional"]
    bi = network.layers[0]
    odd = replace(bi, directions=[bi.directions[0], replace(bi.directions[1], reverse=False)])
    network = replace(network, layers=[odd, *network.layers[1:]])
    plan = engine.plan_replay(network)
    assert step_streaming_blocker(plan) == "layer 'bi' runs its backward direction the other way"
    source = trace_chunks(network, x, batch_size=2, chunk_steps=5)
    assert not source.step_chunked
    assert all(c.steps == (0, 37) for c in source)


@pytest.mark.parametrize("name", ["bidirectional_stacked_masked", "go_backwards_stack_masked"])
def test_initial_states_of_backward_directions_start_the_last_chunk(name):
    """A backward direction starts from its initial state at the last step (or, masked,
    carries it through the padding to the last used step), per sample."""
    network, x = NETWORKS[name]
    rng = np.random.default_rng(11)
    sizes = {f"{prefix}/{q}": d.cell.state_size
             for layer in network.recurrent_layers for prefix, d in layer.trace_prefixes()
             for q in (("hidden", "cell") if d.cell.kind == "lstm" else ("hidden",))}
    state = {key: rng.normal(0, 1, (5, n) if k % 2 else (n,)).astype(np.float32)
             for k, (key, n) in enumerate(sizes.items())}
    expected = network.trace(x, initial_state=state)
    got = trace_chunks(network, x, initial_state=state, batch_size=2, chunk_steps=7).to_trace()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
    without = network.trace(x)
    backward = [k for k in expected if "/backward/" in k or k.startswith(("back/", "last/"))]
    assert any(not np.allclose(expected[k], without[k]) for k in backward)


def test_initial_states_are_cut_per_sample_block():
    network, x = NETWORKS["lstm"]
    rng = np.random.default_rng(3)
    state = {"lstm/hidden": rng.normal(0, 1, (5, 6)).astype(np.float32),
             "lstm/cell": rng.normal(0, 1, (6,)).astype(np.float32)}
    expected = network.trace(x, initial_state=state)
    got = trace_chunks(network, x, initial_state=state, batch_size=2, chunk_steps=7).to_trace()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
    # The first sample's state, not the whole batch's, starts block [0, 2).
    alone = network.trace(x[2:4], initial_state={k: v[2:4] if v.ndim == 2 else v for k, v in state.items()})
    np.testing.assert_allclose(got["lstm/hidden"][2:4], alone["lstm/hidden"], rtol=1e-6, atol=1e-6)


def test_automatic_sizes_follow_the_budget():
    network, x = NETWORKS["lstm"]
    source = trace_chunks(network, x, budget=5 * 20 * 6 * 4 * 14)
    assert source.batch_size == 5
    assert source.chunk_steps == 64 or source.chunk_steps == 37  # never below MIN_CHUNK_STEPS
    small = trace_chunks(network, x, budget=10**9)
    assert (small.batch_size, small.chunk_steps, small.step_chunked) == (5, 37, False)


def test_single_sequence_is_batch_one():
    network, x = NETWORKS["lstm"]
    got = trace_chunks(network, x[0], chunk_steps=8).to_trace()
    np.testing.assert_array_equal(got["lstm/hidden"], network.trace(x[0])["lstm/hidden"])


def test_a_source_of_an_in_memory_trace_is_one_chunk():
    network, x = NETWORKS["gru_reset_after"]
    trace = network.trace(x)
    source = TraceSource.from_trace(trace)
    chunks = list(source)
    assert len(chunks) == 1 and chunks[0].trace is trace


def test_bad_batch_size_is_refused():
    network, x = NETWORKS["lstm"]
    with pytest.raises(ValueError, match="--batch-size must be 1 or more"):
        trace_chunks(network, x, batch_size=0)


def test_npy_inputs_are_memory_mapped_and_traced_in_chunks(tmp_path):
    network, x = NETWORKS["lstm"]
    path = tmp_path / "x.npy"
    np.save(path, x)
    mapped = open_npy(path)
    assert isinstance(mapped, np.memmap)
    got = trace_chunks(network, mapped, batch_size=5, chunk_steps=9).to_trace()
    np.testing.assert_array_equal(got["lstm/cell"], network.trace(x)["lstm/cell"])


def test_npy_header_declaring_more_data_than_the_file_holds_is_refused(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4, 100, 3), np.float32))
    data = path.read_bytes()
    path.write_bytes(data[:-17])
    with pytest.raises(ValueError) as err:
        open_npy(path)
    message = str(err.value)
    assert "\n" not in message
    assert "declares shape (4, 100, 3) float32 (4,800 bytes)" in message
    assert "truncated or corrupt" in message


def test_npy_of_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="never loads"):
        open_npy(path)


@pytest.mark.parametrize(("layers", "layer_input"), [(["bi_rnn"], True), (["bi_rnn", "bi_lstm"], True),
                                                     (["bi_gru"], False), (["bi_lstm"], False)])
def test_reversed_directions_with_a_layer_selection(layers, layer_input):
    """--layer (a reversed layer traced after untraced ones, or stopping before others) and
    --layer-input (INPUT is the reversed layer's own input, read from the end)."""
    network, ids = NETWORKS["bidirectional_stacked_masked"]
    x = np.random.default_rng(5).normal(0, 1, (5, 37, 4)).astype(np.float32) if layer_input else ids
    expected = network.trace(x, layers=layers, layer_input=layer_input)
    source = trace_chunks(network, x, layers=layers, layer_input=layer_input, batch_size=2, chunk_steps=5)
    assert source.step_chunked
    got = source.to_trace()
    assert list(got) == list(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
