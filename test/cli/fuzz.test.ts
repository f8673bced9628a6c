/**
 * Random and mutated specs never crash modelc: each either compiles to a
 * graph that verifies, or fails with located diagnostics
 * (`path:line:col: error: ...`) — which the CLI turns into exit code 1.
 *
 * "Never crashes" alone would also hold for a front end that rejects
 * everything, so each property tallies its outcomes (compiled, or the code of
 * the first diagnostic) and asserts a floor on what it exercised: enough specs
 * that compile, and rejections for more than one reason. The floors sit far
 * below the counts measured at the time of writing (stated beside each), so a
 * run fails only when the front end's behaviour changes, not by chance.
 */
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelcError, type DiagnosticCode } from '../../src/diagnostics/diagnostic.js';
import { renderDiagnostic } from '../../src/diagnostics/render.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { lowerLoaded, parseSpecSource } from '../../src/frontend/load.js';
import { checkGraph } from '../../src/ops/verify.js';
import { layers } from '../../src/ops/registry.js';
import { run, tempDir } from '../helpers/cli.js';
import { randomModel, type Layer } from '../helpers/random-models.js';
import { Tally } from '../helpers/tally.js';

type Outcome = 'ok' | DiagnosticCode;

/** Compiles `text` as the CLI would; checks the graph or the diagnostics' form; returns what happened. */
function compileOutcome(path: string, text: string): Outcome {
  try {
    const { graph } = lowerLoaded(parseSpecSource(new SourceFile(path, text)));
    expect(checkGraph(graph)).toEqual([]);
    return 'ok';
  } catch (err) {
    if (!(err instanceof ModelcError)) throw err;
    for (const d of err.diagnostics) {
      expect(d.span, d.message).toBeDefined();
      expect(d.span!.start).toBeLessThanOrEqual(text.length);
      expect(renderDiagnostic(d)).toMatch(new RegExp(`^${path.replace('.', '\\.')}:\\d+:\\d+: error: \\S`));
    }
    return err.diagnostics[0]!.code;
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

const shape: fc.Arbitrary<readonly number[]> = fc.oneof(fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 4 }), fc.constant([8, 8, 3]));

/** Wild specs: nearly all are rejected, most by the schema, so this one exercises the diagnostics. */
const spec = fc.record({
  name: fc.constantFrom('m', 'model_1', '1bad'),
  inputs: fc.array(fc.record({ name: names, shape }), { minLength: 1, maxLength: 2 }),
  layers: fc.array(layerEntry, { maxLength: 6 }),
});

/** At most one edit of a model that fits (test/helpers/random-models.ts): the deeper checks see near misses. */
type Edit =
  | { kind: 'none' }
  | { kind: 'drop'; layer: number; key: number }
  | { kind: 'set'; layer: number; key: string; value: unknown }
  | { kind: 'type'; layer: number; type: string }
  | { kind: 'inputs'; layer: number; inputs: string[] }
  | { kind: 'shape'; shape: readonly number[] };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  // Unedited models get twice the weight: they carry the floor on compiled specs.
  { arbitrary: fc.constant({ kind: 'none' as const }), weight: 2 },
  fc.record({ kind: fc.constant('drop' as const), layer: fc.nat(), key: fc.nat() }),
  fc.record({ kind: fc.constant('set' as const), layer: fc.nat(), key: fc.constantFrom(...attrNames), value }),
  fc.record({ kind: fc.constant('type' as const), layer: fc.nat(), type: fc.constantFrom(...layerTypes) }),
  fc.record({ kind: fc.constant('inputs' as const), layer: fc.nat(), inputs: fc.array(fc.constantFrom('x', 'l0', 'l1', 'l2', 'nope'), { minLength: 1, maxLength: 2 }) }),
  fc.record({ kind: fc.constant('shape' as const), shape }),
);

/** The spec with the edit applied (a copy; layer and key indices wrap around). */
function applyEdit(spec: { inputs: { name: string; shape: number[] }[]; layers: Layer[] }, e: Edit): object {
  const layers = spec.layers.map((l) => ({ ...l }));
  const inputs = e.kind === 'shape' ? [{ ...spec.inputs[0]!, shape: e.shape }] : spec.inputs;
  if (e.kind !== 'none' && e.kind !== 'shape') {
    const l = layers[e.layer % layers.length]!;
    if (e.kind === 'drop') {
      const keys = Object.keys(l);
      delete l[keys[e.key % keys.length]!];
    } else if (e.kind === 'set') l[e.key] = e.value;
    else if (e.kind === 'type') l['type'] = e.type;
    else l['inputs'] = e.inputs;
  }
  return { ...spec, inputs, layers };
}

