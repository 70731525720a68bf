"""Shared fixtures: framework-built models, made once and cached across test sessions.

Fixture builders are scripts in ``tests/builders/`` run by TensorFlow in their own
process (TensorFlow never enters the pytest process, so the tests can check that
tracing does not import it). Each writes model files, inputs and the framework's own
reference outputs into a directory plus ``manifest.json``. The directory is cached in
``.fixture-cache/`` under a hash of the builder's source and the installed framework
versions, so a builder reruns only when it or a framework pin changes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILDERS = Path(__file__).resolve().parent / "builders"
CACHE = Path(os.environ.get("LSTM_TRACE_FIXTURE_CACHE", ROOT / ".fixture-cache"))
# The compiled step kernels (where built) replay every size in the tests, so the framework
# tests check them too; outside the tests small work runs the NumPy loops (lstm_trace.kernels).
os.environ.setdefault("LSTM_TRACE_KERNELS", "always")

#: The frameworks the references come from (the `test` extra): a missing one fails the run
#: before any test, never turns tests into skips.
FRAMEWORKS = ("tensorflow", "tf_keras", "keras", "torch", "safetensors", "onnx", "onnxruntime",
              "matplotlib")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--error-report", action="store_true",
                     help="print the worst error against the framework per family (README table)")


def pytest_configure(config: pytest.Config) -> None:
    missing = [name for name in FRAMEWORKS if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(
            f"test dependencies missing: {', '.join(missing)}; install them with "
            "pip install -e '.[test]' (the framework references are not optional)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the per-family worst errors (tests/error_record.py) as JSON."""
    from error_record import report

    data = report()
    if not data:
        return
    target = os.environ.get("LSTM_TRACE_ERROR_REPORT")
    cache = getattr(session.config, "cache", None)  # None with -p no:cacheprovider
    if not target and cache is None:
        return
    path = Path(target) if target else cache.mkdir("lstm-trace") / "errors.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if config.getoption("--error-report"):
        from error_record import table

        terminalreporter.write_sep("-", "worst error against the framework per family")
        terminalreporter.write_line(table())


@pytest.fixture(scope="session")
def record_error():
    """``record_error(family, case, err)``: see tests/error_record.py."""
    from error_record import record_error as record

    return record


#: Distributions whose version is part of every fixture's cache key: the references come
#: from them, so a pin change must rebuild them (read from metadata, nothing is imported).
KEY_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "torch", "onnx",
                     "onnxruntime", "safetensors", "h5py", "numpy")


@functools.cache
def framework_versions() -> str:
    """``name==version`` of each :data:`KEY_DISTRIBUTIONS` (``none`` when not installed)."""
    versions = []
    for name in KEY_DISTRIBUTIONS:
        try:
            versions.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name}==none")
    return ";".join(versions)


def fixture_key(builder: str, legacy_keras: bool, inputs: tuple[Path, ...], versions: str) -> str:
    """The cache key: builder and ``common.py`` source, inputs, Keras flavour, framework versions."""
    digest = hashlib.sha256()
    for path in (BUILDERS / f"{builder}.py", BUILDERS / "common.py", *inputs):
        if path.exists():
            digest.update(path.read_bytes())
    digest.update(str(legacy_keras).encode())
    digest.update(versions.encode())
    return digest.hexdigest()[:12]


def build_fixtures(builder: str, *, legacy_keras: bool = False, timeout: int = 1800,
                   inputs: tuple[Path, ...] = ()) -> Path:
    """Run ``tests/builders/<builder>.py OUTDIR`` once and return OUTDIR (cached by source hash
    and framework versions).

    ``inputs`` are files the builder reads (e.g. committed sample models): their content
    joins the cache key, so regenerating them rebuilds the fixtures.
    """
    script = BUILDERS / f"{builder}.py"
    prefix = f"{builder}-{'keras2' if legacy_keras else 'keras3'}-"
    out = CACHE / f"{prefix}{fixture_key(builder, legacy_keras, inputs, framework_versions())}"
    if (out / "manifest.json").exists():
        return out
    # Older versions of this builder's output are left alone: several checkouts (worktrees,
    # CI beside a developer) may share one cache, each needing its own version; `make clean`
    # empties it. The build goes to a private directory renamed into place when complete.
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1",
               PYTHONPATH=str(BUILDERS))
    if legacy_keras:
        env["TF_USE_LEGACY_KERAS"] = "1"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp)], env=env, capture_output=True, text=True,
        timeout=timeout,
    )
    if proc.returncode != 0 or not (tmp / "manifest.json").exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(f"fixture builder {builder} failed (exit {proc.returncode}):\n{tail}")
    try:
        tmp.rename(out)
    except OSError:  # another process finished the same build first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_manifest(directory: Path) -> list[dict]:
    return json.loads((directory / "manifest.json").read_text())["cases"]


@pytest.fixture(scope="session")
def keras3_lstm_fixtures() -> Path:
    return build_fixtures("keras_lstm")


@pytest.fixture(scope="session")
def keras2_lstm_fixtures() -> Path:
    return build_fixtures("keras_lstm", legacy_keras=True)


@pytest.fixture(scope="session")
def wf3() -> Path:
    """The workflow command models (tests/builders/workflow_models.py), Keras 3."""
    return build_fixtures("workflow_models")


@pytest.fixture(scope="session")
def wf2() -> Path:
    """The same models written by tf_keras (Keras 2)."""
    return build_fixtures("workflow_models", legacy_keras=True)
