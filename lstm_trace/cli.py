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
        click.option("--reset-after/--no-reset-after", "reset_after", default=None,
                     help="GRU variant to assume where the file does not say."),
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
        reset_after=kwargs.get("reset_after"),
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
      lstm-trace extract MODEL -o W.npz   per-gate weights (--to pytorch: state dicts)
      lstm-trace check MODEL INPUT --golden G.npz   CI regression check (exit 1 on change)
      lstm-trace plot MODEL INPUT -o gates.png      heatmaps of gates and states
      lstm-trace stats MODEL INPUT        gate saturation, most varying units
    """


def default_format(output: str) -> str:
    """From -o's extension; on stdout a table for a terminal, CSV for a pipe or file."""
    from .writers import FORMAT_BY_SUFFIX

    if output != "-":
        return FORMAT_BY_SUFFIX.get(Path(output).suffix.lower(), "table")
    return "table" if sys.stdout.isatty() else "csv"


@main.command()
@trace_options
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "csv", "npz", "json"]),
              help="Output format (default: from -o's extension; on stdout, table on a "
              "terminal and csv when piped).")
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
        fmt = default_format(output)
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


# ------------------------------------------------------------------ workflow commands
# inspect, extract, check, plot, stats: each parses its options, calls one library
# function (lstm_trace.inspect / extract / check / stats, writers.plot) and renders.


def _text_width() -> int:
    import shutil

    return max(80, shutil.get_terminal_size((120, 24)).columns)


def _echo_text(text: str, output: str = "-") -> None:
    """Print ``text`` or write it atomically to ``output``."""
    from .atomic import atomic_write

    if output == "-":
        click.echo(text, nl=False)
    else:
        with atomic_write(output, "w") as f:
            f.write(text)


@main.command("inspect")
@click.argument("model", type=click.Path())
@model_options
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Tables for reading, or JSON for scripts.")
@click.option("-o", "--output", default="-", help="Output file ('-': stdout).")
@handle_errors
def inspect_command(model: str, fmt: str, output: str, **kwargs: Any) -> None:
    """Show what is in MODEL: layers, options, parameter counts, where each gate lives.

    Every recurrent layer with its kind, units, input size, activations and options, and
    the slice of the file's fused kernel, recurrent kernel and bias that holds each gate;
    the layers before, between and after them and whether lstm-trace can replay them.
    The loader's notes (assumed defaults) go to stderr.
    """
    import json

    from .inspect import describe, render

    info = describe(open_model(model, **kwargs))
    if fmt == "json":
        _echo_text(json.dumps(info, indent=1) + "\n", output)
    else:
        _echo_text(render({**info, "notes": []}, width=_text_width()), output)


@main.command("extract")
@click.argument("model", type=click.Path())
@model_options
@click.option("-o", "--output", required=True, help="Output file (.npz, .json, .csv; '-': stdout).")
@click.option("-f", "--format", "fmt", type=click.Choice(["npz", "json", "csv"]),
              help="Output format (default: from -o's extension, else npz).")
@click.option("--to", "target", type=click.Choice(["keras", "pytorch"]), default="keras",
              show_default=True,
              help="keras: per-gate W/U/b in Keras orientation; pytorch: nn.LSTM/GRU/RNN state "
                   "dicts, keys <layer>/weight_ih_l0 ...")
@click.option("--layer", "layers", multiple=True,
              help="Recurrent layer to extract (repeatable; default: all).")
@handle_errors
def extract_command(model: str, output: str, fmt: str | None, target: str,
                    layers: tuple[str, ...], **kwargs: Any) -> None:
    """Write the weights of MODEL's recurrent layers, split by gate.

    \b
    Keys (--to keras): <layer>[/<direction>]/<gate>/kernel     (input_size, units)
                       .../recurrent_kernel (units, units), .../bias (units,)
                       GRU with two biases: .../input_bias, .../recurrent_bias
                       LSTM peepholes .../peephole, projection <layer>/projection
    Keys (--to pytorch): <layer>/weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0
                       (+ _reverse for a Bidirectional layer's backward direction);
                       the torch.nn module to load each into is printed.
    """
    from .extract import gate_weights, to_pytorch, torch_arrays, write_arrays

    if fmt is None:
        suffix = Path(output).suffix.lower()
        fmt = {".json": "json", ".csv": "csv"}.get(suffix, "npz") if output != "-" else "json"
    network = open_model(model, **kwargs)
    if target == "pytorch":
        exported = to_pytorch(network, layers)
        arrays = torch_arrays(exported)
    else:
        exported = []
        arrays = gate_weights(network, layers)
    write_arrays(arrays, fmt, output)
    if output == "-":
        return
    click.echo(f"wrote {len(arrays)} arrays to {output}")
    for layer in exported:
        click.echo(f"  {layer.name}: {layer.constructor()}")
        for line in layer.notes:
            note(line)


@main.command("check")
@trace_options
@click.option("--golden", required=True, type=click.Path(dir_okay=False),
              help="The saved trace: lstm-trace MODEL INPUT --format npz -o GOLDEN.npz.")
@click.option("--atol", type=float, default=1e-5, show_default=True,
              help="Absolute tolerance (float32 rounding is ~1e-7 per op).")
