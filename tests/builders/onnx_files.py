"""ONNX files for the CLI and hostile-file tests, written with onnx.helper.

    python onnx_files.py OUTDIR

- ``lstm.onnx``: a bidirectional LSTM node (inputs X, sequence_lens) with ``feeds.npz``
  and ``x.npy``; ``external/lstm.onnx`` the same model with its weights in
  ``external/weights.bin`` (``data_location=EXTERNAL``); ``reference.npz`` onnxruntime's Y.
- ``gru.onnx``: a forward GRU node taking only X; ``gru_x.npy`` its input.
- hostile: ``escape/model.onnx`` (external data ``../secret.bin``), ``absolute/model.onnx``
  (``/etc/hostname``), ``short_external/model.onnx`` (external file shorter than
  declared), ``short_raw.onnx`` (raw_data shorter than its dims), ``huge_dims.onnx``
  (dims of 2**40 values), ``truncated.onnx`` (a valid file cut short), ``no_rnn.onnx``
  (a graph without recurrent nodes), ``unsupported_front.onnx`` (an Erf node before the
  LSTM), ``bad_hidden_size.onnx``, ``bad_clip.onnx``, ``bad_direction.onnx`` (attributes of
  the wrong type or value); ``seq2seq.onnx`` (an encoder LSTM whose Y_h, Y_c start a
  decoder LSTM on a second graph input) with ``seq2seq_feeds.npz`` and onnxruntime's
  decoder ``Y`` in ``seq2seq_reference.npy``; ``qdq.onnx`` (an LSTM whose W and R are
  int8 tensors behind DequantizeLinear) fed ``x.npy``, onnxruntime's Y in
  ``qdq_reference.npy``; ``lstm_in_if.onnx`` (the LSTM only inside an ``If`` branch).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(out: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    T, B, I, H = 6, 2, 3, 4

    def lstm_model(front=None):
        W = (rng.standard_normal((2, 4 * H, I)) * 0.6).astype(np.float32)
        R = (rng.standard_normal((2, 4 * H, H)) * 0.4).astype(np.float32)
        Bb = (rng.standard_normal((2, 8 * H)) * 0.3).astype(np.float32)
        nodes = []
        x = "X"
        if front:
            nodes.append(helper.make_node(front, ["X"], ["X_f"], name="front"))
            x = "X_f"
        nodes.append(helper.make_node("LSTM", [x, "W", "R", "B", "sequence_lens"], ["Y", "Y_h", "Y_c"],
                                      name="encoder", hidden_size=H, direction="bidirectional"))
        graph = helper.make_graph(
            nodes, "g",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["steps", "batch", I]),
             helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["batch"])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None] * 4)],
            [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
             numpy_helper.from_array(Bb, "B")])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])

    model = lstm_model()
    onnx.save(model, out / "lstm.onnx")
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lens = np.array([6, 3], dtype=np.int32)
    np.savez(out / "feeds.npz", X=x, sequence_lens=lens)
    np.save(out / "x.npy", x)
    y = ort.InferenceSession(str(out / "lstm.onnx")).run(None, {"X": x, "sequence_lens": lens})[0]
    np.savez(out / "reference.npz", Y=y)
    (out / "external").mkdir()
    onnx.save(model, out / "external" / "lstm.onnx", save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)

    W = (rng.standard_normal((1, 3 * H, I)) * 0.6).astype(np.float32)
    R = (rng.standard_normal((1, 3 * H, H)) * 0.4).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GRU", ["X", "W", "R"], ["Y"], hidden_size=H, linear_before_reset=1)], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["steps", 1, I])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None] * 4)],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), out / "gru.onnx")
    np.save(out / "gru_x.npy", rng.standard_normal((5, 1, I)).astype(np.float32))

    def external(directory: str, location: str, length: int | None = None) -> None:
        m = lstm_model()
        t = m.graph.initializer[0]
        data = t.raw_data or numpy_helper.to_array(t).tobytes()
        t.ClearField("float_data")
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        entries = {"location": location, "offset": "0"}
        if length is not None:
            entries["length"] = str(length)
        for k, v in entries.items():
            e = t.external_data.add()
            e.key, e.value = k, v
        (out / directory).mkdir()
        (out / directory / "model.onnx").write_bytes(m.SerializeToString())
        return data

    data = external("escape", "../secret.bin")
    (out / "secret.bin").write_bytes(data)
    external("absolute", "/etc/hostname")
    data = external("short_external", "w.bin", None)
    (out / "short_external" / "w.bin").write_bytes(data[:-8])

    m = lstm_model()
    t = m.graph.initializer[1]
    t.raw_data = numpy_helper.to_array(t).tobytes()[:-4]
    (out / "short_raw.onnx").write_bytes(m.SerializeToString())
    m = lstm_model()
    t = m.graph.initializer[1]
    del t.dims[:]
    t.dims.extend([1 << 20, 1 << 20])
    (out / "huge_dims.onnx").write_bytes(m.SerializeToString())
    whole = lstm_model().SerializeToString()
    (out / "truncated.onnx").write_bytes(whole[: len(whole) - 37])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["X"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])])
    onnx.save(helper.make_model(graph), out / "no_rnn.onnx")
    onnx.save(lstm_model(front="Erf"), out / "unsupported_front.onnx")
    for name, attribute in (("bad_hidden_size", helper.make_attribute("hidden_size", [1, 2])),
                            ("bad_clip", helper.make_attribute("clip", "wide")),
                            ("bad_direction", helper.make_attribute("direction", "sideways"))):
        m = lstm_model()
        lstm = m.graph.node[0]
        kept = [a for a in lstm.attribute if a.name != attribute.name]
        del lstm.attribute[:]
        lstm.attribute.extend(kept + [attribute])
        (out / f"{name}.onnx").write_bytes(m.SerializeToString())
    # An encoder-decoder: the decoder (its own graph input) starts from the encoder's Y_h, Y_c.
    enc = [(rng.standard_normal(s) * 0.5).astype(np.float32) for s in ((1, 4 * H, I), (1, 4 * H, H))]
    dec = [(rng.standard_normal(s) * 0.5).astype(np.float32) for s in ((1, 4 * H, 2), (1, 4 * H, H))]
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["src", "We", "Re"], ["Ye", "He", "Ce"], name="encoder",
                          hidden_size=H),
         helper.make_node("LSTM", ["tgt", "Wd", "Rd", "", "", "He", "Ce"], ["Yd"], name="decoder",
                          hidden_size=H)], "seq2seq",
        [helper.make_tensor_value_info("src", TensorProto.FLOAT, ["steps", "batch", I]),
         helper.make_tensor_value_info("tgt", TensorProto.FLOAT, ["out_steps", "batch", 2])],
        [helper.make_tensor_value_info("Yd", TensorProto.FLOAT, [None] * 4)],
        [numpy_helper.from_array(a, n) for a, n in zip(enc + dec, ["We", "Re", "Wd", "Rd"], strict=True)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]),
              out / "seq2seq.onnx")
    seq2seq = {"src": rng.standard_normal((T, B, I)).astype(np.float32),
               "tgt": rng.standard_normal((4, B, 2)).astype(np.float32)}
    np.savez(out / "seq2seq_feeds.npz", **seq2seq)
    np.save(out / "seq2seq_reference.npy",
            ort.InferenceSession(str(out / "seq2seq.onnx")).run(None, seq2seq)[0])
    # A quantized (QDQ) LSTM: W dequantized per output row, R per tensor.
    wq = rng.integers(-127, 128, (1, 4 * H, I)).astype(np.int8)
    rq = rng.integers(-127, 128, (1, 4 * H, H)).astype(np.int8)
    w_scale = (rng.random(4 * H) * 0.01 + 0.002).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["Wq", "w_scale"], ["W"], axis=1),
         helper.make_node("DequantizeLinear", ["Rq", "r_scale", "r_zero"], ["R"]),
         helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="qlstm", hidden_size=H)], "qdq",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["steps", "batch", I])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None] * 4)],
        [numpy_helper.from_array(wq, "Wq"), numpy_helper.from_array(rq, "Rq"),
         numpy_helper.from_array(w_scale, "w_scale"),
         numpy_helper.from_array(np.array(0.004, np.float32), "r_scale"),
         numpy_helper.from_array(np.array(3, np.int8), "r_zero")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), out / "qdq.onnx")
    np.save(out / "qdq_reference.npy", ort.InferenceSession(str(out / "qdq.onnx")).run(None, {"X": x})[0])
    # An LSTM only inside an If branch (as silero-vad's models choose a sampling rate).
    inner = lstm_model()
    branch = helper.make_graph(list(inner.graph.node), "then", [],
                               [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Identity", ["X"], ["Y_else"])], "else", [],
                              [helper.make_tensor_value_info("Y_else", TensorProto.FLOAT, None)])
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["out"], name="rate_switch", then_branch=branch,
                          else_branch=other)],
        "g", [*inner.graph.input, helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        list(inner.graph.initializer))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]),
              out / "lstm_in_if.onnx")
    (out / "manifest.json").write_text(json.dumps({"cases": []}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
