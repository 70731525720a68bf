"""lstm-trace's NumPy engine vs Keras ``predict``, side by side; and the CLI end to end.

    python benchmarks/bench_engine.py [--repeats 20] [--e2e-repeats 5]      # or: make bench

Prints two tables. The first: for each case the median time of lstm-trace's engine
(``Network.trace``, which records all six LSTM quantities at every step) and of Keras
``model.predict`` (and ``predict_on_batch``) on the same saved model and input, with their
ratio (engine / keras: below 1 means lstm-trace is faster); also the engine on one BLAS
thread and with the general (unfused) LSTM step loop. The second times whole processes: the
``lstm-trace`` CLI tracing the bundled sample model to CSV, against a script that loads the
same ``.keras`` with Keras and predicts.

Every measurement runs in its own process (``--worker ...``): TensorFlow's thread pools
keep spinning after ``predict`` and starve NumPy's BLAS threads when both share one, which
distorted a shared-process benchmark a hundredfold. Workers warm up, then report the
median of N repeats as JSON on stdout.

If ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are set (some machines set them for old
OpenBLAS builds; they slow a current NumPy), the engine is also timed with both unset, in
that worker process only, and the BLAS kernel each worker ran is printed.
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
SAMPLE_MODEL = ROOT / "sample_models" / "brackets.keras"
SAMPLE_INPUT = ROOT / "sample_models" / "brackets_input.npy"
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}

#: The engine-vs-predict cases: an LSTM(units) on (batch, steps, features) random input.
CASES: list[dict] = [
    {"key": "lstm128_b64_t100", "label": "LSTM(128), batch 64 x 100 steps",
     "units": 128, "features": 32, "batch": 64, "steps": 100},
    {"key": "lstm16_b1_t1000", "label": "LSTM(16), batch 1 x 1000 steps",
     "units": 16, "features": 8, "batch": 1, "steps": 1000},
]


# ------------------------------------------------------------------ workers (own process each)

def worker_build(out: Path) -> None:
    """Save each case's model (random Glorot weights) as .keras, and its input as .npy."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    for case in CASES:
        model = keras.Sequential([
            keras.Input((case["steps"], case["features"])),
            keras.layers.LSTM(case["units"], return_sequences=True, name="lstm"),
        ])
        model.save(out / f"{case['key']}.keras")
        x = rng.standard_normal((case["batch"], case["steps"], case["features"]))
        np.save(out / f"{case['key']}.npy", x.astype(np.float32))


def _median_ms(fn, repeats: int, warmup: int = 2) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": repeats}


