"""The error every loader raises for a file it cannot read."""

from __future__ import annotations


class LoadError(ValueError):
    """A model file is unreadable, unsupported or inconsistent.

    The message is one line: what is wrong, where, and what to do.
    """
