/**
 * Differential tests: modelc's inference semantics against TF.js 4.22 (CPU
 * backend), layer by layer and on the examples.
 *
 * Each case is a modelc spec and the same model in `tf.layers`, with layer
 * names equal to the spec's (so weights map by `<layer>/<param>`). TF.js gets
 * seeded random weights, modelc the same ones, and both run a seeded batch of
 * 3. Per case:
 *   - `interpreter`: the float64 reference interpreter on the graph and on its
 *     `-O` version (batchnorm folded, activations fused) against TF.js;
 *   - `generated`: the generated inference module of both graphs against TF.js.
 * Tolerance: max |diff| <= 1e-4 * max(1, max |TF.js output|).
 *
 * What TF.js cannot express:
 *   - grouped convolution: `tf.layers.conv2d` (and `tf.conv2d`) have no
 *     `groups` (the option is silently ignored), so the reference is computed
 *     with tf ops: one `tf.conv2d` per group on its slice of the input
 *     channels and of the kernel's output channels, concatenated.
 *   - `elu` with a non-default alpha: TF.js's ELU layer throws
 *     NotImplementedError for alpha != 1 (and the 'elu' activation has alpha
 *     1), so only the default is tested.
 *   - TF.js's Softmax layer defaults to axis 1 (Keras: -1) and `tf.softmax`
 *     only normalizes the last axis; the rank-3 case uses the 'softmax'
 *     activation (last axis), which is modelc's default.
 *   Every other activation modelc has is in TF.js: `gelu` is TF.js's `gelu`
 *   (erf) and `gelu(approximate: true)` its `gelu_new` (tanh approximation);
 *   `hard_sigmoid` is TF.js's `hardSigmoid` (0.2 x + 0.5, clipped).
 */
import { beforeAll, describe, it } from 'vitest';
import type { Weight } from '../../src/weights/attach.js';
import { chain, expectMatches, generatedOutputs, input, call, interpretOutputs, prepare, tf, type DiffCase } from '../helpers/tfjs.js';

const L = tf.layers;

/** A spec with one input `x` and a chain of layers. */
const seq = (name: string, shape: readonly number[], layers: readonly object[]) => ({ name, inputs: [{ name: 'x', shape }], layers });

/** A case of one layer (named `l`) on an input `x`, against one TF.js layer. */
function single(name: string, shape: readonly number[], layer: object, tfLayer: () => tf.layers.Layer, inputScale?: number): DiffCase {
  return {
    name,
    spec: seq(name, shape, [{ ...layer, name: 'l' }]),
    tfjs: { model: () => chain('x', shape, [tfLayer()]) },
    ...(inputScale === undefined ? {} : { inputScale }),
  };
}

// ---------------------------------------------------------------------------
// The examples, mirrored exactly (layer names are modelc's automatic ones)

const seedMlp: DiffCase = {
  name: 'seed_mlp',
  spec: 'examples/seed_mlp.json',
  tfjs: {
    model: () =>
      chain('x', [16], [
        L.dense({ units: 64, name: 'dense' }),
        L.batchNormalization({ name: 'batch_normalization' }),
        L.activation({ activation: 'tanh', name: 'activation' }),
        L.dropout({ rate: 0.5, name: 'dropout' }),
        L.dense({ units: 64, name: 'dense_1' }),
        L.batchNormalization({ name: 'batch_normalization_1' }),
        L.activation({ activation: 'tanh', name: 'activation_1' }),
        L.dropout({ rate: 0.5, name: 'dropout_1' }),
        L.dense({ units: 2, name: 'dense_2' }),
        L.batchNormalization({ name: 'batch_normalization_2' }),
        L.activation({ activation: 'softmax', name: 'activation_2' }),
      ]),
  },
  inputScale: 2,
  foldsAway: ['batchnorm', 'dropout'],
};

const mnistCnn: DiffCase = {
  name: 'mnist_cnn',
  spec: 'examples/mnist_cnn.json',
  tfjs: {
    model: () =>
      chain('image', [28, 28, 1], [
        L.conv2d({ filters: 32, kernelSize: 3, name: 'conv2d' }),
        L.batchNormalization({ name: 'batch_normalization' }),
        L.activation({ activation: 'relu', name: 'activation' }),
        L.conv2d({ filters: 64, kernelSize: 3, name: 'conv2d_1' }),
        L.batchNormalization({ name: 'batch_normalization_1' }),
        L.activation({ activation: 'relu', name: 'activation_1' }),
        L.maxPooling2d({ poolSize: 2, name: 'max_pooling2d' }),
        L.flatten({ name: 'flatten' }),
        L.dense({ units: 64, name: 'dense' }),
        L.batchNormalization({ name: 'batch_normalization_2' }),
        L.activation({ activation: 'relu', name: 'activation_2' }),
        L.dense({ units: 10, activation: 'softmax', name: 'dense_1' }),
      ]),
  },
  foldsAway: ['batchnorm'],
};

