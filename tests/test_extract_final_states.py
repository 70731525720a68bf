"""``extract --to pytorch`` tells how to get Keras's output from torch: proven in torch.

Keras layers without ``return_sequences`` return each direction's *final* state; for a
Bidirectional layer the backward direction's final state is the one after it consumed
``x[0]``, so ``output[:, -1]`` is wrong and ``h_n`` is right. Masked (padded) inputs need
``pack_padded_sequence``. Each test loads the exported state dict into the printed
``torch.nn`` module, follows the printed note and compares with Keras (atol 1e-5).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch  # a hard test dependency (the `test` extra): missing, this file fails
from conftest import build_fixtures
from workflow_common import invoke

ATOL = 1e-5


@pytest.fixture(scope="session")
def export_models():
    return build_fixtures("torch_export_models")


def _export(directory, name, tmp_path):
    spec = next(c for c in json.loads((directory / "manifest.json").read_text())["cases"]
                if c["name"] == name)
    out = tmp_path / "w.npz"
    result = invoke("extract", directory / spec["model"], "--to", "pytorch", "-o", out)
    assert result.exit_code == 0, result.output
    constructor = result.stdout.splitlines()[0].split(": ", 1)[1]
    module = eval(constructor, {"torch": torch})  # the printed constructor, as a user runs it
    with np.load(out, allow_pickle=False) as data:
        module.load_state_dict({k.rpartition("/")[2]: torch.from_numpy(data[k]) for k in data.files})
    reference = np.load(directory / spec["reference"])
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    return module, reference, notes


def _run(module, reference, packed: bool):
    x = torch.from_numpy(reference["__input__"])
    with torch.no_grad():
        if packed:
            lengths = torch.from_numpy(reference["__lengths__"])
            seq = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                          enforce_sorted=False)
            output, (h_n, _) = module(seq)
            output, _ = torch.nn.utils.rnn.pad_packed_sequence(
                output, batch_first=True, total_length=x.shape[1])
        else:
            output, (h_n, _) = module(x)
    return output.numpy(), h_n


def test_bidirectional_last_step_is_h_n_not_output_last(export_models, tmp_path):
    module, reference, notes = _export(export_models, "bi_last", tmp_path)
    assert any("torch.cat([h_n[0], h_n[1]], -1)" in n and "not output[:, -1]" in n for n in notes), notes
    assert not any("pack_padded_sequence" in n for n in notes)
    output, h_n = _run(module, reference, packed=False)
    keras = reference["__output__"]
    err = np.abs(torch.cat([h_n[0], h_n[1]], -1).numpy() - keras).max()
    assert err < ATOL
    hidden = output.shape[-1] // 2
    same = np.concatenate([output[:, -1, :hidden], output[:, 0, hidden:]], axis=-1)
    assert np.abs(same - keras).max() < ATOL
    # The old advice, output[:, -1], is measurably wrong on this model.
    assert np.abs(output[:, -1] - keras).max() > 0.05


@pytest.mark.parametrize("name", ["bi_last_masked", "lstm_last_masked"])
def test_masked_last_step_needs_a_packed_sequence(export_models, tmp_path, name):
    module, reference, notes = _export(export_models, name, tmp_path)
    assert any("pack_padded_sequence" in n and "take h_n" in n for n in notes), notes
    _, h_n = _run(module, reference, packed=True)
    final = torch.cat([h_n[0], h_n[1]], -1) if h_n.shape[0] == 2 else h_n[0]
    keras = reference["__output__"]
    assert np.abs(final.numpy() - keras).max() < ATOL
    # Unpacked, torch runs over the padding and ends elsewhere.
    _, unpacked = _run(module, reference, packed=False)
    wrong = torch.cat([unpacked[0], unpacked[1]], -1) if unpacked.shape[0] == 2 else unpacked[0]
    assert np.abs(wrong.numpy() - keras).max() > 0.05


def test_masked_bidirectional_sequence_matches_packed_output(export_models, tmp_path):
    module, reference, notes = _export(export_models, "bi_seq_masked", tmp_path)
    assert any("pad_packed_sequence" in n for n in notes), notes
    output, _ = _run(module, reference, packed=True)
    assert np.abs(output - reference["__output__"]).max() < ATOL  # both 0 on padded steps


def test_masked_sequence_note_says_padded_steps_differ(export_models, tmp_path):
    """One-direction Keras layers repeat the last state on padded steps; torch writes 0."""
    module, reference, notes = _export(export_models, "lstm_seq_masked", tmp_path)
    assert any("Keras repeats the last state" in n for n in notes), notes
    output, _ = _run(module, reference, packed=True)
    keras = reference["__output__"]
    valid = np.arange(keras.shape[1])[None, :] < reference["__lengths__"][:, None]
    assert np.abs(output[valid] - keras[valid]).max() < ATOL
    assert np.all(output[~valid] == 0)
