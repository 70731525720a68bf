"""Small random networks covering every cell kind, masks, stacking and directions, shared by
the streaming tests (the one-shot replay of such networks is framework-checked elsewhere)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lstm_trace import layers as L
from lstm_trace.network import Cell, Direction, Network, RecurrentLayer

GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}


def cell(kind: str, features: int, units: int, rng: np.random.Generator, **options) -> Cell:
    g = GATES[kind]
    state = options["projection"].shape[1] if options.get("projection") is not None else units
    extra = {}
    if kind == "gru":
        extra["recurrent_bias"] = rng.normal(0, 0.3, g * units).astype(np.float32)
    return Cell(
        kind=kind, units=units,
        kernel=rng.normal(0, 1 / np.sqrt(features), (features, g * units)).astype(np.float32),
        recurrent_kernel=rng.normal(0, 1 / np.sqrt(state), (state, g * units)).astype(np.float32),
        bias=rng.normal(0, 0.5, g * units).astype(np.float32), **extra, **options,
    )


def contractive(c: Cell) -> Cell:
    return replace(c, recurrent_kernel=c.recurrent_kernel * np.float32(0.5))


def layer(name: str, c: Cell, *, backward: Cell | None = None, reverse: bool = False) -> RecurrentLayer:
    if backward is None:
        return RecurrentLayer(name, [Direction("forward", c, reverse)])
    return RecurrentLayer(name, [Direction("forward", c), Direction("backward", backward, True)],
                          bidirectional=True)


def networks() -> dict[str, tuple[Network, np.ndarray]]:
    rng = np.random.default_rng(7)
    f = 5
    x = rng.normal(0, 1, (5, 37, f)).astype(np.float32)
    ids = rng.integers(0, 9, (5, 37))
    ids[1, 20:] = 0  # padding: masked steps across chunk borders
    ids[2, :11] = 0
    ids[3] = 0  # a sample with no used step at all
    emb = L.Embedding("emb", "Embedding", embeddings=rng.normal(0, 1, (9, f)).astype(np.float32),
                      mask_zero=True)
    proj = rng.normal(0, 0.4, (6, 3)).astype(np.float32)
    peep = {k: rng.normal(0, 0.3, 6).astype(np.float32) for k in ("input_gate", "forget_gate", "output_gate")}
    return {
        "lstm": (Network([layer("lstm", cell("lstm", f, 6, rng))]), x),
        "gru_reset_after": (Network([layer("gru", cell("gru", f, 4, rng))]), x),
        "gru_reset_before": (Network([layer("gru", cell("gru", f, 4, rng, reset_after=False))]), x),
        "simple_rnn": (Network([layer("rnn", cell("simple_rnn", f, 3, rng))]), x),
        "lstm_peephole_projection_clip": (Network([layer("lstm", cell(
            "lstm", f, 6, rng, projection=proj, peepholes=peep, cell_clip=0.8, forget_bias=1.0))]), x),
        "stacked_masked": (Network([
            emb,
            layer("lstm", cell("lstm", f, 6, rng)),
            layer("gru", cell("gru", 6, 4, rng)),
            L.Dense("dense", "Dense", kernel=rng.normal(0, 1, (4, 3)).astype(np.float32),
                    bias=np.zeros(3, np.float32), activation="tanh"),
            layer("rnn", cell("simple_rnn", 3, 2, rng)),
        ]), ids),
        "masking_zero_output": (Network([
            L.Masking("masking", "Masking", mask_value=0.0),
            RecurrentLayer("lstm", [Direction("forward", cell("lstm", f, 4, rng))],
                           zero_output_for_mask=True),
            layer("lstm_2", cell("lstm", 4, 3, rng)),
        ]), np.where(np.arange(37)[None, :, None] % 7 < 3, 0, x).astype(np.float32)),
        "bidirectional": (Network([layer("bi", cell("lstm", f, 4, rng), backward=cell("lstm", f, 4, rng)),
                                   layer("gru", cell("gru", 8, 3, rng))]), x),
        "go_backwards_masked": (Network([emb, layer("back", cell("gru", f, 4, rng), reverse=True)]), ids),
        # Reversed directions over step chunks (lstm_trace.step_chunks): bidirectional layers
        # stacked on masks, a forward layer before a bidirectional one (its input spilled),
        # go_backwards layers handing on in processing order, merge modes.
        "bidirectional_stacked_masked": (Network([
            emb,
            RecurrentLayer("bi_gru", [Direction("forward", cell("gru", f, 4, rng)),
                                      Direction("backward", cell("gru", f, 4, rng), True)],
                           bidirectional=True, merge_mode="sum", zero_output_for_mask=True),
            # Recurrent kernels halved: a contractive recurrence, so that float32 rounding
            # (chunk shapes, see test_streaming) is not amplified beyond 1e-6 over 37 steps.
            layer("bi_rnn", contractive(cell("simple_rnn", 4, 3, rng)),
                  backward=contractive(cell("simple_rnn", 4, 3, rng))),
            layer("bi_lstm", cell("lstm", 6, 2, rng), backward=cell("lstm", 6, 2, rng)),
        ]), ids),
        "forward_then_bidirectional": (Network([
            layer("lstm", cell("lstm", f, 5, rng)),
            RecurrentLayer("bi", [Direction("forward", cell("lstm", 5, 3, rng)),
                                  Direction("backward", cell("lstm", 5, 3, rng), True)],
                           bidirectional=True, merge_mode="ave"),
            L.Dense("dense", "Dense", kernel=rng.normal(0, 1, (3, 4)).astype(np.float32),
                    bias=np.zeros(4, np.float32), activation="tanh"),
            layer("gru", cell("gru", 4, 3, rng)),
        ]), x),
        "go_backwards_stack_masked": (Network([
            emb,
            layer("back", cell("lstm", f, 4, rng), reverse=True),
            layer("gru", cell("gru", 4, 3, rng)),
            RecurrentLayer("last", [Direction("forward", cell("simple_rnn", 3, 2, rng), True)],
                           return_sequences=False),
        ]), ids),
    }


NETWORKS = networks()
