# ruff: noqa: E402, E702 - a script run top to bottom in its own TensorFlow process
"""Write TF checkpoints plus TensorFlow's own reading of them (reference.json / .npz).

    python tf_bundle_checkpoints.py OUTDIR

Run by ``tests/test_tf_bundle.py`` through ``conftest.build_fixtures`` (cached); the
empty ``manifest.json`` marks a complete build.
"""
import json
import os
import sys

import numpy as np
import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 3)
out = sys.argv[1]
rng = np.random.default_rng(0)

def var(value, dtype=None):
    return tf.Variable(tf.constant(value, dtype=dtype) if dtype is not None else value)

vals = {
    "f16": var(np.array([1.0, -2.5, 65504.0, 6e-8, np.inf, -0.0, np.nan], np.float16)),
    "bf16": var([1.0, -3.140625, 1e30, 1e-30, float("nan"), -0.0, 9.2e-41], tf.bfloat16),
    "f32": var(rng.standard_normal((5, 7)).astype(np.float32)),
    "f64": var(rng.standard_normal((3, 2, 2))),
    "b": var(np.array([[True, False], [False, True]])),
    "c64": var(np.array([1 + 2j, -3j], np.complex64)),
    "c128": var(np.array([1 + 2j, -3j], np.complex128)),
    "scalar": var(3.5),
    "empty": var(np.zeros((0, 3), np.float32)),
    "s": var(b"hello\x00world"),
    "sarr": var([[b"a", b""], [b"x" * 300, b"\xff"]]),
    "big": var(rng.standard_normal((1024, 1024)).astype(np.float32)),
}
for name in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]:
    info = np.iinfo(name)
    vals[name] = var(np.array([info.min, info.max, 0, 1], dtype=name))
ckpt = tf.train.Checkpoint(**vals)
ckpt.write(os.path.join(out, "dtypes", "ckpt"))

manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(w=tf.Variable([1.0, 2.0])), os.path.join(out, "managed"), max_to_keep=3
)
manager.checkpoint.w.assign([3.0, 4.0]); manager.save()
manager.checkpoint.w.assign([5.0, 6.0]); manager.save()

policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=1000)
sharded = tf.train.Checkpoint(
    big=tf.Variable(rng.standard_normal((40, 30)).astype(np.float32)),
    small=tf.Variable([1.0, 2.0]),
    half=tf.Variable(rng.standard_normal((30, 20)).astype(np.float16)),
)
sharded.write(
    os.path.join(out, "maxsize", "ckpt"),
    options=tf.train.CheckpointOptions(experimental_sharding_callback=policy),
)

graph = tf.Graph()
with graph.as_default():
    init = tf.compat.v1.random_normal_initializer()
    with tf.device("/CPU:0"):
        tf.compat.v1.get_variable(
            "rnn/part", shape=[10, 4], initializer=init,
            partitioner=tf.compat.v1.fixed_size_partitioner(3),
        )
    with tf.device("/CPU:1"):
        tf.compat.v1.get_variable("rnn/other", shape=[3], initializer=init)
        tf.compat.v1.get_variable(
            "rnn/cols", shape=[2, 9], initializer=init,
            partitioner=tf.compat.v1.fixed_size_partitioner(2, axis=1),
        )
    saver = tf.compat.v1.train.Saver(sharded=True)
    os.makedirs(os.path.join(out, "tf1"), exist_ok=True)
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        saver.save(sess, os.path.join(out, "tf1", "model.ckpt"), global_step=3)

import tf_keras

model = tf_keras.Sequential([
    tf_keras.layers.InputLayer(input_shape=(5, 3)),
    tf_keras.layers.LSTM(4, return_sequences=True, name="lstm"),
    tf_keras.layers.Bidirectional(tf_keras.layers.GRU(3), name="bidi"),
    tf_keras.layers.Dense(2, name="dense"),
])
model.compile(optimizer="adam", loss="mse")
model.fit(np.ones((2, 5, 3), np.float32), np.ones((2, 2), np.float32), epochs=1, verbose=0)
model.save_weights(os.path.join(out, "keras", "weights"))

from tensorflow.core.protobuf import trackable_object_graph_pb2

# TF's own reader cannot reassemble a sliced float16 tensor ("Dtype half not
# supported" in GetSliceValue); the in-memory value is the reference there.
fallback = {"half/.ATTRIBUTES/VARIABLE_VALUE": sharded.half.numpy()}
reference, arrays = {}, {}
for name, prefix in [
    ("dtypes", "dtypes/ckpt"), ("managed", "managed/ckpt-2"), ("maxsize", "maxsize/ckpt"),
    ("tf1", "tf1/model.ckpt-3"), ("keras", "keras/weights"),
]:
    reader = tf.train.load_checkpoint(os.path.join(out, prefix))
    tensors = {}
    for key, dtype in reader.get_variable_to_dtype_map().items():
        try:
            value = reader.get_tensor(key)
        except ValueError:
            value = fallback[key]
        info = {"dtype": dtype.name, "shape": list(reader.get_variable_to_shape_map()[key])}
        if dtype == tf.string:
            flat = np.asarray(value, dtype=object).ravel()
            info["strings"] = [bytes(v).hex() for v in flat]
        else:
            if dtype == tf.bfloat16:
                value = np.asarray(value).astype(np.float32)
            slot = f"a{len(arrays)}"
            arrays[slot] = np.asarray(value)
            info["array"] = slot
        tensors[key] = info
    nodes = None
    if reader.has_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"):
        proto = trackable_object_graph_pb2.TrackableObjectGraph()
        proto.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        nodes = [
            {
                "children": [[c.node_id, c.local_name] for c in n.children],
                "attributes": [
                    [a.name, a.full_name, a.checkpoint_key, getattr(a, "optional_restore", False)]
                    for a in n.attributes
                ],
                "slots": [
                    [s.original_variable_node_id, s.slot_name, s.slot_variable_node_id]
                    for s in n.slot_variables
                ],
            }
            for n in proto.nodes
        ]
    reference[name] = {"prefix": prefix, "tensors": tensors, "graph": nodes}
np.savez(os.path.join(out, "reference.npz"), **arrays)
with open(os.path.join(out, "reference.json"), "w") as fh:
    json.dump(reference, fh)
with open(os.path.join(out, "manifest.json"), "w") as fh:
    json.dump({"cases": []}, fh)
