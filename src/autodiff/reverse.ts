/**
 * Reverse-mode automatic differentiation as an IR-to-IR transform.
 *
 * The driver owns the walk; each op owns its rule (`OpDef.grad`, beside its
 * definition in `ops/`). Given a scalar `loss` (an f32[1] value) and the
 * values to differentiate with respect to (the trainable parameters), it
 * appends the backward nodes to the builder and returns each value's gradient.
 *
 * Algorithm:
 *  1. Active values: those that depend on a `wrt` value and that `loss`
 *     depends on. Only they get gradients (inputs, non-trainable parameters
 *     and everything computed from them alone are constants: stop-gradient).
 *  2. Seed: d loss / d loss = 1, a constant parameter `autodiff/one`.
 *  3. Walk the nodes backwards (the graph is topologically sorted, so every
 *     consumer of a value comes after its producer). At a node whose result
 *     has gradient contributions, sum them (one `add` when several consumers
 *     contributed), then call the op's rule and keep the entries of the
 *     active operands: each emits that operand's contribution.
 *  4. A `wrt` value's gradient is the sum of its contributions, or a zero
 *     gradient is an error (the parameter does not reach the loss).
 *
 * There is no broadcasting in the IR (per-channel operands are reduced by
 * their ops' rules), so the driver never un-broadcasts.
 *
 *   %h = dense(%x, %w, %b); %loss = loss(%h, %labels)
 *   ->  %h/grad = loss_grad(%h, %labels, %autodiff/one); %w/grad = dense_grad_kernel(%x, %h/grad); ...
 */
import { fail, q } from '../diagnostics/diagnostic.js';
import type { Node } from '../ir/graph.js';
import { tensor } from '../ir/types.js';
import { getOp } from '../ops/registry.js';
import type { GraphBuilder } from './builder.js';

/** Values that depend on any of `from` and that `to` depends on. */
function activeValues(nodes: readonly Node[], from: ReadonlySet<string>, to: string): Set<string> {
  const dependsOnWrt = new Set(from);
  for (const n of nodes) if (n.operands.some((o) => dependsOnWrt.has(o))) dependsOnWrt.add(n.result);
  const needed = new Set([to]);
  for (const n of [...nodes].reverse()) if (needed.has(n.result)) for (const o of n.operands) needed.add(o);
  return new Set([...dependsOnWrt].filter((v) => needed.has(v)));
}

/**
 * Appends the backward pass of `loss` with respect to `wrt` to `b`; returns
 * the gradient value of each `wrt` value.
 */
export function gradients(b: GraphBuilder, loss: string, wrt: readonly string[]): Map<string, string> {
  const forward = [...b.nodes];
  const active = activeValues(forward, new Set(wrt), loss);
  const contributions = new Map<string, string[]>();
  const contribute = (value: string, grad: string) => {
    const list = contributions.get(value);
    if (list) list.push(grad);
    else contributions.set(value, [grad]);
  };
  /** The sum of a value's contributions (undefined when it has none). */
  const total = (value: string, layer: string): string | undefined => {
    const list = contributions.get(value);
    if (!list || list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    const sum = b.naming(`${value}/grad`, `gradient of ${layer}`).op('add', list, {});
    contributions.set(value, [sum]);
    return sum;
  };

  const one = b.addParam({
    name: 'autodiff/one',
    type: tensor([1]),
    trainable: false,
    init: { type: 'ones', args: {} },
    value: Float32Array.of(1),
  });
  contribute(loss, one);

  for (const node of [...forward].reverse()) {
    if (!active.has(node.result)) continue;
    const dy = total(node.result, node.layer);
    if (dy === undefined) continue;
    const op = getOp(node.op)!;
    if (op.grad === undefined || op.grad === 'none') {
      fail('train', `cannot train through ${q(node.layer)}: op ${q(node.op)} has no gradient rule`);
    }
    b.naming(`${node.result}/grad`, `gradient of ${node.layer}`);
    const rules = op.grad(b, node as never, dy);
    node.operands.forEach((operand, i) => {
      if (!active.has(operand)) return;
      const rule = rules[i];
      if (rule === undefined) return;
      b.naming(`${operand}/grad`, `gradient of ${node.layer}`);
      contribute(operand, rule());
    });
  }

  const grads = new Map<string, string>();
  for (const value of wrt) {
    const grad = total(value, value);
    if (grad === undefined) fail('train', `parameter ${q(value)} does not affect the loss: it cannot be trained`);
    grads.set(value, grad);
  }
  return grads;
}
