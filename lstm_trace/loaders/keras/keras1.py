"""Keras 1.x files: their layer configs and recurrent weight layouts, as Keras 2 ones.

Keras 1 (2015-2017) wrote the same ``.h5`` containers as Keras 2 (``model_config`` plus
``model_weights/<layer>``, or ``layer_names`` for ``save_weights``), but with its own layer
configs and weights. This module turns both into the Keras 2 form the rest of the Keras
loaders read, so nothing downstream knows Keras 1 existed:

- configs: ``output_dim`` -> ``units``, ``inner_activation`` -> ``recurrent_activation``
  (default ``hard_sigmoid``, i.e. clip(0.2·x + 0.5, 0, 1) in Keras 1), always a bias, a GRU
  with the reset gate applied before the recurrent matmul (``reset_after=False``); Dense's
  ``output_dim``/``bias`` -> ``units``/``use_bias``.
- weights: per-gate matrices fused into ``[kernel, recurrent_kernel, bias]``. The layouts
  (Keras 1.0-1.2 ``keras/layers/recurrent.py``; converted the same way by Keras 2's
  ``preprocess_weights_for_loading``):

  ======================  ===================================================================
  LSTM, consume_less      12 arrays ``W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o,
  'cpu'/'mem' (default)   b_o`` (note: c before f) -> kernel ``[W_i | W_f | W_c | W_o]``
  LSTM, 'gpu' (1.1+)      3 arrays ``W, U, b`` already fused in Keras 2 order ``i, f, c, o``
  GRU                     9 arrays ``W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h``, or 3
                          fused ``z, r, h`` with 'gpu'
  SimpleRNN               3 arrays ``W, U, b``
  ======================  ===================================================================

  with ``W`` ``(inputs, units)``, ``U`` ``(units, units)``, ``b`` ``(units,)`` per gate.
  Weight names are ``<layer>_W_i`` (Theano) or ``<layer>_W_i:0`` (TensorFlow backend);
  a Bidirectional's are ``forward_<layer>_...`` then ``backward_<layer>_...``.

The Keras 1 equations (what the fused weights then compute, in canonical names)::

    LSTM  i = σ(x W_i + h U_i + b_i)   f = σ(x W_f + h U_f + b_f)   g = φ(x W_c + h U_c + b_c)
          c' = f ⊙ c + i ⊙ g           o = σ(x W_o + h U_o + b_o)   h' = o ⊙ φ(c')
    GRU   z = σ(x W_z + h U_z + b_z)   r = σ(x W_r + h U_r + b_r)
          h̃ = φ(x W_h + b_h + (r ⊙ h) U_h)                          h' = z ⊙ h + (1 - z) ⊙ h̃

with σ = ``inner_activation``, φ = ``activation``: exactly Keras 2's LSTM and
``GRU(reset_after=False)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ...gates import GATE_ORDERS, LAYOUTS
from ..errors import LoadError
from .spec import LayerSpec, WeightSource

#: Keras 1 recurrent layer classes and their cell kind.
KERAS1_RNN_KINDS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn"}

#: Number of separate (not fused) arrays of a Keras 1 layer, by kind: W, U, b per gate.
SEPARATE_COUNT = {kind: 3 * len(GATE_ORDERS[LAYOUTS["keras1"][kind]]) for kind in ("lstm", "gru")}

#: A Keras 1 weight name: ``lstm_1_W_i``, ``gru_1_U_z:0``, ``simplernn_1_b``, ``dense_1_W``.
_KERAS1_WEIGHT_NAME = re.compile(r"^[^/]*_(W|U|b)(_[a-z])?(:\d+)?$")


def is_keras1_config(config: dict) -> bool:
    """A recurrent (or Dense) layer config written by Keras 1: ``output_dim``, no ``units``."""
    return isinstance(config, dict) and "output_dim" in config and "units" not in config


def keras1_cell_config(config: dict, kind: str = "lstm") -> dict:
    """A Keras 1 LSTM/GRU/SimpleRNN config with the Keras 2 keys ``make_cell`` reads.

    ``output_dim`` -> ``units``; ``inner_activation`` (default ``hard_sigmoid``) ->
    ``recurrent_activation``; ``use_bias=True`` (Keras 1 layers always had a bias); a GRU
    gets ``reset_after=False`` (Keras 1 applied the reset gate to ``h`` before ``U_h``).
    Other keys (``go_backwards``, ``return_sequences``, ``stateful``...) keep their meaning.
    """
    if not is_keras1_config(config):
        return config
    out = {k: v for k, v in config.items() if k not in ("output_dim", "inner_activation")}
    out["units"] = int(config["output_dim"])
    out.setdefault("activation", "tanh")
    if kind != "simple_rnn":
        out["recurrent_activation"] = config.get("inner_activation", "hard_sigmoid")
    out["use_bias"] = True
    if kind == "gru":
        out["reset_after"] = False
    return out


def keras1_layer_config(class_name: str, config: dict) -> dict:
    """Any Keras 1 layer config in Keras 2 terms (recurrent layers, wrappers, Dense)."""
    if not isinstance(config, dict):
        return config
    if class_name in KERAS1_RNN_KINDS:
        return keras1_cell_config(config, KERAS1_RNN_KINDS[class_name])
    if class_name in ("Bidirectional", "TimeDistributed") and isinstance(config.get("layer"), dict):
        inner = config["layer"]
        return {**config, "layer": {
            **inner, "config": keras1_layer_config(inner.get("class_name", ""), inner.get("config", {})),
        }}
    if class_name == "Dense" and is_keras1_config(config):
        out = {k: v for k, v in config.items() if k not in ("output_dim", "bias")}
        out["units"] = int(config["output_dim"])
        out["use_bias"] = bool(config.get("bias", True))
        return out
    return config


def keras1_rnn_weights(kind: str, arrays: Sequence[np.ndarray], where: str = "layer") -> list[np.ndarray]:
    """A Keras 1 recurrent layer's weight list as Keras 2 ``[kernel, recurrent_kernel, bias]``.

    12 (LSTM) or 9 (GRU) separate per-gate arrays are fused in Keras 2 gate order;
    3 arrays (SimpleRNN, or LSTM/GRU saved with ``consume_less='gpu'``) already are.
    """
    arrays = [np.asarray(a) for a in arrays]
    if len(arrays) == 3:
        return arrays
    if kind not in SEPARATE_COUNT or len(arrays) != SEPARATE_COUNT[kind]:
        raise LoadError(
            f"{where}: a Keras 1 {kind} layer has 3 weight arrays (fused) or "
            f"{SEPARATE_COUNT.get(kind, 3)} (one W, U, b per gate); found {len(arrays)}"
        )
    stored = GATE_ORDERS[LAYOUTS["keras1"][kind]]
    per_gate = {gate: arrays[3 * k:3 * k + 3] for k, gate in enumerate(stored)}
    units = per_gate[stored[0]][1].shape[-1]
    for gate, (w, u, b) in per_gate.items():
        if w.ndim != 2 or u.shape != (units, units) or b.shape != (units,) or w.shape[1] != units:
            raise LoadError(
                f"{where}: Keras 1 {kind} gate {gate!r} has W {w.shape}, U {u.shape}, b {b.shape}; "
                f"expected (inputs, {units}), ({units}, {units}), ({units},)"
            )
    order = GATE_ORDERS[LAYOUTS["keras"][kind]]
    return [np.concatenate([per_gate[g][part] for g in order], axis=-1) for part in range(3)]


def keras1_layer_weights(spec: LayerSpec, arrays: Sequence[np.ndarray], where: str) -> list[np.ndarray]:
    """A layer's weights in Keras 2 order: recurrent layers fused, Bidirectional per half."""
    label = f"{where}: layer {spec.name!r}"
    if spec.class_name in KERAS1_RNN_KINDS:
        return keras1_rnn_weights(KERAS1_RNN_KINDS[spec.class_name], arrays, label)
    if spec.class_name == "Bidirectional":
        inner = spec.config.get("layer", {})
        kind = KERAS1_RNN_KINDS.get(inner.get("class_name", ""))
        if kind is None or len(arrays) % 2:
            return list(arrays)
        # Keras 1's Bidirectional stores forward_layer.weights then backward_layer.weights,
        # two copies of one layer class, so each half is one direction.
        half = len(arrays) // 2
        return (keras1_rnn_weights(kind, arrays[:half], f"{label} forward")
                + keras1_rnn_weights(kind, arrays[half:], f"{label} backward"))
    return list(arrays)


