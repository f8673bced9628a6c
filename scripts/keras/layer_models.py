"""The tiny Keras models of the per-layer fixtures (make_fixtures.py writes them).

FIXTURES lists (name, build, options): `build()` returns a Keras model whose
layers carry stable names; options: `h5` (also save legacy .h5), `range`
(inputs uniform in [lo, hi], default [-2, 2]). A class's options share one
model as separate outputs, so a failure names the layer it stops at.
"""
import keras
from keras import layers as L
from keras.src.applications.convnext import LayerScale


def model(shapes, body, name):
    """A functional model with inputs `x`, `y`, ... of these shapes; body(*inputs) gives the outputs."""
    inputs = [keras.Input(shape, name=n) for n, shape in zip(("x", "y", "z"), shapes)]
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], body(*inputs), name=name)


def chain(shape, *chain_layers, name):
    def body(x):
        for layer in chain_layers:
            x = layer(x)
        return x
    return lambda: model([shape], body, name)


def branches(shape, *branch_layers, name):
    """One input, each layer applied to it: one output per option."""
    return lambda: model([shape], lambda x: [layer(x) for layer in branch_layers], name)


IMG = (5, 6, 3)
SEQ = (9, 3)


def conv2d():
    return branches(
        IMG,
        L.Conv2D(4, 3, name="valid"),
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="same_strided_relu"),
        L.Conv2D(2, (3, 2), dilation_rate=2, use_bias=False, name="dilated_nobias"),
        L.Conv2D(3, 1, groups=3, activation="tanh", name="grouped_tanh"),
        name="conv2d",
    )


def separable():
    return branches(
        IMG,
        L.SeparableConv2D(4, 3, padding="same", name="same"),
        L.SeparableConv2D(5, 3, strides=2, depth_multiplier=2, activation="relu", name="strided_multiplier"),
        L.SeparableConv2D(3, 2, use_bias=False, name="valid_nobias"),
        name="separable_conv2d",
    )


def conv_bn():
    def body(x):
        h = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(x)
        h = L.BatchNormalization(name="bn")(h)
        h = L.ReLU(name="relu")(h)
        h = L.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name="dw")(h)
        h = L.BatchNormalization(epsilon=1e-3, name="dw_bn")(h)
        return L.Activation("relu6", name="relu6")(h)
    return lambda: model([IMG], body, "conv_bn")


def merges2d():
    def body(x, y):
        return [
            L.Add(name="add")([x, y]),
            L.Concatenate(name="concat")([x, y]),
            L.Concatenate(axis=1, name="concat_rows")([x, y]),
        ]
    return lambda: model([IMG, IMG], body, "merge")


def merges_broadcast():
    # y [1, 1, 3] broadcasts over x's rows and columns, as a squeeze-and-excitation gate does
    def body(x, y, z):
        return [
            L.Multiply(name="multiply")([x, z]),
            L.Subtract(name="subtract")([x, y]),
            L.Maximum(name="maximum")([x, y]),
            L.Minimum(name="minimum")([y, z]),
            L.Average(name="average")([x, z]),
            L.Multiply(name="multiply3")([x, y, z]),
        ]
    return lambda: model([IMG, (1, 1, 3), IMG], body, "merge_elementwise")


def squeeze_excite():
    # EfficientNet's and MobileNetV3's block: x * sigmoid(dense(pool(x))), the gate broadcast over H and W
    def body(x):
        s = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
        s = L.Conv2D(2, 1, activation="swish", name="reduce")(s)
        s = L.Conv2D(3, 1, activation="sigmoid", name="expand")(s)
        gap = L.GlobalAveragePooling2D(name="gap")(x)
        gate = L.Reshape((1, 1, 3), name="reshape")(L.Dense(3, activation="sigmoid", name="fc")(gap))
        return [L.Multiply(name="excite")([x, s]), L.Multiply(name="excite_dense")([gate, x])]
    return lambda: model([IMG], body, "squeeze_excite")


def relu_options():
    return branches(
        (7,),
        L.ReLU(name="plain"),
        L.ReLU(max_value=6.0, name="max_value"),
        L.ReLU(negative_slope=0.1, name="negative_slope"),
        L.ReLU(threshold=0.5, name="threshold"),
        L.ReLU(max_value=1.5, negative_slope=0.2, threshold=0.25, name="all"),
        L.LeakyReLU(negative_slope=0.2, name="leaky"),
        L.ELU(alpha=0.5, name="elu"),
        L.Softmax(name="softmax"),
        name="relu_family",
    )


