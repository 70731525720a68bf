"""The ``lstm-trace`` command line: click commands that parse, call the library, render.

``lstm-trace MODEL INPUT`` is short for ``lstm-trace trace MODEL INPUT``. Every user
error ends in one line on stderr and exit code 2 (``--debug`` shows the traceback);
``check`` exits 1 when it finds a difference.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from . import __version__
from .engine import TraceError
from .layers import LayerReplayError
from .loaders import LoadError, LoadOptions, load
from .network import Network

EXIT_DIFFERENT = 1
EXIT_USAGE = 2

#: Errors that are the user's input, not a bug: one line, exit 2.
USER_ERRORS: tuple[type[BaseException], ...] = (
    LoadError, TraceError, LayerReplayError, ValueError, OSError, KeyError,
)


class DefaultToTrace(click.Group):
    """A group whose unknown first argument means the ``trace`` command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["trace", *args]
        return super().parse_args(ctx, args)


def fail(message: str) -> None:
    """Print one error line and exit with the usage/input error code."""
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user errors into one stderr line and exit 2; ``--debug`` re-raises."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            if debug:
                raise
            message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
            fail(message.splitlines()[0] if message else type(err).__name__)
        except MemoryError:
            if debug:
                raise
            fail("out of memory: trace fewer samples, steps or layers (--layer, --steps)")
    return wrapper


def note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


# ------------------------------------------------------------------ shared options

def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options that override what a model file does not say (weights-only files, TF1)."""
    decorators = [
        click.option("--activation", help="Cell activation to assume (e.g. tanh, relu)."),
        click.option("--recurrent-activation",
                     help="Gate activation to assume (sigmoid, hard_sigmoid, hard_sigmoid_keras2...)."),
        click.option("--forget-bias", type=float,
                     help="TF1 LSTM forget_bias added at run time (default 1.0)."),
        click.option("--cell-clip", type=float, help="TF1 LSTMCell cell_clip."),
        click.option("--proj-clip", type=float, help="TF1 LSTMCell proj_clip."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="Keras model.to_json() file naming the layers of a config-less file."),
        click.option("--debug", is_flag=True, help="Show Python tracebacks for errors."),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def open_model(model: str, **kwargs: Any) -> Network:
    """Load MODEL with the override options and print the loader's notes."""
    options = LoadOptions(
        activation=kwargs.get("activation"),
        recurrent_activation=kwargs.get("recurrent_activation"),
        forget_bias=kwargs.get("forget_bias"),
        cell_clip=kwargs.get("cell_clip"),
        proj_clip=kwargs.get("proj_clip"),
        config_path=kwargs.get("config_path"),
    )
    network = load(model, options)
    for line in network.notes:
        note(line)
    return network


def trace_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options that choose what is traced and how."""
    decorators = [
        click.argument("model", type=click.Path()),
        click.argument("input", type=click.Path()),
        click.option("--layer", "layers", multiple=True,
                     help="Recurrent layer to trace (repeatable; default: all)."),
        click.option("--input-key", help="Array to use from an .npz INPUT."),
        click.option("--layer-input", is_flag=True,
                     help="INPUT is already the (first) traced layer's own input."),
        click.option("--initial-state", type=click.Path(dir_okay=False),
                     help="NPZ of initial states: <layer>/hidden, <layer>/cell."),
        click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
                     show_default=True, help="Precision of the replay."),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return model_options(fn)


def run_trace(model: str, input: str, **kwargs: Any):  # -> tuple[Network, Trace]
    """Load, read INPUT, validate it against the model, replay: the core of most commands."""
    from .inputs import read_input, validate_input

    network = open_model(model, **kwargs)
    layers = list(kwargs.get("layers") or ())
    layer_input = bool(kwargs.get("layer_input"))
    features, token_ids = expected_input(network, layers, layer_input)
    x = validate_input(
        read_input(input, key=kwargs.get("input_key")),
        features=features, integer_ids=token_ids, path=input,
    )
    initial = None
    if kwargs.get("initial_state"):
        initial = read_initial_state(kwargs["initial_state"])
    trace = network.trace(
        x, layers=layers or None, layer_input=layer_input, initial_state=initial,
        dtype=kwargs.get("dtype") or "float32",
    )
    return network, trace


def expected_input(
    network: Network, layers: list[str], layer_input: bool
) -> tuple[int | None, bool]:
    """The feature count INPUT must have (None: unknown) and whether it may be token ids."""
    chain = network.layers
    if layer_input:
        names = set(layers) if layers else {r.name for r in network.recurrent_layers}
        first = next(layer for layer in chain if layer.name in names)
        return getattr(first, "input_size", None), False
    first = chain[0] if chain else None
    if first is not None and getattr(first, "takes_token_ids", False):
        return None, True
    if network.input_shape and len(network.input_shape) >= 1 and network.input_shape[-1]:
        return int(network.input_shape[-1]), False
    if first is not None and hasattr(first, "input_size"):
        return first.input_size, False
    return None, False


def read_initial_state(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read initial states as .npz ({err})") from None


# ------------------------------------------------------------------ commands

@click.group(cls=DefaultToTrace, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lstm-trace")
def main() -> None:
    """Trace the gates and states of a trained LSTM/GRU/RNN, step by step.

    \b
      lstm-trace MODEL INPUT              same as: lstm-trace trace MODEL INPUT
      lstm-trace inspect MODEL            layers, shapes, where each gate lives
    """


FORMAT_BY_SUFFIX = {".csv": "csv", ".npz": "npz", ".json": "json", ".txt": "table"}


@main.command()
@trace_options
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "csv", "npz", "json"]),
              help="Output format (default: from -o's extension, else table).")
@click.option("-o", "--output", default="-", help="Output file ('-': stdout).")
@click.option("--units", help="Units to show/write, e.g. 0:8 or 1,5,9 (table default: 0:8).")
@click.option("--steps", help="Steps to show/write, e.g. 0:20 or 10: (table default: first 20).")
@click.option("--samples", help="Samples to show/write, e.g. 0 or 0,3 (table default: 0).")
@click.option("--summary", is_flag=True, help="Table: min/mean/max per quantity instead of values.")
@handle_errors
def trace(model: str, input: str, fmt: str | None, output: str, units: str | None,
          steps: str | None, samples: str | None, summary: bool, **kwargs: Any) -> None:
    """Trace MODEL on INPUT: every gate, cell and hidden state at every step."""
    from .selection import parse_range
    from .writers import write_trace

    if fmt is None:
        fmt = FORMAT_BY_SUFFIX.get(Path(output).suffix.lower(), "table") if output != "-" else "table"
    if fmt == "npz" and output == "-":
        raise ValueError("--format npz needs -o FILE.npz (binary output is not written to a terminal)")
    selection = {
        "units": parse_range(units) if units else None,
        "steps": parse_range(steps) if steps else None,
        "samples": parse_range(samples) if samples else None,
    }
    _, result = run_trace(model, input, **kwargs)
    options: dict[str, Any] = {"summary": summary} if fmt == "table" else {}
    write_trace(result, fmt, output, **selection, **options)
