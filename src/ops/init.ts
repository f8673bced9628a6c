/**
 * Initializers, with Keras names. A spec gives an initializer as a name
 * (`"glorot_uniform"`) or as an object with its arguments
 * (`{"type": "random_normal", "stddev": 0.1}`); it is part of each parameter's
 * declaration, and `materialize` samples it into the parameter's value.
 *
 * Each initializer is a distribution (constant, uniform, normal, or normal
 * truncated at two standard deviations) whose arguments follow Keras 3,
 * defaults included; the variance-scaling family (glorot, he, lecun) derives
 * them from the tensor's fans as `keras.initializers.VarianceScaling` does.
 *
 * Determinism contract: the value of parameter `<name>` depends only on
 * (seed, name, shape, initializer), where the seed is the initializer's own
 * `seed` argument if it has one, else the model seed. Each parameter draws
 * from its own PCG32 stream, `paramStream(seed, name)` (util/prng.ts), so adding,
 * removing or reordering layers never changes another parameter's values.
 * Values are bitwise reproducible on one JavaScript engine (normals go through
 * Math.log/sin/cos, which the ECMAScript spec lets engines approximate).
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { fail, q, suggest } from '../diagnostics/diagnostic.js';
import type { Graph, InitSpec, ParamDecl } from '../ir/graph.js';
import { paramStream, type Pcg32 } from '../util/prng.js';

export const initializerNames = [
  'zeros',
  'ones',
  'constant',
  'uniform',
  'random_uniform',
  'random_normal',
  'truncated_normal',
  'glorot_uniform',
  'glorot_normal',
  'he_uniform',
  'he_normal',
  'lecun_uniform',
  'lecun_normal',
] as const;

/**
 * Keras's other names for the initializers above (`keras.initializers.get`
 * accepts each): class names and short forms. `VarianceScaling` with Keras's
 * defaults (scale 1, fan_in, truncated_normal) is exactly lecun_normal.
 */
export const initializerAliases: Readonly<Record<string, (typeof initializerNames)[number]>> = {
  Zeros: 'zeros',
  zero: 'zeros',
  Ones: 'ones',
  one: 'ones',
  Constant: 'constant',
  RandomUniform: 'random_uniform',
  RandomNormal: 'random_normal',
  normal: 'random_normal',
  TruncatedNormal: 'truncated_normal',
  GlorotUniform: 'glorot_uniform',
  GlorotNormal: 'glorot_normal',
  HeUniform: 'he_uniform',
  HeNormal: 'he_normal',
  LecunUniform: 'lecun_uniform',
  LecunNormal: 'lecun_normal',
  VarianceScaling: 'lecun_normal',
  variance_scaling: 'lecun_normal',
};

/** Keras initializers modelc has no form for. */
export const kerasOnlyInitializers: readonly string[] = ['identity', 'Identity', 'IdentityInitializer', 'orthogonal', 'Orthogonal', 'OrthogonalInitializer', 'stft', 'STFT', 'STFTInitializer'];

/**
 * The modelc name of `VarianceScaling(scale, mode, distribution)` (Keras
 * defaults 1, fan_in, truncated_normal; Keras 2 and TF.js spell the
 * truncated normal `normal`): glorot, he and lecun are the ones with a
 * name; undefined for the others.
 */
export function varianceScalingName(scale = 1, mode: unknown = 'fan_in', distribution: unknown = 'truncated_normal'): InitializerName | undefined {
  const family = scale === 1 && mode === 'fan_avg' ? 'glorot' : scale === 2 && mode === 'fan_in' ? 'he' : scale === 1 && mode === 'fan_in' ? 'lecun' : undefined;
  const kind = distribution === 'uniform' ? 'uniform' : distribution === 'normal' || distribution === 'truncated_normal' ? 'normal' : undefined;
  return family && kind ? `${family}_${kind}` : undefined;
}

// Keras's other names too, for editors; typed as modelc's, which frontend/keras-names.ts resolves them to before validation.
const InitializerName = Type.Unsafe<InitializerName>(Type.Union(
  [...initializerNames, ...Object.keys(initializerAliases)].map((n) => Type.Literal(n)),
  { description: 'a Keras initializer name' },
));

/**
 * How large an initializer's arguments may be: 1e18, about the square root of
 * float32's largest value (3.4e38), so that sampled weights are finite in
 * float32 and a weight times an input of like size still is (a constant 1e38
 * fits float32 but makes any dense layer's output infinite).
 */
export const MAX_INIT_MAGNITUDE = 1e18;

const bounded = (description: string) =>
  Type.Optional(Type.Number({ minimum: -MAX_INIT_MAGNITUDE, maximum: MAX_INIT_MAGNITUDE, description }));
const Seed = Type.Optional(Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER, description: 'a per-initializer seed' }));

