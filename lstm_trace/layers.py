"""Non-recurrent layers replayed in NumPy on the way to a traced recurrent layer.

Each layer maps ``(x, mask) -> (x, mask)`` at inference time: ``x`` is
``(batch, steps, features)`` (or ``(batch, steps)`` token ids before an Embedding)
and ``mask`` is ``(batch, steps)`` booleans or ``None``. Masks propagate as Keras
propagates them: layers that support masking pass the mask on, Embedding and Masking
make one, and the others (convolutions, pooling, Reshape, Permute, RepeatVector) drop it.
Convolutions and pooling over 2 or 3 spatial axes take ``(batch, *grid, channels)``.

The classes know no file format: ``lstm_trace.loaders.keras.upstream`` builds them from
Keras configs and weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .activations import get_activation
from .convolution import Window, convolve, pool

Mask = np.ndarray | None


class LayerReplayError(ValueError):
    """A layer on the path to a traced layer cannot be replayed in NumPy."""


class BranchNotTaken(Exception):  # noqa: N818 - a signal, not a failure
    """Raised by an upstream layer in a branch of the model (an ONNX ``If`` branch) that
    this input does not take: the layers it feeds do not run for it. The message says
    which branch and why (``the then branch of If 'x', whose condition ... is false``)."""


@dataclass
class UpstreamLayer:
    """Base class: a named layer with an inference-time ``apply``."""

    name: str
    class_name: str

    replayable = True

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        raise NotImplementedError

    def apply_many(self, xs: list[np.ndarray], masks: list[Mask]) -> tuple[np.ndarray, Mask]:
        """Layers with several inputs (Concatenate, Add, ...) override this."""
        raise LayerReplayError(
            f"layer {self.name!r} ({self.class_name}) has {len(xs)} inputs, which lstm-trace "
            "cannot replay; pass --layer-input with INPUT being the traced layer's own input"
        )

    def describe(self) -> str:
        """A short description of what the replay does (for ``inspect``)."""
        return self.class_name


@dataclass
class Identity(UpstreamLayer):
    """Layers that do nothing at inference: Dropout and friends, noise layers, InputLayer."""

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        return x, mask

    def describe(self) -> str:
        return f"{self.class_name} (identity at inference)"


@dataclass
class Unsupported(UpstreamLayer):
    """A layer lstm-trace cannot replay; tracing past it needs ``--layer-input``."""

    reason: str = ""
    config: dict = field(default_factory=dict, repr=False)

    replayable = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        why = f" ({self.reason})" if self.reason else ""
        raise LayerReplayError(
            f"layer {self.name!r} ({self.class_name}) cannot be replayed in NumPy{why}; "
            "pass --layer-input with INPUT being the traced layer's own input"
        )

    def describe(self) -> str:
        return f"{self.class_name} (not replayable{': ' + self.reason if self.reason else ''})"


# ---------------------------------------------------------------------------- helpers


def _activate(name: str, x: np.ndarray) -> np.ndarray:
    """A canonical activation; ``softmax`` / ``log_softmax`` act on the last axis (Keras)."""
    if name in ("softmax", "log_softmax"):
        shifted = x - x.max(axis=-1, keepdims=True)
        if name == "log_softmax":
            return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        e = np.exp(shifted)
        return e / e.sum(axis=-1, keepdims=True)
    return get_activation(name)(x)


def _axes(axis: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Keras axes (counted with the batch axis, negatives from the end) as sorted positives."""
    items = (axis,) if isinstance(axis, int) else tuple(axis)
    out = sorted({a % ndim for a in items})
    if any(a == 0 for a in out):
        raise ValueError("normalizing over the batch axis is not an inference-time operation")
    return tuple(out)


