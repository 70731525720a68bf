"""Every ``$ lstm-trace ...`` example in README.md and docs/*.md prints what the docs show.

An example is a ``$ `` line inside a fenced code block; its expected output is every
following line up to the next ``$ `` line or the closing fence. Long commands continue
over lines ending in ``\\``. Examples run in order, per file, with ``bash`` (pipes and
``<(...)`` work), ``lstm-trace`` meaning this checkout's ``python -m lstm_trace``, in a
scratch directory that holds links to the repository's ``sample_models/`` and ``docs/``
(so files an example writes, like ``-o golden.npz``, are there for the next example of
the same file and never land in the repository). stdout and stderr are compared
together, in the order they were written, as a terminal would show them; stdout is a
pipe, as when the docs' output was captured, so tables use their plain-text width.

Comparison is exact except for what must be normalised:

- trailing whitespace on each line, and blank lines at the end of an output;
- a line holding only ``...`` in the docs stands for any number of lines (the docs
  elide long output that way).

Commands other than ``lstm-trace`` and ``echo`` (``make``, ``python``) are not run.
``$ echo $?`` prints the exit code of the example before it.

An example that uses the files of a fixture builder (``tests/builders/<name>.py``, built
once and cached like every fixture) says so by an HTML comment on the line right before
the opening fence, which Markdown does not render; the builder's files are then linked
into the scratch directory under their own names (``keras2``: the tf_keras build)::

    <!-- docs-test: fixture workflow_models -->

Examples that cannot run here (a placeholder path, files no builder makes) are marked::

    <!-- docs-test: skip (needs the TF1 fixture checkpoint) -->

The reason is required; :func:`test_skipped_examples_say_why` keeps the markers honest.

After a deliberate change of output, ``LSTM_TRACE_UPDATE_DOCS=1 pytest
tests/test_docs_examples.py`` rewrites the outputs of the differing examples in place
(except those with a ``...`` line, which are edited by hand); read the diff before
committing it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\b\s*(?P<reason>.*?)\s*-->\s*$")
FIXTURE = re.compile(r"^<!--\s*docs-test:\s*fixture\s+(?P<builder>\w+)(?P<keras2>\s+keras2)?\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)")
RUNNABLE = ("lstm-trace", "echo")


@dataclass
class Example:
    path: Path
    line: int
    command: str
    expected: list[str] = field(default_factory=list)
    #: 0-based index in the file of the first output line (for --update).
    output_start: int = 0

    @property
    def runnable(self) -> bool:
        return self.command.split(maxsplit=1)[0] in RUNNABLE

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


@dataclass
class Block:
    path: Path
    line: int
    examples: list[Example]
    skip_reason: str | None
    #: ``(builder, legacy_keras)`` of a fixture whose files the examples use.
    fixture: tuple[str, bool] | None = None


def parse_blocks(path: Path) -> list[Block]:
    """The fenced blocks of ``path`` that hold ``$ `` examples."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, start = match.group("fence"), i
        skip = SKIP.match(lines[i - 1]) if i else None
        fixture = FIXTURE.match(lines[i - 1]) if i else None
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append((i + 1, lines[i]))
            i += 1
        i += 1
        examples = _examples(path, body)
        if examples:
            blocks.append(Block(
                path, start + 1, examples, skip.group("reason") if skip else None,
                (fixture.group("builder"), bool(fixture.group("keras2"))) if fixture else None,
            ))
    return blocks


def _examples(path: Path, body: list[tuple[int, str]]) -> list[Example]:
    examples: list[Example] = []
    k = 0
    while k < len(body):
        number, text = body[k]
        if not text.startswith("$ "):
            if examples:
                examples[-1].expected.append(text)
            k += 1
            continue
        command = text[2:]
        while command.endswith("\\") and k + 1 < len(body):
            k += 1
            command = command + "\n" + body[k][1]
        examples.append(Example(path, number, command, output_start=body[k][0]))
        k += 1
    return examples


BLOCKS = [block for path in DOC_FILES for block in parse_blocks(path)]


def _strip_comment(command: str) -> str:
    """Drop a trailing ``# comment`` the docs use to explain a command (not inside quotes)."""
    return re.sub(r"\s+#(?![^'\"]*['\"]\s*$)[^\n]*$", "", command)


def _shell() -> str:
    return shutil.which("bash") or "/bin/bash"


