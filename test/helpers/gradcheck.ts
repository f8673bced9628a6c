/**
 * Finite-difference checks of an op's gradient rule, in float64.
 *
 * For y = op(operands) and a random cotangent w of y's shape, the scalar
 * L = sum(w * y) has dL/d(operand) = what the rule computes from dy = w. The
 * rule's IR is built into a graph (operands with a batch dimension as inputs,
 * the others as parameters, w as an input or parameter) and run by the
 * reference interpreter; each element of each checked operand is compared
 * with the central difference (L(v + h) - L(v - h)) / 2h of the op's own
 * reference kernel.
 */
import { expect } from 'vitest';
import { GraphBuilder } from '../../src/autodiff/builder.js';
import { interpret } from '../../src/interp/interpret.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { tensor, type Attrs, type TensorType } from '../../src/ir/types.js';
import { getOp } from '../../src/ops/registry.js';
import { rng } from './tensors.js';

export interface GradOperand {
  readonly value: Tensor;
  /** An activation (first dimension is the batch) rather than a static weight. Default true for rank >= 2. */
  readonly batched?: boolean;
  /** Check this operand's gradient (default true); false for operands the rule leaves without one. */
  readonly check?: boolean;
}

export interface GradCheckOptions {
  /** Step of the central difference (default 1e-6). */
  readonly h?: number;
  /** Allowed |analytic - numeric| / max(1, |numeric|) (default 1e-6). */
  readonly tol?: number;
  readonly seed?: number;
}

/** Random values in [-1, 1) (float, seeded). */
export function randomValues(shape: readonly number[], seed: number, scale = 1): Tensor {
  const next = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape: [...shape], data: Float64Array.from({ length: n }, () => (next() * 2 - 1) * scale) };
}

/** The rule's gradients of L = sum(w * op(operands)) for every operand (undefined where the rule gives none). */
export function ruleGradients(op: string, operands: readonly GradOperand[], attrs: Attrs, w: Tensor): (Tensor | undefined)[] {
  const def = getOp(op);
  if (!def) throw new Error(`no op ${op}`);
  if (def.grad === undefined || def.grad === 'none') throw new Error(`${op} has no gradient rule`);
  const b = new GraphBuilder({ inputs: [], params: [], nodes: [] });
  const feeds: Record<string, Tensor> = {};
  const params: Record<string, Tensor> = {};
  const declare = (name: string, value: Tensor, batched: boolean): string => {
    if (batched) {
      const n = b.addInput(name, tensor(['N', ...value.shape.slice(1)]));
      feeds[n] = value;
      return n;
    }
    const n = b.addParam({ name, type: tensor(value.shape), trainable: true, init: { type: 'zeros', args: {} } });
    params[n] = value;
    return n;
  };
  const names = operands.map((o, i) => declare(`operand${i}`, o.value, o.batched ?? o.value.shape.length >= 2));
  const y = b.naming('y', 'test').op(op, names, attrs);
  const yType: TensorType = b.typeOf(y);
  const dy = declare('dy', w, yType.shape[0] === 'N');
  const node = b.nodes[b.nodes.length - 1]!;
  b.naming('grad', 'test');
  const rules = def.grad(b, { ...node, attrs } as never, dy);
  const outputs: (string | undefined)[] = operands.map((o, i) => (o.check === false ? undefined : rules[i]?.()));
  const present = outputs.filter((o): o is string => o !== undefined);
  if (present.length === 0) return outputs.map(() => undefined);
  const graph = b.finish('gradcheck', present);
  const values = interpret(graph, feeds, { params });
  return outputs.map((o) => (o === undefined ? undefined : values[o]));
}

/** sum(w * op(operands)) with the op's reference kernel. */
function objective(op: string, values: readonly Tensor[], attrs: Attrs, w: Tensor): number {
  const y = getOp(op)!.reference(values, attrs as never);
  let s = 0;
  for (let i = 0; i < y.data.length; i++) s += y.data[i]! * w.data[i]!;
  return s;
}

/**
 * Asserts that the op's gradient rule matches central differences for every
 * operand with `check` (default true). Returns the largest error seen.
 */
export function expectGradientsMatch(op: string, operands: readonly GradOperand[], attrs: Attrs = {}, options: GradCheckOptions = {}): number {
  const h = options.h ?? 1e-6;
  const tol = options.tol ?? 1e-6;
  const values = operands.map((o) => o.value);
  const y = getOp(op)!.reference(values, attrs as never);
  const w = randomValues(y.shape, options.seed ?? 7);
  const analytic = ruleGradients(op, operands, attrs, w);
  let worst = 0;
  operands.forEach((o, k) => {
    if (o.check === false) return;
    const got = analytic[k];
    if (got === undefined) throw new Error(`${op}: the rule gives no gradient for operand ${k}`);
    expect(got.shape, `${op} operand ${k} gradient shape`).toEqual(o.value.shape);
    for (let i = 0; i < o.value.data.length; i++) {
      const at = (delta: number) => {
        const data = Float64Array.from(o.value.data);
        data[i] = data[i]! + delta;
        const moved = values.map((v, j) => (j === k ? { shape: v.shape, data } : v));
        return objective(op, moved, attrs, w);
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      const err: number = Math.abs(got.data[i]! - numeric) / Math.max(1, Math.abs(numeric));
      worst = Math.max(worst, err);
      if (err > tol) {
        expect.fail(`${op}: d/d operand ${k} [${i}]: rule ${got.data[i]}, central difference ${numeric} (error ${err.toExponential(2)})`);
      }
    }
  });
  return worst;
}
