/**
 * A Keras file's saved variables -> modelc's parameter values, by name
 * (`<layer>/<role>`), after lowering.
 *
 * Keras saves a layer's variables in one order, `trainable_variables +
 * non_trainable_variables` (each in creation order), in `.keras` archives
 * (`vars/0, 1, ...`) and legacy `.h5` files alike, and its own loaders assign
 * them by position; so does this. The order of modelc's parameters for a
 * layer is its record's `kerasVariables` when it has one (for layers whose
 * Keras variables differ from their parameters, such as a variable modelc
 * does not keep), else the trainable parameters then the others, each in
 * declaration order. The names stored in a legacy file are not trusted for
 * the role (Keras 3 calls DepthwiseConv2D's kernel `kernel`), only for
 * finding the layer of a nested model's weights.
 *
 * Every problem (a layer without saved variables, a count or shape that
 * differs, a variable that is not float32) is one `weights` diagnostic
 * naming the layer, its class and the variable's place in the file; all are
 * reported at once.
 */
import { ModelcError, q, type Diagnostic } from '../../diagnostics/diagnostic.js';
import type { Graph, ParamDecl } from '../../ir/graph.js';
import { paramShape } from '../../ops/init.js';
import type { LayerDef } from '../../ops/op-def.js';
import { getLayer } from '../../ops/registry.js';
import type { Weight } from '../../weights/attach.js';
import type { ModelSpec } from '../spec.js';
import type { SavedVariable, SavedWeights } from './archive.js';

const fmtShape = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** The layer's parameters in the order Keras saves its variables; `null` where Keras saves one modelc does not keep. */
export function kerasVariableOrder(def: LayerDef | undefined, layer: string, params: readonly ParamDecl[]): (ParamDecl | null)[] {
  if (!def?.kerasVariables) return [...params.filter((p) => p.trainable), ...params.filter((p) => !p.trainable)];
  const byRole = new Map(params.map((p) => [p.name.slice(layer.length + 1), p]));
  return def.kerasVariables([...byRole.keys()]).map((role) => {
    if (role === null) return null;
    const p = byRole.get(role);
    if (!p) throw new Error(`layer ${def.type}: kerasVariables names role '${role}', which it does not declare`);
    return p;
  });
}

/** The saved variables as weights of `graph`'s parameters (lowered from `spec`). Throws every problem at once. */
export function kerasWeights(graph: Graph, spec: ModelSpec, saved: SavedWeights, kerasPaths: ReadonlyMap<string, readonly string[]> = new Map()): Map<string, Weight> {
  const problems: Diagnostic[] = [];
  const problem = (message: string) => problems.push({ code: 'weights', message, path: saved.file });
  const defs = new Map<string, LayerDef | undefined>();
  for (const l of spec.layers) if ('type' in l && l.name !== undefined) defs.set(l.name, getLayer(l.type));
  // spec layers by their Keras path (`inner/conv` for a layer inlined from a nested model, else its name)
  const byPath = new Map([...defs.keys()].map((name) => [(kerasPaths.get(name) ?? [name]).join('/'), name]));
  const byLayer = assignToLayers(saved, defs, byPath, problem);
  const paramsOf = new Map<string, ParamDecl[]>();
  for (const p of graph.params) {
    const layer = p.name.slice(0, p.name.lastIndexOf('/'));
    paramsOf.set(layer, [...(paramsOf.get(layer) ?? []), p]);
  }
  const out = new Map<string, Weight>();
  for (const [layer, params] of paramsOf) {
    const def = defs.get(layer);
    const what = `layer ${q(layer)}${def ? ` (${def.keras})` : ''}`;
    const order = kerasVariableOrder(def, layer, params);
    const vars = byLayer.get(layer) ?? [];
    byLayer.delete(layer);
    const expected = order.filter((p) => p !== null).map((p) => p.name.slice(layer.length + 1)).join(', ');
    if (vars.length !== order.length) {
      problem(vars.length === 0
        ? `${what} has no saved variables in the file (modelc expects ${order.length}: ${expected})`
        : `${what} has ${vars.length} saved variable(s), but modelc expects ${order.length} (${expected})`);
      continue;
    }
    order.forEach((p, i) => {
      if (p === null) return;
      const w = weight(vars[i]!, p, what, problem);
      if (w) out.set(p.name, w);
    });
  }
  for (const [layer, vars] of byLayer) {
    if (vars.length > 0) problem(`layer ${q(layer)} has ${vars.length} saved variable(s) (${q(vars[0]!.where)}, ...), but modelc's layer has no parameters`);
  }
  if (problems.length > 0) throw new ModelcError(problems);
  return out;
}

/** One variable as parameter `p`'s value, or a problem: not float32, or another shape. */
function weight(v: SavedVariable, p: ParamDecl, what: string, problem: (m: string) => void): Weight | undefined {
  const shape = paramShape(p);
  if (v.dtype !== 'float32' || !v.data) {
    problem(`${what}: variable ${q(v.where)} is ${v.dtype}; only float32 weights can be imported (save the model with the float32 dtype policy)`);
    return undefined;
  }
  if (v.shape.length !== shape.length || v.shape.some((d, k) => d !== shape[k])) {
    problem(`${what}: variable ${q(v.where)} has shape ${fmtShape(v.shape)}, but modelc's ${q(p.name)} has shape ${fmtShape(shape)}`);
    return undefined;
  }
  return { shape, data: v.data };
}

/**
 * The saved variables by spec layer. A group belongs to the layer it is
 * named after; a legacy group named after no layer (a nested model's) is
 * split by its weight names (`outer/inner/dense/kernel`): each weight
 * belongs to the last layer its name mentions.
 */
function assignToLayers(saved: SavedWeights, defs: ReadonlyMap<string, unknown>, byPath: ReadonlyMap<string, string>, problem: (m: string) => void): Map<string, SavedVariable[]> {
  const out = new Map<string, SavedVariable[]>();
  const add = (layer: string, v: SavedVariable) => out.set(layer, [...(out.get(layer) ?? []), v]);
  for (const g of saved.groups) {
    const layer = (g.path && byPath.get(g.path.join('/'))) ?? (defs.has(g.owner) ? g.owner : undefined);
    if (layer !== undefined) {
      if (out.has(layer)) problem(`layer ${q(layer)} has two groups of saved variables (the second is ${q(g.where)})`);
      else g.variables.forEach((v) => add(layer, v));
      continue;
    }
    if (saved.kind === 'keras') {
      problem(`the variables in ${q(g.where)} belong to layer ${q(g.owner)}, which is not a layer of the model`);
      continue;
    }
    for (const v of g.variables) {
      const parts = v.name.replace(/:\d+$/, '').split('/').slice(0, -1);
      const path = parts[0] === g.owner ? parts : [g.owner, ...parts];
      const layer = byPath.get(path.join('/')) ?? parts.reverse().find((part) => defs.has(part));
      if (layer === undefined) problem(`weight ${q(v.where)} belongs to no layer of the model`);
      else add(layer, v);
    }
  }
  return out;
}
