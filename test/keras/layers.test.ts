/**
 * Real Keras in CI without Python: each fixture of test/fixtures/keras/layers
 * (written by scripts/keras/make_fixtures.py with Keras 3) is a tiny model
 * saved as `.keras` (a few also as legacy `.h5`) with random weights and
 * random batch-norm statistics, its inputs and Keras's `model.predict`
 * outputs. Each file is imported as a user would (`lowerFileAsync`) and run
 * by the reference interpreter and the generated module, unoptimized and
 * `-O`; every output must be within 1e-4 of Keras's, relative to its scale.
 * Also: every Keras class modelc imports appears in some fixture.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lowerFileAsync } from '../../src/frontend/load.js';
import { importableClasses } from '../../src/frontend/tfjs.js';
import type { Graph } from '../../src/ir/graph.js';
import { expectClose, generatedModel, interpreted, optimize, type Feeds, type Outputs } from './run.js';

interface Tensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: readonly number[];
}

interface Fixture {
  readonly name: string;
  /** The Keras classes in the model (Keras 3 operators as `ops.<Class>`). */
  readonly classes: readonly string[];
  /** `<name>.keras`, and `<name>.h5` for some. */
  readonly files: readonly string[];
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
}

const dir = fileURLToPath(new URL('../fixtures/keras/layers/', import.meta.url));
const fixtures: Fixture[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(dir + f, 'utf8')) as Fixture);

/** Compares every output of a run with Keras's. */
function expectKeras(label: string, got: Outputs, fx: Fixture): void {
  for (const want of fx.outputs) expectClose(`${fx.name} ${label}`, got, want.name, want.data);
}

async function checkFile(fx: Fixture, file: string): Promise<void> {
  const { graph } = await lowerFileAsync(dir + file);
  const feeds: Feeds = Object.fromEntries(fx.inputs.map((i) => [i.name, Float32Array.from(i.data)]));
  const batch = fx.inputs[0]!.shape[0]!;
  const runs: [string, Graph][] = [['', graph], [' -O', optimize(graph)]];
  for (const [suffix, g] of runs) {
    expectKeras(`${file} interpreter${suffix}`, interpreted(g, feeds, batch), fx);
    const run = await generatedModel(g, fx.name);
    expectKeras(`${file} generated${suffix}`, run(feeds, batch), fx);
  }
}

describe('Keras fixtures, per layer', () => {
  it('the fixtures are there', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(20);
  });

  for (const fx of fixtures) {
    for (const file of fx.files) {
      it(`${file} (${fx.classes.filter((c) => c !== 'InputLayer').join(', ')}) matches Keras`, async () => {
        await checkFile(fx, file);
      });
    }
  }

  it('every Keras class modelc imports has a fixture', () => {
    const covered = new Set(fixtures.flatMap((f) => f.classes));
    expect(importableClasses.filter((c) => !covered.has(c))).toEqual([]);
  });
});