def looks_keras1(specs: Sequence[LayerSpec]) -> bool:
    """True if any recurrent layer (or its wrapped layer) of a config uses Keras 1 keys."""
    for spec in specs:
        config = spec.config
        if spec.class_name in ("Bidirectional", "TimeDistributed") and isinstance(config.get("layer"), dict):
            config = config["layer"].get("config", {})
        if is_keras1_config(config) and ("inner_activation" in config or "consume_less" in config
                                         or spec.class_name in KERAS1_RNN_KINDS
                                         or spec.class_name == "Bidirectional"):
            return True
    return False


def keras1_specs(specs: Sequence[LayerSpec]) -> list[LayerSpec]:
    """The specs of a Keras 1 model config with every layer config in Keras 2 terms."""
    for spec in specs:
        spec.config = keras1_layer_config(spec.class_name, spec.config)
    return list(specs)


class Keras1WeightSource:
    """Wraps a weight source of a Keras 1 file: recurrent weights come out fused, Keras 2 style."""

    def __init__(self, inner: WeightSource, where: str):
        self.inner = inner
        self.where = where

    def layer_weights(self, spec: LayerSpec) -> list[np.ndarray]:
        return keras1_layer_weights(spec, self.inner.layer_weights(spec), self.where)


def adapt_keras1(
    specs: list[LayerSpec], source: WeightSource, major: int, where: str
) -> tuple[list[LayerSpec], WeightSource, int]:
    """The hook of the config-reading loaders: a Keras 1 file's specs and weights in Keras 2 terms.

    A file is Keras 1 if its ``keras_version`` says so or, since Keras 1.0 wrote no version,
    if its config uses Keras 1 keys (``output_dim`` + ``inner_activation``...). Returns the
    inputs unchanged otherwise; the returned major version selects ``hard_sigmoid``'s slope.
    """
    if major != 1 and not looks_keras1(specs):
        return specs, source, major
    return keras1_specs(specs), Keras1WeightSource(source, where), 1