def blas_info() -> str:
    """The BLAS library and the kernel (core type) it runs, as threadpoolctl reports it.

    Without threadpoolctl, asks a loaded OpenBLAS directly (numpy's wheels bundle one whose
    symbols carry a ``scipy_`` prefix and ``64_`` suffix).
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return _openblas_info()
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return (f"{pool.get('internal_api')} {pool.get('version')}, kernel "
                    f"{pool.get('architecture')}, {pool.get('num_threads')} threads (threadpoolctl)")
    return "no BLAS found"


def _openblas_info() -> str:
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            libs = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        libs = []
    for lib in libs:
        handle = ctypes.CDLL(lib)
        for prefix, suffix in (("", ""), ("scipy_", "64_"), ("", "64_")):
            corename = getattr(handle, f"{prefix}openblas_get_corename{suffix}", None)
            threads = getattr(handle, f"{prefix}openblas_get_num_threads{suffix}", None)
            if corename is not None and threads is not None:
                corename.restype = ctypes.c_char_p
                return (f"openblas, kernel {corename().decode()}, {threads()} threads "
                        f"({Path(lib).name})")
    return "unknown (no OpenBLAS found; pip install threadpoolctl to see other BLAS libraries)"


def worker_engine(model: Path, x_path: Path, repeats: int, general: bool = False) -> dict:
    """Time ``Network.trace``; ``general`` forces the general LSTM loop (the fused one's baseline)."""
    import numpy as np

    import lstm_trace
    from lstm_trace import engine

    if general:
        engine._lstm_fusable = lambda cell, mask: False
    network = lstm_trace.load(model)
    x = np.load(x_path)
    result = _median_ms(lambda: network.trace(x), repeats)
    result["blas"] = blas_info()
    return result


def worker_keras(model: Path, x_path: Path, repeats: int) -> dict:
    import keras
    import numpy as np

    net = keras.models.load_model(model, compile=False)
    x = np.load(x_path)
    result = _median_ms(lambda: net.predict(x, verbose=0), repeats)
    # predict_on_batch skips predict's per-call data pipeline and callbacks: Keras's fastest
    # public path for one in-memory batch, reported so the comparison is not flattered.
    result["on_batch"] = _median_ms(lambda: net.predict_on_batch(x), repeats)
    result["keras"] = keras.__version__
    return result


def worker_keras_script(model: Path, x_path: Path) -> None:
    """What a user without lstm-trace runs: load the .keras with Keras and predict once."""
    import keras
    import numpy as np

    x = np.load(x_path)
    keras.models.load_model(model, compile=False).predict(x[None] if x.ndim == 2 else x, verbose=0)


# ------------------------------------------------------------------ parent

def worker_env(*, unset_openblas: bool = False, blas_threads: int | None = None,
               pycache: Path | None = None) -> dict:
    """The environment of a worker process: this one's, with the benchmark's variations."""
    env = dict(os.environ, **TF_ENV)
    if unset_openblas:
        for var in OPENBLAS_VARS:
            env.pop(var, None)
    if blas_threads:
        env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    if pycache is not None:
        # Like an installed package: compiled modules are cached (outside the source tree).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_worker(kind: str, model: Path, x_path: Path, repeats: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, str(model), str(x_path), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wall_ms(cmd: list[str], repeats: int, env: dict) -> float:
    """Median wall time of ``cmd`` as a fresh process, after one warm-up launch."""
    def once() -> None:
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return _median_ms(once, repeats, warmup=1)["median_ms"]


def cli_command() -> list[str]:
    exe = Path(sys.executable).parent / "lstm-trace"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lstm_trace"]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A Markdown table: first column left-aligned, numbers right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
    for row in rows:
        print(line(row))


def engine_table(
    tmpdir: Path, repeats: int, openblas_set: dict,
) -> tuple[list[str], list[list[str]], set[str], str]:
    """Engine vs Keras on each case in CASES; also the engine on one BLAS thread, and with the
    general LSTM step loop instead of the fused one (the speed-up of the fast path)."""
    header = ["case", "lstm-trace engine (ms)", "keras predict (ms)", "ratio",
              "keras predict_on_batch (ms)", "ratio", "engine, 1 BLAS thread (ms)",
              "general loop (ms)"]
    if openblas_set:
        header.append("engine, OPENBLAS_* unset (ms)")
    rows, kernels, keras_version = [], set(), "?"
    for case in CASES:
        model, x = tmpdir / f"{case['key']}.keras", tmpdir / f"{case['key']}.npy"
        engine = run_worker("engine", model, x, repeats, worker_env())
        kernels.add(f"as set: {engine['blas']}")
        single = run_worker("engine", model, x, repeats, worker_env(blas_threads=1))
        general = run_worker("engine-general", model, x, repeats, worker_env())
        keras_run = run_worker("keras", model, x, repeats, worker_env())
        keras_version = keras_run["keras"]
        ms = engine["median_ms"]
        predict, on_batch = keras_run["median_ms"], keras_run["on_batch"]["median_ms"]
        row = [case["label"], f"{ms:.1f}", f"{predict:.1f}", f"{ms / predict:.2f}",
               f"{on_batch:.1f}", f"{ms / on_batch:.2f}", f"{single['median_ms']:.1f}",
               f"{general['median_ms']:.1f}"]
        if openblas_set:
            unset = run_worker("engine", model, x, repeats, worker_env(unset_openblas=True))
            kernels.add(f"OPENBLAS_* unset: {unset['blas']}")
            row.append(f"{unset['median_ms']:.1f}")
        rows.append(row)
    return header, rows, kernels, keras_version


def end_to_end_table(tmpdir: Path, repeats: int, openblas_set: dict) -> tuple[list[str], list[list[str]]]:
    """Whole processes on the sample model: the CLI writing CSV vs a Keras load-and-predict script."""
    cli = [*cli_command(), str(SAMPLE_MODEL), str(SAMPLE_INPUT), "--format", "csv",
           "-o", str(tmpdir / "trace.csv")]
    script = [sys.executable, __file__, "--worker", "keras-script", str(SAMPLE_MODEL), str(SAMPLE_INPUT)]
    pycache = tmpdir / "pycache"
    keras_ms = wall_ms(script, repeats, worker_env(pycache=pycache))
    variants = [("lstm-trace CLI -> CSV vs Keras load + predict", worker_env(pycache=pycache))]
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        variants.append(("  same, PYTHONDONTWRITEBYTECODE=1 as set here (recompiles lstm_trace)",
                         worker_env()))
    if openblas_set:
        variants.append(("  same, OPENBLAS_* unset", worker_env(pycache=pycache, unset_openblas=True)))
    rows = []
    for label, env in variants:
        ms = wall_ms(cli, repeats, env)
        rows.append([label, f"{ms:.0f}", f"{keras_ms:.0f}", f"{ms / keras_ms:.2f}"])
    return ["end to end, sample model (process)", "lstm-trace (ms)", "keras script (ms)", "ratio"], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per in-process case")
    parser.add_argument("--e2e-repeats", type=int, default=5, help="process launches per end-to-end case")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, *paths = args.worker
        if kind == "build":
            worker_build(Path(paths[0]))
        elif kind == "keras-script":
            worker_keras_script(Path(paths[0]), Path(paths[1]))
        else:
            fn = {"engine": worker_engine, "keras": worker_keras,
                  "engine-general": lambda *a: worker_engine(*a, general=True)}[kind]
            print(json.dumps(fn(Path(paths[0]), Path(paths[1]), args.repeats)))
        return

    import numpy as np

    openblas_set = {v: os.environ[v] for v in OPENBLAS_VARS if v in os.environ}
    with tempfile.TemporaryDirectory(prefix="lstm-trace-bench-") as tmp:
        tmpdir = Path(tmp)
        subprocess.run([sys.executable, __file__, "--worker", "build", tmp], env=worker_env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        header, rows, kernels, keras_version = engine_table(tmpdir, args.repeats, openblas_set)
        e2e_header, e2e_rows = end_to_end_table(tmpdir, args.e2e_repeats, openblas_set)

    print(f"lstm-trace engine vs Keras {keras_version}, each side in its own process; median of "
          f"{args.repeats} runs after warm-up (end to end: of {args.e2e_repeats} process launches)")
    print(f"cpus: {os.cpu_count()}, numpy {np.__version__}, OPENBLAS env: {openblas_set or 'not set'}")
    for line in sorted(kernels):
        print(f"BLAS {line}")
    print("ratio = lstm-trace / keras (below 1: lstm-trace is faster). The engine records all six LSTM "
          "quantities at every step; Keras returns only the hidden sequence.")
    print()
    print_table(header, rows)
    print()
    print_table(e2e_header, e2e_rows)


if __name__ == "__main__":
    main()
