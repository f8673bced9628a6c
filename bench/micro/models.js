// End-to-end timings of the generated modules of the examples: inference
// (predict) and one training step (Trainer.trainOnBatch), medians.
//
//   npm run build && node bench/micro/models.js [filter...] [--save DIR] [--against DIR]
//
// Filters select cases by name substring (`node bench/micro/models.js mnist`).
// `--save DIR` keeps the generated modules; `--against DIR` times the modules
// saved there side by side with today's (interleaved samples): before/after.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { compileExample, fmt, importExample, options, randomArray, selected, timeAll } from './common.js';

const { save, against } = options();

const report = (name, [after, before], perExample) => {
  const each = perExample ? `  (${fmt(after / perExample)} per example)` : '';
  const vs = before === undefined ? '' : `  before ${fmt(before).padStart(10)}  speedup ${(before / after).toFixed(2)}x`;
  console.log(`${name.padEnd(34)} ${fmt(after).padStart(10)}${vs}${each}`);
};

for (const model of ['seed_mlp', 'mnist_cnn']) {
  if (!selected(model, true)) continue;
  const now = await compileExample(model);
  if (save) {
    mkdirSync(save, { recursive: true });
    for (const f of [`${model}.js`, `${model}.train.js`]) copyFileSync(join(now.dir, f), join(save, f));
  }
  const builds = [now, ...(against ? [await importExample(model, against)] : [])];
  const { inputs, outputs } = now.inference;
  const inSize = inputs[0].shape.reduce((a, b) => a * b, 1);
  const outSize = outputs[0].shape.reduce((a, b) => a * b, 1);
  const heavy = model === 'mnist_cnn';
  for (const batch of heavy ? [1, 64] : [1, 16, 256]) {
    const name = `${model} predict batch ${batch}`;
    if (!selected(name)) continue;
    const x = randomArray(batch * inSize, 7);
    const fs = builds.map((b) => {
      const m = new b.inference.Model();
      return () => m.predict(x, batch);
    });
    report(name, timeAll(fs, heavy ? { reps: 7, minTime: 0.2, warmup: 2 } : {}), batch);
  }
  const batch = heavy ? 32 : 16;
  const name = `${model} trainOnBatch batch ${batch}`;
  if (selected(name)) {
    const x = randomArray(batch * inSize, 3);
    const y = new Float32Array(batch * outSize);
    for (let i = 0; i < batch; i++) y[i * outSize + (i % outSize)] = 1;
    const fs = builds.map((b) => {
      const trainer = new b.training.Trainer({ seed: 1, learningRate: 1e-4 });
      return () => trainer.trainOnBatch(x, y, batch);
    });
    report(name, timeAll(fs, heavy ? { reps: 7, minTime: 0.5, warmup: 2 } : {}));
  }
}