def is_keras1_weight_names(names: Sequence[str]) -> bool:
    """Weight names in Keras 1 style (``lstm_1_W_i``, ``dense_1_b:0``), none Keras 2 style."""
    return bool(names) and all(_KERAS1_WEIGHT_NAME.match(n) for n in names)


def keras1_weight_arrays(arrays: Sequence[np.ndarray]) -> list[np.ndarray] | None:
    """A weights-only Keras 1 layer's arrays fused Keras 2 style, or None if not recurrent.

    The kind comes from the count: 12 per-gate arrays are an LSTM, 9 a GRU (checked by
    shape: ``W (in, u)``, ``U (u, u)``, ``b (u,)`` per gate). A Bidirectional holds two such
    sets; each is fused on its own. 3 arrays are left as they are (fused already).
    """
    arrays = [np.asarray(a) for a in arrays]
    for kind, count in SEPARATE_COUNT.items():
        for copies in (1, 2):
            if len(arrays) != count * copies:
                continue
            try:
                fused: list[np.ndarray] = []
                for k in range(copies):
                    fused += keras1_rnn_weights(kind, arrays[k * count:(k + 1) * count])
                return fused
            except LoadError:
                continue
    return None


def is_keras1_embedding(layer: str, names: Sequence[str], arrays: Sequence[np.ndarray]) -> bool:
    """A Keras 1 ``Embedding`` in a weights-only file: layer ``embedding_<k>``, one 2-D ``W``."""
    return (len(arrays) == 1 and np.ndim(arrays[0]) == 2 and len(names) == 1
            and layer.startswith("embedding") and bool(re.search(r"_W(:\d+)?$", names[0])))
