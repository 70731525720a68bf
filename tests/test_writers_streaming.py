"""Every streaming writer's output equals the in-memory writer's, and reads back with the
contract's names in the tools people use (numpy, h5py, pandas, pyarrow, polars)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from streaming_cases import NETWORKS

from lstm_trace.streaming import TraceSource, trace_chunks
from lstm_trace.writers import csv as csv_writer
from lstm_trace.writers import json as json_writer
from lstm_trace.writers import npz as npz_writer
from lstm_trace.writers import write_source, write_trace

CHUNKINGS = [(5, 37), (2, 5), (1, 11), (3, 64)]


def chunked(name: str, batch_size: int, chunk_steps: int):
    network, x = NETWORKS[name]
    return network, x, trace_chunks(network, x, batch_size=batch_size, chunk_steps=chunk_steps)


def same_numbers(name: str, batch_size: int, chunk_steps: int):
    """The in-memory trace of the very numbers a chunked source yields (see test_streaming)."""
    return chunked(name, batch_size, chunk_steps)[2].to_trace()


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize(("batch_size", "chunk_steps"), CHUNKINGS)
def test_json_streamed_equals_in_memory(name, batch_size, chunk_steps, tmp_path):
    _, _, source = chunked(name, batch_size, chunk_steps)
    json_writer.write_source(source, tmp_path / "s.json")
    json_writer.write(same_numbers(name, batch_size, chunk_steps), tmp_path / "m.json")
    assert (tmp_path / "s.json").read_bytes() == (tmp_path / "m.json").read_bytes()
    json.loads((tmp_path / "s.json").read_text())


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize(("batch_size", "chunk_steps"), CHUNKINGS)
@pytest.mark.parametrize("compress", [False, True])
def test_npz_streamed_equals_in_memory(name, batch_size, chunk_steps, compress, tmp_path):
    _, _, source = chunked(name, batch_size, chunk_steps)
    npz_writer.write_source(source, tmp_path / "s.npz", compress=compress)
    expected = same_numbers(name, batch_size, chunk_steps)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as got:
        assert list(got.files) == list(expected)
        for key in expected:
            assert got[key].dtype == expected[key].dtype
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize(("batch_size", "chunk_steps"), CHUNKINGS)
def test_h5_datasets_are_the_trace_keys(name, batch_size, chunk_steps, tmp_path):
    _, _, source = chunked(name, batch_size, chunk_steps)
    write_source(source, "h5", tmp_path / "t.h5")
    expected = same_numbers(name, batch_size, chunk_steps)
    with h5py.File(tmp_path / "t.h5", "r") as f:
        found = []
        f.visititems(lambda path, item: found.append(path) if isinstance(item, h5py.Dataset) else None)
        assert sorted(found) == sorted(expected)
        for key in expected:
            assert f[key].dtype == expected[key].dtype
            np.testing.assert_array_equal(f[key][()], expected[key], err_msg=key)
        assert f.attrs["format"] == "lstm-trace"
        layers = json.loads(f.attrs["layers"])
        assert [layer["name"] for layer in layers] == [layer.name for layer in expected.layers]


def tidy_from_csv(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"layer": str, "direction": str})


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize(("batch_size", "chunk_steps"), CHUNKINGS[:2])
def test_parquet_is_the_csv_table(name, batch_size, chunk_steps, tmp_path):
    _, _, source = chunked(name, batch_size, chunk_steps)
    write_source(source, "parquet", tmp_path / "t.parquet")
    trace = same_numbers(name, batch_size, chunk_steps)
    csv_writer.write(trace, tmp_path / "t.csv")
    table = pq.read_table(tmp_path / "t.parquet")
    header = (tmp_path / "t.csv").read_text().split("\n", 1)[0].split(",")
    assert table.column_names == header
    frame = table.to_pandas()
    expected = tidy_from_csv(tmp_path / "t.csv")
    assert len(frame) == len(expected)
    for column in header:
        if column in ("layer", "direction"):
            assert frame[column].tolist() == expected[column].tolist()
        elif column == "mask":
            assert frame[column].dtype == bool
            assert (frame[column].astype(int) == expected[column]).all()
        elif column in ("sample", "step", "unit"):
            np.testing.assert_array_equal(frame[column].to_numpy(), expected[column].to_numpy())
        else:
            assert str(table.schema.field(column).type) == "float"  # float32
            # CSV text is the shortest round trip of each float32: equal after the cast.
            np.testing.assert_array_equal(frame[column].to_numpy(),
                                          expected[column].to_numpy().astype(np.float32))


def test_parquet_reads_with_polars_and_filters_by_layer(tmp_path):
    network, x = NETWORKS["stacked_masked"]
    write_source(trace_chunks(network, x, chunk_steps=8), "parquet", tmp_path / "t.parquet")
    gru = pl.scan_parquet(tmp_path / "t.parquet").filter(pl.col("layer") == "gru").collect()
    trace = network.trace(x)
    assert gru.height == trace["gru/hidden"].size
    np.testing.assert_array_equal(gru["hidden"].to_numpy(), trace["gru/hidden"].ravel())


@pytest.mark.parametrize("name", ["stacked_masked", "bidirectional", "lstm", "go_backwards_masked"])
@pytest.mark.parametrize(("batch_size", "chunk_steps"), CHUNKINGS[:3])
def test_lstmvis_directory_concatenates_used_steps(name, batch_size, chunk_steps, tmp_path):
    network, x, source = chunked(name, batch_size, chunk_steps)
    out = tmp_path / "project"
    write_source(source, "lstmvis", out, inputs=x)
    trace = same_numbers(name, batch_size, chunk_steps)
    config = (out / "lstm.yml").read_text()
    assert "word_sequence:" in config and "states.h5" in config
    first = trace.layers[0]
    mask_key = first.key(first.directions[0], "mask")
    used = trace[mask_key].astype(bool) if mask_key in trace else np.ones(x.shape[:2], bool)
    with h5py.File(out / "states.h5", "r") as states, h5py.File(out / "words.h5", "r") as words:
        for layer in trace.layers:
            for direction in layer.directions:
                for q in ("cell", "hidden"):
                    key = layer.key(direction, q)
                    if key not in trace:
                        continue
                    own = layer.key(direction, "mask")
                    keep = trace[own].astype(bool) if own in trace else np.ones(x.shape[:2], bool)
                    np.testing.assert_array_equal(states[key][()], trace[key][keep], err_msg=key)
                    assert f'path: "{key}"' in config
        ids = words["word_ids"][()]
        if x.dtype.kind in "iu":
            np.testing.assert_array_equal(ids, x[used])
        else:
            np.testing.assert_array_equal(ids, np.broadcast_to(np.arange(x.shape[1]), x.shape[:2])[used])
    lines = (out / "words.dict").read_text().splitlines()
    assert all(len(line.split()) == 2 for line in lines)
    assert int(lines[-1].split()[1]) >= ids.max()


def test_lstmvis_words_come_from_the_vocab_and_one_hot_features(tmp_path):
    network, x = NETWORKS["lstm"]
    onehot = np.eye(x.shape[2], dtype=np.float32)[np.arange(x.shape[0] * x.shape[1]) % x.shape[2]]
    onehot = onehot.reshape(x.shape)
    vocab = ["(", ")", "a b", "c", ""]
    write_trace(network.trace(onehot), "lstmvis", tmp_path / "p", inputs=onehot, vocab=vocab)
    with h5py.File(tmp_path / "p" / "words.h5", "r") as words:
        np.testing.assert_array_equal(words["word_ids"][()], onehot.argmax(-1).ravel())
    assert (tmp_path / "p" / "words.dict").read_text() == "( 0\n) 1\na_b 2\nc 3\n<4> 4\n"


def test_a_directory_output_never_replaces_a_full_directory(tmp_path):
    network, x = NETWORKS["lstm"]
    out = tmp_path / "p"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OSError, match="not empty"):
        write_trace(network.trace(x), "lstmvis", out)
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("fmt", ["csv", "json", "npz", "h5", "parquet", "lstmvis"])
def test_a_failure_mid_stream_leaves_no_output(fmt, tmp_path):
    network, x = NETWORKS["lstm"]
    calls = []

    def fail_on_third(part, s0, t0):
        calls.append(t0)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return part

    source = trace_chunks(network, x, batch_size=5, chunk_steps=5, validate_chunk=fail_on_third)
    target = tmp_path / f"out.{fmt}"
    with pytest.raises(KeyboardInterrupt):
        write_source(source, fmt, target)
    assert list(tmp_path.iterdir()) == []


def test_in_memory_source_writes_like_the_trace_writers(tmp_path):
    network, x = NETWORKS["stacked_masked"]
    trace = network.trace(x)
    write_source(TraceSource.from_trace(trace), "json", tmp_path / "a.json")
    write_trace(trace, "json", tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
