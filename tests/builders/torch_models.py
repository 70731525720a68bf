"""Build PyTorch recurrent modules, save them in every file kind, and record torch's own states.

Run as ``python torch_models.py OUTDIR`` (tests/conftest.py ``build_fixtures`` caches it).
For each case in :data:`CASES` it writes the module with random weights as:

    sd_zip        torch.save(net.state_dict())                      zip format
    checkpoint    torch.save({"epoch", "model_state_dict", "optimizer_state_dict", "loss"})
    lightning     torch.save({"state_dict": {"model." + k: v}, "hyper_parameters", ...})
    whole         torch.save(net)                                   a pickled module
    legacy        torch.save(state_dict, _use_new_zipfile_serialization=False)
    safetensors   safetensors.torch.save_file(state_dict)
    torchscript   torch.jit.save(torch.jit.script(net))

and the reference states: for every layer and direction a single-layer torch module with
that layer's weights is stepped one input at a time (``module(x_t, (h, c))``), so
``hidden`` and ``cell`` are torch's own values at every step; the last layer's stepped
``hidden`` is checked against the full module's output before anything is written.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import torch
from common import write_manifest
from torch import nn
from torch_cases import CASES, FILE_KINDS

BATCH, STEPS, FEATURES = 3, 7, 4


class SeqNet(nn.Module):
    """A recurrent module under the attribute ``rnn`` (state_dict keys ``rnn.*``)."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out


class CellNet(nn.Module):
    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x[0])


class LSTMCellNet(nn.Module):
    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, c = self.rnn(x[0])
        return h + c