/** The object form's arguments, per initializer; each object form takes only its own (and any may name a `seed`). */
const initializerArgs: readonly (readonly [readonly InitializerName[], TProperties])[] = [
  [['zeros', 'ones'], { seed: Seed }],
  [['constant'], { value: bounded('the value'), seed: Seed }],
  [['uniform', 'random_uniform'], { minval: bounded('lower bound'), maxval: bounded('upper bound'), seed: Seed }],
  [
    ['random_normal', 'truncated_normal'],
    {
      mean: bounded('mean'),
      stddev: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_INIT_MAGNITUDE, description: 'standard deviation' })),
      seed: Seed,
    },
  ],
  [['glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal', 'lecun_uniform', 'lecun_normal'], { seed: Seed }],
];

/** The object form of these initializers: their names (Keras's too, for editors) and their arguments. */
function initializerObject(names: readonly InitializerName[], args: TProperties) {
  const all = [...names, ...Object.keys(initializerAliases).filter((a) => names.includes(initializerAliases[a]!))];
  return Type.Object(
    { type: Type.Unsafe<InitializerName>(Type.Union(all.map((n) => Type.Literal(n)))), ...args },
    { additionalProperties: false, title: `initializer ${names.join(' | ')}` },
  );
}

const initializerForms = () => [InitializerName, ...initializerArgs.map(([names, args]) => initializerObject(names, args))];

/**
 * Why an initializer's arguments are invalid (its object form's schema
 * above), or undefined: for IR graphs, whose initializers did not come
 * through spec validation.
 */
export function initializerProblem(init: InitSpec): string | undefined {
  const form = initializerArgs.find(([names]) => (names as readonly string[]).includes(init.type));
  if (!form) return undefined; // an unknown name: reported where it is sampled
  const error = Value.Errors(initializerObject(form[0], form[1]), { type: init.type, ...init.args }).First();
  if (!error) return undefined;
  const arg = error.path.slice(1);
  return arg ? `${init.type} argument ${q(arg)} = ${JSON.stringify(error.value) ?? String(error.value)}: ${error.message.toLowerCase()}` : `${init.type}: ${error.message.toLowerCase()}`;
}

const initializerDescription = 'an initializer: a name, or {"type": name, ...arguments}';
export const Initializer = Type.Union(initializerForms(), { description: initializerDescription });
export type Initializer = Static<typeof Initializer>;

/** Whether a layer attribute's schema is an initializer's (its name and object forms resolve Keras names). */
export function isInitializerAttr(schema: { readonly description?: string }): boolean {
  return schema.description === initializerDescription;
}

/** An initializer attribute with a Keras default. */
export function initializer(defaultName: (typeof initializerNames)[number]) {
  return Type.Union(initializerForms(), { description: initializerDescription, default: defaultName });
}

/** The IR form of a spec initializer. */
export function initSpec(init: Initializer): InitSpec {
  if (typeof init === 'string') return { type: init, args: {} };
  const { type, ...args } = init;
  return { type, args: args as Record<string, number> };
}

// ---------------------------------------------------------------------------
// Sampling

export type InitializerName = (typeof initializerNames)[number];

export function isInitializerName(name: string): name is InitializerName {
  return (initializerNames as readonly string[]).includes(name);
}

/** What an initializer draws from, once its arguments and the tensor's fans are known. */
export type Distribution =
  | { readonly kind: 'constant'; readonly value: number }
  | { readonly kind: 'uniform'; readonly minval: number; readonly maxval: number }
  | { readonly kind: 'normal'; readonly mean: number; readonly stddev: number }
  /** A normal whose draws farther than 2 stddev from the mean are discarded and redrawn. */
  | { readonly kind: 'truncated_normal'; readonly mean: number; readonly stddev: number };

export interface Fans {
  readonly fanIn: number;
  readonly fanOut: number;
}

/**
 * Fans as Keras computes them: a scalar has 1 and 1; a vector [n] has n and n;
 * a matrix [in, out] has in and out; a conv kernel [...receptive, in, out] has
 * in * receptive and out * receptive (receptive = product of the leading dims).
 */
export function computeFans(shape: readonly number[]): Fans {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0]!, fanOut: shape[0]! };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[shape.length - 2]! * receptive, fanOut: shape[shape.length - 1]! * receptive };
}

/** The standard deviation of a standard normal truncated to (-2, 2). */
const TRUNCATED_STDDEV = 0.87962566103423978;

/** VarianceScaling(scale, mode, distribution): variance scale / max(1, n), n the chosen fan. */
function varianceScaling(scale: number, n: number, distribution: 'uniform' | 'truncated_normal'): Distribution {
  const variance = scale / Math.max(1, n);
  if (distribution === 'uniform') {
    const limit = Math.sqrt(3 * variance);
    return { kind: 'uniform', minval: -limit, maxval: limit };
  }
  return { kind: 'truncated_normal', mean: 0, stddev: Math.sqrt(variance) / TRUNCATED_STDDEV };
}

