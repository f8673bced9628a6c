"""The Keras-on-TensorFlow-CPU runtime of `npm run bench` (driven by bench/worker-keras.js).

Never needed by CI or users: the bench runs it only when `python3 -c "import keras"` works
(or MODELC_BENCH_PYTHON names a Python that has Keras 3 and TensorFlow). TensorFlow runs with
one inter-op thread and one intra-op thread, like every other runtime of the bench, or as many
intra-op threads as the first argument says (the 2-thread column).

Protocol: one JSON request per line on stdin, one JSON reply per line on stdout.
  init                                   -> {available, info}
  prepare {kerasPath, checkKerasPath, x, y, xShape, yShape, training}  -> {}
  check                                  -> {loss, weights: {path: [floats]}}   one step from the initial weights
  run {iters}                            -> {ms}   iters train_on_batch calls back to back
The models are modelc's own `.keras` exports of the bench's specs, with the bench's weights.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

state = {}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def init():
    import tensorflow as tf

    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    state["tf"] = tf
    state["keras"] = keras
    return {
        "available": True,
        "info": {
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            "threads": threads,
        },
    }


def optimizer(spec):
    keras = state["keras"]
    kind = spec.get("type", "sgd")
    lr = spec.get("learning_rate", 0.01)
    if kind == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=spec.get("momentum", 0.0), nesterov=spec.get("nesterov", False))
    if kind == "adam":
        return keras.optimizers.Adam(
            learning_rate=lr,
            beta_1=spec.get("beta_1", 0.9),
            beta_2=spec.get("beta_2", 0.999),
            epsilon=spec.get("epsilon", 1e-7),
        )
    raise ValueError(f"optimizer {kind} is not mapped to Keras in the bench")


def loss_of(name):
    """The spec's loss as Keras computes it from the model's output probabilities.

    Keras 3 on TensorFlow takes binary_crossentropy of a softmax output from the softmax's
    logits, as if they were a sigmoid's (the `_keras_logits` that keras.activations.softmax
    attaches, read by backend/tensorflow/nn.py's _get_logits): a different function of the
    weights (seed_mlp's loss 0.8314 against 0.8567 for the probabilities modelc, TF.js and the
    definition use). tf.identity hands the loss a tensor without that attribute, so Keras
    computes binary_crossentropy of the probabilities like everyone else, at the cost of one op.
    """
    if name != "binary_crossentropy":
        return name
    keras, tf = state["keras"], state["tf"]
    return lambda y, p: keras.losses.binary_crossentropy(y, tf.identity(p))


def model_of(path, training):
    keras = state["keras"]
    model = keras.saving.load_model(path, compile=False)
    metrics = ["accuracy"] if "accuracy" in training.get("metrics", []) else []
    model.compile(optimizer=optimizer(training.get("optimizer", {})), loss=loss_of(training["loss"]), metrics=metrics)
    return model


def prepare(req):
    import numpy as np

    state["x"] = np.asarray(req["x"], dtype=np.float32).reshape(req["xShape"])
    state["y"] = np.asarray(req["y"], dtype=np.float32).reshape(req["yShape"])
    if req["training"]["loss"] == "sparse_categorical_crossentropy":
        state["y"] = np.argmax(state["y"], axis=1).astype(np.float32)
    state["training"] = req["training"]
    state["checkPath"] = req["checkKerasPath"]
    state["model"] = model_of(req["kerasPath"], req["training"])
    return {}


def check():
    model = model_of(state["checkPath"], state["training"])
    out = model.train_on_batch(state["x"], state["y"])
    loss = out[0] if isinstance(out, (list, tuple)) else out
    weights = {v.path: v.numpy().ravel().tolist() for v in model.weights}
    return {"loss": float(loss), "weights": weights}


def run(iters):
    model = state["model"]
    x, y = state["x"], state["y"]
    t0 = time.perf_counter()
    for _ in range(iters):
        model.train_on_batch(x, y)
    return {"ms": (time.perf_counter() - t0) * 1000}


def main():
    for line in sys.stdin:
        req = json.loads(line)
        try:
            cmd = req["cmd"]
            if cmd == "init":
                result = init()
            elif cmd == "prepare":
                result = prepare(req)
            elif cmd == "check":
                result = check()
            elif cmd == "run":
                result = run(req["iters"])
            else:
                raise ValueError(f"unknown request {cmd}")
            reply({"ok": True, "result": result})
        except Exception as err:  # reported to the bench, which marks the cell
            reply({"ok": False, "error": f"{type(err).__name__}: {err}"})


if __name__ == "__main__":
    main()
