"""Train the PyTorch sample model: the bracket-depth task of make_sample_models.py, in torch.

    python sample_models/make_torch_models.py

Needs torch and safetensors (the ``test`` extra); lstm-trace itself never does. The model::

    class BracketCounter(nn.Module):          # lstm: nn.LSTM(6, 8, batch_first=True)
        ...                                   # depth: nn.Linear(8, 1) on every step

is trained on the same data as ``brackets.keras`` (same generator, same seed) and written
next to this script as

- ``brackets_torch.pt``: a training checkpoint ``torch.save({"epoch", "model_state_dict",
  "optimizer_state_dict", "val_mae"})`` (the zip format);
- ``brackets_torch.safetensors``: the state_dict alone;
- ``brackets_torch_script.pt``: ``torch.jit.save(torch.jit.script(model))``;
- ``brackets_torch_reference.npz``: torch's own ``hidden`` and ``cell`` at every step of
  ``brackets_input.npy`` (an ``nn.LSTMCell`` with the same weights, stepped) and ``depth``;
- ``training_torch.json``: the settings and held-out results.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_sample_models import SEED, TOKENS, TRAIN_STEPS, UNITS, dataset  # noqa: E402

EPOCHS = 20


def main(out: Path = HERE) -> None:
    import torch
    from safetensors.torch import save_file
    from torch import nn

    class BracketCounter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(len(TOKENS), UNITS, batch_first=True)
            self.depth = nn.Linear(UNITS, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, _ = self.lstm(x)
            return self.depth(h)

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    _, x_train, y_train = dataset(rng, 6000, TRAIN_STEPS)
    _, x_val, y_val = dataset(rng, 500, TRAIN_STEPS)
    _, x_long, y_long = dataset(rng, 200, 4 * TRAIN_STEPS)
    model = BracketCounter()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    start = time.perf_counter()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(xt))
        for k in range(0, len(xt), 64):
            batch = order[k:k + 64]
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(xt[batch]), yt[batch])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val = nn.functional.mse_loss(model(torch.from_numpy(x_val)), torch.from_numpy(y_val))
        scheduler.step(val)
        print(f"epoch {epoch + 1}: loss {loss.item():.4f} val {val.item():.4f}")
    seconds = time.perf_counter() - start
    model.eval()

    def evaluate(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        with torch.no_grad():
            pred = model(torch.from_numpy(x)).numpy()
        return {"mae": float(np.abs(pred - y).mean()),
                "step_accuracy": float((np.rint(pred) == y).mean()),
                "sequence_accuracy": float((np.rint(pred) == y).all(axis=(1, 2)).mean())}

    results = {"held_out_40_steps": evaluate(x_val, y_val),
               "held_out_160_steps": evaluate(x_long, y_long)}
    print(json.dumps(results, indent=1))

    state = model.state_dict()
    torch.save({"epoch": EPOCHS, "model_state_dict": state,
                "optimizer_state_dict": optimizer.state_dict(),
                "val_mae": results["held_out_40_steps"]["mae"]}, out / "brackets_torch.pt")
    save_file(dict(state), out / "brackets_torch.safetensors")
    torch.jit.save(torch.jit.script(model), out / "brackets_torch_script.pt")

    sample = torch.from_numpy(np.load(out / "brackets_input.npy"))
    cell = nn.LSTMCell(len(TOKENS), UNITS)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(model.lstm, f"{name}_l0"))
        h = c = torch.zeros(1, UNITS)
        hidden, cells = [], []
        for t in range(sample.shape[0]):
            h, c = cell(sample[t][None], (h, c))
            hidden.append(h[0].numpy())
            cells.append(c[0].numpy())
        depth = model(sample[None])[0].numpy()
        output, _ = model.lstm(sample[None])
    hidden_a = np.stack(hidden)[None]
    assert np.abs(hidden_a - output.numpy()).max() < 1e-6
    np.savez(out / "brackets_torch_reference.npz", hidden=hidden_a, cell=np.stack(cells)[None],
             depth=depth[None])
    info = {"task": "nesting depth after each character (as brackets.keras)",
            "units": UNITS, "train_sequences": len(x_train), "train_steps": TRAIN_STEPS,
            "epochs": EPOCHS, "optimizer": "Adam lr 0.01, halved on plateaus", "batch": 64,
            "train_seconds": round(seconds, 1), "results": results,
            "torch_version": torch.__version__, "seed": SEED}
    (out / "training_torch.json").write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
