/**
 * Every file modelc writes goes through here, with these guarantees:
 *
 * - The target is looked at first (`lstat`). A missing path or a regular file
 *   is written to a temp file in the same folder (created exclusively, so a
 *   planted link at the temp name is never followed), then renamed over it: a
 *   failure never leaves a half-written output, and an existing file keeps
 *   its permission bits.
 * - A character device (`/dev/null`, a terminal, or a link to one such as
 *   `/dev/stdout` on a terminal) is written in place: no temp file, no rename.
 * - Anything else (a directory, a FIFO, a socket, a block device, a symbolic
 *   link to anything but a character device) is refused with a message that
 *   says what it is, and left untouched.
 * - A temp file is removed on every failure (a write error, a full disk, a
 *   read-only file system) and, through `removeTempFiles` (the CLI's signal
 *   handlers, and an `exit` hook), when the process ends early.
 *
 * The writes are synchronous: a signal arriving while files are written is
 * handled once the whole set has been committed or rolled back.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { fail, ModelcError } from '../diagnostics/diagnostic.js';
import { errnoCode, reason } from './errors.js';

export type FileData = string | Uint8Array;

/** How a target is written: by a temp file and a rename (recording whether it existed and its mode), or in place. */
type Plan = { readonly how: 'rename'; readonly existed: boolean; readonly mode?: number } | { readonly how: 'in-place' };

/** Temp files that exist right now, removed by `removeTempFiles`. */
const live = new Set<string>();
let exitHooked = false;

/** Removes every temp file a write in progress has made (for signal handlers and early exits). */
export function removeTempFiles(): void {
  for (const tmp of live) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // nothing more can be done on the way out
    }
  }
  live.clear();
}

function track(tmp: string): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', removeTempFiles);
  }
  live.add(tmp);
}

function discard(tmp: string): void {
  live.delete(tmp);
  fs.rmSync(tmp, { force: true });
}

/** What a file system object is, for messages. */
export function kindOf(st: fs.Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isCharacterDevice()) return 'a character device';
  return 'not a regular file';
}

function cannotWrite(path: string, err: unknown): never {
  if (err instanceof ModelcError) throw err;
  return fail('io', `cannot write file: ${reason(err)}`, undefined, path);
}

function refuse(path: string, what: string): never {
  return fail('io', `cannot write file: it is ${what}; only a missing or regular file is replaced (a character device such as /dev/null is written in place), so it was left untouched`, undefined, path);
}

/** How `path` is written, by what is there now; refuses a target that must not be replaced. */
function planFor(path: string): Plan {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { how: 'rename', existed: false };
    return cannotWrite(path, err);
  }
  if (st.isFile()) return { how: 'rename', existed: true, mode: st.mode & 0o7777 };
  if (st.isCharacterDevice()) return { how: 'in-place' };
  if (!st.isSymbolicLink()) return refuse(path, kindOf(st));
  let to = '?';
  try {
    to = fs.readlinkSync(path);
  } catch {
    // described without its target
  }
  let final: fs.Stats | undefined;
  try {
    final = fs.statSync(path);
  } catch {
    // a dangling link
  }
  if (final?.isCharacterDevice()) return { how: 'in-place' };
  return refuse(path, `a symbolic link to '${to}' (${final ? kindOf(final) : 'which does not exist'})`);
}

function writeAll(fd: number, data: FileData): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let offset = 0;
  while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
}

/** Writes `data` to a new temp file beside `path`; returns the temp file's path. */
function writeTemp(path: string, data: FileData, mode: number | undefined): string {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o666);
    track(tmp);
    writeAll(fd, data);
    if (mode !== undefined) fs.fchmodSync(fd, mode);
    fs.closeSync(fd);
    return tmp;
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing
      }
      discard(tmp);
    }
    return cannotWrite(path, err);
  }
}

