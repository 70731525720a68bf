"""Finding a checkpoint: a prefix, its `.index`/`.data-*` files, or a directory's state file."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import BundleError
from .sstable import _FOOTER_SIZE, _TABLE_MAGIC

_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STATE_LINE = re.compile(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"\s*$', re.MULTILINE)
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {
    b"n": b"\n",
    b"t": b"\t",
    b"r": b"\r",
    b"a": b"\a",
    b"b": b"\b",
    b"f": b"\f",
    b"v": b"\v",
    b"\\": b"\\",
    b"'": b"'",
    b'"': b'"',
    b"?": b"?",
}


def _unescape_text_proto(text: str) -> str:
    """Undo C-style escaping of a text-format protobuf string literal."""

    def repl(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return _SIMPLE_ESCAPES.get(code, code)

    return _ESCAPE.sub(repl, text.encode("utf-8")).decode("utf-8", "surrogateescape")


def _prefix_from_state_file(directory: Path) -> str:
    state = directory / "checkpoint"
    try:
        text = state.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise BundleError(f"cannot read checkpoint state file {state}: {exc.strerror}") from None
    match = _STATE_LINE.search(text)
    if match is None:
        raise BundleError(
            f"checkpoint state file {state} has no model_checkpoint_path line; "
            "pass the checkpoint prefix (the path without .index) instead"
        )
    target = _unescape_text_proto(match.group(1))
    prefix = Path(target) if os.path.isabs(target) else directory / target
    # A directory copied or moved since TF wrote an absolute path: the checkpoint beside
    # the state file is the one the user pointed at, even if the original still exists.
    beside = directory / Path(target).name
    if os.path.isabs(target) and Path(str(beside) + ".index").is_file():
        return str(beside)
    if not Path(str(prefix) + ".index").is_file():
        raise BundleError(
            f"checkpoint state file {state} points to {target!r}, but {prefix}.index does not exist; "
            "the checkpoint is incomplete or the state file is stale"
        )
    return str(prefix)


def resolve_prefix(path: str | os.PathLike[str]) -> str:
    """Turn a checkpoint directory, prefix, ``.index`` or ``.data-*`` path into a prefix.

    A directory is resolved through its ``checkpoint`` state file, or through
    its only ``*.index`` file if it has no state file.
    """
    p = Path(path)
    text = str(p)
    if p.is_dir():
        if (p / "checkpoint").is_file():
            return _prefix_from_state_file(p)
        indexes = sorted(p.glob("*.index"))
        if len(indexes) == 1:
            return str(indexes[0])[: -len(".index")]
        if not indexes:
            raise BundleError(
                f"directory {p} holds no TensorFlow checkpoint (no 'checkpoint' file, no *.index file)"
            )
        names = ", ".join(i.name for i in indexes[:5])
        raise BundleError(
            f"directory {p} holds several checkpoints ({names}) and no 'checkpoint' state file; "
            "pass one prefix (the path without .index)"
        )
    if text.endswith(".index") and p.is_file():
        return text[: -len(".index")]
    if _DATA_SUFFIX.search(text):
        return _DATA_SUFFIX.sub("", text)
    if Path(text + ".index").is_file():
        return text
    if p.exists():
        raise BundleError(
            f"{p} is not a TensorFlow checkpoint: expected a checkpoint directory, a prefix "
            f"with {p.name}.index next to it, or the .index file itself"
        )
    raise BundleError(
        f"no TensorFlow checkpoint at {p}: neither {p} nor {p.name}.index exists; "
        "pass the checkpoint directory or prefix (the path without .index)"
    )


def looks_like_bundle(path: str | os.PathLike[str]) -> bool:
    """Cheap content check: does ``path`` resolve to an ``.index`` with the table magic?"""
    try:
        index = Path(resolve_prefix(path) + ".index")
        with index.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < _FOOTER_SIZE:
                return False
            fh.seek(size - 8)
            return int.from_bytes(fh.read(8), "little") == _TABLE_MAGIC
    except (OSError, BundleError):
        return False