const resBlock: DiffCase = {
  name: 'res_block',
  spec: 'examples/res_block.json',
  tfjs: {
    model: () => {
      const x = input('x', [32, 32, 16]);
      let h = call(L.conv2d({ filters: 16, kernelSize: 3, padding: 'same', name: 'conv2d' }), x);
      h = call(L.batchNormalization({ name: 'batch_normalization' }), h);
      const a = call(L.activation({ activation: 'relu', name: 'a' }), h);
      h = call(L.conv2d({ filters: 16, kernelSize: 3, padding: 'same', name: 'conv2d_1' }), a);
      const b = call(L.batchNormalization({ name: 'b' }), h);
      const y = call(L.activation({ activation: 'relu', name: 'y' }), call(L.add({ name: 'add' }), x, b));
      return tf.model({ inputs: x, outputs: y });
    },
  },
  foldsAway: ['batchnorm'],
};

// ---------------------------------------------------------------------------
// Convolutions

const convCases: DiffCase[] = [
  // same padding with stride 2: odd size (symmetric padding) and even size (TF pads more at the end)
  single('conv2d_same_s2_k3_7x7', [7, 7, 3], { type: 'conv2d', filters: 4, kernel_size: 3, strides: 2, padding: 'same' },
    () => L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'l' })),
  single('conv2d_same_s2_k4_8x8', [8, 8, 3], { type: 'conv2d', filters: 4, kernel_size: 4, strides: 2, padding: 'same' },
    () => L.conv2d({ filters: 4, kernelSize: 4, strides: 2, padding: 'same', name: 'l' })),
  single('conv2d_valid_s2_k3_8x7_rect', [8, 7, 2], { type: 'conv2d', filters: 3, kernel_size: [3, 2], strides: [2, 1], use_bias: false },
    () => L.conv2d({ filters: 3, kernelSize: [3, 2], strides: [2, 1], useBias: false, name: 'l' })),
  // dilation 2, same padding: effective kernel 5
  single('conv2d_dilated_same_7x7', [7, 7, 2], { type: 'conv2d', filters: 3, kernel_size: 3, dilation_rate: 2, padding: 'same' },
    () => L.conv2d({ filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same', name: 'l' })),
  single('conv2d_dilated_same_8x8', [8, 8, 2], { type: 'conv2d', filters: 3, kernel_size: 3, dilation_rate: 2, padding: 'same' },
    () => L.conv2d({ filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same', name: 'l' })),
  single('conv2d_dilated_k2_same_8x8', [8, 8, 2], { type: 'conv2d', filters: 3, kernel_size: 2, dilation_rate: 2, padding: 'same' },
    () => L.conv2d({ filters: 3, kernelSize: 2, dilationRate: 2, padding: 'same', name: 'l' })),
  {
    // TF.js has no grouped convolution: the reference is one tf.conv2d per group (see the header)
    name: 'conv2d_groups2_same',
    spec: seq('conv2d_groups2_same', [6, 6, 4], [{ type: 'conv2d', name: 'l', filters: 6, kernel_size: 3, padding: 'same', groups: 2 }]),
    tfjs: { ops: groupedConv('l', 2, 'same') },
  },
  {
    name: 'conv2d_groups2_valid_s2_relu',
    spec: seq('conv2d_groups2_valid_s2_relu', [7, 7, 6], [{ type: 'conv2d', name: 'l', filters: 4, kernel_size: 3, strides: 2, groups: 2, activation: 'relu' }]),
    tfjs: { ops: groupedConv('l', 2, 'valid', 2, 'relu') },
  },
  single('conv2d_transpose_valid_s2', [5, 5, 3], { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, padding: 'valid' },
    () => L.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'valid', name: 'l' })),
  single('conv2d_transpose_same_s2', [5, 5, 3], { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, padding: 'same' },
    () => L.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'l' })),
  single('conv2d_transpose_same_s2_k4', [4, 4, 2], { type: 'conv2d_transpose', filters: 3, kernel_size: 4, strides: 2, padding: 'same' },
    () => L.conv2dTranspose({ filters: 3, kernelSize: 4, strides: 2, padding: 'same', name: 'l' })),
  single('depthwise_conv2d_m2_same_s2', [7, 7, 3], { type: 'depthwise_conv2d', kernel_size: 3, depth_multiplier: 2, strides: 2, padding: 'same' },
    () => L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', name: 'l' })),
  single('depthwise_conv2d_m2_same_s2_even', [8, 8, 2], { type: 'depthwise_conv2d', kernel_size: 4, depth_multiplier: 2, strides: 2, padding: 'same' },
    () => L.depthwiseConv2d({ kernelSize: 4, depthMultiplier: 2, strides: 2, padding: 'same', name: 'l' })),
];

/**
 * Grouped conv2d from tf ops: group g convolves input channels
 * [g*cin/G, (g+1)*cin/G) with kernel output channels [g*f/G, (g+1)*f/G) (the
 * Keras kernel is [kh, kw, cin/G, f]); the groups' outputs are concatenated.
 */
function groupedConv(layer: string, groups: number, padding: 'same' | 'valid', strides = 1, activation?: 'relu'): (inputs: readonly tf.Tensor[], weights: ReadonlyMap<string, Weight>) => tf.Tensor[] {
  return (inputs, weights) =>
    tf.tidy(() => {
      const x = inputs[0] as tf.Tensor4D;
      const k = weights.get(`${layer}/kernel`)!;
      const bias = weights.get(`${layer}/bias`)!;
      const kernel = tf.tensor4d(k.data, k.shape as [number, number, number, number]);
      const cin = x.shape[3] / groups;
      const f = k.shape[3]! / groups;
      const parts = Array.from({ length: groups }, (_, g) =>
        tf.conv2d(x.slice([0, 0, 0, g * cin], [-1, -1, -1, cin]), kernel.slice([0, 0, 0, g * f], [-1, -1, -1, f]), strides, padding),
      );
      const y = tf.add(tf.concat(parts, 3), tf.tensor1d(bias.data));
      return [activation === 'relu' ? tf.relu(y) : y];
    });
}

// ---------------------------------------------------------------------------
// Pooling and upsampling

const poolCases: DiffCase[] = [
  // 7x7, pool 3, stride 2: valid drops the last row/column; same pads one on each side (partial windows at both ends)
  single('max_pool2d_valid_p3_s2_7x7', [7, 7, 2], { type: 'max_pool2d', pool_size: 3, strides: 2, padding: 'valid' },
    () => L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid', name: 'l' })),
  single('max_pool2d_same_p3_s2_7x7', [7, 7, 2], { type: 'max_pool2d', pool_size: 3, strides: 2, padding: 'same' },
    () => L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'l' })),
  single('avg_pool2d_valid_p3_s2_7x7', [7, 7, 2], { type: 'avg_pool2d', pool_size: 3, strides: 2, padding: 'valid' },
    () => L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'valid', name: 'l' })),
  single('avg_pool2d_same_p3_s2_7x7', [7, 7, 2], { type: 'avg_pool2d', pool_size: 3, strides: 2, padding: 'same' },
    () => L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'l' })),
  // pool 2 (stride 2) on 7x7, same: the last window holds one row/column (padding only at the end)
  single('max_pool2d_same_p2_7x7', [7, 7, 2], { type: 'max_pool2d', pool_size: 2, padding: 'same' },
    () => L.maxPooling2d({ poolSize: 2, padding: 'same', name: 'l' })),
  single('avg_pool2d_same_p2_7x7', [7, 7, 2], { type: 'avg_pool2d', pool_size: 2, padding: 'same' },
    () => L.averagePooling2d({ poolSize: 2, padding: 'same', name: 'l' })),
  single('avg_pool2d_same_p3_s1_5x6', [5, 6, 3], { type: 'avg_pool2d', pool_size: 3, strides: 1, padding: 'same' },
    () => L.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same', name: 'l' })),
  single('global_avg_pool2d', [5, 4, 3], { type: 'global_avg_pool2d' }, () => L.globalAveragePooling2d({ name: 'l' })),
  single('global_max_pool2d', [5, 4, 3], { type: 'global_max_pool2d' }, () => L.globalMaxPooling2d({ name: 'l' })),
  single('upsampling2d_2x3', [3, 2, 2], { type: 'upsampling2d', size: [2, 3] }, () => L.upSampling2d({ size: [2, 3], name: 'l' })),
];

