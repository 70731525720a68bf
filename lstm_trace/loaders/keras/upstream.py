"""Keras configs of non-recurrent layers -> the NumPy layers of :mod:`lstm_trace.layers`.

Each converter reads one layer class's config (JSON, never code) and its weights in
``layer.get_weights()`` order, and returns a replayable layer. A configuration the
replay does not cover becomes :class:`~lstm_trace.layers.Unsupported` with the reason,
which only matters if a traced layer needs that layer's output (the user then gets one
line naming the layer and suggesting ``--layer-input``).

Importing this module registers the converters with
:func:`register_upstream` (this module).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ...activations import keras_activation_name
from ...convolution import Window
from ...layers import (
    ELU,
    Activation,
    BatchNormalization,
    Conv1D,
    ConvND,
    Dense,
    Embedding,
    Flatten,
    GlobalPooling,
    GridPadding,
    Identity,
    LayerNormalization,
    Masking,
    Merge,
    Permute,
    Pooling1D,
    PoolingND,
    PReLU,
    ReLU,
    RepeatVector,
    Reshape,
    Softmax,
    TimeDistributed,
    TimePadding1D,
    Unsupported,
    UpSampling,
    UpstreamLayer,
)
from .spec import IDENTITY_CLASSES, KerasContext, LayerSpec

#: Converters for non-recurrent layers: ``(spec, weights, ctx) -> UpstreamLayer``.
UpstreamConverter = Callable[[LayerSpec, list[np.ndarray], KerasContext], UpstreamLayer]
UPSTREAM_CONVERTERS: dict[str, UpstreamConverter] = {}


def register_upstream(*class_names: str) -> Callable[[UpstreamConverter], UpstreamConverter]:
    """Decorator: register a converter from a Keras layer config to a replayable layer."""
    def decorate(fn: UpstreamConverter) -> UpstreamConverter:
        for class_name in class_names:
            UPSTREAM_CONVERTERS[class_name] = fn
        return fn
    return decorate


def convert_upstream(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """A non-recurrent layer as a replayable layer, or :class:`Unsupported` with the reason."""
    if spec.class_name in IDENTITY_CLASSES:
        return Identity(spec.name, spec.class_name)
    converter = UPSTREAM_CONVERTERS.get(spec.class_name)
    if converter is not None:
        return converter(spec, weights, ctx)
    if spec.class_name == "Lambda":
        reason = "a Lambda layer holds code, and lstm-trace never runs code from a model file"
    else:
        reason = ("not a Keras layer lstm-trace knows (a custom layer's code is not in the file, "
                  "and lstm-trace never runs code)")
    return Unsupported(spec.name, spec.class_name, reason=reason)


#: Activations that are not elementwise and live with the layers (last-axis softmax).
_AXIS_ACTIVATIONS = ("softmax", "log_softmax")


class _Skip(Exception):
    """A configuration the replay does not cover; the message is the reason."""


def _unsupported(spec: LayerSpec, reason: str) -> Unsupported:
    return Unsupported(spec.name, spec.class_name, reason=reason, config=spec.config)


def _guard(convert):  # noqa: ANN001, ANN202 - a decorator over converters
    """Turn a converter's :class:`_Skip` (or a malformed config) into an Unsupported layer."""
    def wrapper(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
        try:
            return convert(spec, weights, ctx)
        except _Skip as why:
            return _unsupported(spec, str(why))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            return _unsupported(spec, f"unreadable config ({type(err).__name__}: {err})")
    wrapper.__doc__ = convert.__doc__
    wrapper.__name__ = convert.__name__
    return wrapper


def _weights(weights: Sequence[np.ndarray], count: int, what: str) -> list[np.ndarray]:
    if len(weights) != count:
        raise _Skip(f"expected {count} weight arrays ({what}), found {len(weights)}")
    return [np.asarray(w) for w in weights]


def _one(value: object) -> int:
    """Keras stores 1-D sizes as ``3``, ``[3]`` or ``(3,)``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise _Skip(f"expected one size, got {value}")
        value = value[0]
    return int(value)  # type: ignore[arg-type]


def _activation(config: dict, ctx: KerasContext, key: str = "activation") -> str:
    spec = config.get(key, "linear")
    name = spec.get("config") if isinstance(spec, dict) else spec
    if isinstance(name, str) and name.lower() in _AXIS_ACTIVATIONS:
        return name.lower()
    try:
        return keras_activation_name(spec, ctx.keras_major)
    except ValueError as err:
        raise _Skip(str(err)) from None


def _channels_first(config: dict) -> bool:
    fmt = config.get("data_format") or "channels_last"
    if fmt not in ("channels_last", "channels_first"):
        raise _Skip(f"data_format {fmt!r}")
    return fmt == "channels_first"


def _axis(value: object) -> int | tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(int(a) for a in value)
    return int(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- converters


@register_upstream("Embedding")
@_guard
def embedding(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``Embedding(input_dim, output_dim, mask_zero)``: weights ``[embeddings]``."""
    (table,) = _weights(weights, 1, "embeddings")
    if table.ndim != 2:
        raise _Skip(f"embeddings of shape {table.shape} (quantized or custom)")
    return Embedding(spec.name, spec.class_name, embeddings=table,
                     mask_zero=bool(spec.config.get("mask_zero", False)))


@register_upstream("Masking")
@_guard
def masking(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    value = spec.config.get("mask_value", 0.0)
    if not isinstance(value, (int, float)):
        raise _Skip(f"mask_value {value!r} is not a number")
    return Masking(spec.name, spec.class_name, mask_value=float(value))


@register_upstream("Dense")
@_guard
def dense(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``Dense(units, activation, use_bias)``: weights ``[kernel, bias?]``."""
    use_bias = spec.config.get("use_bias", True)
    ws = _weights(weights, 2 if use_bias else 1, "kernel, bias" if use_bias else "kernel")
    if ws[0].ndim != 2:
        raise _Skip(f"kernel of shape {ws[0].shape} (quantized or LoRA layers are not replayed)")
    return Dense(spec.name, spec.class_name, kernel=ws[0], bias=ws[1] if use_bias else None,
                 activation=_activation(spec.config, ctx))


@register_upstream("Activation")
@_guard
def activation(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    return Activation(spec.name, spec.class_name, activation=_activation(spec.config, ctx))


@register_upstream("BatchNormalization")
@_guard
def batch_normalization(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """Weights ``[gamma?, beta?, moving_mean, moving_variance]`` (``scale``, ``center``)."""
    cfg = spec.config
    if cfg.get("renorm"):
        raise _Skip("renorm=True is not replayed")
    scale, center = cfg.get("scale", True), cfg.get("center", True)
    count = int(scale) + int(center) + 2
    ws = _weights(weights, count, "gamma, beta, moving_mean, moving_variance")
    gamma = ws.pop(0) if scale else None
    beta = ws.pop(0) if center else None
    return BatchNormalization(
        spec.name, spec.class_name, moving_mean=ws[0], moving_variance=ws[1], gamma=gamma,
        beta=beta, axis=_axis(cfg.get("axis", -1)), epsilon=float(cfg.get("epsilon", 1e-3)),
    )


@register_upstream("LayerNormalization")
@_guard
def layer_normalization(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """Weights ``[gamma?, beta?]`` (``scale``, ``center``); Keras 3 ``rms_scaling``."""
    cfg = spec.config
    scale, center = cfg.get("scale", True), cfg.get("center", True)
    ws = _weights(weights, int(scale) + int(center), "gamma, beta")
    gamma = ws.pop(0) if scale else None
    beta = ws.pop(0) if center else None
    return LayerNormalization(
        spec.name, spec.class_name, gamma=gamma, beta=beta, axis=_axis(cfg.get("axis", -1)),
        epsilon=float(cfg.get("epsilon", 1e-3)), rms_scaling=bool(cfg.get("rms_scaling", False)),
    )


@register_upstream("Conv1D", "Convolution1D")
@_guard
def conv1d(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``Conv1D``: weights ``[kernel (width, channels/groups, filters), bias?]``."""
    cfg = spec.config
    use_bias = cfg.get("use_bias", True)
    ws = _weights(weights, 2 if use_bias else 1, "kernel, bias" if use_bias else "kernel")
    if ws[0].ndim != 3:
        raise _Skip(f"kernel of shape {ws[0].shape}")
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same", "causal"):
        raise _Skip(f"padding {padding!r}")
    groups = int(cfg.get("groups", 1) or 1)
    if ws[0].shape[2] % groups:
        raise _Skip(f"{ws[0].shape[2]} filters do not split into {groups} groups")
    strides, dilation = _one(cfg.get("strides", 1)), _one(cfg.get("dilation_rate", 1))
    if strides > 1 and dilation > 1:
        raise _Skip("strides > 1 together with dilation_rate > 1")
    return Conv1D(
        spec.name, spec.class_name, kernel=ws[0], bias=ws[1] if use_bias else None,
        strides=strides, padding=padding, dilation_rate=dilation, groups=groups,
        activation=_activation(cfg, ctx), channels_first=_channels_first(cfg),
    )


@register_upstream("MaxPooling1D", "MaxPool1D", "AveragePooling1D", "AvgPool1D")
@_guard
def pooling1d(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    cfg = spec.config
    pool = _one(cfg.get("pool_size", 2))
    strides = cfg.get("strides")
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise _Skip(f"padding {padding!r}")
    mode = "max" if spec.class_name.startswith("Max") else "average"
    return Pooling1D(spec.name, spec.class_name, mode=mode, pool_size=pool,
                     strides=pool if strides is None else _one(strides), padding=padding,
                     channels_first=_channels_first(cfg))


def _per_axis(cfg: dict, key: str, rank: int, default: int) -> tuple[int, ...]:
    value = cfg.get(key, default)
    if value is None:
        return ()
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank or not all(isinstance(v, int) and v >= 1 for v in values):
        raise _Skip(f"{key} {value!r}")
    return values


@register_upstream("Conv2D", "Convolution2D", "Conv3D", "Convolution3D")
@_guard
def conv_nd(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``Conv2D``/``Conv3D``: weights ``[kernel (*kernel_size, channels/groups, filters), bias?]``."""
    cfg = spec.config
    rank = 3 if "3D" in spec.class_name else 2
    use_bias = cfg.get("use_bias", True)
    ws = _weights(weights, 2 if use_bias else 1, "kernel, bias" if use_bias else "kernel")
    if ws[0].ndim != rank + 2:
        raise _Skip(f"kernel of shape {ws[0].shape}")
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise _Skip(f"padding {padding!r}")
    groups = int(cfg.get("groups", 1) or 1)
    if ws[0].shape[-1] % groups:
        raise _Skip(f"{ws[0].shape[-1]} filters do not split into {groups} groups")
    strides = _per_axis(cfg, "strides", rank, 1)
    dilation = _per_axis(cfg, "dilation_rate", rank, 1)
    if any(s > 1 for s in strides) and any(d > 1 for d in dilation):
        raise _Skip("strides > 1 together with dilation_rate > 1")
    window = Window(tuple(ws[0].shape[:rank]), strides, dilation, padding)
    return ConvND(spec.name, spec.class_name, kernel=ws[0], bias=ws[1] if use_bias else None,
                  window=window, groups=groups, activation=_activation(cfg, ctx),
                  channels_first=_channels_first(cfg))


@register_upstream("MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D",
                   "MaxPooling3D", "MaxPool3D", "AveragePooling3D", "AvgPool3D")
@_guard
def pooling_nd(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    cfg = spec.config
    rank = 3 if "3D" in spec.class_name else 2
    pool_size = _per_axis(cfg, "pool_size", rank, 2)
    strides = _per_axis(cfg, "strides", rank, 1) if cfg.get("strides") is not None else pool_size
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise _Skip(f"padding {padding!r}")
    mode = "max" if spec.class_name.startswith("Max") else "average"
    return PoolingND(spec.name, spec.class_name, mode=mode,
                     window=Window(pool_size, strides, (1,) * rank, padding),
                     channels_first=_channels_first(cfg))


def _pairs(cfg: dict, key: str, rank: int) -> tuple[tuple[int, int], ...]:
    """Keras's padding / cropping forms: an int, one int per axis, or (before, after) per axis."""
    value = cfg.get(key, 1)
    if isinstance(value, int):
        value = [value] * rank
    value = list(value)
    pairs = [(v, v) if isinstance(v, int) else tuple(v) for v in value]
    if len(pairs) != rank or not all(len(p) == 2 and all(isinstance(n, int) and n >= 0 for n in p)
                                     for p in pairs):
        raise _Skip(f"{key} {cfg.get(key)!r}")
    return tuple((int(a), int(b)) for a, b in pairs)


@register_upstream("ZeroPadding2D", "ZeroPadding3D", "Cropping2D", "Cropping3D")
@_guard
def grid_padding(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    crop = spec.class_name.startswith("Cropping")
    rank = 3 if spec.class_name.endswith("3D") else 2
    amounts = _pairs(spec.config, "cropping" if crop else "padding", rank)
    return GridPadding(spec.name, spec.class_name, amounts=amounts, crop=crop,
                       channels_first=_channels_first(spec.config))


@register_upstream("UpSampling1D", "UpSampling2D", "UpSampling3D")
@_guard
def up_sampling(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    cfg = spec.config
    rank = int(spec.class_name[-2])
    if str(cfg.get("interpolation", "nearest")).lower() != "nearest":
        raise _Skip(f"interpolation {cfg.get('interpolation')!r}")
    size = _per_axis(cfg, "size", rank, 2) if rank > 1 else (_one(cfg.get("size", 2)),)
    return UpSampling(spec.name, spec.class_name, size=size, channels_first=_channels_first(cfg))


@register_upstream("GlobalAveragePooling1D", "GlobalAvgPool1D", "GlobalMaxPooling1D", "GlobalMaxPool1D",
                   "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D", "GlobalMaxPool2D",
                   "GlobalAveragePooling3D", "GlobalAvgPool3D", "GlobalMaxPooling3D", "GlobalMaxPool3D")
@_guard
def global_pooling(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    mode = "max" if "Max" in spec.class_name else "average"
    return GlobalPooling(spec.name, spec.class_name, mode=mode, rank=int(spec.class_name[-2]),
                         keepdims=bool(spec.config.get("keepdims", False)),
                         channels_first=_channels_first(spec.config))


@register_upstream("Flatten")
@_guard
def flatten(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    return Flatten(spec.name, spec.class_name, channels_first=_channels_first(spec.config))


@register_upstream("ZeroPadding1D", "Cropping1D")
@_guard
def time_padding1d(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``padding`` / ``cropping``: an int (both ends) or a pair ``(before, after)``."""
    crop = spec.class_name == "Cropping1D"
    amount = spec.config.get("cropping" if crop else "padding", 1)
    pair = [amount, amount] if isinstance(amount, int) else list(amount)
    if len(pair) != 2 or not all(isinstance(n, int) and n >= 0 for n in pair):
        raise _Skip(f"{'cropping' if crop else 'padding'} {amount!r}")
    if _channels_first(spec.config):
        raise _Skip("data_format channels_first")
    return TimePadding1D(spec.name, spec.class_name, before=pair[0], after=pair[1], crop=crop)


@register_upstream("Reshape")
@_guard
def reshape(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    return Reshape(spec.name, spec.class_name,
                   target_shape=tuple(int(d) for d in spec.config["target_shape"]))


@register_upstream("Permute")
@_guard
def permute(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    dims = tuple(int(d) for d in spec.config["dims"])
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise _Skip(f"dims {dims} is not a permutation of 1..{len(dims)}")
    return Permute(spec.name, spec.class_name, dims=dims)


@register_upstream("RepeatVector")
@_guard
def repeat_vector(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    return RepeatVector(spec.name, spec.class_name, n=int(spec.config["n"]))


@register_upstream("TimeDistributed")
@_guard
def time_distributed(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``TimeDistributed(layer)``: the inner layer's converter, applied step by step."""
    inner_cfg = spec.config["layer"]
    inner_spec = LayerSpec(inner_cfg.get("config", {}).get("name", f"{spec.name}/layer"),
                           inner_cfg["class_name"], inner_cfg.get("config", {}))
    inner = convert_upstream(inner_spec, list(weights), ctx)
    if not inner.replayable:
        raise _Skip(f"its inner {inner_spec.class_name} cannot be replayed "
                    f"({getattr(inner, 'reason', '')})")
    return TimeDistributed(spec.name, spec.class_name, inner=inner)


_MERGE_OPS = {
    "Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Average": "average",
    "Maximum": "maximum", "Minimum": "minimum", "Concatenate": "concatenate",
}


@register_upstream(*_MERGE_OPS)
@_guard
def merge(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    return Merge(spec.name, spec.class_name, op=_MERGE_OPS[spec.class_name],
                 axis=int(spec.config.get("axis", -1)), keras_major=ctx.keras_major)


@register_upstream("Identity")
def identity(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    return Identity(spec.name, spec.class_name)


# ---------------------------------------------------------------------------- activation layers


def _number(config: dict, key: str, default: float | None, *, minimum: float | None = 0.0) -> float | None:
    """A float option of an activation layer (``None`` stays ``None`` when allowed)."""
    value = config.get(key, default)
    if value is None:
        if default is None:
            return None
        raise _Skip(f"{key}=None")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise _Skip(f"{key}={value!r} is not a number")
    if minimum is not None and value < minimum:
        raise _Skip(f"{key}={value!r} is below {minimum} (Keras refuses it too)")
    return float(value)


@register_upstream("ReLU")
@_guard
def relu(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``ReLU(max_value=None, negative_slope=0, threshold=0)`` (Keras 2 and 3 alike)."""
    cfg = spec.config
    return ReLU(spec.name, spec.class_name,
                max_value=_number(cfg, "max_value", None),
                negative_slope=_number(cfg, "negative_slope", 0.0),
                threshold=_number(cfg, "threshold", 0.0))


@register_upstream("LeakyReLU")
@_guard
def leaky_relu(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``LeakyReLU(negative_slope=0.3)``; Keras 2 (and old Keras 3 files) call it ``alpha``."""
    key = "negative_slope" if "negative_slope" in spec.config else "alpha"
    return ReLU(spec.name, spec.class_name, negative_slope=_number(spec.config, key, 0.3))


@register_upstream("ThresholdedReLU")
@_guard
def thresholded_relu(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """Keras 2 ``ThresholdedReLU(theta=1)``: ``x·[x > θ]``."""
    return ReLU(spec.name, spec.class_name, threshold=_number(spec.config, "theta", 1.0))


@register_upstream("PReLU")
@_guard
def prelu(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``PReLU(shared_axes)``: weights ``[alpha]``, the input shape with 1 on shared axes."""
    (alpha,) = _weights(weights, 1, "alpha")
    if alpha.dtype.kind != "f":
        raise _Skip(f"alpha of dtype {alpha.dtype}")
    return PReLU(spec.name, spec.class_name, alpha=alpha)


@register_upstream("ELU")
@_guard
def elu(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``ELU(alpha=1)``."""
    return ELU(spec.name, spec.class_name, alpha=_number(spec.config, "alpha", 1.0, minimum=None))


@register_upstream("Softmax")
@_guard
def softmax(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
    """``Softmax(axis=-1)``; ``axis`` may be a list (a joint softmax over those axes)."""
    axis = _axis(spec.config.get("axis", -1))
    if axis == 0 or (isinstance(axis, tuple) and (not axis or 0 in axis)):
        raise _Skip(f"axis={axis} includes the batch axis")
    return Softmax(spec.name, spec.class_name, axis=axis, keras_major=ctx.keras_major)


# ---------------------------------------------------------------------------- not replayed

_NOT_YET = "lstm-trace does not replay this layer class yet; see docs/keras-layers.md for the replayed ones"
#: Keras layer classes that are not replayed, by why; ``inspect`` and the error say it.
NOT_REPLAYED: dict[str, tuple[str, ...]] = {
    "an attention layer: not replayed in NumPy": (
        "Attention", "AdditiveAttention", "MultiHeadAttention", "GroupedQueryAttention",
        "GroupQueryAttention"),
    "a preprocessing layer works on raw data: give INPUT preprocessed, with --layer-input": (
        "TextVectorization", "StringLookup", "IntegerLookup", "Hashing", "HashedCrossing",
        "CategoryEncoding", "Discretization", "Normalization", "Rescaling", "Resizing",
        "CenterCrop", "MelSpectrogram", "STFTSpectrogram"),
    "a layer active only in training (augmentation), whose inference mode is not replayed": (
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomCrop", "RandomTranslation",
        "RandomContrast", "RandomBrightness"),
    _NOT_YET: (
        "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D",
        "GroupNormalization", "UnitNormalization", "SpectralNormalization", "Dot",
        "EinsumDense", "Wrapper"),
}


def _not_replayed(reason: str):  # noqa: ANN202 - builds one converter per reason
    def convert(spec: LayerSpec, weights: list[np.ndarray], ctx: KerasContext) -> UpstreamLayer:
        return _unsupported(spec, reason)
    return convert


for _reason, _classes in NOT_REPLAYED.items():
    register_upstream(*_classes)(_not_replayed(_reason))
