/**
 * The reader over one Keras layer config in a TF.js model.json: the
 * `KerasConfig` that layer records' import rules (`LayerDef.kerasImport`)
 * read through. Typed getters whose complaints are `import` diagnostics
 * naming the layer and its class, located at the config key in model.json;
 * the spec entry's attributes with the key each came from; and, at the end,
 * a refusal of every key nobody read, so an unsupported option is never
 * dropped silently. Also the translation of Keras initializer configs and
 * activation names into modelc's, which depends on the dialect: Keras 3
 * gives some activation strings another function than Keras 2 and TF.js do.
 */
import { q, type DiagnosticCode } from '../diagnostics/diagnostic.js';
import { activationFromKeras, activationNames, isKeras3Meaning, type KerasDialect } from '../ops/activation.js';
import { initializerNames, initializerProblem, initSpec, type Initializer } from '../ops/init.js';
import { isObj, show, type KerasActivation, type KerasConfig } from '../ops/keras-def.js';
import type { SpecPath } from './locations.js';

export type Obj = Record<string, unknown>;

/** A Keras layer of the config. */
export interface KerasLayer {
  readonly name: string;
  /** The canonical class name (`Conv2D` for a `Convolution2D`). */
  readonly className: string;
  readonly config: Obj;
  /** The layer object itself (`inbound_nodes`, Keras 3's `module`). */
  readonly raw: Obj;
  /** The path of the layer object in model.json. */
  readonly path: SpecPath;
}

/** Where a reader's diagnostics go: model.json paths to spans. */
export interface Failer {
  fail(path: SpecPath, message: string, code?: DiagnosticCode): never;
  /** Records a warning: the import goes on, but something the user should know changed. */
  warn(path: SpecPath, message: string): void;
}

/**
 * Which Keras wrote the config: `keras2` (tf.keras 2, TF.js, legacy .h5) or
 * `keras3` (`.keras`, Keras 3's `to_json`). The layer configs are nearly the
 * same; some activation strings are not (the activation records' `keras3`).
 */
export type { KerasDialect };

/** Reads one layer's config: typed getters, the attributes set, and a check that nothing was left unread. */
export class Config implements KerasConfig {
  /** Read elsewhere: the name, and the input shape that a Sequential model's first layer carries. */
  private readonly used = new Set(['name', 'batch_input_shape', 'batch_shape', 'input_shape']);
  /** The spec entry's attributes, in the order first set. */
  readonly attrs: Record<string, unknown> = {};
  /** For each attribute, the model.json path it was read from. */
  readonly sources = new Map<string, SpecPath>();

  constructor(
    private readonly imp: Failer,
    readonly layer: KerasLayer,
    readonly dialect: KerasDialect = 'keras2',
  ) {}

  private get where(): string {
    return `layer ${q(this.layer.name)} (${this.layer.className})`;
  }

  private path(key: string): SpecPath {
    return [...this.layer.path, 'config', key];
  }

  get(key: string): unknown {
    this.used.add(key);
    return this.layer.config[key];
  }

  has(key: string): boolean {
    const v = this.layer.config[key];
    return v !== undefined && v !== null;
  }

  fail(key: string | undefined, message: string, code: DiagnosticCode = 'import'): never {
    return this.imp.fail(key === undefined ? [...this.layer.path, 'class_name'] : this.path(key), `${this.where}: ${message}`, code);
  }

  warn(key: string | undefined, message: string): void {
    this.imp.warn(key === undefined ? [...this.layer.path, 'class_name'] : this.path(key), `${this.where}: ${message}`);
  }

  private expect(key: string, ok: boolean, what: string): void {
    if (!ok) this.fail(key, `${q(key)} must be ${what}, got ${show(this.layer.config[key])}`);
  }

  optional<T>(key: string, read: (key: string) => T): T | undefined {
    if (!this.has(key)) {
      this.used.add(key);
      return undefined;
    }
    return read(key);
  }

  int(key: string, minimum = 1): number {
    const v = this.get(key);
    this.expect(key, Number.isInteger(v) && (v as number) >= minimum, `an integer >= ${minimum}`);
    return v as number;
  }

  number(key: string): number {
    const v = this.get(key);
    this.expect(key, typeof v === 'number' && Number.isFinite(v), 'a number');
    return v as number;
  }

