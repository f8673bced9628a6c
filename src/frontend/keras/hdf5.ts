/**
 * Read-only access to an HDF5 file held in memory, through h5wasm (the HDF5
 * C library compiled to WebAssembly).
 *
 * h5wasm is loaded on first use (`await import`), so commands that never
 * read a Keras file do not pay for its 4 MB module. The ESM build is used,
 * not `h5wasm/node`: the Node build opens real paths (NODERAWFS), while the
 * ESM build keeps an in-memory file system, so modelc hands it the bytes it
 * read itself and h5wasm never opens a user path. HDF5's own error stack is
 * turned into one short `import` diagnostic naming the file.
 */
import { fail, ModelcError } from '../../diagnostics/diagnostic.js';

type H5wasm = typeof import('h5wasm');

/** A dataset's shape, its element type as Keras users know it (`float32`, `float16`, `int64`, ...) and a reader. */
export interface Hdf5Dataset {
  readonly shape: readonly number[];
  readonly dtype: string;
  /** The values, row-major; only for little-endian float32 (undefined otherwise). */
  readFloat32(): Float32Array | undefined;
}

/** The parts of an HDF5 file modelc reads: groups, attributes and datasets, by path from the root. */
export interface Hdf5Reader {
  /** The names of a group's members (sorted as HDF5 lists them), or undefined when `path` is not a group. */
  keys(path: string): string[] | undefined;
  /** Every path in the file (`layers`, `layers/dense`, `layers/dense/vars`, ...), in one call: faster than walking with `keys`. */
  paths(): string[];
  /** An attribute's value (a string, a list of strings, a number or a typed array), or undefined when absent. */
  attr(path: string, name: string): unknown;
  /** The dataset at `path`, or undefined when there is none. */
  dataset(path: string): Hdf5Dataset | undefined;
}

let loading: Promise<H5wasm> | undefined;

async function h5wasm(): Promise<H5wasm> {
  loading ??= (async () => {
    const h5 = await import('h5wasm');
    const module = await h5.ready;
    // HDF5 errors become exceptions instead of a trace printed to stderr.
    module.activate_throwing_error_handler();
    return h5;
  })();
  return loading;
}

let counter = 0;

/**
 * Opens `bytes` as HDF5 and runs `use` on it; `what` names the file in
 * messages (`model.keras:model.weights.h5`). The in-memory copy is removed
 * afterwards.
 */
export async function withHdf5<T>(bytes: Uint8Array, what: string, use: (h5: Hdf5Reader) => T): Promise<T> {
  const h5 = await h5wasm();
  const name = `/modelc-${process.pid}-${counter++}.h5`;
  h5.FS!.writeFile(name, bytes);
  let file: InstanceType<H5wasm['File']> | undefined;
  try {
    file = new h5.File(name, 'r');
    return use(reader(h5, file));
  } catch (err) {
    if (err instanceof ModelcError) throw err;
    return fail('import', `not a readable HDF5 file: ${hdf5Reason(err)}`, undefined, what);
  } finally {
    file?.close();
    h5.FS!.unlink(name);
  }
}

function reader(h5: H5wasm, file: InstanceType<H5wasm['File']>): Hdf5Reader {
  const entity = (path: string) => (path === '' || path === '/' ? file : file.get(path));
  return {
    keys(path) {
      const e = entity(path);
      return e instanceof h5.Group ? e.keys() : undefined;
    },
    paths: () => file.paths(),
    attr(path, name) {
      const e = entity(path);
      if (!(e instanceof h5.Group || e instanceof h5.Dataset)) return undefined;
      return Object.hasOwn(e.attrs, name) ? e.get_attribute(name, false) : undefined;
    },
    dataset(path) {
      const e = entity(path);
      if (!(e instanceof h5.Dataset)) return undefined;
      const dtype = dtypeName(e.dtype);
      return {
        shape: e.shape ?? [],
        dtype,
        readFloat32: () => {
          if (dtype !== 'float32') return undefined;
          const v = e.value;
          return v instanceof Float32Array ? v : undefined;
        },
      };
    },
  };
}

/** NumPy's name for an h5wasm dtype string (`<f` is float32); other types keep h5wasm's description. */
function dtypeName(dtype: unknown): string {
  if (typeof dtype !== 'string') return 'compound';
  const m = /^([<>])([efdbBhHiIqQ])$/.exec(dtype);
  if (!m) return dtype.startsWith('S') || dtype.startsWith('A') ? 'string' : dtype;
  const names: Record<string, string> = {
    e: 'float16', f: 'float32', d: 'float64', b: 'int8', B: 'uint8', h: 'int16', H: 'uint16', i: 'int32', I: 'uint32', q: 'int64', Q: 'uint64',
  };
  const name = names[m[2]!]!;
  return m[1] === '>' && m[2] !== 'b' && m[2] !== 'B' ? `big-endian ${name}` : name;
}

/** The innermost description in HDF5's error stack (`file signature not found`), or the error's first line. */
function hdf5Reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const frames = [...text.matchAll(/#\d+: .*? in [\w.]+\(\): (.+)$/gm)];
  const last = frames[frames.length - 1];
  return (last ? last[1]! : text.split('\n')[0]!).trim();
}
