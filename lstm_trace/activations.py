"""Activation functions by name, in NumPy, matching the frameworks' definitions.

Names are canonical: a loader translates a framework's spelling (and version)
into one of :data:`ACTIVATIONS`' keys. ``hard_sigmoid`` differs between Keras
versions, so there are two names:

- ``hard_sigmoid_keras2`` = clip(0.2·x + 0.5, 0, 1)   (Keras 2, tf.keras, tf_keras)
- ``hard_sigmoid``        = clip(x/6 + 0.5, 0, 1)      (Keras 3: relu6(x + 3) / 6)

Some activations take parameters (ONNX RNN nodes' ``activation_alpha``/``_beta``); their
canonical name carries them, e.g. ``leaky_relu(alpha=0.1)`` (see :data:`PARAMETRIC` and
:func:`parametric_name`); a bare parametric name means its default parameters::

    affine(alpha, beta)            alpha·x + beta                      (1, 0)
    scaled_tanh(alpha, beta)       alpha·tanh(beta·x)                  (1, 1)
    hard_sigmoid(alpha, beta)      clip(alpha·x + beta, 0, 1)          (1/6, 0.5: Keras 3)
    leaky_relu(alpha)              x if x >= 0 else alpha·x            (0.01)
    thresholded_relu(alpha)        x if x > alpha else 0               (1)
    elu(alpha)                     x if x >= 0 else alpha·(e^x - 1)    (1)

Parameters are applied in the dtype of the input (float32 like the frameworks).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable

import numpy as np

Activation = Callable[[np.ndarray], np.ndarray]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{-x}), as 0.5·tanh(x/2) + 0.5: one ufunc pass, never overflows."""
    y = np.tanh(x * x.dtype.type(0.5))
    y *= x.dtype.type(0.5)
    y += x.dtype.type(0.5)
    return y


def hard_sigmoid_keras3(x: np.ndarray) -> np.ndarray:
    return np.clip(x / x.dtype.type(6) + x.dtype.type(0.5), 0, 1)


def hard_sigmoid_keras2(x: np.ndarray) -> np.ndarray:
    return np.clip(x * x.dtype.type(0.2) + x.dtype.type(0.5), 0, 1)


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _selu(x: np.ndarray) -> np.ndarray:
    t = x.dtype.type
    return t(_SELU_SCALE) * np.where(x > 0, x, t(_SELU_ALPHA) * np.expm1(np.minimum(x, 0)))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(x, x.dtype.type(0))


def _softsign(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.abs(x))


