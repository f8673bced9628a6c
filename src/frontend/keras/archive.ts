/**
 * Reading the files Keras saves a model to: a Keras 3 `.keras` archive (a
 * zip of config.json, metadata.json and model.weights.h5) or a legacy `.h5`
 * (HDF5 with a `model_config` attribute and a `model_weights` group), told
 * apart by their bytes, not their names.
 *
 * What comes out is the model config as a SourceFile, named so that
 * diagnostics point into the archive (`model.keras:config.json:1:2345`, or
 * `model.h5:model_config:...`), and every saved variable, grouped by the
 * Keras layer that saved it, in the order Keras saved them. Which modelc
 * parameter each variable is decided after lowering (`weights.ts`).
 *
 * Where Keras 3 puts a layer's variables: `layers/<key>/vars/0, 1, ...`,
 * where `<key>` is the snake-cased class name made unique within its list
 * (`dense`, `dense_1`; Keras's saving_lib does not use layer names, which
 * may differ between two builds of one model), nested models one level
 * deeper (`layers/sequential/layers/dense/vars`). Keras 3.x also writes the
 * layer's name as an attribute of `vars`; that is used when present, the
 * structure from config.json otherwise. Legacy files list their layer groups
 * in `layer_names` and each group's datasets in `weight_names`.
 */
import { unzipSync } from 'fflate';
import { fail, q } from '../../diagnostics/diagnostic.js';
import { SourceFile } from '../../diagnostics/source.js';
import { tooDeepAt } from '../json.js';
import { readCap, readCaps, type ReadKind } from '../../util/fs.js';
import { withHdf5, type Hdf5Reader } from './hdf5.js';

export type KerasFileKind = 'keras' | 'h5';

/** A `.keras` archive starts as every zip does; an HDF5 file with its 8-byte signature. */
export function kerasFileKind(bytes: Uint8Array): KerasFileKind | undefined {
  const starts = (sig: readonly number[]) => sig.every((b, i) => bytes[i] === b);
  if (starts([0x50, 0x4b, 0x03, 0x04])) return 'keras';
  if (starts([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])) return 'h5';
  return undefined;
}

/** One variable as the file stores it. */
export interface SavedVariable {
  /** Its HDF5 path (`layers/dense/vars/1`), named in messages. */
  readonly where: string;
  /** Its name in the file: the index in a `.keras` archive, the weight name (`seq/d1/kernel`) in a legacy file. */
  readonly name: string;
  readonly shape: readonly number[];
  /** NumPy's name of its element type (`float32`, `float16`, `int64`, ...). */
  readonly dtype: string;
  /** The values, row-major; present only for float32 variables. */
  readonly data?: Float32Array;
}

/** The variables one Keras layer (or, in a legacy file, one top-level layer group) saved, in Keras's order. */
export interface SavedGroup {
  /** The Keras layer's name. */
  readonly owner: string;
  /** In a `.keras` archive: the Keras layer names from the outermost model's layer down to this one (nested models). */
  readonly path?: readonly string[];
  /** The HDF5 group (`layers/dense/vars`), named in messages. */
  readonly where: string;
  readonly variables: readonly SavedVariable[];
}

export interface SavedWeights {
  /** The weights file, as messages name it: `model.keras:model.weights.h5`, or the `.h5` path. */
  readonly file: string;
  /** Whether the variables are addressed by index (`.keras`) or by weight name (legacy `.h5`). */
  readonly kind: KerasFileKind;
  readonly groups: readonly SavedGroup[];
}

export interface KerasFile {
  readonly kind: KerasFileKind;
  /** The Keras model config (`{"class_name": ..., "config": ...}`). */
  readonly config: SourceFile;
  /** The Keras version that saved the file (metadata.json's, or the `.h5` file's `keras_version`), when it says. */
  readonly kerasVersion?: string;
  readonly weights: SavedWeights;
}

