/**
 * Generated training modules are clean TypeScript: every module below
 * (covering dense, conv2d, depthwise and transposed convs, batchnorm with and
 * without renorm, dropout, pools, concatenate, add, every loss and every
 * optimizer) must type-check under `tsc --strict --noUncheckedIndexedAccess
 * --noUnusedLocals --noUnusedParameters` in one run, and the same spec must
 * give the same bytes twice.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTrainingProgram } from '../../src/autodiff/training.js';
import { generateTrainingModule } from '../../src/codegen/index.js';
import { strictTypecheck } from '../helpers/generated.js';
import { model } from '../helpers/graphs.js';
import { trainableGraph } from '../helpers/trainer.js';

const specs = [
  'examples/seed_mlp.nn',
  'examples/mnist_cnn.nn',
  {
    ...model([6, 6, 2], [
      { type: 'conv2d', filters: 4, kernel_size: 3, padding: 'same', name: 'c' },
      { type: 'batchnorm', renorm: true, renorm_clipping: { rmax: 2, rmin: 0.5, dmax: 1 } },
      { type: 'relu', name: 'r' },
      { type: 'depthwise_conv2d', kernel_size: 3, padding: 'same', inputs: ['r'], name: 'd' },
      { type: 'conv2d_transpose', filters: 4, kernel_size: 2, strides: 1, padding: 'same', inputs: ['r'], name: 't' },
      { type: 'add', inputs: ['d', 't'], name: 'sum' },
      { type: 'concatenate', inputs: ['sum', 'r'] },
      { type: 'avg_pool2d', pool_size: 2 },
      { type: 'global_max_pool2d' },
      { type: 'dropout', rate: 0.25 },
      { type: 'dense', units: 3, activation: 'sigmoid' },
    ]),
    training: { loss: 'binary_crossentropy', optimizer: { type: 'rmsprop', centered: true, momentum: 0.5 }, metrics: ['accuracy'] },
  },
  { ...model([4], [{ type: 'dense', units: 5, activation: 'gelu' }, { type: 'dense', units: 3, activation: 'softmax' }]), training: { loss: 'sparse_categorical_crossentropy', optimizer: { type: 'adamw', amsgrad: true }, metrics: ['accuracy'] } },
  { ...model([4], [{ type: 'dense', units: 5, activation: 'elu' }, { type: 'dense', units: 2 }]), training: { loss: 'mae', optimizer: { type: 'sgd', momentum: 0.9, nesterov: true } } },
];

describe('generated training modules', () => {
  it('type-check strictly and are deterministic', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelc-train-tsc-'));
    const files: string[] = [];
    for (const [k, spec] of specs.entries()) {
      const { graph, training } = trainableGraph(spec as never);
      const program = buildTrainingProgram(graph, training);
      const a = await generateTrainingModule(program, { name: `m${k}` });
      const b = await generateTrainingModule(buildTrainingProgram(graph, training), { name: `m${k}` });
      expect(b.ts === a.ts, `spec ${k} is deterministic`).toBe(true);
      writeFileSync(join(dir, `m${k}.train.ts`), a.ts);
      files.push(`m${k}.train.ts`);
    }
    expect(strictTypecheck(dir, files)).toBe('');
  }, 60_000);
});
