/**
 * `modelc import`: a TF.js LayersModel (model.json and its weight shards) or
 * a Keras model (a `.keras` archive, a legacy `.h5` file, or a JSON model
 * config without weights) ->
 * `<dir>/<name>.json` (the spec, in canonical form) and
 * `<dir>/<name>.safetensors` (its weights, `<layer>/<param>`). The import is
 * lowered and its weights attached before anything is written, so what is
 * written always loads back; files are written all or nothing.
 */
import { Option, type Command } from 'commander';
import { checkFileStem, fileStem } from '../compile/index.js';
import { fail } from '../diagnostics/diagnostic.js';
import { writeSafetensors } from '../formats/safetensors.js';
import { printJsonSpec } from '../frontend/json.js';
import { loadSpecAsync, lowerLoaded } from '../frontend/load.js';
import { warned, type Stderr } from './warnings.js';
import { writeIntoDirectory } from '../util/fs.js';
import { extractWeights } from '../weights/attach.js';
import { declare } from './commands.js';
import type { CliContext } from './context.js';
import { allowNonfiniteOption } from './optimize.js';
import { fileStemValue } from './options.js';

export interface ImportOptions {
  output: string;
  name?: string;
  /** --allow-nonfinite: accept NaN and infinite weight values. */
  allowNonfinite?: boolean;
}

/** Imports `path`; returns the paths written, in order. */
export async function importCommand(path: string, opts: ImportOptions, stderr: Stderr = () => {}): Promise<string[]> {
  if (opts.name !== undefined) checkFileStem(opts.name, '--name');
  const loaded = warned(await loadSpecAsync(path), stderr);
  if (loaded.format !== 'tfjs' && loaded.format !== 'keras') {
    fail('import', 'not a TF.js model.json (a JSON object with "modelTopology") or a Keras model (.keras, .h5, or a Keras model config); specs need no import', undefined, path);
  }
  const { graph } = lowerLoaded(loaded, { allowNonfinite: opts.allowNonfinite ?? false });
  const name = opts.name ?? fileStem(loaded.spec.name);
  const files: [string, string | Uint8Array][] = [[`${name}.json`, printJsonSpec(loaded.spec)]];
  if (loaded.weights || loaded.saved) files.push([`${name}.safetensors`, writeSafetensors(extractWeights(graph))]);
  return writeIntoDirectory(opts.output, files);
}

export function registerImport(program: Command, { io }: CliContext): void {
  declare(program, 'import')
    .requiredOption('-o, --output <dir>', 'output directory (created if missing)')
    .addOption(new Option('--name <id>', 'file name of <name>.json and <name>.safetensors (default: the model name)').argParser(fileStemValue))
    .addOption(allowNonfiniteOption())
    .action(async (path: string, opts: ImportOptions) => {
      for (const file of await importCommand(path, opts, io.stderr)) io.stdout(file + '\n');
    });
}
