"""Errors that mean "the user asked for something that cannot be done" (not a bug).

Each carries a one-line message: what is wrong, where, and what to do. The command line
prints it on stderr and exits 2; any exception that is *not* one of the user errors is a
bug in lstm-trace (exit 3).
"""

from __future__ import annotations


class OptionError(ValueError):
    """An option's value cannot be used (out of range, unknown name, wrong combination)."""