def _run(command: str, cwd: Path, previous_status: int) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.pop("LSTM_TRACE_KERNELS", None)  # as a user runs them (conftest forces the kernels)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as written, like a terminal
    env["LSTM_TRACE_PYTHON"] = sys.executable
    script = (
        'lstm-trace() { "$LSTM_TRACE_PYTHON" -m lstm_trace "$@"; }\n'
        f"(exit {previous_status})\n"
        f"{_strip_comment(command)}\n"
    )
    proc = subprocess.run([_shell(), "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    return proc.stdout, proc.returncode


def _normalise(lines: list[str]) -> list[str]:
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line-by-line equality, where an expected line ``...`` matches any run of lines."""
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected
    )
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


@pytest.fixture()
def scratch(tmp_path: Path) -> Path:
    for name in ("sample_models", "docs"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp_path


def _blocks_by_file() -> dict[Path, list[Block]]:
    grouped: dict[Path, list[Block]] = {}
    for block in BLOCKS:
        grouped.setdefault(block.path, []).append(block)
    return grouped


@pytest.mark.parametrize(
    "path", [p for p in DOC_FILES if any(b.path == p for b in BLOCKS)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_doc_examples_print_what_the_docs_show(path: Path, scratch: Path) -> None:
    failures = []
    updates: list[tuple[Example, list[str]]] = []
    ran = 0
    for block in _blocks_by_file()[path]:
        if block.skip_reason is not None:
            continue
        if block.fixture is not None:
            _link_fixture(scratch, *block.fixture)
        status = 0
        for example in block.examples:
            if not example.runnable:
                continue
            output, status = _run(example.command, scratch, status)
            ran += 1
            expected = _normalise(example.expected)
            actual = _normalise(output.splitlines())
            if not matches(expected, actual):
                if os.environ.get("LSTM_TRACE_UPDATE_DOCS") and "..." not in expected:
                    updates.append((example, actual))
                    continue
                failures.append(
                    f"{example.id}: $ {example.command}\n--- the docs show:\n"
                    + "\n".join(expected) + "\n--- the tool printed:\n" + "\n".join(actual)
                )
    if updates:
        _rewrite(path, updates)
    assert not failures, f"{len(failures)} of {ran} examples differ:\n\n" + "\n\n".join(failures)


def _link_fixture(scratch: Path, builder: str, legacy_keras: bool) -> None:
    """Make the files of a fixture builder's output visible in the scratch directory."""
    from conftest import build_fixtures

    directory = build_fixtures(builder, legacy_keras=legacy_keras)
    for item in directory.iterdir():
        link = scratch / item.name
        if not link.exists():
            link.symlink_to(item, target_is_directory=item.is_dir())


def _rewrite(path: Path, updates: list[tuple[Example, list[str]]]) -> None:
    """Replace the docs' output of each example with what the tool printed."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for example, actual in sorted(updates, key=lambda u: -u[0].output_start):
        start = example.output_start
        lines[start:start + len(example.expected)] = actual
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_skipped_examples_say_why() -> None:
    skipped = [b for b in BLOCKS if b.skip_reason is not None]
    for block in skipped:
        assert block.skip_reason.strip("()— -:"), f"{block.path.name}:{block.line}: give a reason"
    assert any(b.skip_reason is None for b in BLOCKS)


def test_the_parser_reads_commands_outputs_and_ellipses(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "text\n```console\n$ lstm-trace a b \\\n    --units 7 | head -2   # note\nrow 1\nrow 2\n"
        "$ echo $?\n0\n```\n<!-- docs-test: skip (needs a fixture) -->\n```\n$ lstm-trace m x\n```\n"
    )
    first, second = parse_blocks(doc)
    assert [e.command for e in first.examples] == [
        "lstm-trace a b \\\n    --units 7 | head -2   # note", "echo $?"]
    assert first.examples[0].expected == ["row 1", "row 2"]
    assert first.examples[1].expected == ["0"]
    assert first.skip_reason is None and second.skip_reason == "(needs a fixture)"
    assert first.fixture is None
    doc.write_text("<!-- docs-test: fixture tf1_cells keras2 -->\n```\n$ lstm-trace inspect ckpt\n```\n")
    (third,) = parse_blocks(doc)
    assert third.fixture == ("tf1_cells", True) and third.skip_reason is None
    assert _strip_comment("lstm-trace a b   # note") == "lstm-trace a b"
    assert matches(["a", "...", "z"], ["a", "b", "c", "z"])
    assert matches(["a", "...", "z"], ["a", "z"])
    assert not matches(["a", "z"], ["a", "b", "z"])
