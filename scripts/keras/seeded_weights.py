"""The seeded weight generator shared by the Keras fixtures and modelc's tests.

The keras.applications fixtures commit no weights: Keras and modelc's test
(test/keras/seeded-weights.ts, the same definition) each fill every variable
from this generator, so the committed Keras outputs are for weights both
sides can draw. The definition, which both implementations follow to the bit:

- A variable is named as modelc names its parameter, ``<layer>/<variable>``
  (Keras's ``variable.path`` but for Keras 3's depthwise ``kernel``, which
  modelc names ``depthwise_kernel`` as Keras 2 and TF.js do, and LayerScale's
  unnamed variable, named ``gamma``; see ``modelc_name``).
- Its seed is the 32-bit FNV-1a hash of the name's UTF-8 bytes.
- Its values are the mulberry32 stream from that seed: state ``a`` starts at
  the seed; each draw adds 0x6D2B79F5 to ``a`` (mod 2**32), then
  ``t = imul(a ^ a >>> 15, a | 1)``; ``t = (t + imul(t ^ t >>> 7, t | 61)) ^ t``;
  ``u = (t ^ t >>> 14) / 2**32`` in [0, 1).
- Element i (row-major, in Keras's layout) is ``lo + (hi - lo) * u_i`` in
  float64, rounded to float32, where [lo, hi] is chosen by the variable's
  name (the part after the last slash):
    kernel, pointwise_kernel:  [-b, b], b = sqrt(6 / fan_in), fan_in the
                               product of every dimension but the last
    depthwise_kernel:          [-b, b], fan_in = kernel height * width
                               (the product of every dimension but the last two)
    gamma, moving_variance, variance:  [0.5, 1.5]
    anything else (bias, beta, moving_mean, mean):  [-0.01, 0.01]
- Inputs come from the same generator under the names ``input:a`` and
  ``input:b``, scaled to each fixture's input range.

Kernels of variance 2 / fan_in (He's, for the halving by ReLU) and small
shifts keep the signal from drowning in the biases through 100+ layers whose
batch norms do not renormalize (their statistics are random): with these
ranges the logits of two inputs differ by 2% (EfficientNetB0) to 100% of
their scale at the CI sizes, where a variance 1 / fan_in and shifts of 0.1
left EfficientNetB0's logits input-independent to 1e-6. The tests check it.
"""
import math

import numpy as np

_MASK = 0xFFFFFFFF


def fnv1a(name: str) -> int:
    h = 0x811C9DC5
    for byte in name.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & _MASK
    return h


def _imul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x * y) & _MASK


def mulberry32(seed: int, n: int) -> np.ndarray:
    """The first n draws in [0, 1) (float64), vectorized: the state is a counter."""
    a = (seed + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x6D2B79F5)) & np.uint64(_MASK)
    t = _imul(a ^ (a >> np.uint64(15)), a | np.uint64(1))
    t = ((t + _imul(t ^ (t >> np.uint64(7)), t | np.uint64(61))) & np.uint64(_MASK)) ^ t
    return ((t ^ (t >> np.uint64(14))) & np.uint64(_MASK)).astype(np.float64) / 4294967296.0


def uniform(name: str, shape, lo: float, hi: float) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    u = mulberry32(fnv1a(name), n)
    return (lo + (hi - lo) * u).astype(np.float32).reshape(shape)


def bounds(name: str, shape) -> tuple:
    role = name.rsplit("/", 1)[-1]
    if role in ("kernel", "pointwise_kernel", "depthwise_kernel"):
        dims = shape[:-2] if role == "depthwise_kernel" else shape[:-1]
        fan_in = max(1, int(np.prod(dims, dtype=np.int64)))
        b = math.sqrt(6 / fan_in)
        return -b, b
    if role in ("gamma", "moving_variance", "variance"):
        return 0.5, 1.5
    return -0.01, 0.01


def seeded_weight(name: str, shape) -> np.ndarray:
    lo, hi = bounds(name, tuple(shape))
    return uniform(name, tuple(shape), lo, hi)


def modelc_name(layer, variable) -> str:
    """The name modelc gives a Keras 3 variable (see the module docstring)."""
    cls = type(layer).__name__
    var = variable.name
    if cls == "DepthwiseConv2D" and var == "kernel":
        var = "depthwise_kernel"
    elif cls == "LayerScale":
        var = "gamma"
    return f"{layer.name}/{var}"


def _is_weight(variable) -> bool:
    return "float" in str(variable.dtype) and variable.name != "seed_generator_state"


def fill_model(model) -> list:
    """Assigns every float variable of every (nested) layer its seeded value; returns the names."""
    names = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for v in layer._trainable_variables + layer._non_trainable_variables:
            if not _is_weight(v):
                continue
            name = modelc_name(layer, v)
            v.assign(seeded_weight(name, tuple(v.shape)))
            names.append(name)
        # Normalization computes with tensors it derives from its variables at build
        # time (as after adapt()); without this, predict would use the old statistics
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()
    return names


def seeded_input(tag: str, shape, lo: float, hi: float) -> np.ndarray:
    return uniform(f"input:{tag}", tuple(shape), lo, hi)
