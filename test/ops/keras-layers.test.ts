/**
 * Keras import of the non-convolution layers whose classes map to more than
 * one modelc layer or carry options the conformance round trip does not
 * write: ReLU's three options (relu, relu6, leaky_relu or relu_general).
 */
import { describe, expect, it } from 'vitest';
import { imported } from '../helpers/keras-json.js';

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
