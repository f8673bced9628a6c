"""Writes the keras.applications fixtures of test/keras/applications.test.ts.

For each of the 13 architectures, built by Keras 3 with ``weights=None`` and
``classifier_activation=None`` (logits) at a small input size it allows,
every variable is filled from the seeded generator (seeded_weights.py; the
test draws the same values with test/keras/seeded-weights.ts), and two
seeded inputs are run through ``model.predict``. Written to
test/fixtures/keras/apps/:

  <Name>.config.json.gz  the config.json Keras writes into the model's
                         ``.keras`` archive, gzipped (no weights)
  <Name>.json            input shape and range, the variable names, and
                         Keras's logits for the inputs ``a`` and ``b``
                         (little-endian float32, base64); the same model
                         built in float64 (``keras.config.set_floatx``) with
                         the same weights gives ``outputs_float64`` (float64,
                         base64) and ``keras_float32_error``, how far Keras's
                         float32 logits are from those (max |diff| over the
                         logits' scale): the conditioning of the fixture.

Regenerate (about two minutes; the same logits and config on every run, but for the
"shared_object_id" numbers Keras writes, which are Python object ids):

  TF_CPP_MIN_LOG_LEVEL=3 /work/venv/bin/python scripts/keras/applications.py [Name ...]
"""
import base64
import gzip
import json
import os
import sys
import tempfile
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from seeded_weights import fill_model, seeded_input  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "keras", "apps")

A = keras.applications
# name, constructor, CI input size (each's minimum or near it), whether the
# model starts with its own preprocessing (then inputs are pixels in [0, 255]).
ARCHITECTURES = [
    ("MobileNet", A.MobileNet, 32, False),
    ("MobileNetV2", A.MobileNetV2, 32, False),
    ("MobileNetV3Small", A.MobileNetV3Small, 32, True),
    ("ResNet50", A.ResNet50, 32, False),
    ("ResNet50V2", A.ResNet50V2, 32, False),
    ("DenseNet121", A.DenseNet121, 32, False),
    ("EfficientNetB0", A.EfficientNetB0, 32, True),
    ("EfficientNetV2B0", A.EfficientNetV2B0, 32, True),
    ("Xception", A.Xception, 71, False),
    ("InceptionV3", A.InceptionV3, 75, False),
    ("NASNetMobile", A.NASNetMobile, 32, False),
    ("VGG16", A.VGG16, 32, False),
    ("ConvNeXtTiny", A.ConvNeXtTiny, 32, True),
]


def build(ctor, size: int, floatx: str = "float32"):
    # a fresh session: automatic names (input_layer, ...) restart, so the config is the same on every run
    keras.utils.clear_session()
    keras.config.set_floatx(floatx)
    return ctor(weights=None, classifier_activation=None, input_shape=(size, size, 3))


def input_range(preprocessing: bool) -> tuple:
    return (0.0, 255.0) if preprocessing else (-1.0, 1.0)


def keras_config(model) -> str:
    """The config.json of the model's .keras archive, exactly as Keras writes it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        model.save(path)
        with zipfile.ZipFile(path) as z:
            return z.read("config.json").decode("utf-8")


def b64(a: np.ndarray, dtype: str = "<f4") -> str:
    return base64.b64encode(np.asarray(a, dtype=dtype).tobytes()).decode("ascii")


def float64_outputs(ctor, size: int, lo: float, hi: float) -> dict:
    """The logits of the same model and weights computed in float64 (the exact values, near enough)."""
    model = build(ctor, size, "float64")
    fill_model(model)
    shape = (1, size, size, 3)
    outputs = {tag: np.asarray(model.predict(seeded_input(tag, shape, lo, hi).astype("float64"), verbose=0)[0], dtype=np.float64) for tag in ("a", "b")}
    keras.config.set_floatx("float32")
    return outputs


def write_fixture(name: str, ctor, size: int, preprocessing: bool) -> None:
    model = build(ctor, size)
    names = fill_model(model)
    lo, hi = input_range(preprocessing)
    shape = (1, size, size, 3)
    outputs = {tag: model.predict(seeded_input(tag, shape, lo, hi), verbose=0)[0] for tag in ("a", "b")}
    scale = float(np.abs(outputs["a"]).max())
    spread = float(np.abs(outputs["a"] - outputs["b"]).max()) / scale
    config = keras_config(model).encode("utf-8")
    exact = float64_outputs(ctor, size, lo, hi)
    error = max(float(np.abs(outputs[t] - exact[t]).max()) / float(np.abs(exact[t]).max()) for t in ("a", "b"))
    with open(os.path.join(OUT, f"{name}.config.json.gz"), "wb") as f:
        # mtime 0 and no file name: the same bytes on every run
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as g:
            g.write(config)
    fixture = {
        "architecture": name,
        "keras_version": keras.__version__,
        "input_shape": [size, size, 3],
        "input_range": [lo, hi],
        "parameters": model.count_params(),
        "variables": names,
        "outputs": {tag: b64(y) for tag, y in outputs.items()},
        "outputs_float64": {tag: b64(y, "<f8") for tag, y in exact.items()},
        "keras_float32_error": error,
    }
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"{name}: {size}x{size}, {model.count_params()} parameters, logits scale {scale:.3g}, a vs b {spread:.3g}, Keras float32 vs float64 {error:.3g}", flush=True)


def main(selected) -> None:
    os.makedirs(OUT, exist_ok=True)
    for name, ctor, size, preprocessing in ARCHITECTURES:
        if not selected or name in selected:
            write_fixture(name, ctor, size, preprocessing)


if __name__ == "__main__":
    main(sys.argv[1:])
