/**
 * Shared helpers of the IR and op tests: lowering JSON specs the way the CLI
 * does (parse -> validate -> lower, without the DSL front end), catching the one
 * diagnostic of a failure, and fast-check generators of specs and graphs.
 */
import fc from 'fast-check';
import { ModelcError, type Diagnostic } from '../../src/diagnostics/diagnostic.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { parseJsonSpec } from '../../src/frontend/json.js';
import { lowerSpec, type Lowered } from '../../src/frontend/lower.js';
import { validateSpec } from '../../src/frontend/validate.js';
import type { Graph, InitSpec, InputDecl, Node, ParamDecl } from '../../src/ir/graph.js';
import { tensor, type AttrValue, type Attrs, type Dim, type TensorType } from '../../src/ir/types.js';
import { initializerNames } from '../../src/ops/init.js';
import { ops } from '../../src/ops/registry.js';

/** A spec object as written in a JSON file. */
export type JsonSpec = Record<string, unknown>;

/** Lower a spec object through the JSON front end, as `modelc` does for a `.json` file. */
export function lowerJson(spec: JsonSpec): Lowered {
  const { spec: raw, locations } = parseJsonSpec(new SourceFile('t.json', JSON.stringify(spec, null, 2)));
  return lowerSpec(validateSpec(raw, locations), locations);
}

/** A one-input model `t` with the given per-example input shape (input named `x`). */
export function model(inputShape: readonly number[], layers: readonly object[]): JsonSpec {
  return { name: 't', inputs: [{ name: 'x', shape: inputShape }], layers };
}

/** The single diagnostic of a call that must fail with a ModelcError. */
export function diagnosticOf(run: () => unknown): Diagnostic {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  if (!(caught instanceof ModelcError)) {
    throw new Error(`expected a ModelcError, got ${caught === undefined ? 'no error' : String(caught)}`);
  }
  if (caught.diagnostics.length !== 1) throw new Error(`expected one diagnostic, got: ${caught.message}`);
  return caught.diagnostics[0]!;
}

/**
 * The message of a layer's shape error: the lowering's prefix naming the layer
 * application, then the type rule's complaint. One place to follow the format.
 */
export function shapeMessage(layer: string, complaint: string): string {
  return `layer '${layer}': ${complaint}`;
}

export function nodeNamed(g: Graph, result: string): Node {
  const n = g.nodes.find((x) => x.result === result);
  if (!n) throw new Error(`no node %${result} in graph ${g.name}: ${g.nodes.map((x) => x.result).join(', ')}`);
  return n;
}

/** Each parameter's shape, by name, in declaration order. */
export function paramShapes(g: Graph): Record<string, Dim[]> {
  return Object.fromEntries(g.params.map((p) => [p.name, [...p.type.shape]]));
}

/** The type of the graph's first output. */
export function outputType(g: Graph): TensorType {
  const name = g.outputs[0]!;
  const decl = [...g.inputs, ...g.params].find((v) => v.name === name)?.type ?? g.nodes.find((n) => n.result === name)?.type;
  if (!decl) throw new Error(`output %${name} is not defined`);
  return decl;
}

// ---------------------------------------------------------------------------
// Generators

/** Characters that print bare in the IR, and ones that force (and stress) quoting. */
const bareChar = fc.constantFrom(...'aZ09_./-'.split(''));
const specialChar = fc.constantFrom(
  ' ', '"', '\\', "'", '%', '@', '#', '{', '}', '(', ')', '[', ']', '=', ',', ':', '\n', '\t', '\r',
  '\u0000', '\u001f', '\u007f', '\u00a0', '\u2028', 'é', 'δ', '→', '漢', '😀', '\ud800', '\udfff',
);
const wideChar = fc.oneof(bareChar, specialChar, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));

/** Names that collide with IR keywords, the batch dimension or number syntax. */
const trickyNames = ['graph', 'param', 'return', 'true', 'false', 'null', 'N', 'f32', 'trainable', '0', '7', '-1', '1e5', '.5', '-0', '2.5e-3', '-', '.', '/'];

/** Any string, biased towards IR-significant characters. */
export const arbName = (minLength = 0): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ unit: wideChar, minLength, maxLength: 8 }), fc.constantFrom(...trickyNames));

const finite = fc.double({ noNaN: true, noDefaultInfinity: true });

export const arbType: fc.Arbitrary<TensorType> = fc
  .array(fc.oneof(fc.constant<Dim>('N'), fc.nat({ max: 4096 })), { maxLength: 5 })
  .map((shape) => tensor(shape));

const dict = <T>(key: fc.Arbitrary<string>, value: fc.Arbitrary<T>, maxKeys: number) =>
  fc.dictionary(key, value, { maxKeys, noNullPrototype: true });

export const arbAttrValue: fc.Arbitrary<AttrValue> = fc.letrec<{ value: AttrValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    finite,
    fc.integer(),
    arbName(),
    fc.array(tie('value'), { maxLength: 3 }),
    dict(arbName(), tie('value'), 3),
  ),
})).value;

/** Initializers as specs produce them: a Keras name and the spec's argument keys. */
const plain = { noNullPrototype: true } as const;

const arbInit: fc.Arbitrary<InitSpec> = fc.record(
  {
    type: fc.constantFrom(...initializerNames),
    args: dict(fc.constantFrom('value', 'minval', 'maxval', 'mean', 'stddev', 'seed'), finite, 3),
  },
  plain,
);

