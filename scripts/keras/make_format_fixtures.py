"""Writes the Keras file-format fixtures of test/frontend/keras-archive.test.ts.

Run (Keras 3, any backend; TF_CPP_MIN_LOG_LEVEL=3 quiets TensorFlow):

    TF_CPP_MIN_LOG_LEVEL=3 /work/venv/bin/python scripts/keras/make_format_fixtures.py

into test/fixtures/keras/format/:

- ``<model>.keras`` (what ``model.save`` writes: a zip of config.json,
  metadata.json and model.weights.h5) and ``<model>.h5`` (the legacy HDF5
  format) for five tiny models: ``seq`` (a Sequential Dense, BatchNormalization,
  Dense), ``conv`` (functional: Conv2D, BatchNormalization, ReLU, Add with a 1x1
  projection, global pooling, Dense), ``shared`` (functional: one Dense layer
  applied twice), plus ``nested`` (a Sequential inside a functional model, with two
  batch norms, so a legacy file lists its weights trainable first across layers, and
  a Dense named as the outer model's, so modelc renames it and finds its weights by
  its Keras path), and ``ops`` (Keras 3 operator layers with constants: MobileNetV3's
  hard swish ``h * ReLU(6)(h + 3) * (1/6)``, ``1 - h``, ``/ 2`` and ``-h``; a legacy
  ``.h5`` writes these without their module, as ``{"class_name": "Add", "config":
  {"name": "add"}}`` called with ``[tensor, 3.0]``).
- ``expected.json``: per model, a fixed input and Keras's ``model.predict``
  output for it (float32 values as JSON numbers).
- Broken files, each for one diagnostic: ``weights-only.h5`` (``save_weights``:
  HDF5 without ``model_config``), ``missing-layer.keras`` (seq with the second
  Dense's variables deleted), ``float16.keras`` (seq with one variable stored as
  float16).

Weights are seeded random values (batch norm statistics included, moving
variance in [0.5, 2], so no layer is the identity). This format coverage is
small on purpose; the per-layer and keras.applications fixtures live elsewhere.
"""
import json
import os
import shutil
import tempfile
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "keras", "format")


def seq_model():
    return keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(3, activation="relu", name="d1"),
            layers.BatchNormalization(name="bn"),
            layers.Dense(2, name="d2"),
        ],
        name="seq",
    )


def conv_model():
    x = keras.Input((5, 5, 2), name="image")
    h = layers.Conv2D(3, 3, padding="same", name="conv")(x)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.ReLU(name="relu")(h)
    skip = layers.Conv2D(3, 1, name="proj")(x)
    h = layers.Add(name="add")([h, skip])
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    return keras.Model(x, layers.Dense(2, name="logits")(h), name="conv")


def shared_model():
    x = keras.Input((3,), name="x")
    d = layers.Dense(3, activation="tanh", name="twice")
    return keras.Model(x, layers.Dense(2, name="out")(d(d(x))), name="shared")


def nested_model():
    inner = keras.Sequential(
        [keras.Input((3,)), layers.Dense(4, name="head"), layers.BatchNormalization(name="nbn"), layers.BatchNormalization(name="nbn2")],
        name="inner",
    )
    x = keras.Input((3,), name="x")
    return keras.Model(x, layers.Dense(2, name="head")(inner(x)), name="nested")


def ops_model():
    """Keras 3 operator layers with constant operands (MobileNetV3's hard swish, and the rest)."""
    x = keras.Input((4, 4, 2), name="image")
    h = layers.Conv2D(3, 1, name="conv")(x)
    gate = layers.ReLU(6.0, name="relu6")(h + 3.0) * (1.0 / 6.0)
    h = layers.Multiply(name="hard_swish")([h, gate])
    h = -((1.0 - h) / 2.0)
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    return keras.Model(x, layers.Dense(2, name="logits")(h), name="ops")


def randomize(model, rng):
    """Seeded values for every variable; variances positive and away from 0."""
    for layer in model.layers:
        values = []
        for w in layer.weights:
            shape = tuple(w.shape)
            if w.name == "moving_variance":
                values.append(rng.uniform(0.5, 2.0, shape))
            elif w.name == "gamma":
                values.append(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 1.5, shape))
            else:
                values.append(rng.uniform(-1.0, 1.0, shape))
        if values:
            layer.set_weights([v.astype(np.float32) for v in values])


def rewrite_weights(src, dst, edit):
    """Copies a .keras archive with its model.weights.h5 changed by ``edit(h5file)``."""
    with tempfile.TemporaryDirectory() as tmp:
        h5_path = os.path.join(tmp, "model.weights.h5")
        with zipfile.ZipFile(src) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        with open(h5_path, "wb") as f:
            f.write(entries["model.weights.h5"])
        with h5py.File(h5_path, "r+") as f:
            edit(f)
        # h5py leaves the freed space in the file; a copy compacts it
        compact = os.path.join(tmp, "compact.h5")
        with h5py.File(h5_path, "r") as f, h5py.File(compact, "w") as g:
            for k in f.keys():
                f.copy(f[k], g, name=k)
            for k, v in f.attrs.items():
                g.attrs[k] = v
        with open(compact, "rb") as f:
            entries["model.weights.h5"] = f.read()
        with zipfile.ZipFile(dst, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)


def to_float16(f):
    var = f["layers/dense/vars/1"]
    data = var[()].astype(np.float16)
    del f["layers/dense/vars/1"]
    f["layers/dense/vars"].create_dataset("1", data=data)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261204)
    expected = {}
    models = {"seq": seq_model(), "conv": conv_model(), "shared": shared_model(), "nested": nested_model(), "ops": ops_model()}
    for name, model in models.items():
        randomize(model, rng)
        model.save(os.path.join(OUT, f"{name}.keras"))
        model.save(os.path.join(OUT, f"{name}.h5"))
        x = rng.uniform(-1.0, 1.0, (2, *model.input_shape[1:])).astype(np.float32)
        y = model.predict(x, verbose=0)
        expected[name] = {
            "input": {"shape": list(x.shape), "data": [float(v) for v in x.ravel()]},
            "output": {"shape": list(y.shape), "data": [float(v) for v in y.ravel()]},
        }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")

    seq = os.path.join(OUT, "seq.keras")
    models["seq"].save_weights(os.path.join(OUT, "weights-only.weights.h5"))
    shutil.move(os.path.join(OUT, "weights-only.weights.h5"), os.path.join(OUT, "weights-only.h5"))
    rewrite_weights(seq, os.path.join(OUT, "missing-layer.keras"), lambda f: f.__delitem__("layers/dense_1"))
    rewrite_weights(seq, os.path.join(OUT, "float16.keras"), to_float16)


if __name__ == "__main__":
    main()
