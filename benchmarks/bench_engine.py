"""lstm-trace's engine against Keras ``predict`` and against its own matrix products.

    python benchmarks/bench_engine.py [--repeats 15] [--rounds 3] [--e2e-repeats 5]   # or: make bench

For each case (a Keras 3 model with random weights and a random input) it times, each side
in its own process:

- ``keras``: ``model.predict(x)`` on the saved ``.keras`` file (TensorFlow CPU);
- ``engine``: ``lstm_trace.load(path).trace(x)``, which records every quantity of every
  recurrent layer at every step (LSTM: six arrays), with the compiled kernels;
- ``numpy``: the same with the compiled kernels off (``LSTM_TRACE_KERNELS=numpy``);
- ``gemm``: only the matrix products no replay can skip, on the same weights: ``x W`` for
  all steps at once and ``h U`` per step into a preallocated buffer (``out=``), for every
  layer and direction; twice: on one BLAS thread (one core) and on the BLAS's own threads
  (every core). The engine uses every core (its kernels run blocks of batch rows on threads
  of their own), so the second is the like-for-like reference; the first is the work of one
  core, which the engine's threads can beat.

Every figure is the MINIMUM over ``--rounds`` fresh processes per side, each timing
``--repeats`` runs after a warm-up: this machine is shared, and the minimum is the
least-disturbed run (medians are in the JSON of ``--json``). Then whole processes: the
``lstm-trace`` CLI writing a CSV trace against a script that loads the same model with Keras
and predicts (minimum of ``--e2e-repeats`` launches), and the CLI's imports
(``python -X importtime``). The goals of issue 10 are printed with each figure.

``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` (set on some machines for old OpenBLAS builds;
they slow a current NumPy) are removed from the workers' environment (only there), and the
BLAS kernel each NumPy worker ran is printed (threadpoolctl, or OpenBLAS asked via ctypes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
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

#: The cases: layers (kind, units), input (batch, steps, features), and what the goals ask.
#: ``gemm_goal``: engine / GEMMs at most; ``keras_goal``: engine / Keras predict at most.
CASES: list[dict] = [
    {"key": "lstm128", "label": "LSTM(128) B64 T100 D32", "layers": [("lstm", 128)],
     "shape": (64, 100, 32), "gemm_goal": 1.5, "keras_goal": 0.5},
    {"key": "lstm16_b1", "label": "LSTM(16) B1 T1000 D8", "layers": [("lstm", 16)],
     "shape": (1, 1000, 8), "gemm_goal": 1.5, "keras_goal": 0.5},
    {"key": "lstm256", "label": "LSTM(256) B256 T100 D64", "layers": [("lstm", 256)],
     "shape": (256, 100, 64), "gemm_goal": 1.25, "keras_goal": 0.75},
    {"key": "stacked", "label": "LSTM(64)->LSTM(64) B32 T200 D16", "layers": [("lstm", 64), ("lstm", 64)],
     "shape": (32, 200, 16), "gemm_goal": 1.5, "keras_goal": 0.5},
    {"key": "gru128", "label": "GRU(128) B64 T100 D32", "layers": [("gru", 128)],
     "shape": (64, 100, 32), "gemm_goal": 1.5, "keras_goal": 0.5},
    {"key": "rnn128", "label": "SimpleRNN(128) B64 T100 D32", "layers": [("simple_rnn", 128)],
     "shape": (64, 100, 32), "gemm_goal": 1.5, "keras_goal": 0.5},
    {"key": "bimasked", "label": "masked Bidirectional(LSTM(64)) B32 T200 D16",
     "layers": [("bidirectional", 64)], "masked": True,
     "shape": (32, 200, 16), "gemm_goal": 1.5, "keras_goal": 0.5},
    {"key": "lstm32_b1", "label": "LSTM(32) B1 T4000 D8", "layers": [("lstm", 32)],
     "shape": (1, 4000, 8), "gemm_goal": 1.5, "keras_goal": 0.5},
]
PER_STEP_GOAL_US = 2.0
E2E_GOAL = 15.0  # Keras script / CLI process, at least
E2E_CASES = [("brackets", SAMPLE_MODEL, SAMPLE_INPUT), ("lstm16_b1", None, None)]


# ------------------------------------------------------------------ workers (own process each)

def worker_build(out: Path) -> None:
    """Save each case's model (Keras's random initial weights) as .keras, its input as .npy."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    layers = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN}
    for case in CASES:
        batch, steps, features = case["shape"]
        stack: list = [keras.Input((steps, features))]
        if case.get("masked"):
            stack.append(keras.layers.Masking(0.0))
        for kind, units in case["layers"]:
            if kind == "bidirectional":
                stack.append(keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True)))
            else:
                stack.append(layers[kind](units, return_sequences=True))
        keras.Sequential(stack).save(out / f"{case['key']}.keras")
        x = rng.standard_normal((batch, steps, features)).astype(np.float32)
        if case.get("masked"):  # padded batch: each sample ends after a random length
            for b, length in enumerate(rng.integers(steps // 4, steps + 1, batch)):
                x[b, length:] = 0
        np.save(out / f"{case['key']}.npy", x)


def _timed(fn, repeats: int) -> dict:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"min_ms": min(times), "median_ms": statistics.median(times)}


def worker_engine(tmpdir: Path, repeats: int) -> dict:
    import numpy as np

    import lstm_trace

    results = {}
    for case in CASES:
        network = lstm_trace.load(tmpdir / f"{case['key']}.keras")
        x = np.load(tmpdir / f"{case['key']}.npy")
        results[case["key"]] = _timed(lambda network=network, x=x: network.trace(x), repeats)
    from lstm_trace.kernels._native import library
    from lstm_trace.kernels.sequences import THREADS

    results["kernels"] = library() is not None
    results["threads"] = THREADS
    results["blas"] = blas_info()
    return results


def worker_gemm(tmpdir: Path, repeats: int) -> dict:
    """``x W`` for all steps + ``h U`` per step (``out=``), for every layer and direction."""
    import numpy as np

    import lstm_trace

    results = {}
    for case in CASES:
        network = lstm_trace.load(tmpdir / f"{case['key']}.keras")
        batch, steps, features = case["shape"]
        cells = [d.cell.astype(np.float32) for layer in network.recurrent_layers for d in layer.directions]
        rng = np.random.default_rng(0)
        inputs = [rng.standard_normal((batch * steps, c.input_size)).astype(np.float32) for c in cells]
        states = [np.zeros((batch, c.state_size), np.float32) for c in cells]
        products = [np.empty((batch, c.recurrent_kernel.shape[1]), np.float32) for c in cells]

        def products_only(cells=cells, inputs=inputs, states=states, products=products, steps=steps):
            for cell, x, h, hu in zip(cells, inputs, states, products, strict=True):
                x @ cell.kernel
                U = cell.recurrent_kernel
                for _ in range(steps):
                    np.matmul(h, U, out=hu)

        results[case["key"]] = _timed(products_only, repeats)
    results["blas"] = blas_info()
    return results


def worker_keras(tmpdir: Path, repeats: int) -> dict:
    import keras
    import numpy as np

    results = {}
    for case in CASES:
        net = keras.models.load_model(tmpdir / f"{case['key']}.keras", compile=False)
        x = np.load(tmpdir / f"{case['key']}.npy")
        results[case["key"]] = _timed(lambda net=net, x=x: net.predict(x, verbose=0), repeats)
    results["keras"] = keras.__version__
    return results


def worker_keras_script(model: Path, x_path: Path) -> None:
    """What a user without lstm-trace runs: load the model with Keras and predict once."""
    import keras
    import numpy as np

    x = np.load(x_path)
    keras.models.load_model(model, compile=False).predict(x[None] if x.ndim == 2 else x, verbose=0)


def blas_info() -> str:
    """The BLAS library and the kernel (core type) it runs: threadpoolctl, else OpenBLAS itself."""
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
                        f"({Path(lib).name}, asked via ctypes)")
    return "unknown (no OpenBLAS found; pip install threadpoolctl to see other BLAS libraries)"


