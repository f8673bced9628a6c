/**
 * Loads a generated inference module the way a user would: the emitted
 * JavaScript written to a file and imported.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

const tsc = fileURLToPath(new URL('../../node_modules/.bin/tsc', import.meta.url));

/**
 * Type-checks the files (names relative to `dir`) in one tsc run under the
 * flags generated code promises to be clean for: --strict
 * --noUncheckedIndexedAccess --noUnusedLocals --noUnusedParameters. Returns
 * tsc's output ('' when every file is clean).
 */
export function strictTypecheck(dir: string, files: readonly string[]): string {
  try {
    execFileSync(tsc, [
      '--strict', '--noUncheckedIndexedAccess', '--noUnusedLocals', '--noUnusedParameters',
      '--target', 'es2022', '--module', 'esnext', '--lib', 'es2022', '--types', '', '--noEmit', ...files,
    ], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message;
  }
}