/** Reads a `.keras` or legacy `.h5` file's config and weights; `path` names it in messages. */
export async function readKerasFile(path: string, bytes: Uint8Array): Promise<KerasFile> {
  const kind = kerasFileKind(bytes);
  if (kind === 'keras') return readArchive(path, bytes);
  if (kind === 'h5') return readLegacy(path, bytes);
  return fail('import', 'not a Keras file: a .keras archive is a zip, a legacy .h5 file is HDF5, and this is neither', undefined, path);
}

const decoder = new TextDecoder('utf-8', { fatal: false });
const text = (bytes: Uint8Array) => {
  const s = decoder.decode(bytes);
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
};

/**
 * The entries of a .keras archive that modelc reads, and the largest size
 * each may inflate to: the caps of the same content read as a file (a
 * config as a spec, the weights as an .h5 file). The size is the one the zip
 * declares, checked before anything is inflated (a zip bomb is refused
 * without being expanded); an entry that inflates past its declared size is
 * cut there and then fails to parse.
 */
const archiveEntries: Readonly<Record<string, ReadKind>> = {
  'config.json': 'spec',
  'metadata.json': 'spec',
  'model.weights.json': 'spec',
  'model.weights.h5': 'h5',
};

async function readArchive(path: string, bytes: Uint8Array): Promise<KerasFile> {
  let entries: Record<string, Uint8Array>;
  let tooBig: string | undefined;
  try {
    // only the entries modelc reads are inflated, and only up to their caps
    entries = unzipSync(bytes, {
      filter: (f) => {
        const kind = Object.hasOwn(archiveEntries, f.name) ? archiveEntries[f.name] : undefined;
        if (kind === undefined) return false;
        if (f.originalSize > readCap(kind)) {
          tooBig ??= `its ${f.name} inflates to ${f.originalSize} bytes, more than the ${readCap(kind)} bytes modelc reads as ${readCaps[kind].what}`;
          return false;
        }
        return true;
      },
    });
  } catch (err) {
    return fail('import', `not a readable .keras archive (a damaged or truncated zip: ${(err as Error).message})`, undefined, path);
  }
  if (tooBig !== undefined) fail('import', `cannot read this .keras archive: ${tooBig}`, undefined, path);
  const configBytes = entries['config.json'];
  if (!configBytes) fail('import', 'the .keras archive has no config.json: it is not a saved Keras model (model.save writes one)', undefined, path);
  const config = new SourceFile(`${path}:config.json`, text(configBytes));
  const weightsBytes = entries['model.weights.h5'];
  if (!weightsBytes) {
    const why = entries['model.weights.json'] ? 'its weights are sharded (model.weights.json); save the model without max_shard_size' : 'it has no model.weights.h5';
    return fail('import', `cannot read the weights of this .keras archive: ${why}`, undefined, path);
  }
  const file = `${path}:model.weights.h5`;
  const keys = structuralKeys(config.text);
  const groups = await withHdf5(weightsBytes, file, (h5) => archiveGroups(h5, keys, file));
  const kerasVersion = versionIn(entries['metadata.json']);
  return { kind: 'keras', config, ...(kerasVersion ? { kerasVersion } : {}), weights: { file, kind: 'keras', groups } };
}

/** metadata.json's `keras_version`, if it has one. */
function versionIn(metadata: Uint8Array | undefined): string | undefined {
  try {
    const v: unknown = metadata && JSON.parse(text(metadata));
    const version = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)['keras_version'] : undefined;
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
}

/** Every `vars` group under `layers/` with variables, its owner named by its `name` attribute or the config's structure. */
function archiveGroups(h5: Hdf5Reader, keys: ReadonlyMap<string, readonly string[]>, file: string): SavedGroup[] {
  // variables by their layer's key (`layers/dense`), from one listing of the file (walking it group by group is slow)
  const indices = new Map<string, string[]>();
  for (const p of h5.paths()) {
    const m = /^(layers\/.+?)\/vars\/(\d+)$/.exec(p);
    if (m && !m[1]!.endsWith('/vars')) indices.set(m[1]!, [...(indices.get(m[1]!) ?? []), m[2]!]);
  }
  return [...indices].map(([at, list]) => {
    const vars = `${at}/vars`;
    const named = h5.attr(vars, 'name');
    const path = keys.get(at);
    const owner = typeof named === 'string' ? named : path?.[path.length - 1];
    if (owner === undefined) return fail('weights', `the variables in ${q(vars)} belong to no layer of config.json`, undefined, file);
    const variables = list.sort((a, b) => Number(a) - Number(b)).map((i) => variable(h5, `${vars}/${i}`, i, file));
    return { owner, ...(path ? { path } : {}), where: vars, variables };
  });
}

