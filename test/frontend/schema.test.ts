/**
 * grammar/model.schema.json is generated from the TypeBox source of the spec
 * types; it must be current, and an independent JSON Schema validator (ajv)
 * must agree with modelc's own validation on valid and invalid specs.
 */
import Ajv from 'ajv';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { parseJsonSpec } from '../../src/frontend/json.js';
import { schemaDocument } from '../../src/frontend/spec.js';
import { validateSpec } from '../../src/frontend/validate.js';

const committed = JSON.parse(readFileSync('grammar/model.schema.json', 'utf8')) as object;

function oursAccepts(spec: unknown): boolean {
  const { spec: raw, locations } = parseJsonSpec(new SourceFile('t.json', JSON.stringify(spec)));
  try {
    validateSpec(raw, locations);
    return true;
  } catch (err) {
    if (err instanceof ModelcError) return false;
    throw err;
  }
}

const base = { name: 'm', inputs: [{ name: 'x', shape: [4] }] };
const specs: [string, unknown, boolean][] = [
  ['a minimal model', { ...base, layers: [{ type: 'dense', units: 2 }] }, true],
  ['$schema for editors', { $schema: './model.schema.json', ...base, layers: [{ type: 'relu' }] }, true],
  ['an alias type', { ...base, layers: [{ type: 'batch_normalization', momentum: 0.9 }] }, true],
  ['a reuse entry', { ...base, layers: [{ type: 'dense', units: 4, name: 'd' }, { reuse: 'd' }] }, true],
  ['an initializer object', { ...base, layers: [{ type: 'dense', units: 2, kernel_initializer: { type: 'random_normal', stddev: 0.1 } }] }, true],
  ['renorm clipping', { ...base, layers: [{ type: 'batchnorm', renorm: true, renorm_clipping: { rmax: 3, rmin: 0.3, dmax: 5 } }] }, true],
  ['training with an optimizer object', { ...base, layers: [{ type: 'softmax' }], training: { loss: 'mse', optimizer: { type: 'adam', beta_1: 0.8 } } }, true],
  ['an unknown layer type', { ...base, layers: [{ type: 'lstm' }] }, false],
  ['an unknown attribute', { ...base, layers: [{ type: 'dense', units: 2, unit: 3 }] }, false],
  ['a missing required attribute', { ...base, layers: [{ type: 'dense' }] }, false],
  ['a non-integer units', { ...base, layers: [{ type: 'dense', units: 2.5 }] }, false],
  ['a bad padding', { ...base, layers: [{ type: 'conv2d', filters: 2, kernel_size: 3, padding: 'full' }] }, false],
  ['a kernel_size of three numbers', { ...base, layers: [{ type: 'conv2d', filters: 2, kernel_size: [3, 3, 3] }] }, false],
  ['a dropout rate of 1', { ...base, layers: [{ type: 'dropout', rate: 1 }] }, false],
  ['an optimizer argument of another optimizer', { ...base, layers: [{ type: 'relu' }], training: { loss: 'mse', optimizer: { type: 'sgd', beta_1: 0.9 } } }, false],
  ['a model name that is not an identifier', { ...base, name: 'my model', layers: [{ type: 'relu' }] }, false],
  ['an input shape with 0', { ...base, inputs: [{ name: 'x', shape: [0] }], layers: [{ type: 'relu' }] }, false],
  ['an unknown top-level key', { ...base, layers: [{ type: 'relu' }], loss: 'mse' }, false],
];

describe('model.schema.json', () => {
  it('is current (regenerate with `npm run build && npm run gen:schema`)', () => {
    expect(committed).toEqual(JSON.parse(JSON.stringify(schemaDocument())));
  });

  const ajv = new Ajv.default({ strict: false, allErrors: true });
  const validate = ajv.compile(committed);

  it.each(specs)('ajv and modelc agree: %s', (_, spec, valid) => {
    expect(validate(spec)).toBe(valid);
    expect(oursAccepts(spec)).toBe(valid);
  });

  it.each(['seed_mlp', 'mnist_cnn', 'res_block'])('accepts examples/%s.json', (name) => {
    const spec = JSON.parse(readFileSync(`examples/${name}.json`, 'utf8')) as unknown;
    expect(validate(spec)).toBe(true);
  });
});
