/**
 * Keras export facts of a layer (`LayerDef.kerasExport`): the Keras 3 class a
 * layer's attributes become and that class's config, as `config.json` of a
 * `.keras` archive spells it. `export/keras-config.ts` adds what every layer
 * shares (name, trainable, dtype policy, build_config, inbound nodes) and
 * `export/keras.ts` writes the weights. The helpers below write the pieces
 * layers share (window, kernel and bias, initializers, activation strings) in
 * Keras 3's spelling; one that has no Keras 3 form throws `NoKerasForm`, which
 * the exporter reports naming the layer.
 *
 *   kerasExport: (a) => ({ className: 'Dense', config: { units: a.units, ...kerasWeightedConfig(a, 'kernel_initializer') } })
 */
import type { Initializer } from './init.js';

/** One Keras layer: its class and the config keys of that class. */
export interface KerasLayerExport {
  readonly className: string;
  /** The class's module, for a class outside `keras.layers` (an application's own layer), with its registered name. */
  readonly module?: string;
  readonly registeredName?: string;
  readonly config: Readonly<Record<string, unknown>>;
  /**
   * The layer's Keras variables in Keras's order, for a layer whose Keras
   * class has variables modelc does not keep (BatchNormalization with renorm);
   * `params` are the layer's modelc parameters by role. Without it the
   * variables are the parameters, trainable ones first (Keras's order), each
   * group in declaration order. Either way the trainable ones come first.
   */
  variables?(params: ReadonlyMap<string, KerasVariable>): KerasVariable[];
}

/** A variable's value, row-major float32 as modelc keeps parameters. */
export interface KerasVariable {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A layer option Keras 3 cannot express; the exporter names the layer in front of `message`. */
export class NoKerasForm extends Error {}

export function noKerasForm(message: string): never {
  throw new NoKerasForm(message);
}

/** An int or [h, w] as Keras 3 saves it: always the pair. */
export function kerasPair(v: number | readonly number[]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0]!, v[1]!];
}

/** The window of a convolution as Keras 3 saves it. */
export function kerasWindowConfig(a: {
  kernel_size: number | readonly number[];
  strides: number | readonly number[];
  padding: string;
  dilation_rate: number | readonly number[];
}): Record<string, unknown> {
  return {
    kernel_size: kerasPair(a.kernel_size),
    strides: kerasPair(a.strides),
    padding: a.padding,
    data_format: 'channels_last',
    dilation_rate: kerasPair(a.dilation_rate),
  };
}

/**
 * Keras 3 activation strings with the same function as modelc's (checked
 * against keras.activations in scripts/keras/check_export.py). Absent:
 * hard_sigmoid (modelc's is Keras 2's 0.2 x + 0.5, Keras 3's string means
 * relu6(x + 3) / 6) and leaky_relu (Keras 3's string has slope 0.2, modelc's
 * default 0.3); their layers export as classes where one exists.
 */
const kerasActivations: Readonly<Record<string, string>> = {
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  elu: 'elu',
  selu: 'selu',
  gelu: 'gelu',
  swish: 'silu',
  tanh: 'tanh',
  sigmoid: 'sigmoid',
  hard_swish: 'hard_silu',
  softplus: 'softplus',
  mish: 'mish',
  softmax: 'softmax',
};

/** The Keras 3 `activation` string of a modelc activation with its default attributes (`linear` for none). */
export function kerasActivation(name: string | undefined): string {
  if (name === undefined) return 'linear';
  const keras = kerasActivations[name];
  if (keras === undefined) {
    const why = name === 'hard_sigmoid'
      ? "modelc's hard_sigmoid is Keras 2's clip(0.2 x + 0.5, 0, 1); Keras 3's 'hard_sigmoid' is relu6(x + 3) / 6"
      : name === 'leaky_relu'
        ? "Keras 3's 'leaky_relu' string has slope 0.2, modelc's 0.3: use a leaky_relu layer (it exports as LeakyReLU)"
        : 'no Keras 3 activation string is known to compute it';
    noKerasForm(`activation '${name}' has no Keras 3 form: ${why}`);
  }
  return keras;
}

/** modelc initializer names that Keras spells otherwise than by CamelCase. */
const initializerClasses: Readonly<Record<string, string>> = { uniform: 'RandomUniform', normal: 'RandomNormal' };

/**
 * A modelc initializer as a Keras 3 initializer config. modelc names are
 * Keras's snake_case names and its arguments Keras's keys, so the class is
 * the CamelCase name; an unnamed argument keeps Keras's default, which is
 * modelc's too.
 */
export function kerasInitializer(init: Initializer): Record<string, unknown> {
  const { type, ...args } = typeof init === 'string' ? { type: init } : init;
  const className = initializerClasses[type] ?? type.split('_').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
  return { module: 'keras.initializers', class_name: className, config: args, registered_name: null };
}

/** The activation, bias and initializer keys of a layer with a kernel and a bias (Dense, Conv2D, ...). */
export function kerasWeightedConfig(
  a: { activation?: string | undefined; use_bias: boolean; bias_initializer: Initializer } & Record<string, unknown>,
  kernelKey: string,
): Record<string, unknown> {
  return {
    activation: kerasActivation(a.activation),
    use_bias: a.use_bias,
    [kernelKey]: kerasInitializer(a[kernelKey] as Initializer),
    bias_initializer: kerasInitializer(a.bias_initializer),
  };
}

/**
 * BatchNormalization with renorm: Keras 3 keeps three more non-trainable
 * statistics after modelc's four variables, which only training reads:
 * moving_stddev = sqrt(moving_variance + epsilon) (Keras derives the variance
 * back as stddev² - epsilon), and the renorm mean and stddev, which start
 * equal to the moving ones.
 */
export function renormVariables(params: ReadonlyMap<string, KerasVariable>, epsilon: number): KerasVariable[] {
  const mean = params.get('moving_mean')!;
  const variance = params.get('moving_variance')!;
  const stddev = { shape: variance.shape, data: variance.data.map((v) => Math.sqrt(v + epsilon)) };
  const own = ['gamma', 'beta', 'moving_mean', 'moving_variance'].flatMap((k) => params.get(k) ?? []);
  return [...own, stddev, mean, stddev];
}

const FLOAT_MARK = '\u0000float:';

/**
 * A number that config.json must write as a float (`0.0`, not `0`): Keras
 * checks some arguments with `isinstance(x, float)` (SGD's momentum), and
 * JSON.stringify writes whole numbers as ints. `kerasJson` writes it.
 */
export function pyFloat(value: number): unknown {
  return { toJSON: () => FLOAT_MARK + String(value) };
}

/** JSON text of a Keras config, with `pyFloat` values as float literals. */
export function kerasJson(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0000float:([^"]*)"/g, (_, n: string) => (/^-?\d+$/.test(n) ? `${n}.0` : n));
}
