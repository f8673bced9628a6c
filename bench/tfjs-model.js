// A modelc JSON spec as a TF.js `tf.layers` functional model: the same layers,
// the same Keras names (so weights map by `<layer>/<param>`, as in
// test/helpers/tfjs.ts), the same defaults. Only the layer types the benchmark
// models use, and their close relatives; anything else is an error.

/** @typedef {typeof import('@tensorflow/tfjs')} TF */

/** modelc activation names -> TF.js's. */
const activations = /** @type {Record<string, string>} */ ({
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  elu: 'elu',
  selu: 'selu',
  tanh: 'tanh',
  sigmoid: 'sigmoid',
  hard_sigmoid: 'hardSigmoid',
  softplus: 'softplus',
  softmax: 'softmax',
  swish: 'swish',
});

/**
 * @param {string | undefined} name
 * @param {string} layer
 */
function activation(name, layer) {
  if (name === undefined) return undefined;
  const a = activations[name];
  if (!a) throw new Error(`layer ${layer}: activation '${name}' has no TF.js equivalent in the bench`);
  return /** @type {any} */ (a);
}

/** An int or [h, w] as [h, w]. @param {unknown} v @returns {any} */
const pair = (v) => (v === undefined ? undefined : Array.isArray(v) ? v : [v, v]);

/**
 * One tf.layers layer for a spec layer.
 * @param {TF} tf
 * @param {any} l  spec layer, with its `name`
 */
function makeLayer(tf, l) {
  const L = tf.layers;
  const name = l.name;
  /** @type {(what: string) => never} */
  const unsupported = (what) => {
    throw new Error(`layer ${name} (${l.type}): ${what} is not supported by the bench's TF.js builder`);
  };
  switch (l.type) {
    case 'dense':
      return L.dense({ units: l.units, activation: activation(l.activation, name), useBias: l.use_bias ?? true, name });
    case 'conv2d':
      if ((l.groups ?? 1) !== 1) unsupported('groups');
      return L.conv2d({
        filters: l.filters,
        kernelSize: pair(l.kernel_size),
        strides: pair(l.strides ?? 1),
        padding: l.padding ?? 'valid',
        dilationRate: pair(l.dilation_rate ?? 1),
        activation: activation(l.activation, name),
        useBias: l.use_bias ?? true,
        name,
      });
    case 'depthwise_conv2d':
      return L.depthwiseConv2d({
        kernelSize: pair(l.kernel_size),
        strides: pair(l.strides ?? 1),
        padding: l.padding ?? 'valid',
        depthMultiplier: l.depth_multiplier ?? 1,
        dilationRate: pair(l.dilation_rate ?? 1),
        activation: activation(l.activation, name),
        useBias: l.use_bias ?? true,
        name,
      });
    case 'batchnorm':
    case 'batch_normalization':
      if (l.renorm) unsupported('renorm');
      return L.batchNormalization({
        axis: l.axis ?? -1,
        momentum: l.momentum ?? 0.99,
        epsilon: l.epsilon ?? 0.001,
        center: l.center ?? true,
        scale: l.scale ?? true,
        name,
      });
    case 'activation':
      return L.activation({ activation: activation(l.activation, name), name });
    case 'leaky_relu':
      return L.leakyReLU({ alpha: l.alpha ?? 0.3, name });
    case 'dropout':
      return L.dropout({ rate: l.rate, name });
    case 'max_pool2d':
    case 'avg_pool2d': {
      const poolSize = pair(l.pool_size ?? 2);
      const args = { poolSize, strides: pair(l.strides) ?? poolSize, padding: l.padding ?? 'valid', name };
      return l.type === 'max_pool2d' ? L.maxPooling2d(args) : L.averagePooling2d(args);
    }
    case 'global_avg_pool2d':
    case 'global_max_pool2d':
      if (l.keepdims) unsupported('keepdims');
      return l.type === 'global_avg_pool2d' ? L.globalAveragePooling2d({ name }) : L.globalMaxPooling2d({ name });
    case 'flatten':
      return L.flatten({ name });
    case 'reshape':
      return L.reshape({ targetShape: l.target_shape, name });
    case 'add':
      return L.add({ name });
    case 'concatenate':
      return L.concatenate({ axis: l.axis ?? -1, name });
    default:
      if (l.reuse !== undefined) unsupported('reuse (shared layers)');
      if (activations[l.type]) return L.activation({ activation: activation(l.type, name), name });
      return unsupported('this layer type');
  }
}