  bool(key: string): boolean {
    const v = this.get(key);
    this.expect(key, typeof v === 'boolean', 'true or false');
    return v as boolean;
  }

  intPair(key: string, minimum = 1): number | [number, number] {
    const v = this.get(key);
    const isInt = (d: unknown) => Number.isInteger(d) && (d as number) >= minimum;
    if (isInt(v)) return v as number;
    this.expect(key, Array.isArray(v) && v.length === 2 && v.every(isInt), `an integer or a pair of integers >= ${minimum}`);
    const [a, b] = v as [number, number];
    return a === b ? a : [a, b];
  }

  axis(key: string): number {
    const v = this.get(key);
    const one = Array.isArray(v) && v.length === 1 ? v[0] : v;
    this.expect(key, Number.isInteger(one), 'an integer axis');
    return one as number;
  }

  padding(key = 'padding'): 'valid' | 'same' {
    const v = this.optional(key, (k) => this.get(k));
    if (v === undefined || v === 'valid' || v === 'same') return (v ?? 'valid') as 'valid' | 'same';
    return this.fail(key, `padding ${show(v)} is not supported (modelc has 'valid' and 'same')`);
  }

  dataFormat(): void {
    const v = this.optional('data_format', (k) => this.get(k));
    if (v === undefined || v === 'channels_last') return;
    if (v === 'channels_first') this.fail('data_format', "data_format 'channels_first' is not supported: modelc is channels-last (NHWC)");
    this.fail('data_format', `data_format ${show(v)} is not supported`);
  }

  activation(key = 'activation'): string | undefined {
    const fn = this.activationFn(key);
    if (fn === undefined) return undefined;
    if (Object.keys(fn.attrs).length > 0) {
      const v = this.layer.config[key] as string;
      const meaning = this.dialect === 'keras3' && isKeras3Meaning(v) ? ` (Keras 3's ${q(v)}: ${fn.name} with ${show(fn.attrs)})` : '';
      return this.fail(key, `activation ${q(v)}${meaning} inside a layer is not supported (as an Activation layer it is)`);
    }
    return fn.name;
  }

  /** The activation records say which strings they answer to (`activationFromKeras`). */
  activationFn(key: string): KerasActivation | undefined {
    const v = this.optional(key, (k) => this.get(k));
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return this.fail(key, `activation ${show(v)} is not supported (expected an activation name)`);
    const fn = activationFromKeras(v, this.dialect);
    if (fn === undefined) {
      // the functions importable under their own name (leaky_relu is not: Keras's string means another slope)
      const names = activationNames.filter((n) => activationFromKeras(n)?.name === n);
      return this.fail(key, `activation ${q(v)} is not supported (modelc has ${names.join(', ')})`);
    }
    return fn;
  }

  /**
   * An initializer never changes inference, so one modelc cannot express
   * does not block an import: the layer keeps its default and a warning
   * says so (training from scratch would start elsewhere).
   */
  initializer(key: string): Initializer | undefined {
    return this.optional(key, (k) => {
      const v = this.get(k);
      try {
        const init = initializerOf(v, (msg) => {
          throw new Unexpressible(msg);
        });
        // arguments modelc refuses (a stddev of 0, a constant of 1e30) are kept out the same way
        const problem = initializerProblem(initSpec(init));
        if (problem) throw new Unexpressible(problem);
        return init;
      } catch (e) {
        if (!(e instanceof Unexpressible)) throw e;
        this.warn(k, `${q(k)}: ${e.message}; the layer keeps modelc's default initializer (inference and imported weights are unaffected)`);
        return undefined;
      }
    });
  }

  set(attr: string, value: unknown, key = attr): void {
    if (value === undefined) return;
    this.attrs[attr] = value;
    this.sources.set(attr, this.path(key));
  }

  /** Drops attribute `attr` (its value is the layer's default). */
  drop(attr: string): void {
    delete this.attrs[attr];
    this.sources.delete(attr);
  }