// ---------------------------------------------------------------------------
// Functional graphs, batchnorm, softmax

const graphCases: DiffCase[] = [
  {
    name: 'concatenate',
    spec: {
      name: 'concatenate',
      inputs: [{ name: 'x', shape: [6] }],
      layers: [
        { type: 'dense', name: 'a', inputs: ['x'], units: 4, activation: 'relu' },
        { type: 'dense', name: 'b', inputs: ['x'], units: 3, activation: 'tanh' },
        { type: 'concatenate', name: 'cat', inputs: ['a', 'b'] },
        { type: 'dense', name: 'out', units: 2 },
      ],
    },
    tfjs: {
      model: () => {
        const x = input('x', [6]);
        const a = call(L.dense({ units: 4, activation: 'relu', name: 'a' }), x);
        const b = call(L.dense({ units: 3, activation: 'tanh', name: 'b' }), x);
        const out = call(L.dense({ units: 2, name: 'out' }), call(L.concatenate({ name: 'cat' }), a, b));
        return tf.model({ inputs: x, outputs: out });
      },
    },
  },
  {
    name: 'concatenate_channels',
    spec: {
      name: 'concatenate_channels',
      inputs: [{ name: 'x', shape: [5, 5, 2] }],
      layers: [
        { type: 'conv2d', name: 'a', inputs: ['x'], filters: 3, kernel_size: 3, padding: 'same' },
        { type: 'batchnorm', name: 'a_bn' },
        { type: 'conv2d', name: 'b', inputs: ['x'], filters: 2, kernel_size: 1 },
        { type: 'concatenate', name: 'cat', inputs: ['a_bn', 'b'] },
        { type: 'relu', name: 'out' },
      ],
    },
    tfjs: {
      model: () => {
        const x = input('x', [5, 5, 2]);
        const a = call(L.batchNormalization({ name: 'a_bn' }), call(L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'a' }), x));
        const b = call(L.conv2d({ filters: 2, kernelSize: 1, name: 'b' }), x);
        const out = call(L.activation({ activation: 'relu', name: 'out' }), call(L.concatenate({ name: 'cat' }), a, b));
        return tf.model({ inputs: x, outputs: out });
      },
    },
    foldsAway: ['batchnorm'],
  },
  {
    // one Dense layer object applied to two inputs; two outputs
    name: 'shared_layer',
    spec: {
      name: 'shared_layer',
      inputs: [{ name: 'x1', shape: [5] }, { name: 'x2', shape: [5] }],
      layers: [
        { type: 'dense', name: 'enc', inputs: ['x1'], units: 4, activation: 'tanh' },
        { reuse: 'enc', inputs: ['x2'] },
        { type: 'add', name: 'sum', inputs: ['enc', 'enc_1'] },
        { type: 'dense', name: 'out', units: 3 },
      ],
      outputs: ['out', 'enc_1'],
    },
    tfjs: {
      model: () => {
        const x1 = input('x1', [5]);
        const x2 = input('x2', [5]);
        const enc = L.dense({ units: 4, activation: 'tanh', name: 'enc' });
        const h1 = call(enc, x1);
        const h2 = call(enc, x2);
        const out = call(L.dense({ units: 3, name: 'out' }), call(L.add({ name: 'sum' }), h1, h2));
        return tf.model({ inputs: [x1, x2], outputs: [out, h2] });
      },
    },
  },
  single('batchnorm_alone_image', [4, 4, 3], { type: 'batchnorm' }, () => L.batchNormalization({ name: 'l' })),
  single('batchnorm_alone_eps', [6], { type: 'batchnorm', epsilon: 0.1 }, () => L.batchNormalization({ epsilon: 0.1, name: 'l' })),
  single('softmax', [7], { type: 'softmax' }, () => L.softmax({ name: 'l' }), 4),
  // TF.js's Softmax layer defaults to axis 1 (Keras: -1), and tf.softmax only takes the last axis: use the activation
  single('softmax_rank3', [4, 5], { type: 'softmax' }, () => L.activation({ activation: 'softmax', name: 'l' }), 4),
  {
    name: 'dense_softmax',
    spec: seq('dense_softmax', [8], [{ type: 'dense', name: 'd', units: 5, activation: 'softmax' }]),
    tfjs: { model: () => chain('x', [8], [L.dense({ units: 5, activation: 'softmax', name: 'd' })]) },
    inputScale: 3,
  },
];