def _broadcast_param(param: np.ndarray, axes: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Reshape a per-feature parameter so it broadcasts along ``axes`` of ``shape``."""
    want = tuple(shape[a] for a in axes)
    if param.shape != want and param.size == int(np.prod(want)):
        param = param.reshape(want)
    if param.shape != want:
        raise ValueError(f"parameters of shape {param.shape} do not fit axes {axes} of input {shape}")
    view = [1] * len(shape)
    for a in axes:
        view[a] = shape[a]
    return param.reshape(view)


def _time_window(x: np.ndarray, size: int, stride: int, dilation: int, padding: str) -> Window:
    """The :class:`~lstm_trace.convolution.Window` over the time axis of ``x`` ``(batch, steps,
    channels)``; a ``valid`` window longer than the sequence is refused by name."""
    window = Window((size,), (stride,), (dilation,), padding)
    span = (size - 1) * dilation + 1
    if window.output_grid((x.shape[1],))[0] < 1:
        raise ValueError(f"the sequence is too short ({x.shape[1]} steps) for a window spanning {span} steps")
    return window


def _check_time_input(x: np.ndarray, what: str) -> None:
    if x.ndim != 3:
        raise ValueError(f"{what} needs (batch, steps, channels) input, got shape {tuple(x.shape)}")


# ---------------------------------------------------------------------------- layers


@dataclass
class Embedding(UpstreamLayer):
    """Token ids ``(batch, steps)`` -> vectors ``embeddings[ids]``; ``mask_zero`` masks id 0."""

    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    mask_zero: bool = False

    takes_token_ids = True

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        ids = np.asarray(x)
        if ids.dtype.kind == "f":
            # Keras casts float input to int32; only whole numbers survive that unchanged.
            if not np.all(np.isfinite(ids)) or np.any(ids != np.round(ids)):
                raise ValueError("expects integer token ids, got non-integer values")
            ids = ids.astype(np.int64)
        elif ids.dtype.kind not in "iu":
            raise ValueError(f"expects integer token ids, got {ids.dtype}")
        vocab = self.embeddings.shape[0]
        bad = (ids < 0) | (ids >= vocab)
        if bad.any():
            raise ValueError(
                f"token id {int(ids[bad].flat[0])} is out of range: the vocabulary has "
                f"{vocab} entries (ids 0 to {vocab - 1})"
            )
        # Keras's Embedding ignores an incoming mask and makes its own.
        return self.embeddings[ids], (ids != 0) if self.mask_zero else None

    def describe(self) -> str:
        vocab, dim = self.embeddings.shape
        return f"Embedding {vocab}x{dim}" + (" (mask_zero)" if self.mask_zero else "")


@dataclass
class Masking(UpstreamLayer):
    """Masks steps whose features all equal ``mask_value`` and zeroes them, as Keras does."""

    mask_value: float = 0.0

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        keep = np.any(x != x.dtype.type(self.mask_value), axis=-1)
        return np.where(keep[..., None], x, x.dtype.type(0)), keep

    def describe(self) -> str:
        return f"Masking (mask_value={self.mask_value})"


@dataclass
class Dense(UpstreamLayer):
    """``φ(x K + b)`` on the last axis of any-rank input; the mask passes through."""

    kernel: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)
    activation: str = "linear"

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        if x.shape[-1] != self.kernel.shape[0]:
            raise ValueError(
                f"expects {self.kernel.shape[0]} features on the last axis, got shape {tuple(x.shape)}"
            )
        y = x @ self.kernel.astype(x.dtype, copy=False)
        if self.bias is not None:
            y += self.bias.astype(x.dtype, copy=False)
        return _activate(self.activation, y), mask

    def describe(self) -> str:
        return f"Dense {self.kernel.shape[0]}->{self.kernel.shape[1]} ({self.activation})"


@dataclass
class Activation(UpstreamLayer):
    """An activation function applied elementwise (softmax: over the last axis)."""

    activation: str = "linear"

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        return _activate(self.activation, x), mask

    def describe(self) -> str:
        return f"{self.class_name} ({self.activation})"


@dataclass
class BatchNormalization(UpstreamLayer):
    """Inference-time batch norm over ``axes``: ``(x - mean) / sqrt(var + ε) · γ + β``.

    Computed as Keras does, ``x · inv + (β - mean · inv)`` with ``inv = γ / sqrt(var + ε)``.
    """

    moving_mean: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    moving_variance: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    gamma: np.ndarray | None = field(default=None, repr=False)
    beta: np.ndarray | None = field(default=None, repr=False)
    axis: int | tuple[int, ...] = -1
    epsilon: float = 1e-3

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        axes = _axes(self.axis, x.ndim)
        t = x.dtype.type

        def param(p: np.ndarray) -> np.ndarray:
            return _broadcast_param(p.astype(x.dtype), axes, x.shape)

        inv = t(1) / np.sqrt(param(self.moving_variance) + t(self.epsilon))
        if self.gamma is not None:
            inv = inv * param(self.gamma)
        shift = -param(self.moving_mean) * inv
        if self.beta is not None:
            shift = shift + param(self.beta)
        return x * inv + shift, mask

    def describe(self) -> str:
        return f"BatchNormalization (inference, axis={self.axis}, epsilon={self.epsilon})"


@dataclass
class LayerNormalization(UpstreamLayer):
    """Per-sample normalization over ``axes``: ``(x - mean) / sqrt(var + ε) · γ + β``.

    ``rms_scaling`` (Keras 3) is ``x / sqrt(var + ε) · γ``: no centering and no ``β``.
    """

    gamma: np.ndarray | None = field(default=None, repr=False)
    beta: np.ndarray | None = field(default=None, repr=False)
    axis: int | tuple[int, ...] = -1
    epsilon: float = 1e-3
    rms_scaling: bool = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        axes = _axes(self.axis, x.ndim)
        t = x.dtype.type
        mean = x.mean(axis=axes, keepdims=True)
        variance = np.square(x - mean).mean(axis=axes, keepdims=True)
        inv = t(1) / np.sqrt(variance + t(self.epsilon))
        gamma = None if self.gamma is None else _broadcast_param(self.gamma.astype(x.dtype), axes, x.shape)
        if self.rms_scaling:
            y = x * inv
            return (y if gamma is None else y * gamma), mask
        if gamma is not None:
            inv = inv * gamma
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + _broadcast_param(self.beta.astype(x.dtype), axes, x.shape)
        return x * inv + shift, mask

    def describe(self) -> str:
        return f"LayerNormalization (axis={self.axis}, epsilon={self.epsilon})"


@dataclass
class Conv1D(UpstreamLayer):
    """1-D convolution over time, ``channels_last`` (``channels_first`` is transposed).

    ``y[j] = φ(Σ_m x[j·stride + m·dilation] K[m] + b)`` per group of channels, after
    ``valid`` (none), ``causal`` (``(k-1)·dilation`` zeros on the left) or ``same``
    (TensorFlow's split, the odd one on the right) padding. Masks are dropped, as in Keras.
    """

    kernel: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)), repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)
    strides: int = 1
    padding: str = "valid"
    dilation_rate: int = 1
    groups: int = 1
    activation: str = "linear"
    channels_first: bool = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        _check_time_input(x, "Conv1D")
        if self.channels_first:
            x = x.transpose(0, 2, 1)
        width = self.kernel.shape[0]
        padding = self.padding
        if padding == "causal":  # (k-1)·dilation zeros on the left, then a valid window
            x = np.pad(x, ((0, 0), ((width - 1) * self.dilation_rate, 0), (0, 0)))
            padding = "valid"
        window = _time_window(x, width, self.strides, self.dilation_rate, padding)
        y = convolve(x, self.kernel.astype(x.dtype, copy=False), window, self.groups)
        if self.bias is not None:
            y += self.bias.astype(x.dtype, copy=False)
        y = _activate(self.activation, y)
        if self.channels_first:
            y = y.transpose(0, 2, 1)
        return np.ascontiguousarray(y), None

    def describe(self) -> str:
        width, _, filters = self.kernel.shape
        return (f"Conv1D {filters} filters, width {width}, {self.padding}, strides {self.strides}, "
                f"dilation {self.dilation_rate}, groups {self.groups} ({self.activation})")


@dataclass
class Pooling1D(UpstreamLayer):
    """Max or average pooling over time; ``same`` averages only the real (unpadded) steps."""

    mode: str = "max"  # "max" or "average"
    pool_size: int = 2
    strides: int = 2
    padding: str = "valid"
    channels_first: bool = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        _check_time_input(x, self.class_name)
        if self.channels_first:
            x = x.transpose(0, 2, 1)
        y = pool(x, _time_window(x, self.pool_size, self.strides, 1, self.padding), self.mode)
        if self.channels_first:
            y = y.transpose(0, 2, 1)
        return np.ascontiguousarray(y.astype(x.dtype, copy=False)), None

    def describe(self) -> str:
        return (f"{self.class_name} (pool {self.pool_size}, strides {self.strides}, "
                f"{self.padding})")


@dataclass
class ConvND(UpstreamLayer):
    """Convolution over 2 or 3 spatial axes (Keras ``Conv2D``/``Conv3D``), then the activation.

    ``x`` ``(batch, *grid, channels)`` (``channels_first`` is transposed and back), ``kernel``
    ``(*kernel_size, channels / groups, filters)``: :func:`lstm_trace.convolution.convolve`
    plus the bias. Masks are dropped, as in Keras.
    """

    kernel: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 0, 0)), repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)
    window: Window = field(default_factory=lambda: Window((1, 1), (1, 1), (1, 1)))
    groups: int = 1
    activation: str = "linear"
    channels_first: bool = False

    def __post_init__(self) -> None:
        if self.kernel.shape[:self.window.rank] != self.window.kernel_size:
            raise ValueError(f"kernel of shape {self.kernel.shape} for a window of {self.window.kernel_size}")

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        x = _grid_input(x, self.window.rank, self.class_name, self.channels_first)
        y = convolve(x, self.kernel.astype(x.dtype, copy=False), self.window, self.groups)
        if self.bias is not None:
            y += self.bias.astype(x.dtype, copy=False)
        y = _activate(self.activation, y)
        return np.ascontiguousarray(_grid_output(y, self.channels_first)), None

    def describe(self) -> str:
        w = self.window
        return (f"{self.class_name} {self.kernel.shape[-1]} filters, kernel {w.kernel_size}, {w.padding}, "
                f"strides {w.strides}, dilation {w.dilation_rate}, groups {self.groups} ({self.activation})")


@dataclass
class PoolingND(UpstreamLayer):
    """Max or average pooling over 2 or 3 spatial axes (Keras ``MaxPooling2D``...);
    ``same`` averages only the real (unpadded) positions."""

    mode: str = "max"  # "max" or "average"
    window: Window = field(default_factory=lambda: Window((2, 2), (2, 2), (1, 1)))
    channels_first: bool = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        x = _grid_input(x, self.window.rank, self.class_name, self.channels_first)
        y = pool(x, self.window, self.mode)
        return np.ascontiguousarray(_grid_output(y, self.channels_first)), None

    def describe(self) -> str:
        w = self.window
        return f"{self.class_name} (pool {w.kernel_size}, strides {w.strides}, {w.padding})"


@dataclass
class GridPadding(UpstreamLayer):
    """``ZeroPadding2D/3D`` / ``Cropping2D/3D``: ``(before, after)`` zeros added to each
    spatial axis (``crop=False``) or positions removed from it (``crop=True``)."""

    amounts: tuple[tuple[int, int], ...] = ((0, 0), (0, 0))
    crop: bool = False
    channels_first: bool = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        x = _grid_input(x, len(self.amounts), self.class_name, self.channels_first)
        if not self.crop:
            y = np.pad(x, [(0, 0), *self.amounts, (0, 0)])
        else:
            index = [slice(None)]
            for n, (before, after) in zip(x.shape[1:-1], self.amounts, strict=True):
                if before + after >= n:
                    raise ValueError(f"cropping {before} + {after} leaves nothing of an axis of {n}")
                index.append(slice(before, n - after))
            y = x[tuple(index)]
        return np.ascontiguousarray(_grid_output(y, self.channels_first)), None

    def describe(self) -> str:
        return f"{self.class_name} ({'crops' if self.crop else 'zero-pads'} {self.amounts} per axis)"


@dataclass
class UpSampling(UpstreamLayer):
    """``UpSampling1D/2D/3D`` (nearest): each position repeated ``size[k]`` times along axis k."""

    size: tuple[int, ...] = (2,)
    channels_first: bool = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        x = _grid_input(x, len(self.size), self.class_name, self.channels_first)
        for axis, n in enumerate(self.size, start=1):
            x = np.repeat(x, n, axis=axis)
        return np.ascontiguousarray(_grid_output(x, self.channels_first)), None

    def describe(self) -> str:
        return f"{self.class_name} (nearest, size {self.size})"


@dataclass
class GlobalPooling(UpstreamLayer):
    """``GlobalAveragePooling1D/2D/3D`` / ``GlobalMaxPooling*``: the mean or maximum over
    every spatial axis, ``(batch, *grid, channels) -> (batch, channels)`` (``keepdims`` keeps
    the axes as 1). A 1-D average over a masked sequence counts only the unmasked steps, as
    Keras does (its maximum ignores the mask); the mask is dropped."""

    mode: str = "average"
    rank: int = 1
    keepdims: bool = False
    channels_first: bool = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        x = _grid_input(x, self.rank, self.class_name, self.channels_first)
        axes = tuple(range(1, 1 + self.rank))
        if mask is not None and self.rank == 1 and self.mode == "average":
            keep = mask.astype(x.dtype)[:, :, None]
            y = ((x * keep).sum(axis=1, keepdims=True) / np.maximum(keep.sum(axis=1, keepdims=True), 1))
            y = y.astype(x.dtype, copy=False)
        else:
            reduce = np.mean if self.mode == "average" else np.max
            y = reduce(x, axis=axes, keepdims=True)
        if not self.keepdims:
            return np.ascontiguousarray(y.reshape(y.shape[0], y.shape[-1])), None
        return np.ascontiguousarray(_grid_output(y, self.channels_first)), None

    def describe(self) -> str:
        return f"{self.class_name} ({self.mode} over {self.rank} axes)"


@dataclass
class Flatten(UpstreamLayer):
    """``Flatten``: ``(batch, ...) -> (batch, features)``; ``channels_first`` inputs are made
    channels-last first, as Keras does (so the order matches a channels-last model's)."""

    channels_first: bool = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        if self.channels_first and x.ndim > 2:
            x = np.moveaxis(x, 1, -1)
        return np.ascontiguousarray(x).reshape(x.shape[0], -1), None

    def describe(self) -> str:
        return "Flatten"


def _grid_input(x: np.ndarray, rank: int, what: str, channels_first: bool) -> np.ndarray:
    """``x`` as ``(batch, *grid, channels)`` with ``rank`` spatial axes."""
    if x.ndim != rank + 2:
        raise ValueError(f"{what} expects input (batch, {', '.join(['size'] * rank)}, channels), "
                         f"got shape {tuple(x.shape)}")
    return np.moveaxis(x, 1, -1) if channels_first else x


def _grid_output(y: np.ndarray, channels_first: bool) -> np.ndarray:
    return np.moveaxis(y, -1, 1) if channels_first else y


@dataclass
class TimePadding1D(UpstreamLayer):
    """``ZeroPadding1D`` / ``Cropping1D``: ``before`` and ``after`` zero steps added to the
    time axis (``crop=False``) or removed from it (``crop=True``); Keras drops the mask."""

    before: int = 1
    after: int = 1
    crop: bool = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        _check_time_input(x, self.class_name)
        if not self.crop:
            return np.pad(x, ((0, 0), (self.before, self.after), (0, 0))), None
        if self.before + self.after >= x.shape[1]:
            raise ValueError(f"cropping {self.before} + {self.after} steps leaves nothing of "
                             f"{x.shape[1]} steps")
        return np.ascontiguousarray(x[:, self.before:x.shape[1] - self.after]), None

    def describe(self) -> str:
        what = "crops" if self.crop else "zero-pads"
        return f"{self.class_name} ({what} {self.before} steps before, {self.after} after)"


@dataclass
class Reshape(UpstreamLayer):
    """``x.reshape(batch, *target_shape)`` (one entry may be -1); Keras drops the mask."""

    target_shape: tuple[int, ...] = ()

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        try:
            return x.reshape((x.shape[0], *self.target_shape)), None
        except ValueError:
            raise ValueError(
                f"cannot reshape input {tuple(x.shape[1:])} (without batch) to {self.target_shape}"
            ) from None

    def describe(self) -> str:
        return f"Reshape to {self.target_shape}"


@dataclass
class Permute(UpstreamLayer):
    """Reorders the non-batch axes (``dims`` counts from 1, as in Keras); drops the mask."""

    dims: tuple[int, ...] = ()

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        if len(self.dims) != x.ndim - 1:
            raise ValueError(f"permutes {len(self.dims)} axes but the input has shape {tuple(x.shape)}")
        return np.ascontiguousarray(x.transpose((0, *self.dims))), None

    def describe(self) -> str:
        return f"Permute {self.dims}"


@dataclass
class RepeatVector(UpstreamLayer):
    """``(batch, features) -> (batch, n, features)``; Keras drops the mask."""

    n: int = 1

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        if x.ndim != 2:
            raise ValueError(f"needs (batch, features) input, got shape {tuple(x.shape)}")
        return np.repeat(x[:, None, :], self.n, axis=1), None

    def describe(self) -> str:
        return f"RepeatVector ({self.n} steps)"


@dataclass
class TimeDistributed(UpstreamLayer):
    """Applies ``inner`` to every step: ``(batch, steps, ...)`` folded into ``(batch*steps, ...)``."""

    inner: UpstreamLayer | None = None

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        if x.ndim < 3:
            raise ValueError(f"needs (batch, steps, ...) input, got shape {tuple(x.shape)}")
        batch, steps = x.shape[:2]
        y, _ = self.inner.apply(x.reshape(batch * steps, *x.shape[2:]), None)
        return y.reshape(batch, steps, *y.shape[1:]), mask

    def describe(self) -> str:
        return f"TimeDistributed({self.inner.describe() if self.inner else '?'})"


@dataclass
class Merge(UpstreamLayer):
    """Keras merge layers: ``add``, ``subtract``, ``multiply``, ``average``, ``maximum``,
    ``minimum`` (elementwise, broadcasting) and ``concatenate`` (along ``axis``).

    Masks follow the Keras version that wrote the file: Keras 3 ORs the masks (none if any
    input has none), Keras 2 ANDs the masks that exist. ``Concatenate`` expands each mask
    (all true where missing) over the features, joins them on ``axis`` and reduces the
    last axis with ``any`` (Keras 3) or ``all`` (Keras 2).
    """

    op: str = "add"
    axis: int = -1
    keras_major: int = 3

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        return self.apply_many([x], [mask])

    def apply_many(self, xs: list[np.ndarray], masks: list[Mask]) -> tuple[np.ndarray, Mask]:
        if self.op == "concatenate":
            try:
                y = np.concatenate(xs, axis=self.axis)
            except ValueError as err:
                raise ValueError(f"cannot concatenate inputs {[tuple(a.shape) for a in xs]}: {err}") from None
            return y, self._concat_mask(xs, masks)
        if self.op == "subtract" and len(xs) != 2:
            raise ValueError(f"Subtract takes exactly 2 inputs, got {len(xs)}")
        try:
            y = xs[0]
            for other in xs[1:]:
                if self.op in ("add", "average"):
                    y = y + other
                elif self.op == "subtract":
                    y = y - other
                elif self.op == "multiply":
                    y = y * other
                elif self.op == "maximum":
                    y = np.maximum(y, other)
                elif self.op == "minimum":
                    y = np.minimum(y, other)
                else:
                    raise ValueError(f"unknown merge operation {self.op!r}")
        except ValueError as err:
            raise ValueError(f"cannot merge inputs {[tuple(a.shape) for a in xs]}: {err}") from None
        if self.op == "average":
            y = y / y.dtype.type(len(xs))
        return y, self._merge_mask(masks)

    def _merge_mask(self, masks: list[Mask]) -> Mask:
        present = [m for m in masks if m is not None]
        if not present:
            return None
        if self.keras_major >= 3:
            if len(present) < len(masks):
                return None
            return np.logical_or.reduce(present)
        return np.logical_and.reduce(present)

    def _concat_mask(self, xs: list[np.ndarray], masks: list[Mask]) -> Mask:
        if all(m is None for m in masks):
            return None
        expanded = []
        for x, m in zip(xs, masks, strict=True):
            if m is None:
                expanded.append(np.ones(x.shape, bool))
            elif self.keras_major >= 3:
                expanded.append(np.broadcast_to(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)), x.shape))
            else:
                expanded.append(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)))
        joined = np.concatenate(expanded, axis=self.axis)
        return joined.any(axis=-1) if self.keras_major >= 3 else joined.all(axis=-1)

    def describe(self) -> str:
        return f"{self.class_name} ({self.op})"


