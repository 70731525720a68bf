"""The one error of the TensorFlow readers: a file that cannot be found, read or trusted."""

from __future__ import annotations

from ..errors import LoadError


class BundleError(LoadError):
    """A TensorFlow checkpoint could not be found, read or trusted (a ``ValueError``)."""