// ---------------------------------------------------------------------------
// Activations, on inputs in [-4, 4]

/** modelc layer -> TF.js layer. Every modelc activation has a TF.js counterpart. */
const activations: [string, object, () => tf.layers.Layer][] = [
  ['relu', { type: 'relu' }, () => L.activation({ activation: 'relu', name: 'l' })],
  ['relu6', { type: 'relu6' }, () => L.activation({ activation: 'relu6', name: 'l' })],
  ['leaky_relu', { type: 'leaky_relu', alpha: 0.2 }, () => L.leakyReLU({ alpha: 0.2, name: 'l' })],
  ['leaky_relu_default', { type: 'leaky_relu' }, () => L.leakyReLU({ name: 'l' })],
  ['elu', { type: 'elu' }, () => L.activation({ activation: 'elu', name: 'l' })],
  ['selu', { type: 'selu' }, () => L.activation({ activation: 'selu', name: 'l' })],
  ['gelu', { type: 'gelu' }, () => L.activation({ activation: 'gelu', name: 'l' })],
  ['gelu_approximate', { type: 'gelu', approximate: true }, () => L.activation({ activation: 'gelu_new', name: 'l' })],
  ['swish', { type: 'swish' }, () => L.activation({ activation: 'swish', name: 'l' })],
  ['tanh', { type: 'tanh' }, () => L.activation({ activation: 'tanh', name: 'l' })],
  ['sigmoid', { type: 'sigmoid' }, () => L.activation({ activation: 'sigmoid', name: 'l' })],
  ['hard_sigmoid', { type: 'hard_sigmoid' }, () => L.activation({ activation: 'hardSigmoid', name: 'l' })],
  ['softplus', { type: 'softplus' }, () => L.activation({ activation: 'softplus', name: 'l' })],
  ['linear', { type: 'activation', activation: 'linear' }, () => L.activation({ activation: 'linear', name: 'l' })],
];

