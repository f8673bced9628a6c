"""The closing table of issue 15 (local only, not CI: full-size models, minutes).

For each keras.applications architecture at its default input size, built
with weights=None and classifier_activation=None and filled by the seeded
generator (so batch norms have random statistics), Keras saves `.keras` and
legacy `.h5` into /tmp/modelc-keras (nothing is committed). Then for each
file `modelc compile` (unoptimized: --no-optimize, and -O) is timed, the
module run at batch 1 on a seeded input (scripts/keras/run_module.mjs) and
compared with Keras's logits: max |diff| relative to the logits' scale.
Predict times are medians at batch 1: the -O module in Node against Keras's
predict_on_batch on TF CPU with one thread. Prints a markdown table.

With --float64, the same architecture and weights are also run by Keras in
float64 (the exact logits, near enough), and a second table gives each
float32 result's distance from them: Keras's own float32 predict and
modelc's modules. Where Keras float32 and modelc differ by more than a few
1e-6, this says whose rounding it is (a model whose random statistics make it
ill-conditioned), not only that they differ.

  TF_CPP_MIN_LOG_LEVEL=3 /work/venv/bin/python scripts/keras/closing_table.py [--h5-unoptimized] [--float64] [--weights-mode embed] [Name ...]

On a CPU where TF's oneDNN kernels crash (SIGFPE in predict_on_batch, seen on
an AVX-512 machine), run with TF_ENABLE_ONEDNN_OPTS=0.
"""
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from applications import ARCHITECTURES, input_range  # noqa: E402
from seeded_weights import fill_model, seeded_input  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
WORK = "/tmp/modelc-keras"
DEFAULT_SIZE = {"Xception": 299, "InceptionV3": 299}
REPEATS = 5


def keras_float64(ctor, size, x):
    """The logits of the same architecture and weights computed by Keras in float64."""
    keras.utils.clear_session()
    keras.config.set_floatx("float64")
    try:
        model = ctor(weights=None, classifier_activation=None, input_shape=(size, size, 3))
        fill_model(model)
        return np.asarray(model.predict_on_batch(x.astype("float64")), dtype=np.float64).ravel()
    finally:
        keras.config.set_floatx("float32")


def keras_side(name, ctor, preprocessing, float64=False):
    size = DEFAULT_SIZE.get(name, 224)
    model = ctor(weights=None, classifier_activation=None, input_shape=(size, size, 3))
    fill_model(model)
    x = seeded_input("a", (1, size, size, 3), *input_range(preprocessing))
    y = np.asarray(model.predict_on_batch(x))
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        model.predict_on_batch(x)
        times.append((time.perf_counter() - t) * 1000)
    base = os.path.join(WORK, name)
    model.save(base + ".keras")
    model.save(base + ".h5")
    x.astype("<f4").tofile(base + ".input.f32")
    result = {"size": size, "params": model.count_params(), "y": y.ravel(), "keras_ms": float(np.median(times))}
    if float64:
        result["y64"] = keras_float64(ctor, size, x)
    return result


def rel_to(got, want):
    return float(np.abs(np.asarray(got, dtype=np.float64) - want).max() / np.abs(want).max())


def modelc_side(name, file, optimize, weights_mode, want):
    out = os.path.join(WORK, f"{name}-{os.path.splitext(file)[1][1:]}-{'O' if optimize else 'u'}")
    cmd = ["node", os.path.join(ROOT, "bin", "modelc.js"), "compile", file, "-o", out, "--name", "m", "--emit", "js", "--weights-mode", weights_mode]
    if not optimize:
        cmd.append("--no-optimize")
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    compile_s = time.perf_counter() - t
    if done.returncode != 0:
        first = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return {"error": first[0] if first else f"exit {done.returncode}"}
    weights = os.path.join(out, "m.safetensors") if weights_mode == "external" else "-"
    y_path = os.path.join(out, "y.f32")
    run = subprocess.run(["node", os.path.join(ROOT, "scripts", "keras", "run_module.mjs"), os.path.join(out, "m.js"), weights,
                          os.path.join(WORK, name + ".input.f32"), y_path, str(REPEATS)], capture_output=True, text=True)
    if run.returncode != 0:
        return {"error": "run: " + (run.stderr.strip().splitlines() or ["?"])[-1], "compile_s": compile_s}
    got = np.fromfile(y_path, dtype="<f4")
    rel = rel_to(got, want) if got.shape == want.shape else float("inf")
    return {"compile_s": compile_s, "rel": rel, "ms": json.loads(run.stdout)["ms"], "y": got}


def cell(r, key, fmt):
    return "error" if "error" in r else fmt.format(r[key])


def main(args):
    weights_mode = "embed" if "--weights-mode" in args and args[args.index("--weights-mode") + 1] == "embed" else "external"
    h5_unoptimized = "--h5-unoptimized" in args
    float64 = "--float64" in args
    exact_rows = []
    selected = [a for a in args if not a.startswith("--") and a not in ("embed", "external")]
    os.makedirs(WORK, exist_ok=True)
    rows, errors = [], []
    for name, ctor, _, preprocessing in ARCHITECTURES:
        if selected and name not in selected:
            continue
        keras.utils.clear_session()
        k = keras_side(name, ctor, preprocessing, float64)
        base = os.path.join(WORK, name)
        runs = {
            "keras-u": modelc_side(name, base + ".keras", False, weights_mode, k["y"]),
            "keras-O": modelc_side(name, base + ".keras", True, weights_mode, k["y"]),
            "h5-O": modelc_side(name, base + ".h5", True, weights_mode, k["y"]),
        }
        if h5_unoptimized:
            runs["h5-u"] = modelc_side(name, base + ".h5", False, weights_mode, k["y"])
        for label, r in runs.items():
            if "error" in r:
                errors.append(f"- {name} {label}: {r['error']}")
        u, o, h = runs["keras-u"], runs["keras-O"], runs["h5-O"]
        rows.append(f"| {name} | {k['size']} | {k['params'] / 1e6:.1f}M | {cell(u, 'compile_s', '{:.1f}')} / {cell(o, 'compile_s', '{:.1f}')} "
                    f"| {cell(u, 'rel', '{:.1e}')} / {cell(o, 'rel', '{:.1e}')} | {cell(h, 'rel', '{:.1e}')} "
                    f"| {cell(o, 'ms', '{:.0f}')} | {k['keras_ms']:.0f} |")
        print(rows[-1], flush=True)
        if float64:
            exact = [f"{rel_to(r['y'], k['y64']):.1e}" if "y" in r else "error" for r in (u, o, h)]
            exact_rows.append(f"| {name} | {rel_to(k['y'], k['y64']):.1e} | {exact[0]} / {exact[1]} | {exact[2]} |")
            print(exact_rows[-1], flush=True)
    print()
    print(f"Weights mode {weights_mode}; predict times are medians of {REPEATS} runs at batch 1 (Keras: TF CPU, one thread).")
    print()
    print("| architecture | input | params | compile s (.keras, unopt / -O) | max rel diff .keras (unopt / -O) | max rel diff .h5 -O | modelc predict ms (-O) | Keras predict ms |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if exact_rows:
        print()
        print("Distance from Keras's float64 logits (same architecture and weights), relative to their scale:")
        print()
        print("| architecture | Keras float32 | modelc .keras (unopt / -O) | modelc .h5 -O |")
        print("|---|---|---|---|")
        print("\n".join(exact_rows))
    if errors:
        print()
        print("\n".join(errors))


if __name__ == "__main__":
    main(sys.argv[1:])
