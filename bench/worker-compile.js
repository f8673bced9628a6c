// The compiler itself, in-process through the library API (dist/): one
// iteration is what `modelc compile <spec>` does in memory, writing no file:
//
//   lowerFile(spec) -> materialize(graph, seed 0) -> default -O pipeline
//     -> generateInferenceModule (ts-morph, prettier; weights embedded; the .ts only, as the command's default --emit ts)
const t0 = performance.now();
const lib = await import('../dist/index.js');
const importMs = performance.now() - t0;

import { serve } from './worker.js';

/** @type {import('./common.js').Job | undefined} */
let job;

async function compileOnce() {
  if (!job?.specPath) throw new Error('no case prepared');
  const compiled = lib.lowerFile(job.specPath);
  const weighted = lib.materialize(compiled.graph, 0);
  const optimized = lib.createPassManager().run(weighted, lib.defaultPipeline);
  const mod = await lib.generateInferenceModule(optimized, { name: weighted.name, source: job.specPath, passes: lib.defaultPipeline, emit: 'ts' });
  return mod.ts.length;
}

serve({
  async init() {
    return { available: true, info: { importMs } };
  },
  async prepare(j) {
    job = j;
  },
  async check() {
    const t = performance.now();
    const length = await compileOnce();
    const ms = performance.now() - t;
    if (!(length > 0)) throw new Error('the generated module is empty');
    return { first: ms };
  },
  step: compileOnce,
  async release() {
    job = undefined;
  },
});