type Args = Readonly<Record<string, number>>;
const fanAvg = (f: Fans) => (f.fanIn + f.fanOut) / 2;
const uniform = (a: Args): Distribution => ({ kind: 'uniform', minval: a['minval'] ?? -0.05, maxval: a['maxval'] ?? 0.05 });

/** One entry per initializer name, so a missing one is a compile error. */
const distributions: Record<InitializerName, (args: Args, fans: Fans) => Distribution> = {
  zeros: () => ({ kind: 'constant', value: 0 }),
  ones: () => ({ kind: 'constant', value: 1 }),
  constant: (a) => ({ kind: 'constant', value: a['value'] ?? 0 }),
  // Keras 1's `uniform` is U(-0.05, 0.05); Keras 2 made it an alias of random_uniform (same defaults).
  uniform,
  random_uniform: uniform,
  random_normal: (a) => ({ kind: 'normal', mean: a['mean'] ?? 0, stddev: a['stddev'] ?? 0.05 }),
  truncated_normal: (a) => ({ kind: 'truncated_normal', mean: a['mean'] ?? 0, stddev: a['stddev'] ?? 0.05 }),
  glorot_uniform: (_, f) => varianceScaling(1, fanAvg(f), 'uniform'),
  glorot_normal: (_, f) => varianceScaling(1, fanAvg(f), 'truncated_normal'),
  he_uniform: (_, f) => varianceScaling(2, f.fanIn, 'uniform'),
  he_normal: (_, f) => varianceScaling(2, f.fanIn, 'truncated_normal'),
  lecun_uniform: (_, f) => varianceScaling(1, f.fanIn, 'uniform'),
  lecun_normal: (_, f) => varianceScaling(1, f.fanIn, 'truncated_normal'),
};

/** The distribution of an initializer for a tensor of this shape; a ModelcError for an unknown name. */
export function distributionOf(init: InitSpec, shape: readonly number[]): Distribution {
  if (!isInitializerName(init.type)) {
    return fail('weights', `unknown initializer ${q(init.type)}${suggest(init.type, initializerNames)}`);
  }
  return distributions[init.type](init.args, computeFans(shape));
}

/**
 * Sample an initializer for a tensor of `shape`, row-major. Uniform values are
 * minval + (maxval - minval) * u with u = stream.nextFloat(); normals are
 * mean + stddev * z with z = stream.nextNormal(), redrawn while |z| > 2 when
 * truncated. Constants draw nothing. Values are rounded to f32 at the end.
 */
export function sampleInit(init: InitSpec, shape: readonly number[], stream: Pcg32): Float32Array {
  const d = distributionOf(init, shape);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  switch (d.kind) {
    case 'constant':
      out.fill(d.value);
      break;
    case 'uniform':
      for (let i = 0; i < out.length; i++) out[i] = d.minval + (d.maxval - d.minval) * stream.nextFloat();
      break;
    case 'normal':
      for (let i = 0; i < out.length; i++) out[i] = d.mean + d.stddev * stream.nextNormal();
      break;
    case 'truncated_normal':
      for (let i = 0; i < out.length; i++) {
        let z = stream.nextNormal();
        while (Math.abs(z) > 2) z = stream.nextNormal();
        out[i] = d.mean + d.stddev * z;
      }
      break;
  }
  return out;
}

/** A parameter's shape as numbers (parameters never have the batch dimension). */
export function paramShape(p: ParamDecl): number[] {
  if (!p.type.shape.every((d): d is number => typeof d === 'number')) {
    return fail('weights', `parameter ${q(p.name)} has a non-static shape [${p.type.shape.join(', ')}]`);
  }
  return [...p.type.shape];
}

/**
 * The graph with a value for every parameter: existing values are kept, the
 * others are sampled from their initializers under `seed` (or the
 * initializer's own `seed` argument), each from its own stream.
 */
export function materialize(graph: Graph, seed: number): Graph {
  if (!Number.isSafeInteger(seed)) fail('weights', `the seed must be an integer, got ${seed}`);
  const params = graph.params.map((p): ParamDecl => {
    if (p.value) return p;
    if (!isInitializerName(p.init.type)) {
      const why = p.init.type === 'data' ? `its values are computed ('data'), not initialized` : `unknown initializer ${q(p.init.type)}${suggest(p.init.type, initializerNames)}`;
      return fail('weights', `cannot initialize parameter ${q(p.name)}: ${why}`);
    }
    const own = p.init.args['seed'];
    if (own !== undefined && !Number.isSafeInteger(own)) {
      fail('weights', `the initializer seed of parameter ${q(p.name)} must be an integer, got ${own}`);
    }
    const bad = initializerProblem(p.init);
    if (bad) fail('weights', `cannot initialize parameter ${q(p.name)}: ${bad}`);
    const stream = paramStream(own ?? seed, p.name);
    return { ...p, value: sampleInit(p.init, paramShape(p), stream) };
  });
  return { ...graph, params };
}