# ---------------------------------------------------------------------------- activation layers


@dataclass
class ReLU(UpstreamLayer):
    """Keras ``ReLU(max_value, negative_slope, threshold)``, computed as Keras computes it.

    With ``s = negative_slope``, ``θ = threshold``, ``m = max_value``::

        f(x) = min(x, m)        if x > θ          (no upper bound when m is None)
        f(x) = s · (x - θ)      if x <= θ         (0 when s = 0)

    Keras builds this in steps: ``y = x·[x > θ]`` (``relu(x)`` when θ = 0), clipped to
    ``[0, m]``, minus ``s·relu(θ - x)``; with only a slope it is ``leaky_relu``
    (``x if x > 0 else s·x``). ``LeakyReLU(negative_slope)`` (Keras 2: ``alpha``) and
    Keras 2's ``ThresholdedReLU(theta)`` (``x·[x > θ]``) are this layer too. Masks pass.
    """

    max_value: float | None = None
    negative_slope: float = 0.0
    threshold: float = 0.0

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        t = x.dtype.type
        slope, top, theta = self.negative_slope, self.max_value, self.threshold
        if slope != 0 and top is None and theta == 0:
            return np.where(x > 0, x, x * t(slope)), mask
        negative = np.maximum(t(theta) - x, t(0)) if slope != 0 else None
        y = x * (x > t(theta)).astype(x.dtype) if theta != 0 else np.maximum(x, t(0))
        if top is not None:
            y = np.clip(y, t(0), t(top))
        if negative is not None:
            y = y - t(slope) * negative
        return y, mask

    def describe(self) -> str:
        parts = [f"{k}={v:g}" for k, v in (("max_value", self.max_value),
                                          ("negative_slope", self.negative_slope),
                                          ("threshold", self.threshold)) if v]
        return f"{self.class_name} ({', '.join(parts) or 'max(x, 0)'})"


