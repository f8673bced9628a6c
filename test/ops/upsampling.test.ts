/**
 * What the conformance suite does not reach in the upsampling record: the
 * identity rule (size 1 x 1 is removed by `remove-identity`), and the
 * interpolations modelc refuses, both in a Keras import (located at the
 * `interpolation` key, naming the layer and class) and in a spec.
 */
import { describe, expect, it } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { importTfjs } from '../../src/frontend/tfjs.js';
import { diagnosticOf, lowerJson, model } from '../helpers/graphs.js';
import { expectPasses, ir } from '../passes/helpers.js';

/** A model.json with one UpSampling2D layer `up` of this config on a [2, 3, 1] input. */
function upsamplingJson(config: Record<string, unknown>): SourceFile {
  const layers = [
    { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, 2, 3, 1], dtype: 'float32' }, inbound_nodes: [] },
    { class_name: 'UpSampling2D', name: 'up', config: { name: 'up', trainable: true, dtype: 'float32', ...config }, inbound_nodes: [[['x', 0, 0, {}]]] },
  ];
  const config2 = { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: [['up', 0, 0]] };
  return new SourceFile('m/model.json', JSON.stringify({ modelTopology: { class_name: 'Model', config: config2 }, format: 'layers-model' }));
}

describe('upsample2d', () => {
  it('is removed as the identity at size 1 x 1, kept at any other size', () => {
    expectPasses(
      ['remove-identity'],
      ir(
        'graph g(%x: f32[N,2,3,1]) {',
        '  %a: f32[N,2,3,1] = upsample2d(%x) {size=[1,1]}',
        '  %b: f32[N,4,3,1] = upsample2d(%a) {size=[2,1]}',
        '  return %b',
        '}',
      ),
      ir('graph g(%x: f32[N,2,3,1]) {', '  %b: f32[N,4,3,1] = upsample2d(%x) {size=[2,1]}', '  return %b', '}'),
    );
  });

  it("imports Keras's nearest interpolation and refuses bilinear, at its key", () => {
    expect(importTfjs(upsamplingJson({ size: [2, 2], interpolation: 'nearest', data_format: 'channels_last' })).spec.layers)
      .toEqual([{ type: 'upsampling2d', name: 'up' }]);
    const file = upsamplingJson({ size: [2, 2], interpolation: 'bilinear' });
    const d = diagnosticOf(() => importTfjs(file));
    expect(d.message).toBe("layer 'up' (UpSampling2D): interpolation \"bilinear\" is not supported: modelc repeats each cell (interpolation 'nearest')");
    const at = d.span!.start;
    expect(file.text.slice(at, at + 30)).toMatch(/^("interpolation": )?"bilinear"/);
  });

  it('refuses another interpolation in a spec', () => {
    const d = diagnosticOf(() => lowerJson(model([2, 2, 1], [{ type: 'upsampling2d', interpolation: 'bilinear' }])));
    expect(d.message).toMatch(/upsampling2d attribute 'interpolation': expected 'nearest', got "bilinear"/);
  });
});
