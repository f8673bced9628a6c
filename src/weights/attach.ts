/**
 * Weights <-> a graph's parameter values.
 *
 * A weight's name is its parameter's name, `<layer>/<param>` with Keras
 * parameter names (`dense/kernel`, `batch_normalization/moving_mean`), so a
 * safetensors file maps onto a graph by name alone. Attaching is all or
 * nothing: every parameter must be in the file with the graph's shape, and the
 * file may hold nothing else, and every value must be finite (NaN or
 * Infinity in a weight only ever makes a model that returns NaN; the
 * `allowNonfinite` option accepts them). All problems are reported at once,
 * one diagnostic each, naming the tensor (and the file, in the diagnostic's
 * path).
 */
import { ModelcError, q, suggest, type Diagnostic } from '../diagnostics/diagnostic.js';
import type { Graph, ParamDecl } from '../ir/graph.js';
import { paramShape } from '../ops/init.js';

/** A named weight: a shape and its row-major f32 values. */
export interface Weight {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const fmtShape = (shape: readonly number[]) => `[${shape.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export interface AttachOptions {
  /** Accept NaN and ±Infinity in the values (by default an error naming the tensor and the first bad index). */
  readonly allowNonfinite?: boolean;
}

/**
 * The graph with every parameter's value taken from `tensors` (replacing any
 * value it had). Throws one ModelcError (code `weights`) listing every
 * missing parameter, shape mismatch, extra tensor and (unless
 * `allowNonfinite`) tensor with a NaN or infinite value; `path` names the file.
 */
export function attachWeights(graph: Graph, tensors: ReadonlyMap<string, Weight>, path?: string, options: AttachOptions = {}): Graph {
  const problems: Diagnostic[] = [];
  const problem = (message: string) => problems.push({ code: 'weights', message, path });
  const params = graph.params.map((p): ParamDecl => {
    const shape = paramShape(p);
    const t = tensors.get(p.name);
    if (!t) {
      problem(`parameter ${q(p.name)} (shape ${fmtShape(shape)}) is missing from the weights`);
      return p;
    }
    if (!sameShape(t.shape, shape)) {
      problem(`tensor ${q(p.name)} has shape ${fmtShape(t.shape)}, but the graph's parameter has shape ${fmtShape(shape)}`);
      return p;
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== size) {
      problem(`tensor ${q(p.name)} has ${t.data.length} values, but its shape ${fmtShape(shape)} needs ${size}`);
      return p;
    }
    const bad = options.allowNonfinite ? undefined : nonfinite(p.name, shape, t.data);
    if (bad) {
      problem(bad);
      return p;
    }
    return { ...p, value: Float32Array.from(t.data) };
  });
  const names = new Set(graph.params.map((p) => p.name));
  const missing = graph.params.map((p) => p.name).filter((n) => !tensors.has(n));
  for (const name of tensors.keys()) {
    // suggest only parameters the file lacks: a misspelt name is then both missing and extra
    if (!names.has(name)) problem(`tensor ${q(name)} is not a parameter of graph ${q(graph.name)}${suggest(name, missing)}`);
  }
  if (problems.length > 0) throw new ModelcError(problems);
  return { ...graph, params };
}

/**
 * Where a tensor holds NaN or an infinity, as a message naming its first
 * such value by flat and multi-index; undefined when every value is finite.
 */
export function nonfinite(name: string, shape: readonly number[], data: Float32Array): string | undefined {
  let first = -1;
  let count = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) {
      // NaN - NaN and Inf - Inf are NaN; every finite v gives 0
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return undefined;
  const index: number[] = [];
  for (let rest = first, k = shape.length - 1; k >= 0; k--) {
    index.unshift(rest % shape[k]!);
    rest = Math.floor(rest / shape[k]!);
  }
  const value = data[first]!;
  const what = Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  const others = count > 1 ? ` (${count} non-finite values in all)` : '';
  return `tensor ${q(name)} holds ${what} at index ${first} ${fmtShape(index)}${others}; weights must be finite numbers (--allow-nonfinite, or the allowNonfinite option, accepts them)`;
}

/** The parameters that have values, by name in declaration order (what a weights file holds); the data is shared, not copied. */
export function extractWeights(graph: Graph): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const p of graph.params) if (p.value) out.set(p.name, { shape: paramShape(p), data: p.value });
  return out;
}
