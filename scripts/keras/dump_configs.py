"""Writes the Keras 3 model configs of test/frontend/keras3-config*.test.ts.

Run (Keras 3; TF_CPP_MIN_LOG_LEVEL=3 quiets TensorFlow):

    TF_CPP_MIN_LOG_LEVEL=3 /work/venv/bin/python scripts/keras/dump_configs.py

into test/fixtures/keras/config/:

- ``<name>.json``: ``model.to_json()`` of a small model built with one group
  of Keras 3 config constructs, indented one space per level (what
  importKerasConfig reads; the tests locate diagnostics in it by line and
  column, so regenerating may move them: the tests find the lines by content).
- ``<name>.io.json`` for the models whose meaning the tests check by value:
  ``{"inputs": [[...]], "outputs": [[...]]}``, a fixed input batch and Keras's
  ``model.predict`` output for it. These models have no weights (operators,
  activations), so nothing else has to be shared.

The constructs: Keras 3 operator layers with a constant and between tensors
(``operators``), activation strings whose meaning changed in Keras 3
(``activations``), nested models (``nested``), initializers and call
a Sequential in a Sequential (``nested_sequential``), initializers and call
arguments that only training can tell apart (``training_only``), and one
model per refusal (``refuse_*``).
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import initializers, layers, ops  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "keras", "config")


def write(name, model, inputs=None):
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(json.loads(model.to_json()), f, indent=1)
        f.write("\n")
    if inputs is None:
        return
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    io = {
        "inputs": [np.asarray(x, "float32").tolist() for x in inputs],
        "outputs": [np.asarray(y, "float32").tolist() for y in outputs],
    }
    with open(os.path.join(OUT, f"{name}.io.json"), "w") as f:
        json.dump(io, f)
        f.write("\n")


def operators():
    """x + c, c + x, x - c, c - x, x * c, x / c, -x; x * y, x + y, x - y."""
    x = keras.Input((5,), name="x")
    y = keras.Input((5,), name="y")
    outs = [x + 3, 3 + x, x - 2, 3 - x, x * (1 / 6), x / 6, -x, x * y, x + y, x - y]
    model = keras.Model([x, y], outs, name="operators")
    grid = np.linspace(-4, 4, 5, dtype="float32")
    return model, [np.stack([grid, grid[::-1]]), np.stack([grid[::-1] * 0.5, grid + 1])]


def activations():
    """Activation strings on their own and MobileNetV3's hard sigmoid spelled with operators."""
    x = keras.Input((9,), name="x")
    names = ["hard_sigmoid", "leaky_relu", "gelu", "hard_silu", "hard_swish", "relu6", "silu", "swish", "elu"]
    outs = [layers.Activation(n, name=f"act_{n}")(x) for n in names]
    outs.append(layers.ReLU(6.0, name="relu6_layer")(x + 3.0) * (1.0 / 6.0))
    outs.append(layers.LeakyReLU(name="leaky_layer")(x))
    model = keras.Model(x, outs, name="activations")
    grid = np.linspace(-4.5, 4.5, 9, dtype="float32")
    return model, [np.stack([grid, grid * 0.4])]


def nested():
    """A Sequential and a Functional inside a functional model; one inner name is also an outer name."""
    x = keras.Input((6,), name="x")
    seq = keras.Sequential([keras.Input((6,)), layers.Dense(4, name="seq_dense"), layers.ReLU(name="seq_relu")], name="block_seq")
    fi = keras.Input((4,), name="fn_in")
    fn = keras.Model(fi, layers.Dense(4, name="head")(fi) + fi, name="block_fn")
    h = fn(seq(x))
    out = layers.Dense(2, name="head")(h)
    return keras.Model(x, out, name="nested"), None


def nested_sequential():
    """A Sequential inside a Sequential, its layers with a Keras 3 activation string."""
    inner = keras.Sequential([layers.Dense(3, name="inner_dense"), layers.Activation("hard_sigmoid", name="inner_act")], name="inner")
    return keras.Sequential([keras.Input((4,)), layers.Dense(5, activation="relu", name="first"), inner, layers.Dense(2, name="last")], name="nested_sequential"), None


def training_only():
    """What only training can tell apart: initializers modelc cannot express, noise_shape, training=False."""
    x = keras.Input((4, 4, 3), name="x")
    h = layers.Conv2D(
        4, 3, padding="same", name="conv",
        kernel_initializer=initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="truncated_normal"),
    )(x)
    h = layers.BatchNormalization(name="bn")(h, training=False)
    h = layers.Dropout(0.2, noise_shape=(None, 1, 1, 1), name="drop")(h)
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    out = layers.Dense(3, name="dense", kernel_initializer=initializers.HeNormal(seed=3))(h)
    return keras.Model(x, out, name="training_only"), None


def refusals():
    """One model per refusal, each with the offending construct once."""
    x = keras.Input((4,), name="x")
    yield "refuse_dense_hard_sigmoid", keras.Model(x, layers.Dense(2, activation="hard_sigmoid", name="dense")(x))
    yield "refuse_mixed_precision", keras.Model(x, layers.Dense(2, dtype="mixed_float16", name="dense")(x))
    yield "refuse_training_true", keras.Model(x, layers.Dropout(0.5, name="drop")(x, training=True))
    yield "refuse_sqrt", keras.Model(x, ops.sqrt(x))
    y = keras.Input((4,), name="y")
    yield "refuse_divide_tensors", keras.Model([x, y], x / y)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, build in [("operators", operators), ("activations", activations), ("nested", nested), ("nested_sequential", nested_sequential), ("training_only", training_only)]:
        model, inputs = build()
        write(name, model, inputs)
    for name, model in refusals():
        write(name, model)


if __name__ == "__main__":
    main()
