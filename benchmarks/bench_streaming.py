"""Streaming traces: peak memory per format at two input lengths, writer throughput against
pandas / pyarrow / polars, and the chunked engine against one replay. One run prints all.

    python benchmarks/bench_streaming.py [--repeats 3] [--engine-repeats 9] [--steps 20000 80000]
        [--reverse-steps 20000 80000 320000] [--sections rss,reverse,writers,engine]

Needs the test extra (TensorFlow builds the model once; pandas and pyarrow are compared):
``pip install -e '.[test]'`` (or ``pip install pandas pyarrow`` next to lstm-trace).

1. **Peak RSS**: ``lstm-trace MODEL X.npy -o OUT.<format> --quiet`` for every format, each
   in its own process (peak resident set size from ``wait4``), on an LSTM(32) with 32
   features, batch 8, at two lengths 4x apart; with the wall time and the growth ratio.
1b. **Peak RSS with reversed directions**: ``lstm-trace MODEL X.npy -o OUT.h5 --quiet`` for
   a Bidirectional LSTM(32), a go_backwards LSTM(32) and two stacked Bidirectional LSTM(32)
   (the upper one reads its input from a spill), one sample of 20,000, 80,000 and 320,000
   steps, each in its own process.
2. **Writer throughput** (values/s, a value = one quantity cell): the same tidy rows
   (``sample, layer, direction, step, unit`` + six float32 quantities) written as CSV and
   Parquet by lstm-trace's writers (from the in-memory trace: row building included) and by
   pandas, pyarrow and polars (from a table built beforehand: only the write is timed).
3. **Engine**: the replay of the shorter input in one go (``Network.trace``) against the
   chunked replay (``trace_chunks``, default sizes), interleaved runs; and the largest
   difference between their arrays.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("csv", "json", "npz", "h5", "parquet", "lstmvis")
UNITS, FEATURES, BATCH = 32, 32, 8
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}


#: The networks of the reversed-directions table: file stem and description.
REVERSED = (("bi", "Bidirectional(LSTM(32))"), ("back", "LSTM(32, go_backwards=True)"),
            ("bi2", "2 x Bidirectional(LSTM(32))"))


def worker_build(out: Path, lengths: list[int], reverse_lengths: list[int]) -> None:
    """The LSTM(32) model (random Glorot weights) as .keras, and one input per length; the
    reversed-direction models and their one-sample inputs."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([keras.Input((None, FEATURES)),
                              layers.LSTM(UNITS, return_sequences=True, name="lstm")])
    model.save(out / "lstm32.keras")
    reversed_models = {
        "bi": [layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True), name="bi")],
        "back": [layers.LSTM(UNITS, return_sequences=True, go_backwards=True, name="back")],
        "bi2": [layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True), name="bi"),
                layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True), name="bi_2")],
    }
    for stem, stack in reversed_models.items():
        keras.Sequential([keras.Input((None, FEATURES)), *stack]).save(out / f"{stem}.keras")
    rng = np.random.default_rng(0)
    for steps in lengths:
        np.save(out / f"x{steps}.npy", rng.standard_normal((BATCH, steps, FEATURES)).astype(np.float32))
    for steps in reverse_lengths:
        np.save(out / f"one{steps}.npy", rng.standard_normal((1, steps, FEATURES)).astype(np.float32))


