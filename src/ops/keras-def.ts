/**
 * Keras/TF.js import facts of a layer (`LayerDef.kerasImport`): which Keras
 * layer classes become it, and how one such class's config becomes its spec
 * attributes. The rule lives in the layer's record; `frontend/tfjs.ts` reads
 * model.json (topology, inbound nodes, weights), finds the record claiming a
 * layer's `class_name`, and runs its rule over a `KerasConfig`.
 *
 * A rule reads config keys through the typed getters (each marks its key as
 * read) and writes attributes with `set`, which also records the key the
 * attribute came from, so spec diagnostics point into model.json. Keys a rule
 * leaves unread are refused afterwards (anything but null, `trainable: true`
 * and a float32 dtype), so an option modelc cannot represent never slips
 * through silently. Values equal to the layer's defaults are dropped by the
 * importer, not by the rule.
 *
 *   kerasImport: { classes: ['Dense'], fromConfig: (c) => { c.set('units', c.int('units')); kerasWeighted(c, 'kernel_initializer'); } }
 */
import type { Initializer } from './init.js';

/** One Keras layer's config, as a layer's import rule reads it. */
export interface KerasConfig {
  /** The raw value of `key` (undefined when absent), marked read. */
  get(key: string): unknown;
  /** Whether `key` is present and not null; does not mark it read. */
  has(key: string): boolean;
  /** `read(key)` unless the value is absent or null (then undefined; the key counts as read). */
  optional<T>(key: string, read: (key: string) => T): T | undefined;
  /** An integer >= `minimum` (default 1). */
  int(key: string, minimum?: number): number;
  /** A finite number. */
  number(key: string): number;
  bool(key: string): boolean;
  /** An int or a [h, w] pair of ints >= `minimum` (default 1); an equal pair reads as one int. */
  intPair(key: string, minimum?: number): number | [number, number];
  /** An axis: an int, or a list of one int (Keras BatchNormalization). */
  axis(key: string): number;
  /** `'valid'` (also when absent) or `'same'`; other paddings are refused. */
  padding(key?: string): 'valid' | 'same';
  /** Refuses any `data_format` but channels_last (modelc is NHWC). */
  dataFormat(): void;
  /**
   * For a layer's `activation` attribute (Dense, Conv2D): the modelc
   * activation a Keras/TF.js activation string means (`hardSigmoid` is
   * `hard_sigmoid`), undefined when absent. A string that also fixes
   * attributes (`gelu_new`) is refused: the attribute holds a name only.
   */
  activation(key?: string): string | undefined;
  /**
   * For a layer that is the activation itself (Keras `Activation`): the
   * function a string means with the attributes it fixes (`gelu_new` is
   * gelu with `approximate: true`), undefined when absent.
   */
  activationFn(key: string): KerasActivation | undefined;
  /**
   * A Keras initializer config as a modelc initializer (undefined when
   * absent, or when modelc cannot express it: then with a warning).
   */
  initializer(key: string): Initializer | undefined;
  /**
   * Gives the spec entry attribute `attr` the value `value` (nothing when
   * undefined), read from config key `key` (default: `attr`); the first
   * `set` of an attribute fixes its place in the entry.
   */
  set(attr: string, value: unknown, key?: string): void;
  /** An `import` diagnostic naming the layer and its class, at `key` (or at the class name). */
  fail(key: string | undefined, message: string): never;
  /**
   * A warning naming the layer and its class, at `key` (or at the class
   * name): the import goes on with something that differs from Keras only
   * where it cannot matter for the imported model's predictions (an
   * initializer, training-only behaviour), and the user is told.
   */
  warn(key: string | undefined, message: string): void;
}

/** An activation function as a Keras/TF.js string names it: modelc's name and the attributes the string fixes. */
export interface KerasActivation {
  readonly name: string;
  readonly attrs: Readonly<Record<string, unknown>>;
}

/** How Keras layer classes become one modelc layer. */
export interface KerasImport {
  /**
   * The Keras class names this layer imports: the first is the canonical one
   * (diagnostics name it, `modelc imports ...` lists it), the rest are Keras's
   * aliases of it (`Convolution2D`). A class belongs to one layer record.
   */
  readonly classes: readonly string[];
  /**
   * Reads the config into attributes with `c.set`. Returns the spec type when
   * the config makes it another layer than this one (a Keras `ReLU` with
   * `max_value: 6` is `relu6`); that layer's attributes then apply.
   */
  fromConfig(c: KerasConfig): string | void;
}

/** A layer no Keras class imports as, and why (`Activation('tanh')` is an `activation` layer). */
export interface NotImportable {
  readonly notImportable: string;
}

/** A value as a diagnostic quotes it: JSON, cut at 60 characters. */
export function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? text.slice(0, 57) + '...' : text;
}

/** A JSON object (not null, not a list), as Keras configs nest them. */
export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isImportable(rule: KerasImport | NotImportable | undefined): rule is KerasImport {
  return rule !== undefined && 'classes' in rule;
}

/** The attributes of a layer with a kernel and a bias: activation, use_bias and their initializers. */
export function kerasWeighted(c: KerasConfig, kernelKey: string): void {
  const act = c.activation();
  if (act !== undefined && act !== 'linear') c.set('activation', act);
  c.set('use_bias', c.optional('use_bias', (k) => c.bool(k)));
  c.set(kernelKey, c.initializer(kernelKey));
  c.set('bias_initializer', c.initializer('bias_initializer'));
}

/** The window of a convolution: strides, padding, data format, dilation. */
export function kerasWindow(c: KerasConfig): void {
  c.set('strides', c.optional('strides', (k) => c.intPair(k)));
  c.set('padding', c.padding());
  c.dataFormat();
  c.set('dilation_rate', c.optional('dilation_rate', (k) => c.intPair(k)));
}
