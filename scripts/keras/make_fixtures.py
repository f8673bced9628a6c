"""Writes the per-layer Keras fixtures of test/keras/layers.test.ts.

One tiny Keras 3 model per layer class modelc imports (or is about to),
its options as separate outputs of the same model where they share a class
(so a failure names the layer, and the directory stays small). Every float
variable gets a lively random value (kernels scaled by fan-in; biases,
shifts and batch-norm means in [-0.5, 0.5]; gamma of either sign, 0.5 to 1.5
in size; variances in [0.5, 2]: a batch norm is never the identity), drawn
from the seeded generator of seeded_weights.py (the ranges here, the stream
there). Written to test/fixtures/keras/layers/:

  <name>.keras   the model as Keras saves it (config.json, metadata.json,
                 model.weights.h5); for a few also <name>.h5 (legacy HDF5)
  <name>.json    the Keras classes in the model, the inputs (batch 2) and
                 model.predict's outputs, by name, in order

Regenerate (about half a minute; the .json files come out the same on every run,
the .keras and .h5 archives differ only in the timestamps they carry):

  TF_CPP_MIN_LOG_LEVEL=3 /work/venv/bin/python scripts/keras/make_fixtures.py [name ...]
"""
import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from layer_models import FIXTURES  # noqa: E402
from seeded_weights import bounds, seeded_input, uniform  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "keras", "layers")
BATCH = 2


def lively(name: str, shape) -> np.ndarray:
    role = name.rsplit("/", 1)[-1]
    if role == "gamma":
        magnitude = uniform(name, shape, 0.5, 1.5)
        sign = np.where(uniform(name + ":sign", shape, 0, 1) < 0.5, -1, 1)
        return (magnitude * sign).astype(np.float32)
    if role in ("moving_variance", "variance"):
        return uniform(name, shape, 0.5, 2.0)
    if "kernel" in role:
        lo, hi = bounds(name, shape)
        return uniform(name, shape, lo, hi)
    return uniform(name, shape, -0.5, 0.5)


def randomize(model) -> None:
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for v in layer._trainable_variables + layer._non_trainable_variables:
            if "float" in str(v.dtype) and v.name != "seed_generator_state":
                v.assign(lively(f"{layer.name}/{v.name}", tuple(v.shape)))
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()  # Normalization's statistics from its new variables


def classes(model) -> list:
    """Every class in the model, nested models' too; Keras 3 operators (x + 3) as ops.<Class>."""
    found = []
    for op in getattr(model, "operations", None) or model.layers:
        cls = type(op).__name__
        name = f"ops.{cls}" if type(op).__module__.startswith("keras.src.ops") else cls
        if name not in found:
            found.append(name)
        if isinstance(op, keras.Model):
            found += [c for c in classes(op) if c not in found]
    return found


def rounded(a: np.ndarray) -> list:
    # 9 significant digits give back the same float32
    return [float(f"{v:.9g}") for v in np.asarray(a, dtype=np.float32).ravel()]


def write(name: str, build, h5: bool, lo: float, hi: float) -> int:
    model = build()
    randomize(model)
    inputs = [seeded_input(f"{name}/{t.name}", (BATCH, *t.shape[1:]), lo, hi) for t in model.inputs]
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    model.save(os.path.join(OUT, f"{name}.keras"))
    if h5:
        model.save(os.path.join(OUT, f"{name}.h5"))
    fixture = {
        "name": name,
        "classes": classes(model),
        "files": [f"{name}.keras"] + ([f"{name}.h5"] if h5 else []),
        "inputs": [{"name": t.name, "shape": list(x.shape), "data": rounded(x)} for t, x in zip(model.inputs, inputs)],
        "outputs": [{"name": n, "shape": list(y.shape), "data": rounded(y)} for n, y in zip(getattr(model, "output_names", None) or [model.layers[-1].name], outputs)],
    }
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    return sum(os.path.getsize(os.path.join(OUT, p)) for p in fixture["files"] + [f"{name}.json"])


def main(selected) -> None:
    os.makedirs(OUT, exist_ok=True)
    total = 0
    for name, build, options in FIXTURES:
        if selected and name not in selected:
            continue
        keras.utils.clear_session()
        size = write(name, build, options.get("h5", False), *options.get("range", (-2.0, 2.0)))
        total += size
        print(f"{name}: {size} bytes", flush=True)
    print(f"total {total} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