const activationCases: DiffCase[] = [
  ...activations.map(([name, layer, tfLayer]) => single(`activation_${name}`, [3, 8], layer, tfLayer, 4)),
  // an activation fused into a dense / conv by -O
  {
    name: 'dense_bn_elu_fused',
    spec: seq('dense_bn_elu_fused', [6], [{ type: 'dense', name: 'd', units: 5 }, { type: 'batchnorm', name: 'bn' }, { type: 'elu', name: 'act' }]),
    tfjs: { model: () => chain('x', [6], [L.dense({ units: 5, name: 'd' }), L.batchNormalization({ name: 'bn' }), L.activation({ activation: 'elu', name: 'act' })]) },
    inputScale: 3,
    foldsAway: ['batchnorm', 'elu'],
  },
  {
    name: 'conv_bn_gelu_fused',
    spec: seq('conv_bn_gelu_fused', [5, 5, 2], [{ type: 'conv2d', name: 'c', filters: 3, kernel_size: 3, padding: 'same' }, { type: 'batchnorm', name: 'bn' }, { type: 'gelu', name: 'act' }]),
    tfjs: {
      model: () =>
        chain('x', [5, 5, 2], [L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'c' }), L.batchNormalization({ name: 'bn' }), L.activation({ activation: 'gelu', name: 'act' })]),
    },
    inputScale: 3,
    foldsAway: ['batchnorm', 'gelu'],
  },
];

// ---------------------------------------------------------------------------

const groups: [string, DiffCase[]][] = [
  ['examples', [seedMlp, mnistCnn, resBlock]],
  ['convolutions', convCases],
  ['pooling', poolCases],
  ['graphs, batchnorm, softmax', graphCases],
  ['activations', activationCases],
];

describe('differential tests against TF.js', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const [title, cases] of groups) {
    describe(title, () => {
      for (const c of cases) {
        describe(c.name, () => {
          it('interpreter (unoptimized and -O) matches TF.js', () => {
            const p = prepare(c);
            expectMatches('interpreter', interpretOutputs(p.graph, p), p);
            expectMatches('interpreter -O', interpretOutputs(p.optimized, p), p);
          });

          it('generated module (unoptimized and -O) matches TF.js', async () => {
            const p = prepare(c);
            expectMatches('generated', await generatedOutputs(p.graph, p), p);
            expectMatches('generated -O', await generatedOutputs(p.optimized, p), p);
          });

          it('generated module with --simd (WebAssembly SIMD kernels) matches TF.js', async () => {
            const p = prepare(c);
            expectMatches('generated -O --simd', await generatedOutputs(p.optimized, p, { simd: true }), p);
          });
        });
      }
    });
  }
});
