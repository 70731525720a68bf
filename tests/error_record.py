"""The worst difference from the framework per family of models, recorded during the run.

Every test that compares lstm-trace with a framework reports what it measured::

    from error_record import record_error

    err = float(np.abs(trace["lstm/hidden"] - reference["lstm/hidden"]).max())
    record_error("Keras 3 LSTM", "selu_swish/keras", err)

``record_error`` fails the test when ``err`` is above the family's bound in ``FAMILIES``
(the contract's atol 1e-5 stays the outer limit; the bound catches a drift long before
it). A new family is one line in ``FAMILIES``; an unknown family name fails loudly.

At the end of the session ``tests/conftest.py`` writes every family's worst error (and
the case that gave it) to ``$LSTM_TRACE_ERROR_REPORT`` or ``.pytest_cache/d/lstm-trace/
errors.json``; ``pytest --error-report`` also prints the table that README.md quotes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: family -> largest error the suite accepts. Each bound is about 3x the worst error
#: measured when it was set (see README "Development": the table of a real run), so a
#: change in the numerics shows up as a failure, not as a quietly larger number.
FAMILIES: dict[str, float] = {
    "Keras 3 LSTM": 5e-6,  # worst 1.6e-6 (selu_swish: unbounded activations)
    "tf_keras LSTM": 5e-6,  # worst 1.6e-6
    "Keras 3 GRU": 1e-6,  # worst 3.4e-7
    "tf_keras GRU": 1e-6,  # worst 3.4e-7
    "Keras 3 SimpleRNN": 6e-6,  # worst 1.9e-6 (relu)
    "tf_keras SimpleRNN": 6e-6,  # worst 1.9e-6
    "tf_keras CuDNN": 3e-6,  # worst 9.5e-7
    "Keras 3 nested models": 6e-7,  # worst 1.8e-7
    "tf_keras nested models": 6e-7,  # worst 1.8e-7
    "Keras 1 (own NumPy reference)": 2e-6,  # worst 5.3e-7
    "TF1 cells": 1e-6,  # worst 2.7e-7
    "TF2 checkpoints": 8e-7,  # worst 2.4e-7
    "SavedModels": 8e-7,  # worst 2.4e-7
    "PyTorch export vs Keras": 1.5e-6,  # worst 4.2e-7
    "PyTorch export vs TF1": 4e-7,  # worst 1.2e-7
    "sample model": 2e-6,  # worst 6.6e-7
    "ONNX nodes vs onnxruntime": 1e-6,  # worst 3.0e-7
    "ONNX backend test vectors": 1e-6,  # worst 1.2e-7
    "ONNX nodes in If branches vs onnxruntime": 1e-6,  # worst 1.8e-7
    "Keras time padding layers": 3e-6,  # worst 8.9e-7
    "Keras 2-D/3-D convolution and pooling fronts": 5e-6,
    "ONNX torch exports vs torch": 1e-5,  # worst 5.7e-6 (relu RNN, states up to 21)
    "extract --to onnx vs framework": 5e-7,  # worst 1.5e-7
    "extract --to keras vs framework": 1e-6,  # worst 0 (Keras 3 from the printed constructor)
    "ONNX tf2onnx exports vs Keras": 6e-7,  # worst 1.8e-7
    "PyTorch files": 1.5e-6,  # worst 4.8e-7
    "TF1 frozen graphs": 1e-6,  # worst 2.7e-7
    "TF2 frozen graphs": 1e-6,  # worst 3.7e-7 (Keras 3 and tf_keras, lowered and While loops)
    "Keras 3 ConvLSTM": 1.5e-6,  # worst 4.8e-7
    "tf_keras ConvLSTM": 1.5e-6,  # worst 4.8e-7
}


@dataclass
class FamilyRecord:
    """The measurements of one family: how many, the worst and where it was seen."""

    bound: float
    count: int = 0
    worst: float = 0.0
    worst_case: str = ""
    cases: set[str] = field(default_factory=set)

    def as_json(self) -> dict:
        return {"bound": self.bound, "worst": self.worst, "worst_case": self.worst_case,
                "measurements": self.count, "cases": len(self.cases)}


RECORD: dict[str, FamilyRecord] = {}


def record_error(family: str, case: str, err: float) -> None:
    """Record ``err`` (max abs difference from the framework) and assert the family's bound."""
    if family not in FAMILIES:
        raise AssertionError(f"unknown error family {family!r}: add it to FAMILIES in "
                             "tests/error_record.py with a bound")
    err = float(err)
    assert err == err, f"{family} / {case}: error is NaN"
    entry = RECORD.setdefault(family, FamilyRecord(FAMILIES[family]))
    entry.count += 1
    entry.cases.add(case)
    if err >= entry.worst:
        entry.worst, entry.worst_case = err, case
    assert err <= FAMILIES[family], (
        f"{family} / {case}: error {err:.3g} is above the family's bound {FAMILIES[family]:.2g}")


def report() -> dict[str, dict]:
    """``{family: {bound, worst, worst_case, measurements, cases}}`` of this session."""
    return {family: RECORD[family].as_json() for family in FAMILIES if family in RECORD}


def table() -> str:
    """The report as the Markdown table README.md quotes."""
    lines = ["| family | worst error | case | cases | bound |", "|---|---|---|---|---|"]
    for family, row in report().items():
        lines.append(f"| {family} | {row['worst']:.2g} | `{row['worst_case']}` | {row['cases']} "
                     f"| {row['bound']:.2g} |")
    return "\n".join(lines)