/**
 * The spec as a functional tf.layers model (one output: the spec's first).
 * @param {TF} tf
 * @param {any} spec  a modelc JSON spec whose layers all carry `name`
 */
export function buildModel(tf, spec) {
  /** @type {Map<string, any>} */
  const values = new Map();
  const inputs = spec.inputs.map((/** @type {any} */ i) => {
    const t = tf.input({ name: i.name, shape: [...i.shape] });
    values.set(i.name, t);
    return t;
  });
  let previous = spec.inputs[0].name;
  for (const l of spec.layers) {
    const from = (l.inputs ?? [previous]).map((/** @type {string} */ n) => {
      const v = values.get(n);
      if (!v) throw new Error(`layer ${l.name}: input '${n}' is not defined before it (the bench builder needs topological order)`);
      return v;
    });
    values.set(l.name, makeLayer(tf, l).apply(from.length === 1 ? from[0] : from));
    previous = l.name;
  }
  const output = values.get((spec.outputs ?? [previous])[0]);
  return tf.model({ inputs, outputs: output });
}

/** The Keras name of a parameter: the part of `<layer>/<param>` after the last slash. */
const paramOf = (/** @type {string} */ name) => name.slice(name.lastIndexOf('/') + 1);

/**
 * Sets every weight of `model` from modelc's, by `<layer>/<param>`.
 * @param {TF} tf
 * @param {any} model  a tf.LayersModel
 * @param {Map<string, { shape: number[], data: Float32Array }>} weights
 */
export function setWeights(tf, model, weights) {
  let used = 0;
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.weights.map((/** @type {any} */ w) => {
      const name = `${layer.name}/${paramOf(w.originalName)}`;
      const t = weights.get(name);
      if (!t) throw new Error(`no modelc weight for TF.js's ${name}`);
      used++;
      return tf.tensor(t.data, t.shape);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
  if (used !== weights.size) throw new Error(`TF.js used ${used} of modelc's ${weights.size} weights`);
}

/**
 * Every weight of `model` by modelc's name.
 * @param {any} model  a tf.LayersModel
 * @returns {Record<string, Float32Array>}
 */
export function getWeights(model) {
  /** @type {Record<string, Float32Array>} */
  const out = {};
  for (const layer of model.layers) {
    const values = layer.getWeights();
    layer.weights.forEach((/** @type {any} */ w, /** @type {number} */ k) => {
      out[`${layer.name}/${paramOf(w.originalName)}`] = Float32Array.from(values[k].dataSync());
    });
  }
  return out;
}

/**
 * The TF.js optimizer and loss of a spec's training block.
 * @param {TF} tf
 * @param {any} training
 */
export function trainingConfig(tf, training) {
  const opt = typeof training.optimizer === 'string' ? { type: training.optimizer } : training.optimizer;
  const lr = opt.learning_rate ?? 0.01;
  /** @type {any} */
  let optimizer;
  if (opt.type === 'sgd' && !opt.momentum) optimizer = tf.train.sgd(lr);
  else if (opt.type === 'sgd') optimizer = tf.train.momentum(lr, opt.momentum, opt.nesterov ?? false);
  else throw new Error(`optimizer '${opt.type}' is not supported by the bench's TF.js builder`);
  const losses = /** @type {Record<string, string>} */ ({
    binary_crossentropy: 'binaryCrossentropy',
    categorical_crossentropy: 'categoricalCrossentropy',
    mse: 'meanSquaredError',
    mean_squared_error: 'meanSquaredError',
  });
  const loss = losses[training.loss];
  if (!loss) throw new Error(`loss '${training.loss}' is not supported by the bench's TF.js builder`);
  return { optimizer, loss, metrics: (training.metrics ?? []).includes('accuracy') ? ['accuracy'] : [] };
}
