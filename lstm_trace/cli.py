"""The ``lstm-trace`` command line: click commands that parse, call the library, render.

``lstm-trace MODEL INPUT`` is short for ``lstm-trace trace MODEL INPUT``.

Exit codes (DESIGN.md): 0 success; 1 ``check`` found a difference; 2 bad usage or bad
input (one ``error:`` line on stderr); 3 a bug in lstm-trace (one line saying so, with the
exception; ``--debug`` shows the traceback); 130 interrupted (Ctrl-C or SIGTERM; output
files are written atomically, so none is left half-written); 141 (128 + SIGPIPE, what a
Unix tool killed by a closed pipe reports) when the reader of stdout went away, silently.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np

from . import __version__
from .atomic import OutputError
from .engine import TraceError
from .errors import OptionError
from .extract import ExportError
from .inputs import InputError
from .layers import LayerReplayError
from .loaders import LoadError, LoadOptions, hdf5_guard, load
from .network import Network
from .trace import require_one_step_count

EXIT_DIFFERENT = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE: the status a shell shows for a tool that a closed pipe ended.
EXIT_BROKEN_PIPE = 128 + 13

#: Errors that are the user's input or options, not a bug: one line, exit 2.
USER_ERRORS: tuple[type[BaseException], ...] = (
    LoadError, InputError, TraceError, LayerReplayError, ExportError, OptionError,
)
#: OS errors about the user's own files and disks (missing file, permission, disk full):
#: exit 2. Any other OSError escaping a command is a bug (exit 3).
USER_ERRNOS = frozenset({
    errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EISDIR,
    errno.ENOTDIR, errno.EROFS, errno.ENAMETOOLONG, errno.EFBIG, errno.ELOOP, errno.EEXIST,
    errno.EIO, errno.EMFILE, errno.ENFILE, errno.ETXTBSY, errno.EBUSY,
})


class DefaultToTrace(click.Group):
    """A group whose unknown first argument means the ``trace`` command.

    Usage errors (a missing argument, an unknown option, a value not among a choice) are
    one ``error:`` line too, exit 2, with the command's ``--help`` to see the usage.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["trace", *args]
        return super().parse_args(ctx, args)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            with hdf5_guard.enabled():  # the command's process: HDF5 files get a first read in a child
                result = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as err:
            if type(err).__name__ == "NoArgsIsHelpError":  # bare `lstm-trace`: the help, as click does
                err.show()
                sys.exit(err.exit_code)
            where = f" (see '{err.ctx.command_path} --help')" if getattr(err, "ctx", None) else ""
            click.echo(f"error: {err.format_message()}{where}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(result if isinstance(result, int) else 0)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (``timeout``, a cancelled CI job): handled exactly like Ctrl-C."""


def fail(message: str) -> None:
    """Print one error line and exit with the usage/input error code."""
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


#: Longest error message printed (the ``error: `` prefix not counted): a safety net for
#: messages that echo file content; messages are written to be far shorter (and an
#: option's full list of valid values fits).
MAX_ERROR_CHARS = 1000


def first_line(err: BaseException) -> str:
    """The one line a user sees for ``err``: its message's first line, else its type."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        message = f"{os.fsdecode(err.filename)}: {err.strerror}"
    elif isinstance(err, KeyError) and err.args:
        message = str(err.args[0])
    else:
        message = str(err)
    lines = message.strip().splitlines()
    line = lines[0] if lines else type(err).__name__
    # A message that echoes file content (a name, a list) can be huge: keep both ends.
    return line if len(line) <= MAX_ERROR_CHARS else f"{line[:700]} ... {line[-250:]}"


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is the user's input, options or environment (exit 2), not a bug."""
    if isinstance(err, USER_ERRORS):
        return True
    if isinstance(err, OSError):
        return isinstance(err, OutputError) or err.errno in USER_ERRNOS
    return False


def is_broken_pipe(err: BaseException) -> bool:
    """Whether ``err`` says the reader of our output went away (EPIPE).

    Python raises ``BrokenPipeError``; writers implemented in Rust (polars) raise a plain
    ``OSError("Broken pipe (os error 32)")`` without ``errno``.
    """
    if isinstance(err, BrokenPipeError):
        return True
    if not isinstance(err, OSError):
        return False
    return err.errno == errno.EPIPE or (
        err.errno is None and f"os error {errno.EPIPE})" in str(err)
    )


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. click's CliRunner)
        pass


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the clean-up run
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (like Ctrl-C's KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The error boundary of every command (see the module docstring for the exit codes).

    User errors: one ``error:`` line, exit 2. A closed stdout pipe: exit 141 quietly.
    Ctrl-C / SIGTERM: exit 130. Anything else is a bug: one line saying so, exit 3.
    ``--debug`` re-raises errors so Python prints the traceback.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False)
        try:
            with sigterm_as_interrupt(), warnings.catch_warnings():
                if not debug:
                    # NumPy's overflow warnings (an input of 1e38, a diverging cell) are two
                    # lines of source code on stderr; the trace itself shows the inf/nan.
                    warnings.simplefilter("ignore", RuntimeWarning)
                return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt as err:
            with contextlib.suppress(Exception):
                click.echo("interrupted" + (" (SIGTERM)" if isinstance(err, Terminated) else ""),
                           err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as err:
            if is_broken_pipe(err):
                _silence_stdout()
                sys.exit(EXIT_BROKEN_PIPE)
            if debug:
                raise
            if isinstance(err, MemoryError):
                fail("out of memory: trace fewer samples, steps or layers (--layer, --steps)")
            if is_user_error(err):
                fail(first_line(err))
            message = first_line(err)
            if len(message) > 300:
                message = message[:300] + "..."
            click.echo(
                f"error: this is a bug in lstm-trace ({type(err).__name__}: {message}); "
                "run with --debug for the traceback and please report it", err=True,
            )
            sys.exit(EXIT_BUG)
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
    for option, value in (("--activation", options.activation),
                          ("--recurrent-activation", options.recurrent_activation)):
        check_activation(option, value)
    try:
        network = load(model, options)
    except LoadError as err:
        raise as_typed(err, model) from err
    for line in network.notes:
        note(line)
    return network


def as_typed(err: LoadError, model: str) -> LoadError:
    """The loader's error with MODEL named as the user typed it, not by its file name."""
    message, name = str(err), Path(model).name
    if model != name and message.startswith(f"{name}:"):
        return LoadError(model + message[len(name):])
    return err


def check_activation(option: str, value: str | None) -> None:
    """An activation option names one lstm-trace knows, else one line with the full list."""
    from .activations import ACTIVATIONS

    if value is not None and value not in ACTIVATIONS:
        raise OptionError(f"{option} {value!r} is not an activation lstm-trace knows; "
                          f"valid values: {', '.join(sorted(ACTIVATIONS))}")


def parse_selection(option: str, spec: str | None):  # -> Selection
    """``--units 0:8`` etc. parsed; a malformed spec is an OptionError naming the option."""
    from .selection import parse_range

    if spec is None:
        return None
    try:
        return parse_range(spec)
    except OptionError as err:
        raise OptionError(f"{option} {err}") from None


def selection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--samples``, ``--steps``, ``--units``: the same names and meaning in every command."""
    decorators = [
        click.option("--units", help="Units, e.g. 0:8 or 1,5,9 (default: all)."),
        click.option("--steps", help="Steps, e.g. 0:20 or 10: (default: all)."),
        click.option("--samples", help="Samples, e.g. 0 or 0,3 (default: all)."),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def selected_trace(result: Any, samples: str | None, steps: str | None, units: str | None):
    """``result`` cut to ``--samples/--steps/--units`` (checked: outside the trace is exit 2),
    and the original index of each unit kept per array width."""
    from .writers._common import pick, subtrace

    picked = pick(result, samples=parse_selection("--samples", samples),
                  steps=parse_selection("--steps", steps), units=parse_selection("--units", units))
    if samples is None and steps is None and units is None:
        return result, picked
    return subtrace(result, picked), picked


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
    return trace_network(open_model(model, **kwargs), input, **kwargs)


def trace_network(network: Network, input: str, **kwargs: Any):  # -> tuple[Network, Trace]
    """Read INPUT, validate it against ``network``, replay (the whole trace in memory)."""
    from .inputs import read_input, validate_input

    layers = list(kwargs.get("layers") or ())
    layer_input = bool(kwargs.get("layer_input"))
    if network.input_adapter is not None and not layer_input:  # ONNX: as onnxruntime is fed
        x = network.input_adapter.read(input, key=kwargs.get("input_key"))
    else:
        features, token_ids = expected_input(network, layers, layer_input)
        x = validate_input(
            read_input(input, key=kwargs.get("input_key")),
            features=features, integer_ids=token_ids, path=input,
            grid_rank=input_grid_rank(network, layers, layer_input),
        )
    initial = None
    if kwargs.get("initial_state"):
        initial = read_initial_state(kwargs["initial_state"])
    trace = network.trace(
        x, layers=layers or None, layer_input=layer_input, initial_state=initial,
        dtype=kwargs.get("dtype") or "float32",
    )
    return network, trace


def input_grid_rank(network: Network, layers: list[str], layer_input: bool) -> int:
    """How many grid axes INPUT has between steps and channels (a ConvLSTM's input; 0 else)."""
    if layer_input:
        names = set(layers) if layers else {r.name for r in network.recurrent_layers}
        first = next((layer for layer in network.recurrent_layers if layer.name in names), None)
        conv = getattr(first.directions[0].cell, "conv", None) if first is not None else None
        return conv.rank if conv is not None else 0
    if network.input_adapter is not None:
        return 0  # ONNX graph inputs: their shape holds the batch axis, not a grid
    shape = network.input_shape
    return max(len(shape) - 2, 0) if shape else 0


def expected_input(
    network: Network, layers: list[str], layer_input: bool
) -> tuple[int | None, bool]:
    """The feature count INPUT must have (None: unknown) and whether it may be token ids."""
    chain = network.layers
    if layer_input:
        names = set(layers) if layers else {r.name for r in network.recurrent_layers}
        first = next((layer for layer in chain if layer.name in names), None)
        if first is None:  # an unknown --layer: the engine names the layers it has
            return None, False
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
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("it holds one array (.npy), not named states (.npz)")
            return {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise OptionError(f"--initial-state {path}: cannot read initial states as .npz "
                          f"({first_line(err)})") from None


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


#: Extensions of model files: an output named so would be mistaken for a model.
MODEL_SUFFIXES = frozenset({".pt", ".pth", ".keras", ".onnx", ".safetensors", ".ckpt", ".pb",
                            ".tflite"})


def format_for(output: str, fmt: str | None, formats: tuple[str, ...], default: str = "table",
               piped: str | None = None) -> str:
    """The output format: ``--format``, else ``-o``'s extension, else ``default``
    (``piped`` instead when stdout is not a terminal: ``trace`` writes CSV into a pipe).

    An extension that means a format the command does not write is an error.
    """
    from .writers import FORMAT_BY_SUFFIX

    if fmt is not None:
        return fmt
    if output != "-":
        suffix = Path(output).suffix.lower()
        implied = FORMAT_BY_SUFFIX.get(suffix)
        if implied is None and suffix in MODEL_SUFFIXES:
            good = Path(output).with_suffix(".npz" if default == "npz" else ".txt").name
            raise OptionError(
                f"-o {output}: {suffix} is a model file's extension, but this command writes "
                f"{default} here, not a model; name it {good} (or pass --format to keep the name)")
        if implied is None:
            return default
        if implied not in formats:
            raise OptionError(f"-o {output}: {suffix} means --format {implied}, which this "
                              f"command does not write; choose one of: {', '.join(formats)}")
        return implied
    if piped is not None and not stdout_is_terminal():
        return piped
    return default


def stdout_is_terminal() -> bool:
    """Whether standard output is a terminal (tables by default; no binary output)."""
    return sys.stdout.isatty()


def default_format(output: str) -> str:
    """From -o's extension; on stdout a table for a terminal, CSV for a pipe or file."""
    return format_for(output, None, ("table", "csv", "npz", "json"), piped="csv")


def wrote(output: str, what: str = "") -> None:
    """The one "wrote ..." line every command prints on stderr for an output file."""
    click.echo(f"wrote {output}{f' ({what})' if what else ''}", err=True)


@main.command()
@trace_options
@click.option("-f", "--format", "fmt",
              type=click.Choice(["table", "csv", "npz", "json", "h5", "parquet", "lstmvis"]),
              help="Output format (default: from -o's extension; on stdout, table on a "
              "terminal and csv when piped). h5, parquet and lstmvis need -o.")
@click.option("-o", "--output", default="-", help="Output file ('-': stdout).")
@click.option("--units", help="Units to show/write, e.g. 0:8 or 1,5,9 (table default: 0:8).")
@click.option("--steps", help="Steps to show/write, e.g. 0:20 or 10: (table default: first 20).")
@click.option("--samples", help="Samples to show/write, e.g. 0 or 0,3 (table default: 0).")
@click.option("--summary", is_flag=True,
              help="min/mean/max/std (and gate saturation) per key instead of values, "
              "in the chosen format (table, csv or json).")
@click.option("--batch-size", type=int,
              help="Samples replayed at a time (default: from a memory budget); long "
              "sequences also run in chunks of steps.")
@click.option("--vocab", type=click.Path(dir_okay=False),
              help="lstmvis: the word of each token id, one per line.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar on stderr.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on this Dask distributed scheduler (tcp://HOST:8786) and write -o OUT.zarr "
              "(pip install 'lstm-trace[dask]').")
@handle_errors
def trace(model: str, input: str, fmt: str | None, output: str, units: str | None,
          steps: str | None, samples: str | None, summary: bool, batch_size: int | None,
          vocab: str | None, quiet: bool, scheduler: str | None, **kwargs: Any) -> None:
    """Trace MODEL on INPUT: every gate, cell and hidden state at every step.

    Files (csv, json, npz, h5, parquet, lstmvis) are written chunk by chunk as the
    replay runs, in memory that does not grow with INPUT (.npy inputs are memory-mapped).
    """
    from .writers import write_trace
    from .writers._common import pick

    if scheduler is not None:
        cluster_trace(model, input, output, scheduler, batch_size=batch_size, **kwargs)
        return
    fmt = format_for(output, fmt, ("table", "csv", "npz", "json", "h5", "parquet", "lstmvis"),
                     piped="csv")
    if not summary and fmt != "table" and units is None and steps is None and samples is None:
        stream_trace(model, input, fmt, output, batch_size=batch_size, vocab=vocab, quiet=quiet,
                     **kwargs)
        return
    if summary and fmt not in ("table", "csv", "json"):
        raise OptionError(f"--summary is written as a table, csv or json, not {fmt}")
    if fmt in ("h5", "parquet", "lstmvis") or vocab is not None or (
            batch_size is not None and not summary):
        raise OptionError(f"--format {fmt}, --batch-size and --vocab write whole traces: "
                          "they do not combine with --units, --steps or --samples")
    if fmt == "npz" and output == "-" and stdout_is_terminal():
        raise OptionError("--format npz is binary and is not written to a terminal: "
                          "give -o FILE.npz or redirect stdout")
    selection = {
        "units": parse_selection("--units", units),
        "steps": parse_selection("--steps", steps),
        "samples": parse_selection("--samples", samples),
    }
    if summary:
        summary_of_stream(model, input, fmt, output, selection, batch_size=batch_size,
                          quiet=quiet, **kwargs)
        return
    _, result = run_trace(model, input, **kwargs)
    if fmt in ("table", "csv") or units is not None:
        result = result.flat_units()  # a ConvLSTM's grid positions as units (README)
    pick(result, **selection)  # a selection outside the trace fails before anything is written
    write_trace(result, fmt, output, **selection)
    if output != "-":
        wrote(output, describe_output(result.flat_units(), fmt, selection, False))


def summary_of_stream(model: str, input: str, fmt: str, output: str, selection: dict[str, Any],
                      *, batch_size: int | None, quiet: bool, **kwargs: Any) -> None:
    """``--summary``: statistics gathered chunk by chunk (memory does not grow with INPUT),
    then written in ``fmt`` (table, csv or json)."""
    from . import summary as summaries
    from .stream_output import progress
    from .streaming import TraceSource

    if batch_size is not None and batch_size < 1:
        raise OptionError(f"--batch-size must be 1 or more, got {batch_size}")
    network = open_model(model, **kwargs)
    layers = list(kwargs.get("layers") or ())
    layer_input = bool(kwargs.get("layer_input"))
    if input_grid_rank(network, layers, layer_input):  # ConvLSTM: whole, grid positions as units
        _, result = trace_network(network, input, **kwargs)
        source = TraceSource.from_trace(result.flat_units())
    else:
        source = open_source(network, input, batch_size=batch_size, **kwargs)
    require_one_step_count(source, "--summary")
    with progress(source, quiet=quiet):
        stats = summaries.summarize_source(source, **selection)
    if fmt == "table":
        from .writers.table import write_summary as write_table

        write_table(stats, output)
    else:
        _echo_text(summaries.csv_text(stats) if fmt == "csv" else summaries.json_text(stats), output)
    if output != "-":
        wrote(output, f"{fmt} summary of {len(stats.rows)} keys")


def open_source(network: Network, input: str, *, batch_size: int | None = None,
                **kwargs: Any):  # -> TraceSource
    """INPUT replayed through ``network`` as a source of chunks (.npy memory-mapped)."""
    from .stream_output import open_input
    from .streaming import trace_chunks

    layers = list(kwargs.get("layers") or ())
    layer_input = bool(kwargs.get("layer_input"))
    if network.input_adapter is not None and not layer_input:  # ONNX: as onnxruntime is fed
        x, check = network.input_adapter.read(input, key=kwargs.get("input_key")), None
    else:
        features, token_ids = expected_input(network, layers, layer_input)
        x, check = open_input(input, key=kwargs.get("input_key"), features=features,
                              integer_ids=token_ids)
    initial = read_initial_state(kwargs["initial_state"]) if kwargs.get("initial_state") else None
    return trace_chunks(network, x, layers=layers or None, layer_input=layer_input,
                        initial_state=initial, dtype=kwargs.get("dtype") or "float32",
                        batch_size=batch_size, validate_chunk=check)


def stream_trace(model: str, input: str, fmt: str, output: str, *, batch_size: int | None,
                 vocab: str | None, quiet: bool, **kwargs: Any) -> None:
    """The trace written chunk by chunk (lstm_trace.stream_output)."""
    from .stream_output import write_stream

    if fmt in ("h5", "parquet", "lstmvis") and output == "-":
        raise OptionError(f"--format {fmt} writes a file{' tree' if fmt == 'lstmvis' else ''}: "
                          f"give -o {'DIR' if fmt == 'lstmvis' else 'FILE.' + fmt}")
    if fmt == "npz" and output == "-" and stdout_is_terminal():
        raise OptionError("--format npz is binary and is not written to a terminal: "
                          "give -o FILE.npz or redirect stdout")
    if batch_size is not None and batch_size < 1:
        raise OptionError(f"--batch-size must be 1 or more, got {batch_size}")
    vocab_words = None
    if vocab is not None:
        if fmt != "lstmvis":
            raise OptionError(f"--vocab applies to --format lstmvis, not {fmt}")
        from .writers.plot import read_labels

        try:
            vocab_words = read_labels(vocab)
        except ValueError as err:
            raise OptionError(f"--vocab {err}") from None
    network = open_model(model, **kwargs)
    layers = list(kwargs.get("layers") or ())
    layer_input = bool(kwargs.get("layer_input"))
    if input_grid_rank(network, layers, layer_input):
        # A ConvLSTM's trace is written whole, not in chunks; CSV, Parquet and LSTMVis fold its
        # grid positions into units (README).
        from .writers import write_trace

        _, result = trace_network(network, input, **kwargs)
        flat = fmt in ("csv", "parquet", "lstmvis")
        write_trace(result.flat_units() if flat else result, fmt, output)
        if output != "-":
            wrote(output, describe_output(result.flat_units(), fmt, {}, False))
        return
    features, token_ids = expected_input(network, layers, layer_input)
    initial = read_initial_state(kwargs["initial_state"]) if kwargs.get("initial_state") else None
    source = write_stream(
        network, input, fmt, output, features=features, integer_ids=token_ids,
        input_key=kwargs.get("input_key"), layers=layers or None, layer_input=layer_input,
        initial_state=initial, dtype=kwargs.get("dtype") or "float32", batch_size=batch_size,
        quiet=quiet, vocab=vocab_words,
    )
    if output != "-":
        keys = source.keys
        units = max((info.shape[2] for info in keys.values() if len(info.shape) == 3), default=0)
        counts = sorted({info.shape[1] for info in keys.values()}) or [source.steps]
        steps = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        wrote(output, f"{fmt}: {len(keys)} keys, {source.batch} sample"
                      f"{'s' if source.batch != 1 else ''} × {steps} steps × {units} units")


def cluster_trace(model: str, input: str, output: str, scheduler: str, *, batch_size: int | None,
                  **kwargs: Any) -> None:
    """``--scheduler``: the trace computed on a Dask cluster into a Zarr store (lstm_trace.cluster)."""
    from .stream_output import check_shape

    try:
        from .cluster import open_input, require_dask, trace_to_zarr

        require_dask()
    except ImportError as err:
        raise OptionError(str(err)) from None
    if output == "-":
        raise OptionError("--scheduler writes a Zarr store: give -o OUT.zarr")
    if batch_size is not None and batch_size < 1:
        raise OptionError(f"--batch-size must be 1 or more, got {batch_size}")
    network = open_model(model, **kwargs)
    layers = list(kwargs.get("layers") or ())
    layer_input = bool(kwargs.get("layer_input"))
    features, token_ids = expected_input(network, layers, layer_input)
    x = open_input(input, samples_per_block=batch_size)
    check_shape(x, input, features=features, integer_ids=token_ids)
    initial = read_initial_state(kwargs["initial_state"]) if kwargs.get("initial_state") else None
    try:
        shapes = trace_to_zarr(network, x, output, scheduler=scheduler, layers=layers or None,
                               layer_input=layer_input, initial_state=initial,
                               dtype=kwargs.get("dtype") or "float32", input_name=input,
                               integer_ids=token_ids)
    except (OSError, TimeoutError) as err:
        if isinstance(err, OutputError):
            raise
        raise OptionError(f"--scheduler {scheduler}: {err}".splitlines()[0]) from None
    batch, steps = next(iter(shapes.values()))[:2]
    units = max((shape[2] for shape in shapes.values() if len(shape) == 3), default=0)
    wrote(output, f"zarr: {len(shapes)} keys, {batch} sample{'s' if batch != 1 else ''} × "
                  f"{steps} steps × {units} units")


def describe_output(result: Any, fmt: str, selection: dict[str, Any], summary: bool) -> str:
    """What a trace output file holds, for the "wrote ..." line."""
    from .writers._common import pick

    if summary:
        return f"{fmt} summary of {len(result)} keys"
    if fmt == "table":
        from .writers.table import excerpt

        return f"table of {excerpt(result, **selection)}"
    picked = pick(result, **selection)
    units = picked.units_for(picked.max_width).size
    return (f"{fmt}: {len(result)} keys, {picked.samples.size} sample"
            f"{'s' if picked.samples.size != 1 else ''} × {picked.steps.size} steps × "
            f"{units} units")


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


def _write_report(output: str, fmt: str, table: Callable[[], str], data: Any,
                  csv_rows: Callable[[], str]) -> None:
    """Write a report (inspect, stats) as a table, JSON or CSV; say what was written."""
    import json

    if fmt == "json":
        _echo_text(json.dumps(data, indent=1) + "\n", output)
    elif fmt == "csv":
        _echo_text(csv_rows(), output)
    else:
        _echo_text(table(), output)
    if output != "-":
        wrote(output, fmt)


@main.command("inspect")
@click.argument("model", type=click.Path())
@model_options
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json", "csv"]),
              help="Tables for reading, JSON (everything) or CSV (a row per layer) for scripts "
              "(default: from -o's extension, else table).")
@click.option("-o", "--output", default="-", help="Output file ('-': stdout).")
@handle_errors
def inspect_command(model: str, fmt: str | None, output: str, **kwargs: Any) -> None:
    """Show what is in MODEL: layers, options, parameter counts, where each gate lives.

    Every recurrent layer with its kind, units, input size, activations and options, and
    the slice of the file's fused kernel, recurrent kernel and bias that holds each gate;
    the layers before, between and after them and whether lstm-trace can replay them.
    The loader's notes (assumed defaults) go to stderr.
    """
    from .inspect import describe, render
    from .reports import INSPECT_COLUMNS, csv_text, inspect_rows

    fmt = format_for(output, fmt, ("table", "json", "csv"), default="table")
    info = describe(open_model(model, **kwargs))
    _write_report(output, fmt, lambda: render({**info, "notes": []}, width=_text_width()), info,
                  lambda: csv_text(INSPECT_COLUMNS, inspect_rows(info)))


@main.command("extract")
@click.argument("model", type=click.Path())
@model_options
@click.option("-o", "--output", default="-", help="Output file (.npz, .json, .csv; '-' or "
              "absent: stdout).")
@click.option("-f", "--format", "fmt", type=click.Choice(["npz", "json", "csv"]),
              help="Output format (default: from -o's extension, else npz; json on stdout).")
@click.option("--to", "target", type=click.Choice(["gates", "keras", "pytorch", "onnx"]),
              default="gates", show_default=True,
              help="onnx: one layer (--layer) as a standalone ONNX LSTM/GRU/RNN model (-o FILE.onnx); "
                   "gates: per-gate W/U/b in Keras orientation; keras: Keras layer weights "
                   "(set_weights order), keys <layer>/kernel ...; pytorch: nn.LSTM/GRU/RNN "
                   "state dicts, keys <layer>/weight_ih_l0 ...")
@click.option("--layer", "layers", multiple=True,
              help="Recurrent layer to extract (repeatable; default: all).")
@handle_errors
def extract_command(model: str, output: str, fmt: str | None, target: str,
                    layers: tuple[str, ...], **kwargs: Any) -> None:
    """Write the weights of MODEL's recurrent layers, split by gate.

    \b
    Keys (--to gates): <layer>[/<direction>]/<gate>/kernel     (input_size, units)
                       .../recurrent_kernel (units, units), .../bias (units,)
                       GRU with two biases: .../input_bias, .../recurrent_bias
                       LSTM peepholes .../peephole, projection <layer>/projection
    Keys (--to pytorch): <layer>/weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0
                       (+ _reverse for a Bidirectional layer's backward direction);
                       the torch.nn module to load each into is printed.
    Keys (--to keras): <layer>[/<direction>]/kernel, recurrent_kernel, bias
                       (fused, Keras gate order; GRU bias (2, 3*units));
                       the keras.layers constructor of each is printed.
    """
    from .extract import gate_weights, keras_arrays, to_keras, to_pytorch, torch_arrays, write_arrays

    if target == "onnx":
        _extract_onnx(model, output, layers, **kwargs)
        return
    fmt = format_for(output, fmt, ("npz", "json", "csv"), default="npz" if output != "-" else "json")
    if fmt == "npz" and output == "-" and stdout_is_terminal():
        raise OptionError("--format npz is binary and is not written to a terminal: "
                          "give -o FILE.npz or redirect stdout")
    network = open_model(model, **kwargs)
    exported: list
    if target == "pytorch":
        exported = to_pytorch(network, layers)
        arrays = torch_arrays(exported)
    elif target == "keras":
        exported = to_keras(network, layers)
        arrays = keras_arrays(exported)
    else:
        exported = []
        arrays = gate_weights(network, layers)
    if fmt == "npz" and output == "-":
        from .atomic import atomic_write

        with atomic_write("-", "wb") as f:
            np.savez(f, **arrays)
    else:
        write_arrays(arrays, fmt, output)
    if output != "-":
        wrote(output, f"{len(arrays)} arrays")
    for layer in exported:
        click.echo(f"  {layer.name}: {layer.constructor()}", err=output == "-")
        for line in layer.notes:
            note(line)


def _extract_onnx(model: str, output: str, layers: tuple[str, ...], **kwargs: Any) -> None:
    """``extract --to onnx``: one recurrent layer as an ONNX model file (lstm_trace.export_onnx)."""
    from .atomic import atomic_write
    from .export_onnx import model_bytes, to_onnx

    if output == "-":
        raise OptionError("--to onnx writes a model file: give -o FILE.onnx")
    node = to_onnx(open_model(model, **kwargs), layers)
    with atomic_write(output, "wb") as f:
        f.write(model_bytes(node))
    wrote(output, node.describe())
    for line in node.notes:
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
@selection_options
@handle_errors
def check_command(model: str, input: str, golden: str, atol: float, rtol: float,
                  key_patterns: tuple[str, ...], report: str | None, fmt: str,
                  samples: str | None, steps: str | None, units: str | None,
                  **kwargs: Any) -> None:
    """Re-trace MODEL on INPUT and compare every key with a golden trace (for CI).

    Exit 0 when every key matches within the tolerances, 1 when any key differs (or is
    missing on either side, or has another shape), 2 on bad input. Every key's largest
    error is reported, also within tolerance. --samples/--steps/--units compare only that
    part of both traces.
    """
    import json

    from .atomic import atomic_write
    from .check import compare, junit_xml, load_golden, render

    expected = load_golden(golden)
    _, result = run_trace(model, input, **kwargs)
    if samples is not None or steps is not None or units is not None:
        chosen, picked = selected_trace(result, samples, steps, units)
        expected = {key: _same_part(value, result.get(key), picked)
                    for key, value in expected.items()}
        result = chosen
    comparison = compare(result, expected, atol=atol, rtol=rtol, keys=key_patterns)
    if report:
        with atomic_write(report, "wb") as f:
            f.write(junit_xml(comparison, suite=f"lstm-trace check {Path(golden).name}"))
        wrote(report, "JUnit XML")
    if fmt == "json":
        click.echo(json.dumps(comparison.to_dict(), indent=1))
    else:
        click.echo(render(comparison, width=_text_width()), nl=False)
    if not comparison.equal:
        sys.exit(EXIT_DIFFERENT)


def _same_part(golden: np.ndarray, traced: np.ndarray | None, picked: Any) -> np.ndarray:
    """The golden array cut like the trace (only when it has the trace's shape: else the
    comparison reports the shape difference on the whole array)."""
    if traced is None or golden.shape != traced.shape or golden.ndim < 2:
        return golden
    index: tuple[np.ndarray, ...] = (picked.samples, picked.steps)
    if golden.ndim == 3:
        index += (picked.units_for(golden.shape[2]),)
    return golden[np.ix_(*index)]


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise OptionError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1600x900")
    return int(parts[0]), int(parts[1])


@contextlib.contextmanager
def options_checked_by(what: str) -> Iterator[None]:
    """The ValueErrors ``what`` raises are about the user's options and files (exit 2).

    Only for library code whose ValueErrors are all such checks (the plot writer's
    options, sizes and vocabulary files); elsewhere a ValueError is a bug.
    """
    try:
        yield
    except OptionError:
        raise
    except ValueError as err:
        if isinstance(err, USER_ERRORS):
            raise
        raise OptionError(first_line(err)) from err


@main.command("plot")
@trace_options
@click.option("-o", "--output", required=True, help="Image file: .png, .svg or .pdf.")
@click.option("--samples", "sample_spec",
              help="Which sequence of INPUT to draw, e.g. 0 or -1 (one sample; default 0).")
@click.option("--sample", "sample_alias", type=int, hidden=True)
@click.option("--units", help="Units (rows) to draw, e.g. 0:16 or 1,5,9 (default: all).")
@click.option("--steps", help="Steps to draw, e.g. 1000:1200 to zoom in (default: all).")
@click.option("--vocab", type=click.Path(dir_okay=False),
              help="Token per line: x labels for token-id (or one-hot) input, or one label per step.")
@click.option("--size", help="Image size in pixels, WIDTHxHEIGHT (default: from units and steps).")
@click.option("--dpi", type=int, default=100, show_default=True, help="Resolution.")
@click.option("--title", help="A title above the panels.")
@handle_errors
def plot_command(model: str, input: str, output: str, sample_spec: str | None,
                 sample_alias: int | None, units: str | None, steps: str | None,
                 vocab: str | None, size: str | None, dpi: int, title: str | None,
                 **kwargs: Any) -> None:
    """Draw heatmaps of every gate and state of MODEL on INPUT (units × steps).

    One column of panels per traced layer (and direction), one panel per quantity, so
    the steps line up; gates share a 0..1 colour scale, tanh quantities a symmetric one.
    Needs matplotlib (pip install 'lstm-trace[plot]').
    """
    from .selection import resolve

    try:
        from .writers.plot import plot_trace, read_labels, require_matplotlib, step_labels

        require_matplotlib()
    except ImportError as err:
        fail(str(err))
        return
    samples = parse_selection("--samples", sample_spec)
    if sample_alias is not None:
        samples = [sample_alias]
    unit_selection = parse_selection("--units", units)
    step_selection = parse_selection("--steps", steps)
    pixels = _parse_size(size)
    with options_checked_by("plot"):
        vocab_lines = read_labels(vocab) if vocab else None
    network, result = run_trace(model, input, **kwargs)
    require_one_step_count(result, "plot")
    result = result.flat_units()  # a ConvLSTM's grid positions as units (README)
    picked = resolve(samples if samples is not None else [0], result.batch, "sample")
    if picked.size != 1:
        raise OptionError(f"--samples {sample_spec}: plot draws one sample; "
                          "choose one, e.g. --samples 0")
    sample = int(picked[0])
    with options_checked_by("plot"):
        labels = None
        if vocab_lines is not None:
            from .inputs import read_input

            x = read_input(input, key=kwargs.get("input_key"))
            labels = step_labels(x, vocab_lines, sample, result.steps)
        width, height = plot_trace(result, output, network=network, sample=sample,
                                   units=unit_selection, steps=step_selection, labels=labels,
                                   size=pixels, dpi=dpi, title=title)
    wrote(output, f"{width}x{height} pixels")


@main.command("stats")
@trace_options
@selection_options
@click.option("--top", type=int, default=5, show_default=True,
              help="How many top-varying state units to list per layer.")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json", "csv"]),
              help="Tables for reading, JSON or CSV for scripts (default: from -o's "
              "extension, else table).")
@click.option("-o", "--output", default="-", help="Output file ('-': stdout).")
@handle_errors
def stats_command(model: str, input: str, samples: str | None, steps: str | None,
                  units: str | None, top: int, fmt: str | None, output: str,
                  **kwargs: Any) -> None:
    """Gate statistics of MODEL on INPUT: mean and saturation of each gate, top-varying units.

    A gate is left-saturated below 0.1 and right-saturated above 0.9 (Karpathy et al.,
    2015); the state units (LSTM cell, GRU/RNN hidden) with the largest variance over
    time are listed. Masked steps are excluded. --samples/--steps/--units limit the
    statistics to a selection (unit numbers stay those of the model).
    """
    from .reports import STATS_COLUMNS, csv_text, stats_rows
    from .stats import gate_stats, render

    if top < 0:
        raise OptionError(f"--top must be 0 or more, got {top}")
    fmt = format_for(output, fmt, ("table", "json", "csv"), default="table")
    _, result = run_trace(model, input, **kwargs)
    result = result.flat_units()  # a ConvLSTM's grid positions as units (README)
    chosen, picked = selected_trace(result, samples, steps, units)
    stats = gate_stats(chosen, top=top)
    if units is not None:  # top units by their index in the model, not in the selection
        for entry in stats:
            state = chosen[_state_key(chosen, entry)]
            original = picked.units_for(result[_state_key(result, entry)].shape[2])
            assert state.shape[2] == original.size
            for top_unit in entry["top_units"]:
                top_unit["unit"] = int(original[top_unit["unit"]])
    _write_report(output, fmt, lambda: render(stats, width=_text_width()),
                  {"low": 0.1, "high": 0.9, "layers": stats},
                  lambda: csv_text(STATS_COLUMNS, stats_rows(stats)))


def _state_key(trace: Any, entry: dict[str, Any]) -> str:
    layer = next(layer for layer in trace.layers if layer.name == entry["layer"])
    return layer.key(entry["direction"], entry["state"])
