/**
 * File I/O with modelc's guarantees: read errors become diagnostics naming
 * the path. Writes live in `write.ts` (atomic, refusing targets that are not
 * regular files) and are re-exported here, so `util/fs.js` stays the one
 * import for both.
 *
 * Every file modelc reads goes through `readRegularFile`: the path is opened
 * without blocking (a FIFO with no writer cannot hang the open), the open
 * descriptor is checked to be a regular file (so a path swapped after a
 * check cannot slip a device past it), its size is checked against a cap for
 * what it is read as, and exactly that many bytes are read (a file that grows
 * meanwhile cannot make the read unbounded). Paths named inside a file (TF.js
 * weight shards) go through `resolveInside` first: they must stay, symbolic
 * links resolved, in the folder of the file that names them.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import { constants as bufferLimits } from 'node:buffer';
import { dirname, isAbsolute, join, relative, resolve, sep, win32 } from 'node:path';
import { fail, ModelcError } from '../diagnostics/diagnostic.js';
import { SourceFile } from '../diagnostics/source.js';
import { errnoCode, reason } from './errors.js';
import { kindOf } from './write.js';

export * from './write.js';
export { reason } from './errors.js';

/** What a file is read as; each kind has its own size cap (`readCaps`). */
export type ReadKind = 'spec' | 'csv' | 'shard' | 'safetensors' | 'npy' | 'keras' | 'h5';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/**
 * The largest file of each kind modelc reads, in bytes, and its name in the
 * message. Text kinds stay below the longest string V8 can hold; `.keras`
 * and `.h5` files are opened inside h5wasm's WebAssembly memory (2 GiB at
 * most); every cap is also clipped to the largest buffer this Node can
 * allocate (4 GiB on Node 20).
 */
export const readCaps: Readonly<Record<ReadKind, { readonly bytes: number; readonly what: string }>> = {
  spec: { bytes: 256 * MiB, what: 'a spec or model.json' },
  csv: { bytes: Math.min(512 * MiB, bufferLimits.MAX_STRING_LENGTH), what: 'a CSV file' },
  shard: { bytes: 4 * GiB, what: 'a weight shard' },
  safetensors: { bytes: 16 * GiB, what: 'a safetensors file' },
  npy: { bytes: 16 * GiB, what: 'a .npy file' },
  keras: { bytes: 2 * GiB, what: 'a .keras file' },
  h5: { bytes: 2 * GiB, what: 'an .h5 file' },
};

/** The cap that applies here: the kind's, or the largest buffer Node can allocate if that is smaller. */
export function readCap(kind: ReadKind): number {
  return Math.min(readCaps[kind].bytes, bufferLimits.MAX_LENGTH);
}

export interface ReadOptions {
  /** Names the file in the message: `cannot read <label>: <reason>` (default `file`). */
  readonly label?: string;
  /** The path the diagnostic names (default: the path read), e.g. the path as the user wrote it. */
  readonly shownAs?: string;
  /** Refuse a symbolic link as the last component (for a path `resolveInside` already resolved). */
  readonly noFollow?: boolean;
}

/** A byte count for a message: `300 MB (314572800 bytes)`. */
function sizeText(bytes: number): string {
  const units: [number, string][] = [[GiB, 'GiB'], [MiB, 'MiB'], [1024, 'KiB']];
  const [unit, name] = units.find(([u]) => bytes >= u) ?? [1, ''];
  return unit === 1 ? `${bytes} bytes` : `${+(bytes / unit).toFixed(1)} ${name} (${bytes} bytes)`;
}