# ------------------------------------------------------------------ parent

def worker_env(**extra: str) -> dict:
    """A worker's environment: this one's without OPENBLAS_CORETYPE/L2_SIZE, plus ``extra``."""
    env = dict(os.environ, **TF_ENV, **extra)
    for var in OPENBLAS_VARS:
        env.pop(var, None)
    return env


def run_worker(kind: str, tmpdir: Path, repeats: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, str(tmpdir), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def best_of(rounds: list[dict]) -> dict:
    """Per case, the minimum over rounds (each a fresh process) of its minimum."""
    merged = dict(rounds[0])
    for case in CASES:
        merged[case["key"]] = min(r[case["key"]]["min_ms"] for r in rounds)
    return merged


def launch_ms(cmd: list[str], repeats: int, env: dict) -> float:
    """Minimum wall time of ``cmd`` as a fresh process, after one warm-up launch."""
    def once() -> None:
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return _timed(once, repeats)["min_ms"]


def cli_command() -> list[str]:
    exe = Path(sys.executable).parent / "lstm-trace"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lstm_trace"]


def verdict(value: float, goal: float, at_most: bool = True) -> str:
    met = value <= goal if at_most else value >= goal
    return f"{'met' if met else 'NOT met'} ({'≤' if at_most else '≥'} {goal:g})"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A Markdown table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
    for row in rows:
        print(line(row))


def engine_rows(engine: dict, numpy_engine: dict, gemm1: dict, gemm: dict, keras: dict) -> list[list[str]]:
    rows = []
    for case in CASES:
        k = case["key"]
        e, g1, g, p, n = engine[k], gemm1[k], gemm[k], keras[k], numpy_engine[k]
        steps = case["shape"][1]
        per_step = ""
        if case["shape"][0] == 1:  # against the faster GEMMs
            over = (e - min(g, g1)) / steps * 1e3
            per_step = f"{over:.2f} µs, {verdict(over, PER_STEP_GOAL_US)}"
        rows.append([case["label"], f"{p:.1f}", f"{e:.2f}", f"{n:.2f}", f"{g1:.2f}", f"{g:.2f}",
                     f"{e / g1:.2f}, {verdict(e / g1, case['gemm_goal'])}",
                     f"{e / g:.2f}, {verdict(e / g, case['gemm_goal'])}",
                     f"{e / p:.3f}, {verdict(e / p, case['keras_goal'])}", per_step])
    return rows


def end_to_end_rows(tmpdir: Path, repeats: int) -> list[list[str]]:
    rows = []
    env = worker_env(PYTHONPYCACHEPREFIX=str(tmpdir / "pycache"))  # like an installed package
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name, model, x in E2E_CASES:
        model = model or tmpdir / f"{name}.keras"
        x = x or tmpdir / f"{name}.npy"
        cli = [*cli_command(), str(model), str(x), "--format", "csv", "-o", str(tmpdir / "trace.csv")]
        script = [sys.executable, __file__, "--worker", "keras-script", str(model), str(x)]
        cli_ms = launch_ms(cli, repeats, env)
        keras_ms = launch_ms(script, repeats, env)
        rows.append([f"{name} ({model.name})", f"{cli_ms:.0f}", f"{keras_ms:.0f}",
                     f"{keras_ms / cli_ms:.1f}×, {verdict(keras_ms / cli_ms, E2E_GOAL, at_most=False)}"])
    return rows


def import_profile(tmpdir: Path) -> str:
    """``python -X importtime`` of a CLI CSV trace of the sample model: what start-up imports."""
    cmd = [sys.executable, "-X", "importtime", "-m", "lstm_trace", str(SAMPLE_MODEL), str(SAMPLE_INPUT),
           "--format", "csv", "-o", str(tmpdir / "trace.csv")]
    env = worker_env(PYTHONPYCACHEPREFIX=str(tmpdir / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # compile the bytecode first
    stderr = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stderr
    top: dict[str, int] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            top[m.group(2).strip()] = top.get(m.group(2).strip(), 0) + int(m.group(1))
    total = sum(top.values()) / 1e3
    biggest = sorted(top.items(), key=lambda kv: -kv[1])[:6]
    heavy = [name for name in ("tensorflow", "torch", "matplotlib", "rich", "onnx") if name in top]
    return (f"CLI imports (python -X importtime, CSV trace of the sample model): {total:.0f} ms in all; "
            + ", ".join(f"{name} {us / 1e3:.0f} ms" for name, us in biggest)
            + f"; heavy packages imported: {', '.join(heavy) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per case in each worker")
    parser.add_argument("--rounds", type=int, default=3, help="fresh worker processes per side")
    parser.add_argument("--e2e-repeats", type=int, default=5, help="process launches per end-to-end case")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--blas-threads", type=int,
                        help="OPENBLAS_NUM_THREADS of the engine workers (default: the library's own; "
                             "the GEMMs are timed on one thread and on the library's own)")
    parser.add_argument("--engine-threads", type=int,
                        help="LSTM_TRACE_THREADS of the engine workers (default: every CPU, at most 8)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, *paths = args.worker
        if kind == "build":
            worker_build(Path(paths[0]))
        elif kind == "keras-script":
            worker_keras_script(Path(paths[0]), Path(paths[1]))
        else:
            fn = {"engine": worker_engine, "gemm": worker_gemm, "keras": worker_keras}[kind]
            print(json.dumps(fn(Path(paths[0]), args.repeats)))
        return

    import numpy as np

    openblas_set = {v: os.environ[v] for v in OPENBLAS_VARS if v in os.environ}
    with tempfile.TemporaryDirectory(prefix="lstm-trace-bench-") as tmp:
        tmpdir = Path(tmp)
        subprocess.run([sys.executable, __file__, "--worker", "build", tmp], env=worker_env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sides: dict[str, list[dict]] = {"engine": [], "numpy": [], "gemm1": [], "gemm": [], "keras": []}
        blas = {"OPENBLAS_NUM_THREADS": str(args.blas_threads)} if args.blas_threads else {}
        threads = {"LSTM_TRACE_THREADS": str(args.engine_threads)} if args.engine_threads else {}
        for _ in range(args.rounds):  # sides interleaved, so a busy spell hits all of them
            one_core = worker_env(OPENBLAS_NUM_THREADS="1")
            sides["gemm1"].append(run_worker("gemm", tmpdir, args.repeats, one_core))
            sides["gemm"].append(run_worker("gemm", tmpdir, args.repeats, worker_env()))
            sides["engine"].append(run_worker("engine", tmpdir, args.repeats, worker_env(**blas, **threads)))
            sides["numpy"].append(run_worker("engine", tmpdir, args.repeats,
                                             worker_env(LSTM_TRACE_KERNELS="numpy", **blas)))
            sides["keras"].append(run_worker("keras", tmpdir, args.repeats, worker_env()))
        best = {side: best_of(rounds) for side, rounds in sides.items()}
        e2e = end_to_end_rows(tmpdir, args.e2e_repeats)
        imports = import_profile(tmpdir)
    if args.json:
        args.json.write_text(json.dumps(sides, indent=1))

    engine = best["engine"]
    print(f"lstm-trace engine vs Keras {best['keras']['keras']} predict vs the raw matrix products; "
          f"each side in its own processes; minimum of {args.rounds} processes x {args.repeats} runs")
    print(f"cpus: {os.cpu_count()}, numpy {np.__version__}, compiled kernels: "
          f"{'yes' if engine['kernels'] else 'NO (NumPy loops)'}; OPENBLAS env here: "
          f"{openblas_set or 'not set'} (removed in the workers)")
    print(f"BLAS of the engine: {engine['blas']}"
          + (f" (OPENBLAS_NUM_THREADS={args.blas_threads})" if blas else "")
          + f"; of the GEMMs: 1 thread and {best['gemm']['blas']}")
    print(f"engine kernels: {engine['threads']} thread(s) over blocks of batch rows, each block's products "
          "on one BLAS thread (LSTM_TRACE_THREADS)")
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("engine = lstm_trace.load(model).trace(x), every quantity at every step; NumPy engine = the "
          "same with LSTM_TRACE_KERNELS=numpy;\nGEMMs = x W for all steps + h U per step (out=), "
          "every layer and direction, on 1 BLAS thread (1 core) and on the BLAS's own threads (all cores)")
    print()
    print_table(["case", "Keras predict (ms)", "engine (ms)", "NumPy engine (ms)", "GEMMs 1 core (ms)",
                 "GEMMs all cores (ms)", "engine / GEMMs 1 core", "engine / GEMMs all cores",
                 "engine / Keras", "per-step overhead, batch 1"],
                engine_rows(engine, best["numpy"], best["gemm1"], best["gemm"], best["keras"]))
    print()
    print_table(["whole process, CSV trace", "lstm-trace CLI (ms)", "Keras load + predict (ms)",
                 "Keras / CLI"], e2e)
    print()
    print(imports)


if __name__ == "__main__":
    main()