function variable(h5: Hdf5Reader, where: string, name: string, file: string): SavedVariable {
  const d = h5.dataset(where);
  if (!d) return fail('weights', `${q(where)} is not a dataset`, undefined, file);
  const data = d.readFloat32();
  return { where, name, shape: d.shape, dtype: d.dtype, ...(data ? { data } : {}) };
}

/**
 * The layer name behind each `layers/...` key Keras 3 derives from a model's
 * config: per layer list, the snake-cased class name, `_1`, `_2`, ... on
 * repeats (Sequential lists leave out their InputLayer, as `model.layers`
 * does); nested models recursed into. Empty when config.json does not parse
 * (the importer reports that, located).
 */
export function structuralKeys(configText: string): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  let root: unknown;
  if (tooDeepAt(configText) !== undefined) return out; // too deep to walk; the importer reports it, located
  try {
    root = JSON.parse(configText);
  } catch {
    return out;
  }
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const walk = (model: Record<string, unknown>, prefix: string, outer: readonly string[]) => {
    const config = model['config'];
    const list = Array.isArray(config) ? config : isObj(config) && Array.isArray(config['layers']) ? config['layers'] : [];
    const used = new Map<string, number>();
    list.forEach((layer: unknown, i) => {
      if (!isObj(layer) || typeof layer['class_name'] !== 'string') return;
      if (model['class_name'] === 'Sequential' && i === 0 && layer['class_name'] === 'InputLayer') return;
      const snake = snakeCase(layer['class_name']);
      const n = used.get(snake);
      used.set(snake, n === undefined ? 0 : n + 1);
      const key = `${prefix}/${n === undefined ? snake : `${snake}_${n + 1}`}`;
      const c = layer['config'];
      const name = isObj(c) && typeof c['name'] === 'string' ? c['name'] : layer['name'];
      const path = typeof name === 'string' ? [...outer, name] : outer;
      if (typeof name === 'string') out.set(key, path);
      walk(layer, `${key}/layers`, path);
    });
  };
  if (isObj(root)) walk(root, 'layers', []);
  return out;
}

/** Keras's `to_snake_case`: `BatchNormalization` -> `batch_normalization`, `ReLU` -> `re_lu`, `Conv2D` -> `conv2d`. */
export function snakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

async function readLegacy(path: string, bytes: Uint8Array): Promise<KerasFile> {
  return withHdf5(bytes, path, (h5) => {
    const config = h5.attr('/', 'model_config');
    if (typeof config !== 'string') {
      const why = h5.keys('/')?.includes('layers') || h5.attr('/', 'layer_names') !== undefined
        ? 'it holds weights only (model.save_weights); save the whole model with model.save("model.keras")'
        : 'it has no "model_config" attribute, so it is not a model saved by Keras';
      return fail('import', `this HDF5 file is not a Keras model: ${why}`, undefined, path);
    }
    const groups: SavedGroup[] = [];
    for (const layer of stringList(h5.attr('model_weights', 'layer_names'))) {
      const at = `model_weights/${layer}`;
      const variables = stringList(h5.attr(at, 'weight_names')).map((name) => variable(h5, `${at}/${name}`, name, path));
      if (variables.length > 0) groups.push({ owner: layer, where: at, variables });
    }
    const version = h5.attr('/', 'keras_version');
    const kerasVersion = typeof version === 'string' ? { kerasVersion: version } : {};
    return { kind: 'h5' as const, config: new SourceFile(`${path}:model_config`, config), ...kerasVersion, weights: { file: path, kind: 'h5' as const, groups } };
  });
}

/** An HDF5 string-list attribute (Keras 3 writes an empty list as an empty float array). */
function stringList(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}
