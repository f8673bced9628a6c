/**
 * One-layer TF.js model.json sources for Keras import tests: layer `p` of a
 * class with a config, on an input `x`.
 */
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