@dataclass
class PReLU(UpstreamLayer):
    """Keras ``PReLU``: ``f(x) = x if x > 0 else α·x`` with a learned ``α``.

    ``alpha`` has the input's shape without the batch axis, with 1 on each of the
    ``shared_axes`` (so it broadcasts against ``(batch, steps, features)``). Masks pass.
    """

    alpha: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        alpha = self.alpha.astype(x.dtype, copy=False)
        try:
            np.broadcast_shapes(alpha.shape, x.shape[1:])
        except ValueError:
            raise ValueError(
                f"alpha of shape {alpha.shape} does not fit input {tuple(x.shape)} "
                "(PReLU was built for another input length: give the input the model's length)"
            ) from None
        return np.where(x > 0, x, alpha * x), mask

    def describe(self) -> str:
        return f"PReLU (alpha {tuple(self.alpha.shape)})"


@dataclass
class ELU(UpstreamLayer):
    """Keras ``ELU(alpha)``: ``f(x) = x if x > 0 else α·(eˣ - 1)``. Masks pass."""

    alpha: float = 1.0

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        t = x.dtype.type
        return np.where(x > 0, x, t(self.alpha) * np.expm1(np.minimum(x, t(0)))), mask

    def describe(self) -> str:
        return f"ELU (alpha={self.alpha:g})"


