/**
 * The generated inference module computes the reference interpreter's
 * function, on random models (test/helpers/random-models.ts) with random
 * weights (nonzero biases, batchnorms that are never the identity), both as
 * generated from the unoptimized graph and after the default `-O` pipeline.
 *
 * One Model instance per module runs a batch of 3 (`run`), then a batch of 1
 * (`predict`: scratch buffers larger than needed, left dirty by the first
 * call), then a batch of 4 (`run`: the buffers grow). Every output must be
 * within 1e-4 of the float64 interpreter (on the unoptimized graph, same
 * float32 inputs and weights), relative to the output's largest magnitude.
 *
 * Then every module generated along the way must type-check under `tsc
 * --strict --noUncheckedIndexedAccess --noUnusedLocals --noUnusedParameters`
 * (one tsc run over all of them). Two fixed examples run first in both
 * variants: a model without parameters and one whose output is an alias
 * (dropout, a no-op at inference) of a computed value.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateInferenceModule } from '../../src/codegen/index.js';
import type { Graph } from '../../src/ir/graph.js';
import { fromF32 } from '../../src/ir/tensor.js';
import { interpret } from '../../src/interp/interpret.js';
import { randomFeeds } from '../../src/passes/equivalence.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { importModule, strictTypecheck } from '../helpers/generated.js';
import type { JsonSpec } from '../helpers/graphs.js';
import { lowerRandomModel, randomModel, randomParams } from '../helpers/random-models.js';

const RTOL = 1e-4;
const RUNS = 25;


/** A generated module and the spec it came from. */
interface Generated {
  readonly spec: JsonSpec;
  readonly ts: string;
}

type RandomModel = typeof randomModel extends fc.Arbitrary<infer T> ? T : never;

/** Models the random ones rarely are, run first: no parameters; an output that is an alias. */
const examples: [RandomModel][] = [
  [{ spec: { name: 't', inputs: [{ name: 'x', shape: [3] }], layers: [{ type: 'relu', name: 'l0' }] }, seed: 1 }],
  [{ spec: { name: 't', inputs: [{ name: 'x', shape: [3] }], layers: [{ type: 'dense', units: 2, name: 'l0' }, { type: 'dropout', rate: 0.5, name: 'l1' }] }, seed: 2 }],
];

/**
 * Type-checks modules with one tsc run; returns tsc's complaints grouped by
 * module, each with its spec ('' when all are clean).
 */
function typecheckAll(modules: readonly Generated[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'modelc-tsc-'));
  const files = modules.map((m, k) => {
    const file = `m${k}.ts`;
    writeFileSync(join(dir, file), m.ts);
    return file;
  });
  const out = strictTypecheck(dir, files);
  if (out === '') return '';
  const byModule = new Map<number, string[]>();
  const other: string[] = [];
  for (const line of out.split('\n').filter((l) => l.trim() !== '')) {
    const k = /^m(\d+)\.ts\(/.exec(line)?.[1];
    if (k === undefined) other.push(line);
    else byModule.set(Number(k), [...(byModule.get(Number(k)) ?? []), line]);
  }
  const reports = [...byModule].map(([k, lines]) => `${lines.join('\n')}\nspec: ${JSON.stringify(modules[k]!.spec)}`);
  return [`${byModule.size} of ${modules.length} modules fail to type-check (files in ${dir})`, ...reports, ...other].join('\n\n');
}

/** The calls made on one Model instance, in order. */
const calls = [
  { batch: 3, via: 'run' },
  { batch: 1, via: 'predict' },
  { batch: 4, via: 'run' },
] as const;

/** The worst |got - want| and the scale max |want| (NaN or a length mismatch is the worst difference). */
function difference(got: Float32Array | undefined, want: Float64Array): { worst: number; scale: number; at: number } {
  let scale = 0;
  let worst = got === undefined || got.length !== want.length ? Infinity : 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    const d = Math.abs((got?.[i] ?? NaN) - want[i]!);
    if (!(d <= worst)) {
      worst = Number.isNaN(d) ? Infinity : d;
      at = i;
    }
  }
  return { worst, scale, at };
}

/** Checks the module generated from `g` (the `-O` version of `graph`, or `graph` itself) against the interpreter. */
async function checkModule(spec: JsonSpec, graph: Graph, g: Graph, seed: number, generated: Generated[]): Promise<void> {
  const what = (m: string) => `${m}\nspec: ${JSON.stringify(spec)}\nweights seed: ${seed}`;
  const mod = await generateInferenceModule(g);
  generated.push({ spec, ts: mod.ts });
  const m = await importModule(mod.js, 'random');
  const model = new m.Model();
  for (const [k, { batch, via }] of calls.entries()) {
    const f64 = randomFeeds(graph, batch, seed + k);
    const x = Float32Array.from(f64['x']!.data);
    const want = interpret(graph, { x: fromF32(f64['x']!.shape, x) });
    const got = via === 'run' ? model.run({ x }, batch) : { [graph.outputs[0]!]: model.predict(x, batch) };
    expect(Object.keys(got), what(`batch ${batch} via ${via}: output names`)).toEqual(graph.outputs);
    for (const o of graph.outputs) {
      const out = Object.getOwnPropertyDescriptor(got, o)?.value as Float32Array | undefined;
      const ref = want[o]!.data;
      const { worst, scale, at } = difference(out, ref);
      const detail = `batch ${batch} via ${via}, output ${o}: max |diff| ${worst} at [${at}] (got ${out?.[at]}, want ${ref[at]}), scale ${scale}`;
      expect(worst, what(detail)).toBeLessThanOrEqual(RTOL * scale);
    }
  }
}

describe.each([
  { label: 'unoptimized', optimize: false },
  { label: 'optimized (default pipeline)', optimize: true },
])('generated modules on random models, $label', ({ optimize }) => {
  const generated: Generated[] = [];

  it('match the reference interpreter', async () => {
    let optimizedAway = 0;
    await fc.assert(
      fc.asyncProperty(randomModel, async ({ spec, seed }) => {
        const lowered = lowerRandomModel(spec);
        fc.pre(lowered !== undefined);
        const graph = randomParams(lowered, seed);
        const g = optimize ? createPassManager().run(graph, [...defaultPipeline], {}) : graph;
        if (g.nodes.length < graph.nodes.length) optimizedAway++;
        await checkModule(spec, graph, g, seed, generated);
      }),
      { numRuns: RUNS, examples },
    );
    // The -O runs were not vacuous: the passes changed most graphs.
    if (optimize) expect(optimizedAway).toBeGreaterThan(RUNS / 3);
  }, 60_000);

  it('type-check with strict, noUncheckedIndexedAccess, noUnusedLocals and noUnusedParameters', () => {
    expect(generated.length, 'the modules of the test above (run it too)').toBeGreaterThanOrEqual(RUNS);
    expect(typecheckAll(generated)).toBe('');
  }, 60_000);
});
