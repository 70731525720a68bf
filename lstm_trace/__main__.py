"""``python -m lstm_trace`` is the ``lstm-trace`` command."""

from .cli import main

main()