class Tagger(nn.Module):
    """Embedding -> LSTM -> Linear, the shape of a typical sequence model."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 5)
        self.lstm = nn.LSTM(5, 6, batch_first=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(ids))
        return self.fc(out)


class EncoderDecoder(nn.Module):
    """Two recurrent modules that chain (encoder -> bidirectional decoder) and one that does not
    (``side`` takes its own 3-feature input): a state_dict cannot say which is which."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.LSTM(FEATURES, 6, batch_first=True)
        self.decoder = nn.LSTM(6, 5, batch_first=True, bidirectional=True)
        self.side = nn.GRU(3, 2, batch_first=True)

    def forward(self, x: torch.Tensor, side: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.encoder(x)
        y, _ = self.decoder(h)
        s, _ = self.side(side)
        return y, s


def _cases() -> dict[str, tuple]:
    """name -> (factory, path of the recurrent module, input kind)."""
    return {
        "lstm": (lambda: SeqNet(nn.LSTM(FEATURES, 6)), "rnn"),
        "lstm_batch_first": (lambda: SeqNet(nn.LSTM(FEATURES, 6, num_layers=2, batch_first=True)),
                             "rnn"),
        "lstm_proj_bi": (lambda: SeqNet(nn.LSTM(FEATURES, 8, num_layers=2, proj_size=3,
                                                bidirectional=True)), "rnn"),
        "lstm_3_layers_bi": (lambda: SeqNet(nn.LSTM(FEATURES, 5, num_layers=3,
                                                    bidirectional=True, batch_first=True)), "rnn"),
        "lstm_no_bias": (lambda: SeqNet(nn.LSTM(FEATURES, 6, bias=False)), "rnn"),
        "gru_bi": (lambda: SeqNet(nn.GRU(FEATURES, 6, num_layers=2, bidirectional=True)), "rnn"),
        "gru_no_bias": (lambda: SeqNet(nn.GRU(FEATURES, 5, bias=False)), "rnn"),
        "rnn_tanh": (lambda: SeqNet(nn.RNN(FEATURES, 6, num_layers=2)), "rnn"),
        "rnn_relu": (lambda: SeqNet(nn.RNN(FEATURES, 6, nonlinearity="relu")), "rnn"),
        "lstm_cell": (lambda: LSTMCellNet(nn.LSTMCell(FEATURES, 6)), "rnn"),
        "gru_cell": (lambda: CellNet(nn.GRUCell(FEATURES, 6)), "rnn"),
        "rnn_cell_relu": (lambda: CellNet(nn.RNNCell(FEATURES, 6, nonlinearity="relu")), "rnn"),
        "tagger": (Tagger, "lstm"),
        "bare_lstm": (lambda: nn.LSTM(FEATURES, 6, num_layers=2), ""),
        "encoder_decoder": (EncoderDecoder, "encoder"),
        "lstm_half": (lambda: SeqNet(nn.LSTM(FEATURES, 6, num_layers=2)), "rnn"),
        "gru_bfloat16": (lambda: SeqNet(nn.GRU(FEATURES, 6, bidirectional=True)), "rnn"),
    }


def randomize(module: nn.Module, seed: int) -> None:
    """Normal weights (std 1.2/sqrt(fan_in) for matrices, 0.6 for vectors): saturated gates."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            std = 1.2 / np.sqrt(p.shape[1]) if p.ndim == 2 else 0.6
            p.copy_(torch.randn(p.shape, generator=gen) * std)


def _recurrent(net: nn.Module, path: str) -> nn.Module:
    return net if not path else getattr(net, path)


def _step_module(rnn: nn.Module, k: int, suffix: str) -> nn.Module:
    """A one-layer, one-direction copy of layer ``k`` (``suffix`` ``_reverse``) of ``rnn``."""
    kwargs = {"bias": rnn.bias}
    if isinstance(rnn, nn.LSTM) and rnn.proj_size:
        kwargs["proj_size"] = rnn.proj_size
    if isinstance(rnn, nn.RNN):
        kwargs["nonlinearity"] = rnn.nonlinearity
    in_size = getattr(rnn, f"weight_ih_l{k}{suffix}").shape[1]
    single = type(rnn)(in_size, rnn.hidden_size, **kwargs)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
            source = getattr(rnn, f"{name}_l{k}{suffix}", None)
            if source is not None:
                getattr(single, f"{name}_l0").copy_(source)
    return single


def _run_steps(module: nn.Module, x: torch.Tensor, reverse: bool, stacked: bool) -> dict:
    """Step ``module`` over ``x`` (batch, steps, in); states at input positions."""
    batch, steps, _ = x.shape
    state = None
    hidden, cells = [None] * steps, [None] * steps
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        if stacked:
            _, state = module(x[:, t][None], state)
            h, c = state if isinstance(state, tuple) else (state, None)
            h, c = h[0], None if c is None else c[0]
        else:
            state = module(x[:, t], state)
            h, c = state if isinstance(state, tuple) else (state, None)
        hidden[t], cells[t] = h, c
    out = {"hidden": torch.stack(hidden, 1).numpy()}
    if cells[0] is not None:
        out["cell"] = torch.stack(cells, 1).numpy()
    return out


def reference(rnn: nn.Module, path: str, x: torch.Tensor, default_name: str) -> dict:
    """torch's states of every layer/direction, keyed like lstm-trace's trace keys."""
    name = path or default_name
    out: dict[str, np.ndarray] = {}
    if isinstance(rnn, (nn.LSTMCell, nn.GRUCell, nn.RNNCell)):
        for q, v in _run_steps(rnn, x, False, stacked=False).items():
            out[f"{name}/{q}"] = v
        return out
    layer_in = x
    directions = [("forward", "")] + ([("backward", "_reverse")] if rnn.bidirectional else [])
    for k in range(rnn.num_layers):
        parts = []
        for direction, suffix in directions:
            states = _run_steps(_step_module(rnn, k, suffix), layer_in, bool(suffix), stacked=True)
            prefix = f"{name}/l{k}" + (f"/{direction}" if rnn.bidirectional else "")
            for q, v in states.items():
                out[f"{prefix}/{q}"] = v
            parts.append(torch.from_numpy(states["hidden"]))
        layer_in = torch.cat(parts, -1)
    full, _ = rnn(x if rnn.batch_first else x.transpose(0, 1))
    full = full if rnn.batch_first else full.transpose(0, 1)
    np.testing.assert_allclose(layer_in.numpy(), full.detach().numpy(), atol=1e-6)
    return out


#: Cases saved in a reduced precision (their float32 weights are rounded to it first).
SAVED_DTYPES = {"lstm_half": torch.float16, "gru_bfloat16": torch.bfloat16}


def save_all(net: nn.Module, out: Path, case: str) -> dict[str, dict]:
    """Write the module in every file kind; ``{kind: {"file", "path_prefix"}}``."""
    from safetensors.torch import save_file

    trained = net
    if case in SAVED_DTYPES:
        net = copy.deepcopy(net).to(SAVED_DTYPES[case])
    state = copy.deepcopy(net.state_dict())  # an OrderedDict with _metadata, as torch saves it
    files: dict[str, dict] = {}

    def put(kind: str, file: str, prefix: str = "") -> None:
        files[kind] = {"file": file, "path_prefix": prefix}

    torch.save(state, out / f"{case}.pt")
    put("sd_zip", f"{case}.pt")
    twin = copy.deepcopy(trained)  # a real optimizer state, without touching the saved weights
    optimizer = torch.optim.Adam(twin.parameters())
    inputs = {"tagger": (torch.zeros(1, 2, dtype=torch.long),),
              "encoder_decoder": (torch.zeros(1, 2, FEATURES), torch.zeros(1, 2, 3))}
    result = twin(*inputs.get(case, (torch.zeros(1, 2, FEATURES),)))
    outputs = result if isinstance(result, tuple) else (result,)
    sum(o.sum() for o in outputs if isinstance(o, torch.Tensor)).backward()
    optimizer.step()
    torch.save({"epoch": 3, "model_state_dict": state, "optimizer_state_dict":
                optimizer.state_dict(), "loss": 0.25}, out / f"{case}-checkpoint.pth")
    put("checkpoint", f"{case}-checkpoint.pth")
    lightning = {f"model.{k}": v for k, v in state.items()}
    torch.save({"epoch": 1, "global_step": 10, "pytorch-lightning_version": "2.1.0",
                "state_dict": lightning, "hyper_parameters": {"lr": 0.001},
                "callbacks": {}, "optimizer_states": [optimizer.state_dict()]},
               out / f"{case}-lightning.ckpt")
    put("lightning", f"{case}-lightning.ckpt", "model")
    torch.save(net, out / f"{case}-whole.pt")
    put("whole", f"{case}-whole.pt")
    torch.save(state, out / f"{case}-legacy.pt", _use_new_zipfile_serialization=False)
    put("legacy", f"{case}-legacy.pt")
    torch.save(net, out / f"{case}-whole-p4.pt", pickle_protocol=4)
    put("whole_protocol4", f"{case}-whole-p4.pt")
    torch.save(state, out / f"{case}-legacy-p4.pt", _use_new_zipfile_serialization=False,
               pickle_protocol=4)
    put("legacy_protocol4", f"{case}-legacy-p4.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, out / f"{case}.safetensors")
    put("safetensors", f"{case}.safetensors")
    torch.jit.save(torch.jit.script(net), out / f"{case}-script.pt")
    put("torchscript", f"{case}-script.pt")
    with torch.no_grad():  # traced in float32 (CPU kernels), on the same (rounded) values
        traced = torch.jit.trace(trained, inputs.get(case, (torch.zeros(1, 2, FEATURES),)),
                                 check_trace=False)
    torch.jit.save(traced, out / f"{case}-traced.pt")
    put("traced", f"{case}-traced.pt")
    # Frozen: parameters inlined into the code as constants (module names mostly lost).
    torch.jit.save(torch.jit.freeze(torch.jit.script(net.eval())), out / f"{case}-frozen.pt")
    assert set(files) == set(FILE_KINDS)
    return files


def build(out: Path) -> None:
    torch.manual_seed(0)
    manifest = []
    cases = _cases()
    assert tuple(cases) == CASES
    for seed, (case, (factory, path)) in enumerate(cases.items()):
        net = factory()
        randomize(net, seed + 1)
        net.eval()
        if case in SAVED_DTYPES:  # the reference runs on exactly the values the file stores
            with torch.no_grad():
                for p in net.parameters():
                    p.copy_(p.to(SAVED_DTYPES[case]).float())
        rnn = _recurrent(net, path)
        rng = np.random.default_rng(seed)
        if case == "tagger":
            ids = rng.integers(0, 20, size=(BATCH, STEPS))
            np.save(out / f"{case}-input.npy", ids)
            with torch.no_grad():
                x = net.embedding(torch.from_numpy(ids))
        else:
            x_np = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
            np.save(out / f"{case}-input.npy", x_np)
            x = torch.from_numpy(x_np)
        default = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}.get(type(rnn), "")
        separate = {}
        with torch.no_grad():
            ref = reference(rnn, path, x, default)
            if case == "encoder_decoder":
                encoded, _ = net.encoder(x)
                ref.update(reference(net.decoder, "decoder", encoded, ""))
                side = rng.standard_normal((BATCH, STEPS, 3)).astype(np.float32)
                np.save(out / f"{case}-side-input.npy", side)
                ref.update(reference(net.side, "side", torch.from_numpy(side), ""))
                separate["side"] = f"{case}-side-input.npy"
                # A seq2seq checkpoint of several state_dicts (as PyTorch's chatbot tutorial
                # saves one), with their optimizers' states beside them.
                adam = torch.optim.Adam(net.encoder.parameters())
                torch.save({"iteration": 4000, "encoder": net.encoder.state_dict(),
                            "decoder": net.decoder.state_dict(), "side": net.side.state_dict(),
                            "encoder_opt": adam.state_dict(), "loss": 0.5,
                            "voc_dict": {"word2index": {"a": 3}, "num_words": 4}},
                           out / f"{case}-split.tar")
        np.savez(out / f"{case}-reference.npz", **ref)
        files = save_all(net, out, case)
        stores_nonlinearity = ("whole", "whole_protocol4", "torchscript", "traced")
        relu = getattr(rnn, "nonlinearity", "tanh") == "relu"
        manifest.append({
            "name": case, "input": f"{case}-input.npy", "reference": f"{case}-reference.npz",
            "module": type(rnn).__name__, "module_path": path, "default_name": default,
            "files": files,
            "frozen": f"{case}-frozen.pt",
            # Modules that are not chained: traced on their own input (--layer-input).
            "separate": separate,
            "activation_option": {kind: "relu" for kind in files
                                  if relu and kind not in stores_nonlinearity},
            # what torch counts in the recurrent modules (sum of numel of their parameters)
            "recurrent_parameters": sum(p.numel() for m in net.modules()
                                        if isinstance(m, (nn.RNNBase, nn.RNNCellBase))
                                        for p in m.parameters(recurse=False)),
        })
    write_manifest(out, manifest)


if __name__ == "__main__":
    build(Path(sys.argv[1]))
