/**
 * Where each value of an inference graph lives in the generated module, and
 * which kernel computes it.
 *
 * Algorithm:
 *  1. Ask every node's op for its kernel (`OpDef.emit`). An alias (reshape,
 *     dropout, linear) gets no kernel: its value is its operand's data.
 *  2. Give each computed value a scratch slot, in node order. A slot is free
 *     again after the last node that reads a value living in it (through
 *     aliases too); graph outputs never free theirs. A node's result is placed
 *     before its operands' slots are released, so a kernel never writes the
 *     memory it reads.
 *  3. A slot holds `perExample` floats per example: the largest value it ever
 *     holds. The module allocates `slot size * batch size` floats per slot,
 *     again only when the batch grows. Values without a batch dimension
 *     (weight gradients and updates, losses: training graphs) live in fixed
 *     slots of their own, a fixed number of floats, never shared with batched
 *     values.
 */
import { fail } from '../diagnostics/diagnostic.js';
import type { Graph, Node } from '../ir/graph.js';
import type { KernelCode } from '../ops/emit.js';
import { isBatched, perExample } from '../ops/emit.js';
import { numel } from '../ir/types.js';
import { getOp } from '../ops/registry.js';

export type Placement =
  | { readonly kind: 'input'; readonly index: number }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'slot'; readonly slot: number };

export interface Step {
  readonly node: Node;
  /** undefined for an alias. */
  readonly kernel: KernelCode | undefined;
}

export interface BufferPlan {
  readonly steps: readonly Step[];
  readonly placement: ReadonlyMap<string, Placement>;
  /** Floats per example of each scratch slot (fixed slots: floats in all). */
  readonly slotSizes: readonly number[];
  /** Whether each slot is batched (size per example) rather than fixed. */
  readonly slotBatched: readonly boolean[];
}

export function planBuffers(graph: Graph): BufferPlan {
  const placement = new Map<string, Placement>();
  graph.inputs.forEach((input, index) => placement.set(input.name, { kind: 'input', index }));
  for (const p of graph.params) placement.set(p.name, { kind: 'param', name: p.name });
  const types = new Map([...graph.inputs, ...graph.params].map((v) => [v.name, v.type]));
  for (const n of graph.nodes) types.set(n.result, n.type);

  // 1. kernels; aliases share their operand's root value.
  const root = new Map<string, string>();
  const rootOf = (v: string): string => root.get(v) ?? v;
  const steps: Step[] = graph.nodes.map((node) => {
    const op = getOp(node.op);
    if (!op) fail('verify', `no op named '${node.op}'`);
    const emitted = op.emit({ operands: node.operands.map((o) => types.get(o)!), result: node.type, attrs: node.attrs });
    if (emitted.kind === 'alias') {
      root.set(node.result, rootOf(node.operands[0]!));
      return { node, kernel: undefined };
    }
    return { node, kernel: emitted };
  });

  // 2. the last step that reads each root (outputs live to the end).
  const lastUse = new Map<string, number>();
  steps.forEach(({ node }, i) => {
    for (const o of node.operands) lastUse.set(rootOf(o), i);
  });
  for (const out of graph.outputs) lastUse.set(rootOf(out), Infinity);

  const slotSizes: number[] = [];
  const slotBatched: boolean[] = [];
  const free = { batched: [] as number[], fixed: [] as number[] };
  const slotOfRoot = new Map<string, number>();
  steps.forEach(({ node, kernel }, i) => {
    if (kernel) {
      const batched = isBatched(node.type);
      const size = batched ? perExample(node.type) : numel(node.type.shape as number[]);
      const before = slotSizes.length;
      const slot = takeSlot(batched ? free.batched : free.fixed, slotSizes, size);
      if (slotSizes.length > before) slotBatched.push(batched);
      slotOfRoot.set(node.result, slot);
      placement.set(node.result, { kind: 'slot', slot });
      if (!lastUse.has(node.result)) lastUse.set(node.result, i); // computed but unread: free at once
    } else {
      placement.set(node.result, placement.get(rootOf(node.result))!);
    }
    for (const [value, slot] of slotOfRoot) {
      if (lastUse.get(value) === i) {
        (slotBatched[slot] ? free.batched : free.fixed).push(slot);
        slotOfRoot.delete(value);
      }
    }
  });
  return { steps, placement, slotSizes, slotBatched };
}

/** The smallest free slot that fits, else the largest free one grown, else a new slot. */
function takeSlot(free: number[], sizes: number[], size: number): number {
  let best = -1;
  for (let i = 0; i < free.length; i++) {
    const s = sizes[free[i]!]!;
    const b = best < 0 ? -1 : sizes[free[best]!]!;
    if (best < 0 || (s >= size ? b < size || s < b : b < size && s > b)) best = i;
  }
  if (best < 0) {
    sizes.push(size);
    return sizes.length - 1;
  }
  const slot = free.splice(best, 1)[0]!;
  sizes[slot] = Math.max(sizes[slot]!, size);
  return slot;
}