/** Writes a character device in place: opened without creating or truncating, and checked again once open. */
function writeInPlace(path: string, data: FileData): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_NOCTTY);
    const st = fs.fstatSync(fd);
    if (!st.isCharacterDevice()) refuse(path, `${kindOf(st)} now`);
    writeAll(fd, data);
  } catch (err) {
    cannotWrite(path, err);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes one file atomically (see the module comment). */
export function writeFileAtomic(path: string, data: FileData): void {
  writeFilesAtomic([[path, data]]);
}

/**
 * Writes several files all or nothing: every target is checked first (one
 * that must not be replaced stops the whole write before anything is
 * touched), then each file goes to a temp file; only when all are written are
 * they renamed into place. If a rename fails, the files already renamed that
 * did not exist before are removed again (a file that existed before and was
 * already replaced keeps its new content; a character device written in place
 * stays written).
 */
export function writeFilesAtomic(files: readonly (readonly [string, FileData])[]): void {
  const plans = files.map(([path]) => planFor(path));
  const temps = new Map<number, string>();
  const cleanup = () => temps.forEach((tmp) => discard(tmp));
  try {
    files.forEach(([path, data], i) => {
      const plan = plans[i]!;
      if (plan.how === 'rename') temps.set(i, writeTemp(path, data, plan.mode));
    });
  } catch (err) {
    cleanup();
    throw err;
  }
  const created: string[] = [];
  files.forEach(([path, data], i) => {
    try {
      if (plans[i]!.how === 'in-place') return writeInPlace(path, data);
      // looked at again right before the rename: it must still be missing or a regular file
      const now = planFor(path);
      if (now.how !== 'rename') refuse(path, 'a character device now');
      fs.renameSync(temps.get(i)!, path);
      live.delete(temps.get(i)!);
      temps.delete(i);
      if (!now.existed) created.push(path);
    } catch (err) {
      cleanup();
      for (const c of created) fs.rmSync(c, { force: true });
      cannotWrite(path, err);
    }
  });
}

function cannotCreate(dir: string, why: string): never {
  return fail('io', `cannot create the output directory: ${why}`, undefined, dir);
}

/**
 * The folders of `dir` that do not exist yet, outermost first, and the
 * nearest one that does; fails when something that is not a folder is in the
 * way (naming it) or a folder cannot be looked at.
 */
function missingFolders(dir: string): { existing: string; missing: string[] } {
  const missing: string[] = [];
  for (let folder = dir; ; folder = dirname(folder)) {
    let st: fs.Stats;
    try {
      st = fs.statSync(folder);
    } catch (err) {
      const code = errnoCode(err);
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dirname(folder) !== folder) {
        missing.unshift(folder);
        continue;
      }
      return cannotCreate(dir, reason(err));
    }
    if (!st.isDirectory()) cannotCreate(dir, folder === dir ? `it is ${kindOf(st)}` : `'${folder}' is ${kindOf(st)}, not a directory`);
    return { existing: folder, missing };
  }
}

/**
 * Creates `dir` and its missing parents one at a time (a recursive mkdir
 * reports a read-only file system as "no such file or directory"); returns
 * the folders it made, outermost first.
 */
function makeDirectory(dir: string): string[] {
  const made: string[] = [];
  for (const folder of missingFolders(dir).missing) {
    try {
      fs.mkdirSync(folder);
      made.push(folder);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST' && fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory()) continue;
      removeFolders(made);
      cannotCreate(dir, errnoCode(err) === 'EEXIST' ? `something that is not a directory is in the way at '${folder}'` : reason(err));
    }
  }
  return made;
}

/** Removes folders this write made, innermost first, if they are (still) empty. */
function removeFolders(made: readonly string[]): void {
  for (const folder of [...made].reverse()) {
    try {
      fs.rmdirSync(folder);
    } catch {
      // not empty: something else wrote into it meanwhile
    }
  }
}

/**
 * Creates `dir` if needed and writes `files` (names inside it) all or
 * nothing; returns their paths. Folders it created are removed again when the
 * write fails.
 */
export function writeIntoDirectory(dir: string, files: readonly (readonly [string, FileData])[]): string[] {
  const made = makeDirectory(dir);
  const targets = files.map(([file, data]) => [join(dir, file), data] as const);
  try {
    writeFilesAtomic(targets);
  } catch (err) {
    removeFolders(made);
    throw err;
  }
  return targets.map(([target]) => target);
}

/**
 * Checks, without writing anything, that `writeIntoDirectory(dir, names...)`
 * can succeed: `dir`, or else the nearest existing folder above it, is a
 * folder this process may write into, and none of `names` inside `dir` is
 * something a write would refuse. For commands whose work comes before their
 * output (`train`), so that a bad `-o` fails before the work, not after it.
 */
export function checkOutputDirectory(dir: string, names: readonly string[]): void {
  const { existing } = missingFolders(dir);
  try {
    fs.accessSync(existing, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    if (existing === dir) fail('io', `cannot write into the output directory: ${reason(err)}`, undefined, dir);
    cannotCreate(dir, `${reason(err)} (in '${existing}')`);
  }
  if (existing === dir) for (const name of names) planFor(join(dir, name));
}
