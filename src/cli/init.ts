/**
 * `modelc init <spec> --seed N -o w.safetensors`: every parameter sampled from
 * its Keras initializer with the documented PCG32 streams (one per parameter
 * name), written as safetensors with Keras weight names and layouts.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { fail } from '../diagnostics/diagnostic.js';
import { writeSafetensors } from '../formats/safetensors.js';
import { loadSpecAsync, lowerLoaded } from '../frontend/load.js';
import { warned, type Stderr } from './warnings.js';
import { materialize } from '../ops/init.js';
import { writeFileAtomic } from '../util/fs.js';
import { extractWeights } from '../weights/attach.js';
import { seedValue } from './options.js';
import { declare } from './commands.js';

export async function initCommand(path: string, opts: { seed: string; output: string }, stderr: Stderr = () => {}): Promise<string> {
  const seed = Number(opts.seed);
  if (!Number.isSafeInteger(seed)) fail('weights', `--seed must be an integer, got '${opts.seed}'`);
  // initial weights: a TF.js or Keras model's own weights are left out
  const graph = materialize(lowerLoaded({ ...warned(await loadSpecAsync(path), stderr), weights: undefined, saved: undefined }).graph, seed);
  const bytes = writeSafetensors(extractWeights(graph), { 'modelc.model': graph.name, 'modelc.seed': String(seed) });
  writeFileAtomic(opts.output, bytes);
  return opts.output;
}

export function registerInit(program: Command, io: { stdout: (t: string) => void; stderr: Stderr }): void {
  declare(program, 'init')
    .addOption(new Option('--seed <n>', 'seed for the initializers').default('0').argParser(seedValue))
    .requiredOption('-o, --output <file>', 'the safetensors file to write')
    .action(async (path: string, opts: { seed: string; output: string }) => {
      io.stdout((await initCommand(path, opts, io.stderr)) + '\n');
    });
}
