"""The trace on a Dask cluster (lstm_trace.cluster) against a distributed.LocalCluster with
worker processes: lazy dask arrays and the --scheduler Zarr store equal the single-process
trace (itself checked against the frameworks elsewhere)."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import distributed
import numpy as np
import pytest
import zarr
from streaming_cases import NETWORKS
from workflow_common import assert_user_error, invoke

import lstm_trace
from lstm_trace.cluster import trace_dask, trace_to_zarr

MODEL = Path(__file__).resolve().parents[1] / "sample_models" / "brackets.keras"


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local


@pytest.fixture()
def client(cluster):
    with distributed.Client(cluster) as c:
        yield c


def all_keys_close(got: dict, expected) -> None:
    assert list(got) == list(expected)
    for key in expected:
        value = got[key] if isinstance(got[key], np.ndarray) else np.asarray(got[key][...])
        # Blocks of 2 samples: equal to float32 rounding (see test_streaming).
        np.testing.assert_allclose(value, expected[key], rtol=1e-6, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("name", ["stacked_masked", "bidirectional", "lstm_peephole_projection_clip",
                                  "go_backwards_masked"])
def test_lazy_dask_trace_equals_the_single_process_trace(name, client):
    network, x = NETWORKS[name]
    arrays = trace_dask(network, da.from_array(x, chunks=2))
    assert all(isinstance(a, da.Array) for a in arrays.values())  # lazy until computed
    expected = network.trace(x)
    computed = {key: a.compute() for key, a in arrays.items()}
    all_keys_close(computed, expected)
    # Reductions run on the cluster, like any dask array.
    key = next(iter(expected))
    np.testing.assert_allclose(arrays[key].mean(axis=(0, 1)).compute(),
                               expected[key].mean(axis=(0, 1)), rtol=1e-5, atol=1e-6)


def test_zarr_store_holds_every_key_at_its_path(client, tmp_path):
    network, x = NETWORKS["stacked_masked"]
    shapes = trace_to_zarr(network, da.from_array(x, chunks=3), tmp_path / "t.zarr")
    expected = network.trace(x)
    assert shapes == {key: a.shape for key, a in expected.items()}
    root = zarr.open_group(str(tmp_path / "t.zarr"), mode="r")
    all_keys_close({key: root[key] for key in expected}, expected)


def test_cli_scheduler_writes_the_zarr_store(cluster, tmp_path):
    rng = np.random.default_rng(2)
    x = np.eye(6, dtype=np.float32)[rng.integers(0, 6, (7, 50))]
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "trace.zarr"
    result = invoke(MODEL, tmp_path / "x.npy", "--scheduler", cluster.scheduler_address, "-o", out,
                    "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"wrote {out} (zarr: 6 keys, 7 samples × 50 steps × 8 units)")
    expected = lstm_trace.load(MODEL).trace(x)
    root = zarr.open_group(str(out), mode="r")
    all_keys_close({key: root[key] for key in expected}, expected)
    # A Zarr array as INPUT: the workers read it themselves.
    zarr.save_array(str(tmp_path / "x.zarr"), x)
    result = invoke(MODEL, tmp_path / "x.zarr", "--scheduler", cluster.scheduler_address,
                    "-o", tmp_path / "again.zarr")
    assert result.exit_code == 0, result.output
    again = zarr.open_group(str(tmp_path / "again.zarr"), mode="r")
    all_keys_close({key: again[key] for key in expected}, expected)


def test_cli_scheduler_refuses_a_wrong_input_shape(cluster, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 10, 5), np.float32))
    result = invoke(MODEL, tmp_path / "x.npy", "--scheduler", cluster.scheduler_address,
                    "-o", tmp_path / "t.zarr")
    assert_user_error(result, "x.npy", "(2, 10, 5)")
    assert not (tmp_path / "t.zarr").exists()


def test_cli_unreachable_scheduler_is_one_line_and_no_store(tmp_path, monkeypatch):
    import lstm_trace.cluster as cluster_module

    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT", 1)
    np.save(tmp_path / "x.npy", np.zeros((2, 10, 6), np.float32))
    result = invoke(MODEL, tmp_path / "x.npy", "--scheduler", "tcp://127.0.0.1:9", "-o", tmp_path / "t.zarr")
    assert_user_error(result, "--scheduler tcp://127.0.0.1:9")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_cli_scheduler_refuses_nan_in_the_input_like_the_local_path(cluster, tmp_path):
    """Each worker checks its block's values: the error names the sample of the whole input."""
    rng = np.random.default_rng(4)
    x = np.eye(6, dtype=np.float32)[rng.integers(0, 6, (7, 50))]
    x[5, 33, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    result = invoke(MODEL, tmp_path / "x.npy", "--scheduler", cluster.scheduler_address,
                    "-o", tmp_path / "t.zarr", "--batch-size", "2")
    assert_user_error(result, "x.npy: expected finite numbers, found nan at sample 5, step 33, feature 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_lazy_dask_trace_checks_token_ids(client):
    network, ids = NETWORKS["stacked_masked"]
    ids = ids.copy()
    ids[3, 7] = -2
    arrays = trace_dask(network, da.from_array(ids, chunks=2), input_name="ids.npy")
    with pytest.raises(ValueError, match="ids.npy: expected integer token ids, found a negative id -2 "
                                         "at sample 3, step 7"):
        arrays["lstm/hidden"].compute()