const edited = fc.tuple(randomModel, edit).map(([{ spec }, e]) => applyEdit(spec, e));

const sources = ['seed_mlp', 'mnist_cnn', 'res_block'].flatMap((n) => [
  [`${n}.nn`, readFileSync(`examples/${n}.nn`, 'utf8')],
  [`${n}.json`, readFileSync(`examples/${n}.json`, 'utf8')],
]) as [string, string][];

/** Small edits of a source text: delete, insert or replace a span. */
const mutation = fc.record({
  source: fc.constantFrom(...sources),
  at: fc.nat(),
  length: fc.nat({ max: 12 }),
  insert: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('(', ')', '{', '}', '[', ']', ',', ':', '->', '"', '`', '=', '\n', '-1', '0', '1e9')),
});

function mutate({ source: [, text], at, length, insert }: { source: [string, string]; at: number; length: number; insert: string }): string {
  const i = at % (text.length + 1);
  return text.slice(0, i) + insert + text.slice(i + length);
}

describe('no crash on random and mutated specs', () => {
  it('random JSON specs compile or fail with located diagnostics, for many reasons', () => {
    const tally = new Tally();
    fc.assert(
      fc.property(spec, (s) => tally.add(compileOutcome('t.json', JSON.stringify(s, null, 2)))),
      { numRuns: 400 },
    );
    // Measured over 11 runs: 8 or 9 distinct codes (schema ~45%, unknownAttribute ~20%, emptyModel ~15%,
    // attributeType, cycle, unknownLayer, undefinedName, duplicateName, arity); 0 or 1 compiled.
    expect(tally.reasons, String(tally)).toBeGreaterThanOrEqual(5);
    expect(tally.rejected, String(tally)).toBeGreaterThanOrEqual(350);
  });

  it('edited random models compile or fail with located diagnostics, and most unedited ones compile', () => {
    const tally = new Tally();
    fc.assert(
      fc.property(edited, (s) => tally.add(compileOutcome('t.json', JSON.stringify(s, null, 2)))),
      { numRuns: 300 },
    );
    // Measured over 6 runs: 112..136 compiled, and 8 or 9 codes (shape and unknownAttribute ~18% each,
    // schema, undefinedName, cycle, arity, attributeType, unknownLayer). Below 60 compiled has odds < 1e-11.
    expect(tally.ok, String(tally)).toBeGreaterThanOrEqual(60);
    expect(tally.reasons, String(tally)).toBeGreaterThanOrEqual(5);
  });

  it('mutated examples compile or fail with located diagnostics', () => {
    const tally = new Tally();
    fc.assert(
      fc.property(mutation, (m) => tally.add(compileOutcome(m.source[0], mutate(m)))),
      { numRuns: 600 },
    );
    // Measured over 11 runs: 125..146 compiled (edits inside comments, whitespace, numbers), and 5 to 7
    // codes (syntax ~65%, schema, unknownLayer, unknownAttribute, attributeType, undefinedName, shape).
    // Below 60 compiled has odds < 1e-12.
    expect(tally.ok, String(tally)).toBeGreaterThanOrEqual(60);
    expect(tally.reasons, String(tally)).toBeGreaterThanOrEqual(4);
  });

  it('through the CLI: exit 0, or exit 1 with a located diagnostic', async () => {
    const dir = tempDir();
    const exits = [0, 0];
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const file = join(dir, m.source[0]);
        writeFileSync(file, mutate(m));
        const r = await run('check', file);
        expect([0, 1]).toContain(r.code);
        if (r.code === 1) expect(r.stderr).toMatch(/^.+:\d+:\d+: error: \S/);
        else expect(r.stdout).toMatch(/Total params: /);
        exits[r.code]! += 1;
      }),
      { numRuns: 60 },
    );
    // About 22% of mutations compile (see above): measured 7..20 of 60 exits 0 over 6 runs. Fewer than 2
    // has odds below 1e-5 (binomial, p = 0.22).
    expect(exits[0], `exit 0: ${exits[0]}, exit 1: ${exits[1]}`).toBeGreaterThanOrEqual(2);
    expect(exits[1], `exit 0: ${exits[0]}, exit 1: ${exits[1]}`).toBeGreaterThanOrEqual(20);
  });
});