ACTIVATIONS = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "swish", "silu", "tanh", "sigmoid",
               "hard_sigmoid", "hard_silu", "hard_swish", "softplus", "mish", "softmax", "linear"]


def activations():
    return branches((7,), *[L.Activation(a, name=a) for a in ACTIVATIONS], name="activation")


def dense_ranks():
    def body(x, y, z):
        return [
            L.Dense(4, name="rank2")(x),
            L.Dense(5, activation="relu", use_bias=False, name="rank2_relu_nobias")(x),
            L.Dense(4, name="rank3")(y),
            L.Dense(3, activation="tanh", name="rank4")(z),
        ]
    return lambda: model([(6,), (3, 6), (2, 3, 6)], body, "dense")


def pools2d():
    return branches(
        IMG,
        L.MaxPooling2D(name="max"),
        L.MaxPooling2D(3, strides=2, padding="same", name="max_same"),
        L.AveragePooling2D(2, name="avg"),
        L.AveragePooling2D(3, strides=1, padding="same", name="avg_same"),
        L.GlobalMaxPooling2D(name="gmax"),
        L.GlobalAveragePooling2D(name="gavg"),
        L.GlobalMaxPooling2D(keepdims=True, name="gmax_keepdims"),
        L.GlobalAveragePooling2D(keepdims=True, name="gavg_keepdims"),
        name="pool2d",
    )


def conv1d():
    return branches(
        SEQ,
        L.Conv1D(4, 3, name="valid"),
        L.Conv1D(4, 3, strides=2, padding="same", activation="relu", name="same_strided"),
        L.Conv1D(2, 2, dilation_rate=2, use_bias=False, name="dilated_nobias"),
        name="conv1d",
    )


def conv1d_bn():
    return chain(SEQ, L.Conv1D(4, 3, use_bias=False, name="conv"), L.BatchNormalization(name="bn"), L.Activation("relu", name="relu"), name="conv1d_bn")


def pools1d():
    return branches(
        SEQ,
        L.MaxPooling1D(2, name="max"),
        L.MaxPooling1D(3, strides=2, padding="same", name="max_same"),
        L.AveragePooling1D(2, name="avg"),
        L.AveragePooling1D(3, strides=1, padding="same", name="avg_same"),
        L.GlobalMaxPooling1D(name="gmax"),
        L.GlobalAveragePooling1D(name="gavg"),
        L.GlobalAveragePooling1D(keepdims=True, name="gavg_keepdims"),
        name="pool1d",
    )


def batchnorm():
    def body(x, y):
        return [
            L.BatchNormalization(name="bn_rank2")(x),
            L.BatchNormalization(center=False, scale=False, epsilon=0.01, name="bn_plain")(x),
            L.BatchNormalization(momentum=0.9, name="bn_rank4")(y),
        ]
    return lambda: model([(7,), IMG], body, "batchnorm")


def layernorm():
    def body(x, y):
        return [
            L.LayerNormalization(name="ln_rank2")(x),
            L.LayerNormalization(epsilon=1e-6, name="ln_rank4")(y),
            L.LayerNormalization(center=False, scale=False, name="ln_plain")(y),
        ]
    return lambda: model([(7,), IMG], body, "layernorm")


def shapes():
    def body(x, y):
        return [
            L.Flatten(name="flatten")(x),
            L.Reshape((15, 6), name="reshape")(x),
            L.Reshape((-1,), name="reshape_infer")(x),
            L.Permute((2, 1, 3), name="permute_hw")(x),
            L.Permute((3, 1, 2), name="permute_chw")(x),
            L.Permute((2, 1), name="permute_seq")(y),
        ]
    return lambda: model([IMG, SEQ], body, "reshape_permute")


def padding():
    return branches(
        IMG,
        L.ZeroPadding2D(name="pad"),
        L.ZeroPadding2D(((1, 2), (0, 1)), name="pad_asym"),
        L.Cropping2D(((1, 0), (0, 2)), name="crop"),
        L.UpSampling2D((2, 3), name="upsample"),
        name="padding",
    )


