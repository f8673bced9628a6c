/**
 * Keras 3 operator layers: what `x + 3`, `x * (1 / 6)`, `x / 6`, `3 - x`,
 * `-x` and `x * y` on symbolic tensors leave in a functional model's config
 * (module `keras.src.ops.numpy`, classes `Add`, `Subtract`, `Multiply`,
 * `TrueDivide`, `Negative`, ...; the class names clash with the merge layers',
 * so the module tells them apart). MobileNetV3's hard sigmoid is
 * `ReLU(6)(x + 3) * (1 / 6)`.
 *
 * One tensor and one number is an affine map, so it imports as the layer
 * Keras's `Rescaling` class imports as (x * scale + offset); two tensors
 * import as the merge layer of the same Keras class (`Add` -> add), found
 * through the layer records, so a merge layer a record adds is importable
 * here too. The second operand may also be a keyword argument (`{"y": 3}`,
 * `{"x2": 3}`).
 */
import { q } from '../diagnostics/diagnostic.js';
import { isObj, show } from '../ops/keras-def.js';
import type { Call, Operand, TensorRef } from './keras-nodes.js';
import type { SpecPath } from './locations.js';
import type { Failer, KerasLayer } from './tfjs-config.js';

/**
 * Whether a layer object of the config is a Keras 3 operator: module
 * `keras.src.ops.*` in a `.keras` config; in a legacy `.h5` Keras 3 writes
 * no module, and the config of an operator class holds its name only (a
 * merge layer's also has `trainable` and `dtype`).
 */
export function isOperatorLayer(raw: unknown): boolean {
  if (!isObj(raw)) return false;
  if (typeof raw['module'] === 'string') return /^keras(\.src)?\.ops(\.|$)/.test(raw['module']);
  const config = raw['config'];
  return OPERATORS.has(String(raw['class_name'])) && isObj(config) && Object.keys(config).every((k) => k === 'name');
}

/** The spec entry an operator call imports as, with where each attribute came from and its tensor inputs. */
export interface OperatorEntry {
  readonly entry: { type: string; [attribute: string]: unknown };
  readonly sources: ReadonlyMap<string, SpecPath>;
  readonly inputs: readonly TensorRef[];
  /** Keyword arguments read as operands. */
  readonly consumed: ReadonlySet<string>;
}

/** The operator classes with an import (the rest are refused as unsupported classes). */
const OPERATORS = new Set(['Add', 'Subtract', 'Multiply', 'TrueDivide', 'Divide', 'Negative', 'Maximum', 'Minimum']);

/** The keyword names of the first and second operand (Keras 3 ops: x1, x2; TF operator lambdas: x, y). */
const FIRST = ['x1', 'x'];
const SECOND = ['x2', 'y'];

/** `layerFor(kerasClass)`: the spec layer type a Keras layer class imports as, if any record claims it. */
export function operatorEntry(f: Failer, l: KerasLayer, call: Call, layerFor: (kerasClass: string) => string | undefined): OperatorEntry {
  const owner = `layer ${q(l.name)} (Keras 3 operator ${l.className})`;
  if (!OPERATORS.has(l.className)) return unsupported(f, l, '');
  const consumed = new Set<string>();
  const operands: Operand[] = [...call.operands];
  for (const keys of [FIRST, SECOND]) {
    const arg = call.kwargs.find((a) => keys.includes(a.key));
    if (!arg) continue;
    consumed.add(arg.key);
    if (typeof arg.value === 'number') operands.push({ constant: arg.value, path: arg.path });
    else f.fail(arg.path, `${owner}: keyword operand ${q(arg.key)} must be a number, got ${show(arg.value)}`);
  }
  const tensors = operands.flatMap((o) => ('tensor' in o ? [o.tensor] : []));
  const constants = operands.flatMap((o) => ('constant' in o ? [o] : []));
  const at = (o: { path: SpecPath }) => o.path;
  if (tensors.length === 2 && constants.length === 0) {
    const type = ['TrueDivide', 'Divide'].includes(l.className) ? undefined : layerFor(l.className);
    if (type === undefined) return unsupported(f, l, 'between two tensors');
    return { entry: { type }, sources: new Map(), inputs: tensors, consumed };
  }
  const rescaling = layerFor('Rescaling');
  if (rescaling === undefined) return unsupported(f, l, 'with a constant');
  if (tensors.length === 1 && constants.length === 0 && l.className === 'Negative') {
    return { entry: { type: rescaling, scale: -1 }, sources: new Map(), inputs: tensors, consumed };
  }
  if (tensors.length !== 1 || constants.length !== 1) {
    return f.fail(call.path, `${owner}: expected a tensor and a number or two tensors, got ${operands.length} argument(s) ${show(operands.map((o) => ('constant' in o ? o.constant : o.tensor.layer)))}`);
  }
  const c = constants[0]!;
  const constantFirst = 'constant' in operands[0]!;
  const affine = affineOf(l.className, c.constant, constantFirst);
  if (affine === undefined) return unsupported(f, l, constantFirst ? 'with a constant first operand' : 'with a constant');
  const sources = new Map<string, SpecPath>([['scale', at(c)], ['offset', at(c)]]);
  return { entry: { type: rescaling, scale: affine.scale, offset: affine.offset }, sources, inputs: tensors, consumed };
}

/** x op c (or c op x when `constantFirst`) as x * scale + offset. */
function affineOf(cls: string, c: number, constantFirst: boolean): { scale: number; offset: number } | undefined {
  switch (cls) {
    case 'Add':
      return { scale: 1, offset: c };
    case 'Subtract':
      return constantFirst ? { scale: -1, offset: c } : { scale: 1, offset: -c };
    case 'Multiply':
      return { scale: c, offset: 0 };
    case 'TrueDivide':
    case 'Divide':
      return constantFirst || c === 0 ? undefined : { scale: 1 / c, offset: 0 };
    default:
      return undefined;
  }
}

function unsupported(f: Failer, l: KerasLayer, how: string): never {
  return f.fail(
    [...l.path, 'class_name'],
    `layer ${q(l.name)}: the Keras 3 operator ${q(l.className)}${how ? ` ${how}` : ''} is not supported (modelc imports x + c, x - c, c - x, x * c, x / c and -x as rescaling, and +, -, * and the merge classes its layers claim between two tensors)`,
    'unknownLayer',
  );
}

/** Whether a call is an operator's: a Keras 3 operator layer, or a merge class called with a number as an operand (`[x, 3]`, `{"y": 3}`). */
export function isOperatorCall(l: KerasLayer, call: Call): boolean {
  return isOperatorLayer(l.raw)
    || call.operands.some((o) => 'constant' in o)
    || call.kwargs.some((a) => [...FIRST, ...SECOND].includes(a.key) && typeof a.value === 'number');
}