@dataclass
class Softmax(UpstreamLayer):
    """Keras ``Softmax(axis)``: ``exp(x - max) / Σ exp(x - max)`` over ``axis`` (one or more).

    Keras passes an incoming mask to the layer, broadcast against the input from the last
    axis: Keras 3 sets masked logits to -1e9 and masked outputs to 0; Keras 2 adds
    ``(1 - mask)·(-1e9)`` to the logits. The mask passes on.
    """

    axis: int | tuple[int, ...] = -1
    keras_major: int = 3

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        t = x.dtype.type
        axes = tuple(a % x.ndim for a in ((self.axis,) if isinstance(self.axis, int) else self.axis))
        if 0 in axes:
            raise ValueError(f"axis={self.axis} of a {x.ndim}-D input is the batch axis")
        keep = None
        if mask is not None:
            try:
                keep = np.broadcast_to(mask, x.shape)
            except ValueError:
                raise ValueError(
                    f"the mask of shape {tuple(mask.shape)} does not broadcast to the input "
                    f"{tuple(x.shape)} (Keras cannot run this model either)"
                ) from None
            if self.keras_major >= 3:
                x = np.where(keep, x, t(-1e9))
            else:
                x = x + (t(1) - keep.astype(x.dtype)) * t(-1e9)
        shifted = x - x.max(axis=axes, keepdims=True)
        e = np.exp(shifted)
        y = e / e.sum(axis=axes, keepdims=True)
        if keep is not None and self.keras_major >= 3:
            y = np.where(keep, y, t(0))
        return y, mask

    def describe(self) -> str:
        return f"Softmax (axis={self.axis})"
