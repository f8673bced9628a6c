/**
 * What the conformance suite makes of an op's examples (`OpDef.examples`):
 * the registered ops, seeded operand values at a batch size, and the one-node
 * graph `y = op(operands)` that the verifier, the printer and parser and the
 * ONNX exporter see. Batched operands (`N` first) become graph inputs, static
 * ones parameters, as in a lowered model.
 */
import type { Graph, InputDecl, ParamDecl } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';
import type { Attrs, TensorType } from '../../src/ir/types.js';
import type { OpDef, OpExample, ValueRange } from '../../src/ops/op-def.js';
import { ops } from '../../src/ops/registry.js';
import { rng } from '../helpers/tensors.js';

export type Example = OpExample<Attrs>;

/** Every registered op, in registry order. */
export function registeredOps(): readonly OpDef[] {
  return ops;
}

/** The op's examples; none for a record that reached the registry through a cast without them. */
export function examplesOf(def: OpDef): readonly Example[] {
  return (def.examples ?? []) as readonly Example[];
}

export const isBatched = (t: TensorType): boolean => t.shape[0] === 'N';

/** The shape of a value of type `t` at batch size `n`. */
export function concreteShape(t: TensorType, n: number): number[] {
  return t.shape.map((d) => (d === 'N' ? n : (d as number)));
}

const DEFAULT_RANGE: ValueRange = { min: -1, max: 1 };

/** A small stable number from a string, to seed each op's draws differently. */
export function seedOf(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * Seeded operand values at batch size `n`, in the example's ranges, rounded
 * to float32: kernels and onnxruntime take float32, so the reference sees the
 * very values they see.
 */
export function operandValues(ex: Example, n: number, seed: number): Tensor[] {
  return ex.operands.map((t, i) => {
    const range = ex.values?.[i] ?? DEFAULT_RANGE;
    const next = rng(seed + 7919 * i);
    const shape = concreteShape(t, n);
    const size = shape.reduce((a, b) => a * b, 1);
    const draw = () => {
      const v = range.min + next() * (range.max - range.min);
      return range.integer ? Math.floor(v) : Math.fround(v);
    };
    return { shape, data: Float64Array.from({ length: size }, draw) };
  });
}

/** Value names for the operands: the op's roles (`x`, `kernel`, `bias`), repeated variadic ones numbered. */
export function operandNames(def: OpDef, ex: Example): string[] {
  const roles = def.operands(ex.attrs as never).map((r) => r.replace(/^\.\.\./, '').replace(/\?$/, ''));
  const taken = new Set<string>(['y']);
  return ex.operands.map((_, i) => {
    const base = roles[Math.min(i, roles.length - 1)] ?? 'operand';
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}.${k}`;
    taken.add(name);
    return name;
  });
}

/**
 * The graph `y = op(operands)`: batched operands as inputs, static ones as
 * parameters (holding `values` when given, for the ONNX exporter).
 */
export function oneNodeGraph(def: OpDef, ex: Example, values?: readonly Tensor[]): Graph {
  const names = operandNames(def, ex);
  const inputs: InputDecl[] = [];
  const params: ParamDecl[] = [];
  ex.operands.forEach((type, i) => {
    const name = names[i]!;
    if (isBatched(type)) inputs.push({ name, type });
    else {
      const value = values ? Float32Array.from(values[i]!.data) : undefined;
      params.push({ name, type, trainable: true, init: { type: 'zeros', args: {} }, ...(value ? { value } : {}) });
    }
  });
  const type = def.infer(ex.operands, ex.attrs as never);
  const node = { op: def.name, result: 'y', type, operands: names, attrs: ex.attrs, layer: 'y' };
  return { name: `${def.name}_example`, inputs, params, nodes: [node], outputs: ['y'] };
}

/** Runs `check` on every example; a failure names the example it came from. */
export async function forEachExample(def: OpDef, check: (ex: Example, index: number) => void | Promise<void>): Promise<void> {
  const examples = examplesOf(def);
  for (const [i, ex] of examples.entries()) {
    try {
      await check(ex, i);
    } catch (err) {
      if (err instanceof Error) err.message = `${def.name} example ${i}${ex.note ? ` (${ex.note})` : ''}: ${err.message}`;
      throw err;
    }
  }
}
