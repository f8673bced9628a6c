/**
 * Random and mutated specs never crash modelc: each either compiles to a
 * graph that verifies, or fails with located diagnostics
 * (`path:line:col: error: ...`) — which the CLI turns into exit code 1.
 */
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { renderDiagnostic } from '../../src/diagnostics/render.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { lowerLoaded, parseSpecSource } from '../../src/frontend/load.js';
import { checkGraph } from '../../src/ir/verify.js';
import { layers } from '../../src/ops/registry.js';
import { run, tempDir } from '../helpers/cli.js';
import { join } from 'node:path';

/** Compiles `text`; returns 0 or 1 as the CLI would, and checks the diagnostics' form. */
function compileOutcome(path: string, text: string): 0 | 1 {
  try {
    const { graph } = lowerLoaded(parseSpecSource(new SourceFile(path, text)));
    expect(checkGraph(graph)).toEqual([]);
    return 0;
  } catch (err) {
    if (!(err instanceof ModelcError)) throw err;
    for (const d of err.diagnostics) {
      expect(d.span, d.message).toBeDefined();
      expect(d.span!.start).toBeLessThanOrEqual(text.length);
      expect(renderDiagnostic(d)).toMatch(new RegExp(`^${path.replace('.', '\\.')}:\\d+:\\d+: error: \\S`));
    }
    return 1;
  }
}

const layerTypes = [...layers.map((l) => l.type), 'batch_normalization', 'lstm', 'Dense', ''];
const attrNames = [...new Set(layers.flatMap((l) => Object.keys(l.attrs))), 'unit', 'name', 'inputs', 'type', '__proto__'];
const names = fc.constantFrom('x', 'y', 'a', 'b', 'dense', 'dense_1', 'conv2d', 'relu', 'z z', '"q"', '`t`', '');
const scalar = fc.oneof(
  fc.integer({ min: -3, max: 70 }),
  fc.double({ min: -2, max: 2, noNaN: true }),
  fc.constantFrom('same', 'valid', 'relu', 'tanh', 'uniform', 'zeros', 'bogus', ''),
  fc.boolean(),
  fc.constant(null),
);
const value = fc.oneof(scalar, fc.array(fc.integer({ min: -1, max: 5 }), { maxLength: 3 }), fc.dictionary(fc.constantFrom('rmax', 'rmin', 'dmax', 'type', 'stddev'), scalar, { maxKeys: 2 }));

const layerEntry = fc.oneof(
  fc.record(
    {
      type: fc.constantFrom(...layerTypes),
      name: names,
      inputs: fc.array(names, { minLength: 1, maxLength: 3 }),
      attrs: fc.dictionary(fc.constantFrom(...attrNames), value, { maxKeys: 3 }),
    },
    { requiredKeys: ['type', 'attrs'] },
  ).map(({ attrs, ...rest }) => ({ ...attrs, ...rest })),
  fc.record({ reuse: names, inputs: fc.array(names, { minLength: 1, maxLength: 2 }) }, { requiredKeys: ['reuse'] }),
);

const spec = fc.record({
  name: fc.constantFrom('m', 'model_1', '1bad'),
  inputs: fc.array(
    fc.record({ name: names, shape: fc.oneof(fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 4 }), fc.constant([8, 8, 3])) }),
    { minLength: 1, maxLength: 2 },
  ),
  layers: fc.array(layerEntry, { maxLength: 6 }),
});

const sources = ['seed_mlp', 'mnist_cnn', 'res_block'].flatMap((n) => [
  [`${n}.nn`, readFileSync(`examples/${n}.nn`, 'utf8')],
  [`${n}.json`, readFileSync(`examples/${n}.json`, 'utf8')],
]) as [string, string][];

/** Small edits of a source text: delete, insert or replace a span, or duplicate a line. */
const mutation = fc.record({
  source: fc.constantFrom(...sources),
  at: fc.nat(),
  length: fc.nat({ max: 12 }),
  insert: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('(', ')', '{', '}', '[', ']', ',', ':', '->', '"', '`', '=', '\n', '-1', '0', '1e9')),
});

describe('no crash on random and mutated specs', () => {
  it('random JSON specs compile or fail with located diagnostics', () => {
    fc.assert(
      fc.property(spec, (s) => {
        compileOutcome('t.json', JSON.stringify(s, null, 2));
      }),
      { numRuns: 400 },
    );
  });

  it('mutated examples compile or fail with located diagnostics', () => {
    fc.assert(
      fc.property(mutation, ({ source: [path, text], at, length, insert }) => {
        const i = at % (text.length + 1);
        compileOutcome(path, text.slice(0, i) + insert + text.slice(i + length));
      }),
      { numRuns: 600 },
    );
  });

  it('through the CLI: exit 0, or exit 1 with a located diagnostic', async () => {
    const dir = tempDir();
    await fc.assert(
      fc.asyncProperty(mutation, async ({ source: [path, text], at, length, insert }) => {
        const i = at % (text.length + 1);
        const file = join(dir, path);
        const mutated = text.slice(0, i) + insert + text.slice(i + length);
        writeFileSync(file, mutated);
        const r = await run('check', file);
        expect([0, 1]).toContain(r.code);
        if (r.code === 1) expect(r.stderr).toMatch(/^.+:\d+:\d+: error: \S/);
        else expect(r.stdout).toMatch(/Total params: /);
      }),
      { numRuns: 60 },
    );
  });
});
