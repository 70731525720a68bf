"""The streaming CSV writer writes the very bytes of the in-memory NumPy renderer.

``render`` (NumPy character matrices) is the reference: shortest round-trip floats in
``repr`` layout, checked value by value in test_writers.py. The streaming writer, with
polars as its engine or the NumPy fallback, must give the same file for every network,
chunking and odd value.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from streaming_cases import NETWORKS

from lstm_trace.streaming import TraceSource, trace_chunks
from lstm_trace.trace import Trace, TracedLayer
from lstm_trace.writers import csv as csv_writer


def reference(trace: Trace) -> bytes:
    return "".join(csv_writer.render(trace)).encode()


def streamed(source: TraceSource, tmp_path, engine: str) -> bytes:
    path = tmp_path / f"out-{engine}.csv"
    csv_writer.write_source(source, path, engine=engine)
    return path.read_bytes()


@pytest.mark.parametrize("engine", ["polars", "numpy"])
@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize(("batch_size", "chunk_steps"), [(5, 37), (2, 5), (1, 11), (5, 64)])
def test_streamed_csv_equals_the_in_memory_csv(name, batch_size, chunk_steps, engine, tmp_path):
    network, x = NETWORKS[name]
    source = trace_chunks(network, x, batch_size=batch_size, chunk_steps=chunk_steps)
    got = streamed(source, tmp_path, engine)
    # The chunked replay may differ from one replay in the last bit for narrower sample
    # blocks (see test_streaming); compare with the in-memory CSV of the same numbers.
    expected = reference(trace_chunks(network, x, batch_size=batch_size,
                                      chunk_steps=chunk_steps).to_trace())
    assert got == expected


def odd_values_trace(dtype) -> Trace:
    """Every layout case of repr: tiny, huge, powers of ten at the edges, zeros, NaN, inf."""
    rng = np.random.default_rng(5)
    edges = [0.0, -0.0, 1.0, -2.5, 1e-4, 9.99e-5, 1.5e-5, 1e-5, 1e-7, 3e-10, 1e-45, 1e12, 9.99e12,
             1e13, 1.5e14, 1e15, 9.99e15, 1e16, 3.4e38, np.nan, np.inf, -np.inf, 0.1, 123456.7]
    with np.errstate(invalid="ignore"):
        bits = rng.integers(0, 2**31, 4000).astype(np.uint32).view(np.float32).astype(dtype)
    decades = (rng.random(4000) * 10.0 ** rng.integers(-12, 20, 4000)).astype(dtype)
    values = np.concatenate([np.array(edges, dtype), bits, decades, -decades])
    values = np.resize(values, 2 * 30 * 7 * 6).reshape(6, 2, 30, 7)
    names = ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")
    layer = TracedLayer('odd,"name"', "lstm", ("forward",), False)
    return Trace({f"{layer.name}/{q}": values[i] for i, q in enumerate(names)}, [layer])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_polars_engine_writes_repr_layout_for_every_decade(dtype, tmp_path):
    trace = odd_values_trace(dtype)
    got = streamed(TraceSource.from_trace(trace), tmp_path, "polars")
    assert got == reference(trace)
    assert b'"odd,""name""",forward' in got


def test_in_memory_write_goes_through_the_fast_writer(tmp_path):
    trace = odd_values_trace(np.float32)
    path = tmp_path / "t.csv"
    csv_writer.write(trace, path)
    assert path.read_bytes() == reference(trace)


def test_selections_still_keep_their_original_indices(tmp_path):
    network, x = NETWORKS["stacked_masked"]
    trace = network.trace(x)
    path = tmp_path / "t.csv"
    csv_writer.write(trace, path, samples=[2], steps=slice(30, 33))
    lines = path.read_text().splitlines()
    assert lines[1].startswith("2,lstm,forward,30,0,")


def test_csv_streams_to_stdout(capsysbinary):
    network, x = NETWORKS["lstm"]
    source = trace_chunks(network, x, batch_size=2, chunk_steps=7)
    csv_writer.write_source(source, "-")
    out = capsysbinary.readouterr().out
    assert out == reference(trace_chunks(network, x, batch_size=2, chunk_steps=7).to_trace())


def test_csv_reads_back_with_the_contract_header(tmp_path):
    network, x = NETWORKS["stacked_masked"]
    trace = network.trace(x)
    path = tmp_path / "t.csv"
    csv_writer.write_source(trace_chunks(network, x, chunk_steps=8), path)
    head = io.StringIO(path.read_text()).readline().strip().split(",")
    assert head == ["sample", "layer", "direction", "step", "unit", "input_gate", "forget_gate",
                    "candidate", "output_gate", "cell", "hidden", "update_gate", "reset_gate", "mask"]
    rows = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=(10,), filling_values=np.nan)
    lstm_rows = trace["lstm/hidden"].size
    np.testing.assert_array_equal(rows[:30 * 6].astype(np.float32), trace["lstm/hidden"][0, :30].ravel())
    assert rows.size == lstm_rows + trace["gru/hidden"].size + trace["rnn/hidden"].size


@pytest.mark.parametrize("where", [[0], [7], [-1], [0, 1, 2, 500, -2, -1], [3, 4, 5, 6, 7, 8]])
def test_polars_engine_splices_the_few_odd_rows_of_a_piece(where, tmp_path):
    """Rows whose values polars lays out unlike repr (here 2.5e-05, NaN, 1e+15) are rendered
    by NumPy and spliced in at their place, first and last rows included."""
    rng = np.random.default_rng(9)
    names = ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")
    arrays = {q: rng.uniform(0.2, 0.9, (2, 40, 8)).astype(np.float32) for q in names}
    flat = arrays["candidate"].reshape(-1)
    flat[where] = np.float32(2.5e-05)
    arrays["cell"].reshape(-1)[where[:1]] = np.nan
    arrays["hidden"].reshape(-1)[where[-1:]] = np.float32(1e15)
    layer = TracedLayer("lstm", "lstm", ("forward",), False)
    trace = Trace({f"lstm/{q}": arrays[q] for q in names}, [layer])
    got = streamed(TraceSource.from_trace(trace), tmp_path, "polars")
    assert got == reference(trace)
    assert b",2.5e-05," in got and b",nan," in got and b",1000000000000000.0\n" in got


def test_write_behind_hands_a_write_error_back_and_stops_formatting():
    import errno

    class FullDisk:
        def __init__(self):
            self.writes = 0

        def write(self, data):
            self.writes += 1
            if self.writes == 2:
                raise OSError(errno.ENOSPC, "No space left on device")

    made = []

    def texts():
        for i in range(1000):
            made.append(i)
            yield f"row {i}\n"

    with pytest.raises(OSError) as err:
        csv_writer.write_behind(FullDisk(), texts())
    assert err.value.errno == errno.ENOSPC
    assert len(made) < 10  # formatting stopped soon after the failure
