/**
 * Attaching weights to a graph by parameter name, every mismatch reported with
 * its exact message, and the full trip: materialize -> extract -> safetensors
 * bytes -> read -> attach.
 */
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { readSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import type { Graph } from '../../src/ir/graph.js';
import { materialize } from '../../src/ops/init.js';
import { attachWeights, extractWeights, type Weight } from '../../src/weights/attach.js';
import { diagnosticOf, lowerJson, model } from '../helpers/graphs.js';

/** dense/kernel [4, 3], dense/bias [3], batch_normalization/{gamma, beta, moving_mean, moving_variance} [3]. */
const graph = (): Graph => lowerJson(model([4], [{ type: 'dense', units: 3 }, { type: 'batchnorm' }])).graph;

/** A full set of weights for `graph()`, each tensor filled with its index. */
function weights(): Map<string, Weight> {
  const g = graph();
  return new Map(
    g.params.map((p, i) => {
      const shape = p.type.shape as number[];
      return [p.name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(i) }];
    }),
  );
}

const error = (message: string) => ({ code: 'weights', message, path: 'w.safetensors' });

describe('attachWeights', () => {
  it('sets every parameter value by name', () => {
    const g = attachWeights(graph(), weights(), 'w.safetensors');
    expect(g.params.map((p) => [p.name, p.value?.[0]])).toEqual([
      ['dense/kernel', 0],
      ['dense/bias', 1],
      ['batch_normalization/gamma', 2],
      ['batch_normalization/beta', 3],
      ['batch_normalization/moving_mean', 4],
      ['batch_normalization/moving_variance', 5],
    ]);
  });

  it('copies the data, so later edits of the tensors do not reach the graph', () => {
    const w = weights();
    const g = attachWeights(graph(), w);
    w.get('dense/bias')!.data.fill(99);
    expect(g.params[1]!.value![0]).toBe(1);
  });

  it('reports a shape mismatch with both shapes', () => {
    const w = weights();
    w.set('dense/kernel', { shape: [3, 4], data: new Float32Array(12) });
    expect(diagnosticOf(() => attachWeights(graph(), w, 'w.safetensors'))).toEqual(
      error("tensor 'dense/kernel' has shape [3, 4], but the graph's parameter has shape [4, 3]"),
    );
  });

  it('reports a missing parameter', () => {
    const w = weights();
    w.delete('batch_normalization/moving_mean');
    expect(diagnosticOf(() => attachWeights(graph(), w, 'w.safetensors'))).toEqual(
      error("parameter 'batch_normalization/moving_mean' (shape [3]) is missing from the weights"),
    );
  });

  it('reports an extra tensor', () => {
    const w = weights();
    w.set('dense_1/kernel', { shape: [3, 3], data: new Float32Array(9) });
    expect(diagnosticOf(() => attachWeights(graph(), w, 'w.safetensors'))).toEqual(error("tensor 'dense_1/kernel' is not a parameter of graph 't'"));
  });

  it('reports data that does not fill the shape (tensors built in code)', () => {
    const w = weights();
    w.set('dense/bias', { shape: [3], data: new Float32Array(2) });
    expect(diagnosticOf(() => attachWeights(graph(), w))).toEqual({
      code: 'weights',
      message: "tensor 'dense/bias' has 2 values, but its shape [3] needs 3",
      path: undefined,
    });
  });

  it('reports every problem at once; a misspelt name is missing and extra, with a suggestion', () => {
    const w = weights();
    const kernel = w.get('dense/kernel')!;
    w.delete('dense/kernel');
    w.set('dense/kernal', kernel);
    w.set('batch_normalization/gamma', { shape: [4], data: new Float32Array(4) });
    let caught: unknown;
    try {
      attachWeights(graph(), w, 'w.safetensors');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ModelcError);
    expect((caught as ModelcError).diagnostics).toEqual([
      error("parameter 'dense/kernel' (shape [4, 3]) is missing from the weights"),
      error("tensor 'batch_normalization/gamma' has shape [4], but the graph's parameter has shape [3]"),
      error("tensor 'dense/kernal' is not a parameter of graph 't'; did you mean 'dense/kernel'?"),
    ]);
  });
});

describe('extractWeights', () => {
  it('returns the parameters that have values, with their shapes', () => {
    const g = graph();
    const partial: Graph = { ...g, params: g.params.map((p, i) => (i === 1 ? { ...p, value: new Float32Array([1, 2, 3]) } : p)) };
    expect([...extractWeights(partial)]).toEqual([['dense/bias', { shape: [3], data: new Float32Array([1, 2, 3]) }]]);
  });

  it('round-trips through a safetensors file', () => {
    const g = materialize(graph(), 11);
    const bytes = writeSafetensors(extractWeights(g));
    const back = attachWeights(graph(), readSafetensors(bytes, 'w.safetensors').tensors, 'w.safetensors');
    expect(back.params).toEqual(g.params);
  });
});