/** Why opening or reading for input failed, with the cases `reason` does not word for reading. */
function readReason(err: unknown, noFollow: boolean): string {
  const code = errnoCode(err);
  if (code === 'ENXIO') return 'it is a socket or a device that is not there, not a regular file';
  if (code === 'ELOOP' && noFollow) return 'it is a symbolic link (it changed while being read)';
  if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return 'it is not a regular file (reading it would block)';
  if (code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_INVALID_ARG_TYPE') return 'the path contains a NUL character';
  return reason(err);
}

/** `it is a FIFO (named pipe), not a regular file`, or undefined for a regular file. */
function notRegular(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  const kind = kindOf(st);
  return kind === 'a directory' ? 'is a directory' : kind === 'not a regular file' ? 'it is not a regular file' : `it is ${kind}, not a regular file`;
}

/**
 * The bytes of the regular file at `path`, read as `kind` (its size cap), or
 * an `io` diagnostic naming the path: it does not exist, is not readable,
 * is a directory, a FIFO, a device or a socket (refused without reading), or
 * is larger than the cap (refused without reading). `kind` may be chosen
 * from the file's first 8 bytes (a spec that may be a Keras file).
 */
export function readRegularFile(path: string, kind: ReadKind | ((head: Uint8Array) => ReadKind), opts: ReadOptions = {}): Uint8Array {
  const shown = opts.shownAs ?? path;
  const refuse = (why: string): never => fail('io', `cannot read ${opts.label ?? 'file'}: ${why}`, undefined, shown);
  let fd: number;
  try {
    // a first look before opening: a device is refused without being opened at all
    const why = notRegular(opts.noFollow ? lstatSync(path) : statSync(path));
    if (why) refuse(why);
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (opts.noFollow ? constants.O_NOFOLLOW : 0));
  } catch (err) {
    if (err instanceof ModelcError) throw err;
    return refuse(readReason(err, opts.noFollow === true));
  }
  try {
    // the descriptor is what is read: checked after the open, a path swapped meanwhile cannot slip past
    const st = fstatSync(fd);
    const why = notRegular(st);
    if (why) refuse(why);
    const size = st.size;
    let k: ReadKind;
    if (typeof kind === 'function') {
      const head = new Uint8Array(Math.min(8, size));
      readFully(fd, head);
      k = kind(head);
    } else k = kind;
    const cap = readCap(k);
    if (size > cap) refuse(`it is ${sizeText(size)}, more than the ${sizeText(cap)} modelc reads as ${readCaps[k].what}`);
    const bytes = Buffer.allocUnsafe(size);
    const got = readFully(fd, bytes);
    return got === size ? bytes : bytes.subarray(0, got);
  } catch (err) {
    if (err instanceof ModelcError) throw err;
    return refuse(readReason(err, opts.noFollow === true));
  } finally {
    closeSync(fd);
  }
}

/** Fills `into` from the start of the file, in pieces below readSync's 2 GiB limit; the bytes read (fewer if the file shrank). */
function readFully(fd: number, into: Uint8Array): number {
  let at = 0;
  while (at < into.length) {
    const n = readSync(fd, into, at, Math.min(into.length - at, GiB), at);
    if (n === 0) break;
    at += n;
  }
  return at;
}

/** A text file (a spec, a CSV file) as a source; a UTF-8 byte order mark is dropped. */
export function readSource(path: string, kind: ReadKind = 'spec'): SourceFile {
  const bytes = readRegularFile(path, kind);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  return new SourceFile(path, text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
}

export interface InsideOptions {
  /** What the name is, in messages (`weight shard`; default `file`). */
  readonly what?: string;
  /** Reports a refusal, e.g. located at the name in the naming file; default: an `io` diagnostic naming the naming file. */
  readonly refuse?: (message: string) => never;
}

/**
 * The real path of `name`, a path written inside `namingFile` (a TF.js shard
 * in model.json), relative to that file's folder. Refused, without reading or
 * stat-ing the target beyond resolving it: an absolute path, a name with a NUL
 * character, and a name whose real path (symbolic links resolved) is outside
 * the folder of `namingFile`. A name that does not exist yet resolves as far
 * as it exists; reading it then says it is missing.
 */
export function resolveInside(namingFile: string, name: string, opts: InsideOptions = {}): string {
  const what = opts.what ?? 'file';
  const refuse = opts.refuse ?? ((message: string): never => fail('io', message, undefined, namingFile));
  const rule = `a file named in ${namingFile} must be inside its folder, written relative to it`;
  if (name.includes('\0')) refuse(`${what} '${name.replace(/\0/g, '\\0')}' contains a NUL character`);
  if (isAbsolute(name) || win32.isAbsolute(name)) refuse(`${what} '${name}' is an absolute path: ${rule}`);
  const dir = dirname(namingFile);
  const lexical = resolve(dir, name);
  if (!within(resolve(dir), lexical)) refuse(`${what} '${name}' is outside the folder of ${namingFile}: ${rule}`);
  let realDir: string;
  let real: string;
  try {
    realDir = realpathSync.native(dir);
    real = realPrefix(lexical);
  } catch (err) {
    return refuse(`${what} '${name}' named in ${namingFile} cannot be resolved: ${reason(err)}`);
  }
  if (!within(realDir, real)) refuse(`${what} '${name}' is outside the folder of ${namingFile} (through a symbolic link): ${rule}`);
  return real;
}

/** `path` is `dir` or below it (both absolute, resolved). */
function within(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * The real path of `path`, or, when it does not exist, the real path of its
 * deepest existing ancestor joined with the rest; throws when resolving fails
 * otherwise (a loop of symbolic links, no permission).
 */
function realPrefix(path: string): string {
  const rest: string[] = [];
  for (let at = path; ; ) {
    try {
      return join(realpathSync.native(at), ...rest.reverse());
    } catch (err) {
      const code = errnoCode(err);
      const up = dirname(at);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || up === at) throw err;
      rest.push(at.slice(up.length).replace(/^[\\/]+/, ''));
      at = up;
    }
  }
}
