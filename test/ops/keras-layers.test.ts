/**
 * Keras import of the non-convolution layers whose classes map to more than
 * one modelc layer or carry options the conformance round trip does not
 * write: ReLU's three options (relu, relu6, leaky_relu or relu_general).
 */
import { describe, expect, it } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { importTfjs } from '../../src/frontend/tfjs.js';

/** A model.json with one layer `p` of class `cls` and this config on an input of `shape`. */
export function modelJson(cls: string, config: Record<string, unknown>, shape: readonly number[] = [4, 3]): SourceFile {
  const layers = [
    { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, ...shape], dtype: 'float32' }, inbound_nodes: [] },
    { class_name: cls, name: 'p', config: { name: 'p', trainable: true, dtype: 'float32', ...config }, inbound_nodes: [[['x', 0, 0, {}]]] },
  ];
  const topology = { class_name: 'Model', config: { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: [['p', 0, 0]] } };
  return new SourceFile('m/model.json', JSON.stringify({ modelTopology: topology, format: 'layers-model' }));
}

export const imported = (cls: string, config: Record<string, unknown>, shape?: readonly number[]) =>
  importTfjs(modelJson(cls, config, shape)).spec.layers[0];

describe('Keras ReLU', () => {
  it.each([
    [{ max_value: null, negative_slope: 0, threshold: 0 }, { type: 'relu', name: 'p' }],
    [{ max_value: 6, negative_slope: 0, threshold: 0 }, { type: 'relu6', name: 'p' }],
    [{ max_value: null, negative_slope: 0.1, threshold: 0 }, { type: 'leaky_relu', name: 'p', alpha: 0.1 }],
    [{ max_value: 6, negative_slope: 0.1, threshold: 0 }, { type: 'relu_general', name: 'p', max_value: 6, negative_slope: 0.1 }],
    [{ max_value: 4, negative_slope: 0, threshold: 0 }, { type: 'relu_general', name: 'p', max_value: 4 }],
    [{ max_value: null, negative_slope: 0, threshold: 0.5 }, { type: 'relu_general', name: 'p', threshold: 0.5 }],
  ])('%j imports as %j', (config, layer) => {
    expect(imported('ReLU', config)).toEqual(layer);
  });
});