def _swish(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf by Abramowitz & Stegun 7.1.26 in float64 (|error| < 1.5e-7, below float32 eps)."""
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (np.sign(x) * (1.0 - poly * np.exp(-z * z))).astype(x.dtype)


def _gelu(x: np.ndarray) -> np.ndarray:
    # Keras's default gelu is the exact (erf) form.
    return x * x.dtype.type(0.5) * (1 + _erf(x / x.dtype.type(math.sqrt(2))))


def _hard_silu(x: np.ndarray) -> np.ndarray:
    return x * hard_sigmoid_keras3(x)


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 6)


def _mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(_softplus(x))


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -_softplus(-x)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid_keras3,
    "hard_sigmoid_keras2": hard_sigmoid_keras2,
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": _relu6,
    "elu": _elu,
    "selu": _selu,
    "softplus": _softplus,
    "softsign": _softsign,
    "swish": _swish,
    "silu": _swish,
    "gelu": _gelu,
    "exponential": np.exp,
    "hard_silu": _hard_silu,
    "hard_swish": _hard_silu,
    "mish": _mish,
    "log_sigmoid": _log_sigmoid,
}

def _affine(alpha: float, beta: float) -> Activation:
    def f(x: np.ndarray) -> np.ndarray:
        return x * x.dtype.type(alpha) + x.dtype.type(beta)
    return f


def _scaled_tanh(alpha: float, beta: float) -> Activation:
    def f(x: np.ndarray) -> np.ndarray:
        return x.dtype.type(alpha) * np.tanh(x * x.dtype.type(beta))
    return f


def _hard_sigmoid(alpha: float, beta: float) -> Activation:
    def f(x: np.ndarray) -> np.ndarray:
        return np.clip(x * x.dtype.type(alpha) + x.dtype.type(beta), 0, 1)
    return f


def _leaky_relu(alpha: float) -> Activation:
    def f(x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x, x * x.dtype.type(alpha))
    return f


def _thresholded_relu(alpha: float) -> Activation:
    def f(x: np.ndarray) -> np.ndarray:
        return np.where(x > x.dtype.type(alpha), x, x.dtype.type(0))
    return f


def _elu_alpha(alpha: float) -> Activation:
    def f(x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))
    return f


#: Parametric activations: name -> (parameter defaults in order, factory).
PARAMETRIC: dict[str, tuple[dict[str, float], Callable[..., Activation]]] = {
    "affine": ({"alpha": 1.0, "beta": 0.0}, _affine),
    "scaled_tanh": ({"alpha": 1.0, "beta": 1.0}, _scaled_tanh),
    "hard_sigmoid": ({"alpha": 1 / 6, "beta": 0.5}, _hard_sigmoid),
    "leaky_relu": ({"alpha": 0.01}, _leaky_relu),
    "thresholded_relu": ({"alpha": 1.0}, _thresholded_relu),
    "elu": ({"alpha": 1.0}, _elu_alpha),
}
ACTIVATIONS.setdefault("affine", lambda x: x)
ACTIVATIONS.setdefault("scaled_tanh", np.tanh)
ACTIVATIONS.setdefault("leaky_relu", _leaky_relu(0.01))
ACTIVATIONS.setdefault("thresholded_relu", _thresholded_relu(1.0))

_CALL = re.compile(r"^([a-z_0-9]+)\((.*)\)$")


def _number(value: float) -> str:
    """The shortest text that reads back to the same float32 (parameters are float32 in files)."""
    text = str(np.float32(value))
    return text[:-2] if text.endswith(".0") else text


def parametric_name(base: str, **params: float) -> str:
    """Canonical name of a parametric activation, e.g. ``leaky_relu(alpha=0.1)``.

    Every parameter of ``base`` is written, in its defined order, missing ones at their
    default; a name without parameters is returned for non-parametric activations.
    """
    if base not in PARAMETRIC:
        if params:
            raise ValueError(f"activation {base!r} takes no parameters")
        get_activation(base)
        return base
    defaults, _ = PARAMETRIC[base]
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"activation {base!r} has no parameter {', '.join(sorted(unknown))}")
    values = {**defaults, **params}
    return f"{base}({', '.join(f'{k}={_number(v)}' for k, v in values.items())})"


@functools.lru_cache(maxsize=256)
def _parametric(name: str) -> Activation:
    match = _CALL.match(name.replace(" ", ""))
    if not match or match.group(1) not in PARAMETRIC:
        raise ValueError(f"unsupported activation {name!r}")
    base, args = match.groups()
    defaults, factory = PARAMETRIC[base]
    values = dict(defaults)
    for item in filter(None, args.split(",")):
        key, _, text = item.partition("=")
        if key not in defaults:
            raise ValueError(f"activation {base!r} has no parameter {key!r}")
        try:
            values[key] = float(text)
        except ValueError:
            raise ValueError(f"activation {name!r}: {text!r} is not a number") from None
    return factory(*values.values())


#: Activations whose range is [0, 1] (plots share a 0..1 colour scale for them).
UNIT_RANGE = frozenset({"sigmoid", "hard_sigmoid", "hard_sigmoid_keras2"})


def get_activation(name: str) -> Activation:
    """Return the NumPy function for a canonical activation name (parameters in parentheses)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        if "(" in name:
            return _parametric(name)
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unsupported activation {name!r} (supported: {known})") from None


def keras_activation_name(spec: object, keras_major: int) -> str:
    """Translate a Keras config activation (string or serialized dict) to a canonical name.

    ``keras_major`` selects the ``hard_sigmoid`` definition of the Keras version that wrote
    the file. ``None`` means linear, as in Keras.
    """
    if spec is None:
        return "linear"
    if isinstance(spec, dict):
        # Keras 3 may serialize a function as {"module": ..., "class_name": "function",
        # "config": "tanh", ...}; anything else is a custom object we do not execute.
        config = spec.get("config")
        if isinstance(config, str):
            spec = config
        elif isinstance(config, dict) and isinstance(config.get("name"), str):
            spec = config["name"]
        else:
            raise ValueError(f"unsupported activation {spec!r}")
    if not isinstance(spec, str):
        raise ValueError(f"unsupported activation {spec!r}")
    name = spec.lower()
    if name == "hard_sigmoid" and keras_major < 3:
        name = "hard_sigmoid_keras2"
    get_activation(name)  # validates
    return name
