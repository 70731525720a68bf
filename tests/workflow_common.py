"""What the workflow command tests share: the framework-built models and CLI helpers.

The models come from ``tests/builders/workflow_models.py``, run once by Keras 3 and once
by tf_keras (Keras 2) in their own processes and cached (see ``conftest.build_fixtures``).
The session fixtures ``wf3``/``wf2`` (in conftest.py) build them.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from lstm_trace.cli import main

#: (fixture directory name, format) pairs covering every Keras file kind the builder writes.
KERAS3_FORMATS = ("keras", "h5", "weights_h5")
KERAS2_FORMATS = ("h5", "weights_h5")
ALL_FORMATS = [("wf3", f) for f in KERAS3_FORMATS] + [("wf2", f) for f in KERAS2_FORMATS]


def case(directory: Path, name: str) -> dict:
    cases = json.loads((directory / "manifest.json").read_text())["cases"]
    return next(c for c in cases if c["name"] == name)


def model_file(directory: Path, name: str, fmt: str = "keras") -> Path:
    return directory / case(directory, name)["files"][fmt]


def input_file(directory: Path, name: str) -> Path:
    return directory / case(directory, name)["input"]


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> None:
    """Exit 2, one ``error:`` line on stderr naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, result.output)
