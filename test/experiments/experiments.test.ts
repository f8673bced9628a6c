/**
 * The batch-normalization experiments: the training-mode probe against a hand
 * computation, the specs each variant trains, and every experiment run end to
 * end at a small scale through `modelc experiments` (its files, charts as
 * real SVG and PNG, results that agree with the summary, its own checks).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { experimentList } from '../../src/cli/experiments.js';
import { experiments } from '../../src/experiments/index.js';
import { trainerClass } from '../../src/experiments/harness.js';
import { icsSpec } from '../../src/experiments/ics.js';
import { mlpSpec } from '../../src/experiments/learning-rate.js';
import { renormCnnSpec, trainingModeAccuracy } from '../../src/experiments/renorm.js';
import { parseSpecSource } from '../../src/frontend/load.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { run, tempDir } from '../helpers/cli.js';
import { rng } from '../helpers/tensors.js';

/** Width and height from a PNG's IHDR chunk, after checking the signature. */
function pngSize(bytes: Buffer): [number, number] {
  expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

function layerTypes(source: string): string[] {
  return parseSpecSource(new SourceFile('m.nn', source)).spec.layers.map((l) => (l as { type: string }).type);
}

describe('training-mode accuracy probe', () => {
  it('equals a float64 hand computation of dense -> batchnorm (batch statistics of each batch of 4) -> argmax', async () => {
    const source = `model probe {
  input x: [3]
  dense(4)
  batchnorm
  dense(2)
  batchnorm(epsilon: 0.01)
  softmax
  train {
    loss: categorical_crossentropy
    optimizer: sgd(learning_rate: 0.1)
    metrics: [accuracy]
  }
}
`;
    const Trainer = await trainerClass(source, 'probe');
    const next = rng(5);
    const base = new Trainer({ seed: 3 }).getWeights();
    // non-trivial BN parameters and moving statistics (training mode must ignore the latter)
    const weights: Record<string, Float32Array> = {};
    for (const [name, value] of Object.entries(base)) weights[name] = value.map((v) => (/moving_variance/.test(name) ? 0.5 + next() : /gamma|beta|moving_mean/.test(name) ? next() * 2 - 1 : v));
    const count = 40;
    const x = Float32Array.from({ length: count * 3 }, () => next() * 4 - 2);
    const y = new Float32Array(count * 2);
    for (let i = 0; i < count; i++) y[i * 2 + (next() < 0.5 ? 0 : 1)] = 1;
    const data = { x, y, count };

    const bnTrain = (z: number[][], prefix: string, eps: number): number[][] => {
      const gamma = weights[`${prefix}/gamma`]!;
      const beta = weights[`${prefix}/beta`]!;
      return z[0]!.map((_, c) => {
        const col = z.map((r) => r[c]!);
        const mean = col.reduce((a, b) => a + b, 0) / col.length;
        const variance = col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length;
        return col.map((v) => (gamma[c]! * (v - mean)) / Math.sqrt(variance + eps) + beta[c]!);
      }).reduce<number[][]>((rows, col) => (col.forEach((v, i) => (rows[i] ??= []).push(v)), rows), []);
    };
    const dense = (rows: number[][], prefix: string, units: number) =>
      rows.map((r) => Array.from({ length: units }, (_, j) => r.reduce((a, v, i) => a + v * weights[`${prefix}/kernel`]![i * units + j]!, weights[`${prefix}/bias`]![j]!)));
    let right = 0;
    for (let b = 0; b < count; b += 4) {
      const rows = Array.from({ length: 4 }, (_, i) => [...x.subarray((b + i) * 3, (b + i + 1) * 3)]);
      const out = bnTrain(dense(bnTrain(dense(rows, 'dense', 4), 'batch_normalization', 0.001), 'dense_1', 2), 'batch_normalization_1', 0.01);
      out.forEach((o, i) => (right += (o[1]! > o[0]! ? 1 : 0) === (y[(b + i) * 2 + 1] === 1 ? 1 : 0) ? 1 : 0));
    }
    const probed = trainingModeAccuracy(Trainer, weights, data, 4);
    expect(probed).toBeCloseTo(right / count, 10);
    // and it is not the inference-mode accuracy (the moving statistics differ from every batch's)
    const inference = new Trainer({ weights, learningRate: 0 }).evaluate(x, y, count).accuracy!;
    expect(Math.abs(inference - probed) + Math.abs(right / count - probed)).toBeGreaterThan(0);
    // nothing the probe did changed the weights it was given
    expect(new Trainer({ weights }).getWeights()).toEqual(weights);
  });
});

describe('experiment specs', () => {
  it('places BN before or after the activation, or leaves it out', () => {
    expect(layerTypes(mlpSpec('a', 'sigmoid', 'before'))).toEqual(['flatten', 'dense', 'batchnorm', 'sigmoid', 'dense', 'batchnorm', 'sigmoid', 'dense']);
    expect(layerTypes(mlpSpec('a', 'relu', 'after'))).toEqual(['flatten', 'dense', 'relu', 'batchnorm', 'dense', 'relu', 'batchnorm', 'dense']);
    expect(layerTypes(mlpSpec('a', 'relu', 'none'))).toEqual(['flatten', 'dense', 'relu', 'dense', 'relu', 'dense']);
  });

  it("builds the paper's Figure 1 network: three sigmoid layers of 100, BN before each or none, the last sigmoid named for the trace", () => {
    const hidden = (bn: boolean) => ['dense', ...(bn ? ['batchnorm'] : []), 'sigmoid'];
    expect(layerTypes(icsSpec('a', true))).toEqual(['flatten', ...hidden(true), ...hidden(true), ...hidden(true), 'dense']);
    expect(layerTypes(icsSpec('a', false))).toEqual(['flatten', ...hidden(false), ...hidden(false), ...hidden(false), 'dense']);
    const layers = parseSpecSource(new SourceFile('m.nn', icsSpec('a', false))).spec.layers as Record<string, unknown>[];
    expect(layers.filter((l) => l['type'] === 'dense').map((l) => l['units'])).toEqual([100, 100, 100, 10]);
    expect(layers.filter((l) => l['type'] === 'sigmoid').map((l) => l['name'])).toEqual([undefined, undefined, 'last_sigmoid']);
  });

  it('gives the renorm CNN renorm on every batchnorm, and the plain one none', () => {
    const bns = (source: string) => parseSpecSource(new SourceFile('m.nn', source)).spec.layers.filter((l) => (l as { type: string }).type === 'batchnorm') as Record<string, unknown>[];
    expect(bns(renormCnnSpec('r', true)).map((l) => l['renorm'])).toEqual([true, true, true]);
    expect(bns(renormCnnSpec('p', false)).map((l) => l['renorm'] ?? false)).toEqual([false, false, false]);
  });
});

describe('modelc experiments', () => {
  it('lists the experiments the library has, with the CLI list in the same order', async () => {
    expect(experimentList.map(([name]) => name)).toEqual(experiments.map((e) => e.name));
    const r = await run('experiments');
    expect(r.code).toBe(0);
    for (const e of experiments) expect(r.stdout).toContain(e.name);
  });

  it('refuses an unknown experiment and a bad scale as usage errors', async () => {
    const unknown = await run('experiments', 'no-such-thing');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no experiment 'no-such-thing'; the experiments are .*renorm/);
    expect((await run('experiments', 'renorm', '--scale', '0')).code).toBe(2);
  });

  // Each experiment end to end at a small scale: the same code path as the documented run.
  for (const [name, scale] of [['renorm', 0.02], ['learning-rate', 0.02], ['ics', 0.02], ['insert-bn', 0.02]] as const) {
    it(`runs ${name} at scale ${scale}: summary, results and charts, its own checks hold`, async () => {
      const out = join(tempDir(), 'out');
      const report = join(out, 'report.md');
      const r = await run('experiments', name, '-o', out, '--scale', String(scale), '--report', report);
      expect(r.code, r.stderr).toBe(0);
      const experiment = experiments.find((e) => e.name === name)!;
      const folder = join(out, name);
      for (const chart of experiment.charts) {
        const svg = readFileSync(join(folder, `${chart}.svg`), 'utf8');
        expect(svg).toMatch(/^<svg[^>]*width="(\d+)"/);
        const svgWidth = Number(/width="(\d+)"/.exec(svg)![1]);
        const [w, h] = pngSize(readFileSync(join(folder, `${chart}.png`)));
        expect(w).toBe(svgWidth * 2);
        expect(h).toBeGreaterThan(100);
      }
      const results = JSON.parse(readFileSync(join(folder, 'results.json'), 'utf8'));
      expect(results).toMatchObject({ experiment: name, seed: 1, scale });
      expect(results.checks.length).toBeGreaterThan(0);
      expect(results.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
      const summary = readFileSync(join(folder, 'summary.md'), 'utf8');
      expect(summary).toContain(`Checks: ${results.checks.length} of ${results.checks.length} hold`);
      if (name === 'renorm') {
        for (const f of results.finals) expect(summary).toContain(`| ${f.variant} | ${(f.inference * 100).toFixed(2)}% | ${(f.training * 100).toFixed(2)}% |`);
        expect(results.points.length).toBeGreaterThanOrEqual(4);
      } else if (name === 'ics') {
        // both networks traced on steps 1, 1 + every, ... and their final accuracies in the table
        for (const label of ['without BN', 'with BN']) {
          const trace = results.trace[label];
          expect(trace.step[0]).toBe(1);
          expect(trace.step.every((s: number, k: number) => s === 1 + k * results.every)).toBe(true);
          trace.p15.forEach((v: number, k: number) => expect(v).toBeLessThanOrEqual(trace.p85[k]));
          const curve = results.curves[label];
          expect(summary).toContain(`| ${label} | ${(curve[curve.length - 1].accuracy * 100).toFixed(2)}% |`);
        }
      } else if (name === 'insert-bn') {
        expect(results.preserved).toBeLessThanOrEqual(1e-5);
        expect(results.deployed).toEqual(results.originalArchitecture);
        expect(results.deployed).not.toHaveProperty('batchnorm');
        expect(results.inserted.length).toBe(5); // four convolutions and the hidden dense layer
      } else {
        expect(results.runs).toHaveLength(42);
        for (const run of results.runs.filter((x: { diverged: boolean }) => !x.diverged)) expect(run.folded).toBe(run.accuracy);
      }
      // the report links the charts from the report's folder
      const text = readFileSync(report, 'utf8');
      for (const chart of experiment.charts) {
        expect(text).toContain(`](${name}/${chart}.png)`);
        expect(existsSync(join(out, name, `${chart}.png`))).toBe(true);
      }
    }, 240_000);
  }
});