def pad_conv():
    # ResNet's and MobileNet's stem: a zero pad folded into the next convolution
    return chain(IMG, L.ZeroPadding2D(((0, 1), (0, 1)), name="pad"), L.Conv2D(4, 3, strides=2, name="conv"), name="pad_conv")


def rescaling():
    # EfficientNet's preprocessing: a rescale then a normalization whose statistics are weights
    return branches(
        IMG,
        L.Rescaling(1 / 127.5, offset=-1, name="rescale"),
        L.Rescaling([0.5, 2.0, -1.0], name="rescale_channels"),
        L.Normalization(axis=-1, name="norm_adapted"),
        L.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.5, 2.0, 1.5], name="norm_given"),
        name="rescale_normalize",
    )


def operators():
    # MobileNetV3's hard_sigmoid and hard_swish as Keras 3 saves them: operator layers with constants
    def body(x):
        hs = L.ReLU(6.0, name="relu6")(x + 3.0) * (1.0 / 6.0)
        return [hs, L.Multiply(name="hard_swish")([x, hs]), (x - 0.5) / 4.0]
    return lambda: model([(7,)], body, "operators")


def dropout():
    return chain(IMG, L.Dropout(0.3, name="drop"), L.Dropout(0.2, noise_shape=(None, 1, 1, 3), name="drop_channels"), name="dropout")


def convnext_block():
    def body(x):
        stem = keras.Sequential([L.Conv2D(8, 2, strides=2, name="stem_conv"), L.LayerNormalization(epsilon=1e-6, name="stem_ln")], name="stem")
        h = stem(x)
        r = L.DepthwiseConv2D(3, padding="same", name="dw")(h)
        r = L.LayerNormalization(epsilon=1e-6, name="ln")(r)
        r = L.Dense(16, name="pw1")(r)
        r = L.Activation("gelu", name="gelu")(r)
        r = L.Dense(8, name="pw2")(r)
        r = LayerScale(1e-6, 8, name="layer_scale")(r)
        return L.Add(name="residual")([h, r])
    return lambda: model([(6, 6, 3)], body, "convnext_block")


def transpose():
    return branches(
        IMG,
        L.Conv2DTranspose(3, 3, name="valid"),
        L.Conv2DTranspose(2, 3, strides=2, padding="same", activation="relu", name="same_strided"),
        name="conv2d_transpose",
    )


def sequential():
    return lambda: keras.Sequential(
        [keras.Input(IMG, name="x"), L.Conv2D(3, 3, activation="relu", name="conv"), L.Flatten(name="flat"), L.Dense(2, name="out")],
        name="sequential",
    )


def shared():
    def body(x, y):
        d = L.Dense(3, name="shared")
        return L.Concatenate(name="concat")([d(x), d(y)])
    return lambda: model([(4,), (4,)], body, "shared_layer")


FIXTURES = [
    ("dense", dense_ranks(), {"h5": True}),
    ("conv2d", conv2d(), {}),
    ("conv_bn", conv_bn(), {"h5": True}),
    ("conv2d_transpose", transpose(), {}),
    ("separable_conv2d", separable(), {"h5": True}),
    ("conv1d", conv1d(), {}),
    ("conv1d_bn", conv1d_bn(), {}),
    ("pool2d", pools2d(), {}),
    ("pool1d", pools1d(), {}),
    ("batchnorm", batchnorm(), {}),
    ("layernorm", layernorm(), {}),
    ("relu_family", relu_options(), {}),
    ("activation", activations(), {"range": (-4.0, 4.0)}),
    ("merge", merges2d(), {}),
    ("merge_elementwise", merges_broadcast(), {}),
    ("squeeze_excite", squeeze_excite(), {"h5": True}),
    ("reshape_permute", shapes(), {}),
    ("padding", padding(), {}),
    ("pad_conv", pad_conv(), {}),
    ("rescale_normalize", rescaling(), {"range": (0.0, 255.0)}),
    ("operators", operators(), {"range": (-5.0, 5.0)}),
    ("dropout", dropout(), {}),
    ("convnext_block", convnext_block(), {}),
    ("sequential", sequential(), {"h5": True}),
    ("shared_layer", shared(), {}),
]
