/**
 * Loads a generated inference module the way a user would: the emitted
 * JavaScript written to a file and imported.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The contract every generated inference module exports. */
export interface InferenceModule {
  readonly inputs: ReadonlyArray<{ name: string; shape: readonly number[] }>;
  readonly outputs: ReadonlyArray<{ name: string; shape: readonly number[] }>;
  readonly Model: new (weights?: Uint8Array) => {
    predict(x: Float32Array, batchSize: number): Float32Array;
    run(feeds: Record<string, Float32Array>, batchSize: number): Record<string, Float32Array>;
  };
  readonly predict?: (x: Float32Array, batchSize: number) => Float32Array;
}

let counter = 0;

/** Writes `js` to a fresh temporary `.mjs` file and imports it. */
export async function importModule<T = InferenceModule>(js: string, name = 'model'): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'modelc-gen-'));
  const file = join(dir, `${name}-${counter++}.mjs`);
  writeFileSync(file, js);
  return (await import(pathToFileURL(file).href)) as T;
}
