"""Checks `modelc export --format keras` against Keras 3 itself.

Run after building dist/ (`npx tsc -p tsconfig.build.json`), from the
repository root (TF_CPP_MIN_LOG_LEVEL=3 quiets TensorFlow):

    TF_CPP_MIN_LOG_LEVEL=3 /work/venv/bin/python scripts/keras/check_export.py

For every spec in examples/ (.nn and .json, TF.js model.json files aside)
and test/fixtures/keras/export-*.nn, and the Keras-saved models seq, conv,
shared, nested and ops of test/fixtures/keras/format (imported with their weights), scripts/keras/export_examples.mjs
writes the .keras file modelc exports (initializers sampled with seed 0), a
seeded input batch and modelc's outputs for it (the reference interpreter,
before any pass), and every layer's output. This script loads each file
with ``keras.saving.load_model``, predicts on the same batch and compares
the model's outputs and every layer's (so a softmax output that random
weights make nearly uniform cannot hide a wrong layer): the largest
difference relative to the value's scale (its largest magnitude, at least 1)
must stay under 1e-4. It also checks that loading warns about
nothing (a variable Keras could not place, an optimizer state it skipped).

The result goes to test/fixtures/keras/export-check.json, with each export's
fingerprint: the sha256 of its config.json followed by the listing of
model.weights.h5 (one line per group name attribute and per dataset: path,
dtype, shape, sorted). test/export/keras-export.test.ts recomputes the
fingerprints in CI, so a change to the exporter that changes either fails
there until this script is run again.
"""
import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(ROOT, "test", "fixtures", "keras", "export-check.json")
TOLERANCE = 1e-4


def specs():
    found = sorted(glob.glob("examples/*.nn") + glob.glob("examples/*.json"))
    found = [p for p in found if "modelTopology" not in open(os.path.join(ROOT, p)).read()]
    # models Keras saved (test/fixtures/keras/format), imported and exported again: Keras -> modelc -> Keras
    saved = [f"test/fixtures/keras/format/{m}.keras" for m in ("seq", "conv", "shared", "nested", "ops")]
    return found + sorted(glob.glob("test/fixtures/keras/export-*.nn")) + saved


def fingerprint(archive_bytes):
    """sha256 of config.json, a newline, and the sorted weights listing joined by newlines."""
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as z:
        config = z.read("config.json")
        weights = z.read("model.weights.h5")
    lines = []
    with h5py.File(io.BytesIO(weights), "r") as f:
        def visit(path, obj):
            if isinstance(obj, h5py.Dataset):
                kind = {"<f4": "float32", "<i8": "int64"}.get(obj.dtype.str, obj.dtype.str)
                lines.append(f"{path}:{kind}:{json.dumps(list(obj.shape), separators=(',', ':'))}")
            elif "name" in obj.attrs:
                lines.append(f"{path}@name={obj.attrs['name']}")
        f.visititems(visit)
    text = config + b"\n" + "\n".join(sorted(lines)).encode()
    return hashlib.sha256(text).hexdigest()


def check(out_dir, spec):
    name = os.path.basename(spec)
    record = json.load(open(os.path.join(out_dir, f"{name}.json")))
    path = os.path.join(out_dir, f"{name}.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(path)
    inputs = {i["name"]: np.array(i["data"], dtype="float32").reshape(i["shape"]) for i in record["inputs"]}
    feed = inputs if len(inputs) > 1 else next(iter(inputs.values()))
    got = model.predict(feed, verbose=0)
    got = got if isinstance(got, (list, tuple)) else [got]
    # every layer applied once (a shared layer's outputs are checked where they reach an output)
    probed = [l for l in model.layers if len(l._inbound_nodes) == 1 and l.name in record["layers"] and l.name not in inputs]
    probe = keras.Model(model.inputs, [l.output for l in probed])
    per_layer = probe.predict(feed, verbose=0)
    per_layer = per_layer if isinstance(per_layer, (list, tuple)) else [per_layer]
    pairs = [(o["name"], o, g) for o, g in zip(record["outputs"], got)]
    pairs += [(l.name, record["layers"][l.name], g) for l, g in zip(probed, per_layer)]
    worst, worst_at = 0.0, None
    for value, want, g in pairs:
        w = np.array(want["data"], dtype="float64").reshape(want["shape"])
        diff = float(np.abs(np.asarray(g, dtype="float64") - w).max()) / max(1.0, float(np.abs(w).max()))
        if diff >= worst:
            worst, worst_at = diff, value
    result = {
        "fingerprint": fingerprint(open(path, "rb").read()),
        "layers": len(model.layers),
        # the order Keras rebuilds model.layers in, which decides where it looks for each layer's weights
        "layer_order": [l.name for l in model.layers],
        "params": int(model.count_params()),
        "compiled": getattr(model, "optimizer", None) is not None,
        "layers_compared": len(probed),
        "max_relative_difference": worst,
        "worst_value": worst_at,
        "load_warnings": [str(w.message) for w in caught],
    }
    result["ok"] = worst < TOLERANCE and not result["load_warnings"] and len(got) == len(record["outputs"])
    return name, result


def main():
    os.chdir(ROOT)
    paths = specs()
    with tempfile.TemporaryDirectory() as out_dir:
        subprocess.run(["node", "scripts/keras/export_examples.mjs", out_dir, *paths], check=True, stdout=subprocess.DEVNULL)
        results = dict(check(out_dir, p) for p in paths)
    summary = {
        "generated_by": "scripts/keras/check_export.py",
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "tolerance": TOLERANCE,
        "specs": results,
    }
    with open(FIXTURE, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    for name, r in results.items():
        print(f"{'ok  ' if r['ok'] else 'FAIL'} {name}: max relative difference {r['max_relative_difference']:.2e}, "
              f"{r['layers']} layers, {r['params']} parameters{', warnings: ' + '; '.join(r['load_warnings']) if r['load_warnings'] else ''}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