def _median_s(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker_writers(model: Path, x_path: Path, out: Path, repeats: int) -> dict:
    """Values/s of CSV and Parquet writers on the same rows."""
    import numpy as np
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    import lstm_trace
    from lstm_trace.streaming import TraceSource
    from lstm_trace.writers import write_source

    trace = lstm_trace.load(model).trace(np.load(x_path))
    quantities = trace.layers[0].quantities
    batch, steps, units = trace["lstm/hidden"].shape
    n = batch * steps * units
    columns = {
        "sample": np.repeat(np.arange(batch), steps * units),
        "layer": np.full(n, "lstm"), "direction": np.full(n, "forward"),
        "step": np.tile(np.repeat(np.arange(steps), units), batch),
        "unit": np.tile(np.arange(units), batch * steps),
    }
    for q in quantities:
        columns[q] = np.ascontiguousarray(trace[f"lstm/{q}"]).ravel()
    values = n * len(quantities)
    frame_pd = pd.DataFrame(columns)
    table_pa = pa.table(columns)
    frame_pl = pl.DataFrame(columns)
    cases = {
        ("csv", "lstm-trace"): lambda p: write_source(TraceSource.from_trace(trace), "csv", p),
        ("csv", "pandas"): lambda p: frame_pd.to_csv(p, index=False),
        ("csv", "pyarrow"): lambda p: pacsv.write_csv(table_pa, p),
        ("csv", "polars"): lambda p: frame_pl.write_csv(p),
        ("parquet", "lstm-trace"): lambda p: write_source(TraceSource.from_trace(trace), "parquet", p),
        ("parquet", "pandas"): lambda p: frame_pd.to_parquet(p, index=False),
        ("parquet", "pyarrow"): lambda p: pq.write_table(table_pa, p),
        ("parquet", "polars"): lambda p: frame_pl.write_parquet(p),
    }
    results = {}
    for (fmt, who), write in cases.items():
        path = out / f"bench-{who}.{fmt}"
        seconds = _median_s(lambda write=write, path=path: write(path), repeats)
        results[f"{fmt}/{who}"] = {"seconds": seconds, "values_per_s": values / seconds,
                                   "bytes": path.stat().st_size}
        path.unlink()
    return {"values": values, "results": results}


def worker_engine(model: Path, x_path: Path, repeats: int) -> dict:
    """One replay against the chunked replay, runs interleaved (ABAB...) so that a load
    spike on a shared machine hits both; min and median of each."""
    import numpy as np

    import lstm_trace

    network = lstm_trace.load(model)
    x = np.load(x_path)

    def chunked() -> None:
        for _ in network.trace_chunks(x):
            pass

    source = network.trace_chunks(x)
    one, many = [], []
    network.trace(x)
    chunked()
    for _ in range(repeats):
        for fn, times in ((lambda: network.trace(x), one), (chunked, many)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    whole = network.trace(x)
    got = network.trace_chunks(x).to_trace()
    diff = max(float(np.max(np.abs(got[k] - whole[k]))) for k in whole)
    return {"one_shot": [min(one), statistics.median(one)], "chunked": [min(many), statistics.median(many)],
            "batch_size": source.batch_size, "chunk_steps": source.chunk_steps, "max_abs_diff": diff}


def run_worker(*args: str, env_extra: dict[str, str] | None = None) -> dict:
    env = {**os.environ, **TF_ENV, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    proc = subprocess.run([sys.executable, __file__, "--worker", *args], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"worker {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss(model: Path, x: Path, fmt: str, out: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall time (s) of the CLI writing ``fmt``, in its own process."""
    target = out / ("project" if fmt == "lstmvis" else f"trace.{fmt}")
    cmd = [sys.executable, "-m", "lstm_trace", str(model), str(x), "--format", fmt,
           "-o", str(target), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if status:
        sys.exit(f"{' '.join(cmd)} failed: {stderr}")
    if target.is_dir():
        import shutil

        shutil.rmtree(target)
    else:
        target.unlink()
    return usage.ru_maxrss / 1024, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="writer timings")
    parser.add_argument("--engine-repeats", type=int, default=9, help="engine timings")
    parser.add_argument("--steps", type=int, nargs=2, default=[20000, 80000])
    parser.add_argument("--reverse-steps", type=int, nargs="+", default=[20000, 80000, 320000])
    parser.add_argument("--sections", default="rss,reverse,writers,engine",
                        help="comma-separated: rss, reverse, writers, engine (default: all)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "build":
            lengths, reverse_lengths = rest[1].split(","), rest[2].split(",")
            worker_build(Path(rest[0]), [int(s) for s in lengths], [int(s) for s in reverse_lengths])
            print("{}")
        elif kind == "writers":
            print(json.dumps(worker_writers(Path(rest[0]), Path(rest[1]), Path(rest[2]), int(rest[3]))))
        elif kind == "engine":
            print(json.dumps(worker_engine(Path(rest[0]), Path(rest[1]), int(rest[2]))))
        return

    short, long = args.steps
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        out = Path(tmp)
        sections = set(args.sections.split(","))
        reverse_steps = args.reverse_steps if "reverse" in sections else []
        run_worker("build", str(out), f"{short},{long}", ",".join(map(str, reverse_steps)))
        model = out / "lstm32.keras"
        print(f"LSTM({UNITS}), batch {BATCH}, {FEATURES} features; "
              f"Python {sys.version.split()[0]}; peak RSS of each CLI run in its own process\n")
        if "rss" in sections:
            print(f"| format | {short:,} steps | {long:,} steps | growth ({long // short}x input) |")
            print("|---|---|---|---|")
        for fmt in FORMATS if "rss" in sections else ():
            a_rss, a_wall = peak_rss(model, out / f"x{short}.npy", fmt, out)
            b_rss, b_wall = peak_rss(model, out / f"x{long}.npy", fmt, out)
            print(f"| {fmt} | {a_rss:.0f} MB, {a_wall:.1f} s | {b_rss:.0f} MB, {b_wall:.1f} s | "
                  f"{b_rss / a_rss:.2f}x |", flush=True)
        if reverse_steps:
            print_reversed(out, reverse_steps)

        if "writers" in sections:
            print_writers(run_worker("writers", str(model), str(out / f"x{short}.npy"), str(out),
                                     str(args.repeats)), short, args.repeats)
        if "engine" in sections:
            blas = (("BLAS as set", {}), ("1 BLAS thread", {"OPENBLAS_NUM_THREADS": "1"}))
            runs = {threads: run_worker("engine", str(model), str(out / f"x{short}.npy"),
                                        str(args.engine_repeats), env_extra=env)
                    for threads, env in blas}
            print_engine(runs, short, args.engine_repeats)


def print_reversed(out: Path, lengths: list[int]) -> None:
    """Peak RSS of one-sample traces into HDF5 through reversed directions, per length."""
    growth = lengths[-1] // lengths[0]
    print(f"\nReversed directions: one sample, {FEATURES} features, -o OUT.h5; "
          "peak RSS and wall time of each CLI run in its own process\n")
    print("| network | " + " | ".join(f"{n:,} steps" for n in lengths) + f" | growth ({growth}x input) |")
    print("|---|" + "---|" * len(lengths) + "---|")
    for stem, name in REVERSED:
        runs = [peak_rss(out / f"{stem}.keras", out / f"one{n}.npy", "h5", out) for n in lengths]
        cells = " | ".join(f"{rss:.0f} MB, {wall:.1f} s" for rss, wall in runs)
        print(f"| {name} | {cells} | {runs[-1][0] / runs[0][0]:.2f}x |", flush=True)


def print_writers(w: dict, short: int, repeats: int) -> None:
    print(f"\nWriting the same {w['values']:,} values ({short:,} steps; "
          f"median of {repeats}; million values/s)\n")
    print("| writer | CSV | CSV size | Parquet | Parquet size |")
    print("|---|---|---|---|---|")
    for who in ("lstm-trace", "pandas", "pyarrow", "polars"):
        c, p = w["results"][f"csv/{who}"], w["results"][f"parquet/{who}"]
        print(f"| {who} | {c['values_per_s'] / 1e6:.1f} M/s | {c['bytes'] / 2**20:.0f} MiB | "
              f"{p['values_per_s'] / 1e6:.1f} M/s | {p['bytes'] / 2**20:.0f} MiB |", flush=True)


def print_engine(runs: dict[str, dict], short: int, repeats: int) -> None:
    print(f"\nEngine on {short:,} steps ({repeats} interleaved runs each; min, median)\n")
    print("| BLAS | one shot (`Network.trace`) | chunked (`trace_chunks`) | chunked / one shot |")
    print("|---|---|---|---|")
    for threads, e in runs.items():
        (one_min, one_med), (many_min, many_med) = e["one_shot"], e["chunked"]
        print(f"| {threads} | {one_min:.3f} s, {one_med:.3f} s | {many_min:.3f} s, {many_med:.3f} s | "
              f"{many_min / one_min:.3f}x, {many_med / one_med:.3f}x |")
    e = next(iter(runs.values()))
    print(f"\nchunks of {e['batch_size']} samples x {e['chunk_steps']} steps; largest difference "
          f"between the chunked and the one-shot arrays: {e['max_abs_diff']:.2g}")


if __name__ == "__main__":
    main()