const arbInput: fc.Arbitrary<InputDecl> = fc.record({ name: arbName(), type: arbType }, plain);
const arbParam: fc.Arbitrary<ParamDecl> = fc.record({ name: arbName(), type: arbType, trainable: fc.boolean(), init: arbInit }, plain);
const arbNode: fc.Arbitrary<Node> = fc
  .record({
    op: fc.constantFrom(...ops.map((o) => o.name)),
    result: arbName(),
    type: arbType,
    operands: fc.array(arbName(), { maxLength: 4 }),
    attrs: dict(arbName(), arbAttrValue, 4) as fc.Arbitrary<Attrs>,
    layer: fc.option(arbName(), { nil: undefined }),
  }, plain)
  .map(({ layer, ...n }) => ({ ...n, layer: layer ?? n.result }));

/**
 * Graphs built directly, with names from a wide alphabet and arbitrary
 * attribute data: everything the printer can print, valid or not (the printer
 * and parser are syntax only; meaning is the verifier's business). Op names are
 * registered ops and initializers Keras ones, as in any graph modelc builds.
 */
export const arbGraph: fc.Arbitrary<Graph> = fc.record(
  {
    name: arbName(),
    inputs: fc.array(arbInput, { maxLength: 3 }),
    params: fc.array(arbParam, { maxLength: 3 }),
    nodes: fc.array(arbNode, { maxLength: 4 }),
    outputs: fc.array(arbName(), { minLength: 1, maxLength: 3 }),
  },
  plain,
);

/** An optional explicit layer name, from the wide alphabet. */
const maybeName = fc.option(arbName(1), { nil: undefined, freq: 2 });
const activation = fc.option(fc.constantFrom('relu', 'tanh', 'softmax', 'leaky_relu', 'gelu', 'linear'), { nil: undefined });

const named = (layer: fc.Arbitrary<Record<string, unknown>>) =>
  fc.tuple(layer, maybeName).map(([l, name]) => (name === undefined ? l : { ...l, name }));

const commonLayers = [
  fc.record({ type: fc.constant('batchnorm'), epsilon: fc.double({ min: 1e-9, max: 1, noNaN: true }), center: fc.boolean(), scale: fc.boolean() }),
  fc.record({ type: fc.constant('dropout'), rate: fc.double({ min: 0, max: 0.9, noNaN: true }), seed: fc.option(fc.integer(), { nil: undefined }) }),
  fc.record({ type: fc.constant('leaky_relu'), alpha: finite }),
  fc.record({ type: fc.constantFrom('relu', 'tanh', 'sigmoid', 'softmax', 'hard_sigmoid') }),
  fc.record({ type: fc.constant('activation'), activation: fc.constantFrom('elu', 'selu', 'swish', 'softplus', 'softmax') }),
];

/** Layers that keep a rank-4 input rank-4 (and never shrink it below 1x1). */
const imageLayer = fc.oneof(
  fc.record({ type: fc.constant('conv2d'), filters: fc.integer({ min: 1, max: 4 }), kernel_size: fc.integer({ min: 1, max: 3 }), padding: fc.constant('same'), use_bias: fc.boolean(), activation }),
  fc.record({ type: fc.constant('depthwise_conv2d'), kernel_size: fc.integer({ min: 1, max: 3 }), padding: fc.constant('same'), depth_multiplier: fc.integer({ min: 1, max: 2 }), activation }),
  fc.record({ type: fc.constant('conv2d_transpose'), filters: fc.integer({ min: 1, max: 4 }), kernel_size: fc.integer({ min: 1, max: 3 }), strides: fc.integer({ min: 1, max: 2 }), padding: fc.constant('same') }),
  fc.record({ type: fc.constantFrom('max_pool2d', 'avg_pool2d'), pool_size: fc.integer({ min: 1, max: 2 }), strides: fc.constant(1), padding: fc.constant('same') }),
  ...commonLayers,
);

const denseLayer = fc.oneof(
  fc.record({ type: fc.constant('dense'), units: fc.integer({ min: 1, max: 8 }), use_bias: fc.boolean(), activation }),
  ...commonLayers,
);

/**
 * Small random specs that lower (barring name collisions, which the caller
 * rejects with `fc.pre`): an optional image section (ending in flatten or a
 * global pool), then a dense section; layer names from the wide alphabet.
 */
export const arbSpec: fc.Arbitrary<JsonSpec> = fc
  .record({
    name: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/),
    image: fc.option(
      fc.record({
        shape: fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 3 })),
        layers: fc.array(named(imageLayer), { maxLength: 3 }),
        exit: named(fc.record({ type: fc.constantFrom('flatten', 'global_avg_pool2d', 'global_max_pool2d') })),
      }),
      { nil: undefined },
    ),
    features: fc.integer({ min: 1, max: 8 }),
    layers: fc.array(named(denseLayer), { minLength: 1, maxLength: 4 }),
  })
  .map(({ name, image, features, layers }) => ({
    name,
    inputs: [{ name: 'x', shape: image ? image.shape : [features] }],
    layers: image ? [...image.layers, image.exit, ...layers] : layers,
  }));

/** Lower a generated spec; `undefined` when its random names collide (a spec error, not a bug). */
export function lowerGenerated(spec: JsonSpec): Lowered | undefined {
  try {
    return lowerJson(spec);
  } catch (err) {
    if (err instanceof ModelcError && err.diagnostics.every((d) => d.code === 'duplicateName')) return undefined;
    throw err;
  }
}
