"""PyTorch models with modules before and after the recurrent one, as real models have.

Run as ``python torch_fronts.py OUTDIR`` (tests/conftest.py ``build_fixtures`` caches it).

- ``front``: ``conv1`` (Conv1d) -> ``linear0`` (Linear) -> ``lstm`` (nn.LSTM) -> ``fc``
  (Linear), like BeatNet's model: saved whole (``torch.save(net)``) and as TorchScript.
  The reference is torch's own LSTM output on the features ``linear0`` hands it
  (``front-lstm-input.npy``, what a user passes as INPUT).
- ``two_rates``: two sibling models ``_model`` and ``_model_8k`` in one module, each an
  ``encoder`` (Conv1d) -> ``decoder.rnn`` (LSTMCell) -> ``decoder.decoder``
  (ReLU, Dropout, Conv1d), like silero-vad's TorchScript: saved as TorchScript.

The manifest records torch's parameter count of every non-recurrent module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from common import write_manifest
from torch import nn

BATCH, STEPS = 2, 6


class Front(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(3, 5, kernel_size=3, padding=1)
        self.linear0 = nn.Linear(5, 4)
        self.lstm = nn.LSTM(4, 6, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear0(self.conv1(x.transpose(1, 2)).transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(self.features(x))
        return self.fc(y)


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTMCell(8, 8)
        self.decoder = nn.Sequential(nn.ReLU(), nn.Dropout(0.1), nn.Conv1d(8, 1, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, c = self.rnn(x)
        return self.decoder(h.unsqueeze(-1))


class Rate(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.encoder = nn.Conv1d(features, 8, kernel_size=1)
        self.decoder = Decoder()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x.unsqueeze(-1)).squeeze(-1))


class TwoRates(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self._model = Rate(5)
        self._model_8k = Rate(3)

    def forward(self, x: torch.Tensor, sr: int) -> torch.Tensor:
        return self._model(x) if sr == 16000 else self._model_8k(x[:, :3])


def randomize(net: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def counts(net: nn.Module) -> dict[str, int]:
    """torch's parameter count of each module that holds parameters itself (not recurrent)."""
    return {name: sum(p.numel() for p in m.parameters(recurse=False))
            for name, m in net.named_modules()
            if not isinstance(m, nn.RNNBase | nn.RNNCellBase)
            and any(True for _ in m.parameters(recurse=False))}


def build(out: Path) -> None:
    front = Front()
    randomize(front, 1)
    front.eval()
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, 3)).astype(np.float32)
    with torch.no_grad():
        feats = front.features(torch.from_numpy(x))
        hidden, _ = front.lstm(feats)
    np.save(out / "front-lstm-input.npy", feats.numpy())
    np.save(out / "front-lstm-output.npy", hidden.numpy())
    torch.save(front, out / "front-whole.pt")
    torch.jit.save(torch.jit.script(front), out / "front-script.pt")

    rates = TwoRates()
    randomize(rates, 2)
    rates.eval()
    torch.jit.save(torch.jit.script(rates), out / "two_rates-script.pt")
    write_manifest(out, [
        {"name": "front", "files": {"whole": "front-whole.pt", "torchscript": "front-script.pt"},
         "input": "front-lstm-input.npy", "output": "front-lstm-output.npy",
         "before": ["conv1", "linear0"], "after": ["fc"], "parameters": counts(front)},
        {"name": "two_rates", "files": {"torchscript": "two_rates-script.pt"},
         "before": ["_model.encoder", "_model_8k.encoder"],
         "after": ["_model.decoder.decoder.2", "_model_8k.decoder.decoder.2"],
         "parameters": counts(rates)},
    ])


if __name__ == "__main__":
    build(Path(sys.argv[1]))
