"""lstm-trace's ConvLSTM replay vs Keras ``predict`` on the same saved model and input.

    python benchmarks/bench_convlstm.py [--repeats 5]

For each case: the median time of ``Network.trace`` (which records all six LSTM quantities at
every step and grid position), the same on one OpenBLAS thread (the per-step products are
small: on a loaded machine BLAS threads waiting for cores cost more than they save), and
Keras 3 ``model.predict`` (which returns the sequence only); the ratio is the better engine
time over Keras (below 1 means lstm-trace is faster). Every measurement
runs in its own process (TensorFlow's thread pools starve NumPy's BLAS threads in a shared
one); each worker warms up once, then reports the median of N repeats as JSON.
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
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}

#: class, filters, kernel size, input (batch, steps, *grid, channels)
CASES: list[dict] = [
    {"key": "c2d16_b8_t10_32x32", "label": "ConvLSTM2D(16, 3x3, same), batch 8 x 10 steps, 32x32x3",
     "class": "ConvLSTM2D", "filters": 16, "kernel": (3, 3), "shape": (8, 10, 32, 32, 3)},
    {"key": "c1d32_b4_t50_64", "label": "ConvLSTM1D(32, 3, same), batch 4 x 50 steps, 64x8",
     "class": "ConvLSTM1D", "filters": 32, "kernel": (3,), "shape": (4, 50, 64, 8)},
]


def worker_build(out: Path) -> None:
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    for case in CASES:
        layer = getattr(keras.layers, case["class"])(
            case["filters"], case["kernel"], padding="same", return_sequences=True)
        model = keras.Sequential([keras.Input(case["shape"][1:]), layer])
        model.save(out / f"{case['key']}.keras")
        np.save(out / f"{case['key']}.npy", rng.standard_normal(case["shape"]).astype(np.float32))


def _median(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker_engine(out: Path, key: str, repeats: int) -> None:
    import numpy as np

    import lstm_trace

    network = lstm_trace.load(out / f"{key}.keras")
    x = np.load(out / f"{key}.npy")
    print(json.dumps({"seconds": _median(lambda: network.trace(x), repeats)}))


def worker_keras(out: Path, key: str, repeats: int) -> None:
    import keras
    import numpy as np

    model = keras.saving.load_model(out / f"{key}.keras")
    x = np.load(out / f"{key}.npy")
    print(json.dumps({"seconds": _median(lambda: model.predict(x, verbose=0), repeats)}))


def _run(*args: str, **extra_env: str) -> dict:
    env = {**os.environ, **TF_ENV, "PYTHONPATH": str(ROOT), **extra_env}
    proc = subprocess.run([sys.executable, __file__, "--worker", *args], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, out, *rest = args.worker
        if kind == "build":
            worker_build(Path(out))
        else:
            {"engine": worker_engine, "keras": worker_keras}[kind](Path(out), rest[0], int(rest[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, __file__, "--worker", "build", tmp],
                       env={**os.environ, **TF_ENV, "PYTHONPATH": str(ROOT)}, check=True,
                       capture_output=True)
        print("| case | lstm-trace engine | engine, 1 BLAS thread | Keras `predict` | ratio "
              "(best engine / keras) |\n|---|---:|---:|---:|---:|")
        for case in CASES:
            engine = _run("engine", tmp, case["key"], str(args.repeats))["seconds"]
            single = _run("engine", tmp, case["key"], str(args.repeats),
                          OPENBLAS_NUM_THREADS="1")["seconds"]
            keras = _run("keras", tmp, case["key"], str(args.repeats))["seconds"]
            print(f"| {case['label']} | {engine * 1e3:.1f} ms | {single * 1e3:.1f} ms | "
                  f"{keras * 1e3:.1f} ms | {min(engine, single) / keras:.2f} |")


if __name__ == "__main__":
    main()
