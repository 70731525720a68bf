"""The fixture cache key (tests/conftest.py): a framework pin change rebuilds the references."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import KEY_DISTRIBUTIONS, fixture_key, framework_versions

TESTS = Path(__file__).resolve().parent


def test_key_names_every_framework_version():
    versions = framework_versions()
    for name in ("tensorflow", "keras", "tf-keras", "torch", "onnx", "onnxruntime"):
        assert name in KEY_DISTRIBUTIONS
        assert f"{name}==" in versions and f"{name}==none" not in versions, versions


def test_reading_the_versions_imports_no_framework():
    code = ("import sys, conftest; conftest.framework_versions(); "
            "bad = [m for m in ('tensorflow', 'keras', 'tf_keras', 'torch', 'onnx', 'onnxruntime') "
            "if m in sys.modules]; assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=TESTS, capture_output=True, text=True,
                            env={"PYTHONPATH": str(TESTS)}, timeout=120)
    assert result.returncode == 0, result.stderr


def test_key_changes_with_a_framework_version():
    versions = framework_versions()
    bumped = versions.replace("tensorflow==", "tensorflow==9", 1)
    assert bumped != versions
    assert fixture_key("keras_lstm", False, (), versions) != fixture_key("keras_lstm", False, (), bumped)
    assert fixture_key("keras_lstm", False, (), versions) == fixture_key("keras_lstm", False, (), versions)