@click.option("--rtol", type=float, default=1e-4, show_default=True,
              help="Relative tolerance, times |golden|: differs if |new-golden| > atol + rtol*|golden|.")
@click.option("--keys", "key_patterns", multiple=True,
              help="Compare only keys matching this glob, e.g. 'lstm/*' (repeatable).")
@click.option("--report", type=click.Path(dir_okay=False),
              help="Also write a JUnit XML report (one test case per key) to this file.")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="How to print the comparison.")
@handle_errors
def check_command(model: str, input: str, golden: str, atol: float, rtol: float,
                  key_patterns: tuple[str, ...], report: str | None, fmt: str,
                  **kwargs: Any) -> None:
    """Re-trace MODEL on INPUT and compare every key with a golden trace (for CI).

    Exit 0 when every key matches within the tolerances, 1 when any key differs (or is
    missing on either side, or has another shape), 2 on bad input.
    """
    import json

    from .atomic import atomic_write
    from .check import compare, junit_xml, load_golden, render

    expected = load_golden(golden)
    _, result = run_trace(model, input, **kwargs)
    comparison = compare(result, expected, atol=atol, rtol=rtol, keys=key_patterns)
    if report:
        with atomic_write(report, "wb") as f:
            f.write(junit_xml(comparison, suite=f"lstm-trace check {Path(golden).name}"))
    if fmt == "json":
        click.echo(json.dumps(comparison.to_dict(), indent=1))
    else:
        click.echo(render(comparison, width=_text_width()), nl=False)
    if not comparison.equal:
        sys.exit(EXIT_DIFFERENT)


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1600x900")
    return int(parts[0]), int(parts[1])


@main.command("plot")
@trace_options
@click.option("-o", "--output", required=True, help="Image file: .png, .svg or .pdf.")
@click.option("--sample", type=int, default=0, show_default=True, help="Which sequence of INPUT to draw.")
@click.option("--units", help="Units (rows) to draw, e.g. 0:16 or 1,5,9 (default: all).")
@click.option("--vocab", type=click.Path(dir_okay=False),
              help="Token per line: x labels for token-id (or one-hot) input, or one label per step.")
@click.option("--size", help="Image size in pixels, WIDTHxHEIGHT (default: from units and steps).")
@click.option("--dpi", type=int, default=100, show_default=True, help="Resolution.")
@click.option("--title", help="A title above the panels.")
@handle_errors
def plot_command(model: str, input: str, output: str, sample: int, units: str | None,
                 vocab: str | None, size: str | None, dpi: int, title: str | None,
                 **kwargs: Any) -> None:
    """Draw heatmaps of every gate and state of MODEL on INPUT (units × steps).

    One column of panels per traced layer (and direction), one panel per quantity, so
    the steps line up; gates share a 0..1 colour scale, tanh quantities a symmetric one.
    Needs matplotlib (pip install 'lstm-trace[plot]').
    """
    from .selection import parse_range

    try:
        from .writers.plot import plot_trace, read_labels, require_matplotlib, step_labels

        require_matplotlib()
    except ImportError as err:
        fail(str(err))
        return
    unit_selection = parse_range(units) if units else None
    pixels = _parse_size(size)
    vocab_lines = read_labels(vocab) if vocab else None
    network, result = run_trace(model, input, **kwargs)
    labels = None
    if vocab_lines is not None:
        from .inputs import read_input

        x = read_input(input, key=kwargs.get("input_key"))
        if not -result.batch <= sample < result.batch:
            raise ValueError(f"--sample {sample} is out of range: the input has {result.batch} "
                             f"sample{'s' if result.batch != 1 else ''}")
        labels = step_labels(x, vocab_lines, sample % result.batch, result.steps)
    width, height = plot_trace(result, output, network=network, sample=sample,
                               units=unit_selection, labels=labels, size=pixels, dpi=dpi,
                               title=title)
    click.echo(f"wrote {output} ({width}x{height} pixels)")


@main.command("stats")
@trace_options
@click.option("--top", type=int, default=5, show_default=True,
              help="How many top-varying state units to list per layer.")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Tables for reading, or JSON for scripts.")
@click.option("-o", "--output", default="-", help="Output file ('-': stdout).")
@handle_errors
def stats_command(model: str, input: str, top: int, fmt: str, output: str, **kwargs: Any) -> None:
    """Gate statistics of MODEL on INPUT: mean and saturation of each gate, top-varying units.

    A gate is left-saturated below 0.1 and right-saturated above 0.9 (Karpathy et al.,
    2015); the state units (LSTM cell, GRU/RNN hidden) with the largest variance over
    time are listed. Masked steps are excluded.
    """
    import json

    from .stats import gate_stats, render

    if top < 0:
        raise ValueError(f"--top must be 0 or more, got {top}")
    _, result = run_trace(model, input, **kwargs)
    stats = gate_stats(result, top=top)
    if fmt == "json":
        _echo_text(json.dumps({"low": 0.1, "high": 0.9, "layers": stats}, indent=1) + "\n", output)
    else:
        _echo_text(render(stats, width=_text_width()), output)