  /**
   * Keys nobody read: null is harmless (no regularizer, no constraint), and
   * `trainable: true`, `dtype: float32`; anything else is an option modelc
   * cannot represent.
   */
  finish(): void {
    for (const [key, v] of Object.entries(this.layer.config)) {
      if (this.used.has(key) || v === null) continue;
      if (key === 'trainable' && v === true) continue;
      if (key === 'dtype' && dtypeName(v) === 'float32') continue;
      if (key === 'dtype') this.fail(key, `dtype ${show(dtypeName(v) ?? v)} is not supported (modelc computes in float32; mixed precision and other dtype policies are refused)`);
      if (key === 'trainable') this.fail(key, 'trainable: false (a frozen layer) is not supported');
      if (/_(regularizer|constraint)$/.test(key)) this.fail(key, `${key} is not supported (modelc has no ${key.replace(/^.*_/, '')}s)`);
      this.fail(key, `option ${q(key)} = ${show(v)} is not supported`);
    }
  }
}

/** An initializer modelc has no form for (thrown inside `initializerOf`, turned into a warning). */
class Unexpressible extends Error {}

/** A dtype as a name: `"float32"`, or a Keras 3 policy `{"class_name": "DTypePolicy", "config": {"name": "float32"}}`. */
function dtypeName(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObj(v) && isObj(v['config']) && typeof v['config']['name'] === 'string') return v['config']['name'];
  return undefined;
}

/** Keras/TF.js initializer configs -> modelc initializers. */
function initializerOf(v: unknown, bad: (message: string) => never): Initializer {
  const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  const named = (s: string): Initializer => {
    const n = snake(s);
    return (initializerNames as readonly string[]).includes(n) ? (n as Initializer) : bad(`initializer ${q(s)} is not supported`);
  };
  if (typeof v === 'string') return named(v);
  if (!isObj(v) || typeof v['class_name'] !== 'string') return bad(`expected an initializer {"class_name", "config"}, got ${show(v)}`);
  const cls = v['class_name'];
  const config = isObj(v['config']) ? v['config'] : {};
  const num = (k: string): number | undefined => {
    const x = config[k];
    if (x === undefined || x === null) return undefined;
    if (typeof x !== 'number' || !Number.isFinite(x)) return bad(`${cls} ${k} must be a number, got ${show(x)}`);
    return x;
  };
  const args: Record<string, number> = {};
  const seed = num('seed');
  if (seed !== undefined) {
    if (!Number.isInteger(seed)) bad(`${cls} seed must be an integer, got ${seed}`);
    args['seed'] = seed;
  }
  const withArgs = (type: string, keys: readonly string[]): Initializer => {
    for (const k of keys) {
      const x = num(k);
      if (x !== undefined) args[k] = x;
    }
    return (Object.keys(args).length === 0 ? type : { type, ...args }) as Initializer;
  };
  switch (cls) {
    case 'Zeros':
    case 'Ones':
      return snake(cls) as Initializer;
    case 'Constant':
      return { type: 'constant', value: num('value') ?? 0 } as Initializer;
    case 'RandomUniform':
      return withArgs('random_uniform', ['minval', 'maxval']);
    case 'RandomNormal':
      return withArgs('random_normal', ['mean', 'stddev']);
    case 'TruncatedNormal':
      return withArgs('truncated_normal', ['mean', 'stddev']);
    case 'GlorotUniform':
    case 'GlorotNormal':
    case 'HeUniform':
    case 'HeNormal':
    case 'LecunUniform':
    case 'LecunNormal':
      return withArgs(snake(cls), []);
    case 'VarianceScaling':
      return withArgs(varianceScalingName(config, num, bad), []);
    default:
      return bad(`initializer ${q(cls)} is not supported`);
  }
}

/** glorot, he and lecun are VarianceScaling with a fixed scale and mode; nothing else has a modelc name. */
function varianceScalingName(config: Obj, num: (k: string) => number | undefined, bad: (message: string) => never): string {
  const scale = num('scale') ?? 1;
  const mode = config['mode'] ?? 'fan_in';
  const dist = config['distribution'] ?? 'truncated_normal';
  const family = scale === 1 && mode === 'fan_avg' ? 'glorot' : scale === 2 && mode === 'fan_in' ? 'he' : scale === 1 && mode === 'fan_in' ? 'lecun' : undefined;
  const kind = dist === 'uniform' ? 'uniform' : dist === 'normal' || dist === 'truncated_normal' ? 'normal' : undefined;
  if (!family || !kind) return bad(`VarianceScaling(scale=${scale}, mode=${show(mode)}, distribution=${show(dist)}) has no modelc name (glorot, he and lecun have one)`);
  return `${family}_${kind}`;
}
