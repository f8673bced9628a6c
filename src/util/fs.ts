/**
 * File I/O with modelc's guarantees: read errors become diagnostics naming
 * the path, and writes are atomic (a temp file in the target's directory,
 * then a rename), so a failure never leaves a half-written output.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fail } from '../diagnostics/diagnostic.js';
import { SourceFile } from '../diagnostics/source.js';

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EISDIR':
      return 'is a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a parent of the path is not a directory';
    default:
      return (err as Error).message ?? String(err);
  }
}

export function readSource(path: string): SourceFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return fail('io', `cannot read file: ${reason(err)}`, undefined, path);
  }
  return new SourceFile(path, text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    fail('io', `cannot write file: ${reason(err)}`, undefined, path);
  }
}

/**
 * Writes several files all or nothing: every file goes to a temp file first;
 * only when all are written are they renamed into place. If a rename fails,
 * the files already renamed that did not exist before are removed again (a
 * file that existed before and was already replaced keeps its new content).
 */
export function writeFilesAtomic(files: readonly (readonly [string, string | Uint8Array])[]): void {
  const temps: string[] = [];
  const cleanup = () => temps.forEach((t) => rmSync(t, { force: true }));
  for (const [path, data] of files) {
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    try {
      writeFileSync(tmp, data);
      temps.push(tmp);
    } catch (err) {
      cleanup();
      fail('io', `cannot write file: ${reason(err)}`, undefined, path);
    }
  }
  const created: string[] = [];
  files.forEach(([path], i) => {
    const existed = existsSync(path);
    try {
      renameSync(temps[i]!, path);
      if (!existed) created.push(path);
    } catch (err) {
      cleanup();
      for (const c of created) rmSync(c, { force: true });
      fail('io', `cannot write file: ${reason(err)}`, undefined, path);
    }
  });
}

/** Creates `dir` if needed and writes `files` (names inside it) all or nothing; returns their paths. */
export function writeIntoDirectory(dir: string, files: readonly (readonly [string, string | Uint8Array])[]): string[] {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    fail('io', `cannot create the output directory: ${reason(err)}`, undefined, dir);
  }
  const targets = files.map(([file, data]) => [join(dir, file), data] as const);
  writeFilesAtomic(targets);
  return targets.map(([target]) => target);
}
