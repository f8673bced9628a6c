/**
 * `modelc import`: a TF.js LayersModel (model.json and its weight shards) ->
 * `<dir>/<name>.json` (the spec, in canonical form) and
 * `<dir>/<name>.safetensors` (its weights, `<layer>/<param>`). The import is
 * lowered and its weights attached before anything is written, so what is
 * written always loads back; files are written all or nothing.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../diagnostics/diagnostic.js';
import { writeSafetensors } from '../formats/safetensors.js';
import { printJsonSpec } from '../frontend/json.js';
import { loadSpec, lowerLoaded } from '../frontend/load.js';
import { writeFilesAtomic } from '../util/fs.js';
import { extractWeights } from '../weights/attach.js';
import { fileStem } from './compile.js';

export interface ImportOptions {
  output: string;
  name?: string;
}

/** Imports `path`; returns the paths written, in order. */
export function importCommand(path: string, opts: ImportOptions): string[] {
  if (opts.name !== undefined && (opts.name !== fileStem(opts.name) || opts.name.length > 200)) {
    fail('io', `--name '${opts.name}' is not a plain file name: use letters, digits, '_', '-' and '.'`);
  }
  const loaded = loadSpec(path);
  if (loaded.format !== 'tfjs') {
    fail('import', 'not a TF.js model.json (a JSON object with "modelTopology"); specs need no import', undefined, path);
  }
  const { graph } = lowerLoaded(loaded);
  const name = opts.name ?? fileStem(loaded.spec.name);
  const files: [string, string | Uint8Array][] = [[`${name}.json`, printJsonSpec(loaded.spec)]];
  if (loaded.weights) files.push([`${name}.safetensors`, writeSafetensors(extractWeights(graph))]);
  try {
    mkdirSync(opts.output, { recursive: true });
  } catch (err) {
    fail('io', `cannot create the output directory: ${(err as Error).message}`, undefined, opts.output);
  }
  const targets = files.map(([file, data]) => [join(opts.output, file), data] as const);
  writeFilesAtomic(targets);
  return targets.map(([target]) => target);
}
