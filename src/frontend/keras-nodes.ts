/**
 * The calls of a functional Keras model, in both dialects, as one form.
 *
 * Keras 2 (TF.js, legacy .h5) writes a layer's call as a list of tensor
 * references, `[[layer, node, tensor, kwargs], ...]`; Keras 3 as
 * `{"args": [...], "kwargs": {...}}`, where a tensor is
 * `{"class_name": "__keras_tensor__", "config": {"keras_history": [layer,
 * node, tensor]}}`, a merge layer's inputs are one list of them, and a Keras
 * 3 operator layer (`x + 3`) also has plain numbers among its arguments.
 * Both become a `Call`: positional operands (tensors or constants) and
 * keyword arguments, each with its path in the config so that diagnostics
 * point at it.
 *
 * Keyword arguments are judged here: `mask: null`, `training: null` and
 * `training: false` mean nothing (Keras 3 records `training: false` on every
 * Dropout call, and a model's own training flag overrides a recorded one:
 * checked with Keras 3.15); anything else (a mask tensor, `training: true`,
 * an unknown argument) is refused with what it is.
 */
import { q } from '../diagnostics/diagnostic.js';
import { isObj, show } from '../ops/keras-def.js';
import type { SpecPath } from './locations.js';
import type { Failer } from './tfjs-config.js';

/** Output `tensor` of application `node` of `layer`, as the config refers to it. */
export interface TensorRef {
  readonly layer: string;
  readonly node: number;
  readonly tensor: number;
  readonly path: SpecPath;
}

/** A positional argument of a call: a tensor, or (operator layers) a number. */
export type Operand = { readonly tensor: TensorRef } | { readonly constant: number; readonly path: SpecPath };

/** A keyword argument of a call. */
export interface CallArg {
  readonly key: string;
  readonly value: unknown;
  readonly path: SpecPath;
}

/** One application of a layer: its arguments in order, then its keyword arguments. */
export interface Call {
  readonly operands: readonly Operand[];
  readonly kwargs: readonly CallArg[];
  readonly path: SpecPath;
}

const KERAS_TENSOR = '__keras_tensor__';

/** One inbound node, either dialect. `owner` names the layer for diagnostics. */
export function readCall(f: Failer, v: unknown, path: SpecPath, owner: string): Call {
  if (isObj(v)) return keras3Call(f, v, path, owner);
  const refs = Array.isArray(v) && typeof v[0] === 'string' ? [v] : v;
  if (!Array.isArray(refs)) return f.fail(path, `${owner}: expected an inbound node (a list of [layer, node, tensor] references, or {"args", "kwargs"}), got ${show(v)}`);
  const kwargs: CallArg[] = [];
  const operands = refs.map((r, m): Operand => {
    const p = [...path, m];
    const ref = tensorRef(f, r, p);
    const kw = (r as unknown[])[3];
    if (isObj(kw)) for (const [key, value] of Object.entries(kw)) kwargs.push({ key, value, path: [...p, 3, key] });
    else if (kw !== undefined && kw !== null) f.fail([...p, 3], `${owner}: call arguments must be an object, got ${show(kw)}`);
    return { tensor: ref };
  });
  // Keras 2 repeats a call's keyword arguments on each of its inputs
  const seen = new Set<string>();
  return { operands, kwargs: kwargs.filter((a) => !seen.has(a.key) && seen.add(a.key)), path };
}

function keras3Call(f: Failer, v: Record<string, unknown>, path: SpecPath, owner: string): Call {
  const args = v['args'] ?? [];
  if (!Array.isArray(args)) return f.fail([...path, 'args'], `${owner}: "args" must be a list, got ${show(args)}`);
  const operands: Operand[] = [];
  args.forEach((a, i) => {
    const p = [...path, 'args', i];
    // a merge layer's inputs: one list argument
    if (Array.isArray(a)) a.forEach((t, j) => operands.push(operand(f, t, [...p, j], owner)));
    else operands.push(operand(f, a, p, owner));
  });
  const kw = v['kwargs'] ?? {};
  if (!isObj(kw)) return f.fail([...path, 'kwargs'], `${owner}: "kwargs" must be an object, got ${show(kw)}`);
  const kwargs = Object.entries(kw).map(([key, value]) => ({ key, value, path: [...path, 'kwargs', key] }));
  return { operands, kwargs, path };
}

function operand(f: Failer, v: unknown, path: SpecPath, owner: string): Operand {
  if (typeof v === 'number' && Number.isFinite(v)) return { constant: v, path };
  if (isKerasTensor(v)) return { tensor: kerasTensor(f, v, path) };
  return f.fail(path, `${owner}: call argument ${show(v)} is not supported (expected a tensor or a number)`);
}

export function isKerasTensor(v: unknown): v is Record<string, unknown> {
  return isObj(v) && v['class_name'] === KERAS_TENSOR;
}

function kerasTensor(f: Failer, v: Record<string, unknown>, path: SpecPath): TensorRef {
  const config = v['config'];
  const history = isObj(config) ? config['keras_history'] : undefined;
  return tensorRef(f, history, [...path, 'config', 'keras_history']);
}

/** `[layer, node, tensor]` (a Keras 2 reference may carry kwargs as a fourth element). */
export function tensorRef(f: Failer, r: unknown, path: SpecPath): TensorRef {
  if (!Array.isArray(r) || typeof r[0] !== 'string' || !Number.isInteger(r[1]) || !Number.isInteger(r[2] ?? 0)) {
    return f.fail(path, `expected a [layer name, node index, tensor index] reference, got ${show(r)}`);
  }
  return { layer: r[0], node: r[1] as number, tensor: (r[2] ?? 0) as number, path };
}

/** `input_layers` / `output_layers`: one reference or a list of them. */
export function refList(f: Failer, v: unknown, path: SpecPath): TensorRef[] {
  if (Array.isArray(v) && typeof v[0] === 'string') return [tensorRef(f, v, path)];
  if (!Array.isArray(v)) return f.fail(path, `expected a list of [layer name, node index, tensor index] references, got ${show(v)}`);
  return v.map((r, m) => tensorRef(f, r, [...path, m]));
}

/** The tensors among a call's operands; a constant here is refused (only operator layers take numbers). */
export function tensorsOf(f: Failer, call: Call, owner: string): TensorRef[] {
  return call.operands.map((o) => ('tensor' in o ? o.tensor : f.fail(o.path, `${owner}: a constant argument ${o.constant} is only supported for Keras 3 operator layers (x + 3)`)));
}

/**
 * Refuses keyword arguments that change what the call computes. `consumed`
 * are keys the caller has read (an operator's second operand).
 */
export function checkKwargs(f: Failer, call: Call, owner: string, consumed: ReadonlySet<string> = new Set()): void {
  for (const { key, value, path } of call.kwargs) {
    if (consumed.has(key) || value === null || (key === 'training' && value === false)) continue;
    if (key === 'training') f.fail(path, `${owner}: training=${show(value)} (the layer runs in training mode at inference) is not supported`);
    if (key === 'mask') f.fail(path, `${owner}: masks are not supported (the call passes mask ${show(value)})`);
    f.fail(path, `${owner}: call argument ${q(key)} = ${show(value)} is not supported`);
  }
}
