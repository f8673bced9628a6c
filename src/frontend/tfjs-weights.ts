/**
 * The weights of a TF.js model.json: `weightsManifest` groups, each a list of
 * weights (name, shape, dtype) stored back to back, little-endian, in the
 * concatenation of its shard files (`paths`, relative to model.json). Names
 * `<layer>/<param>` map onto modelc's parameters; only float32 is read.
 * Every problem is a diagnostic: in model.json for the manifest, or naming
 * the shard file and the weight that needs it.
 */
import { dirname, join } from 'node:path';
import { fail, q } from '../diagnostics/diagnostic.js';
import type { SourceFile } from '../diagnostics/source.js';
import { isObj, show } from '../ops/keras-def.js';
import { formatCount, MAX_TENSOR_ELEMENTS } from '../ir/limits.js';
import { readRegularFile, resolveInside } from '../util/fs.js';
import type { Weight } from '../weights/attach.js';
import type { SpecPath } from './locations.js';
import type { Failer } from './tfjs-config.js';

interface ManifestWeight {
  readonly name: string;
  readonly shape: number[];
  readonly bytes: number;
  readonly skip: boolean;
}

/** Where the weights come from: model.json (shard paths are relative to it), for diagnostics. */
export interface WeightsSource extends Failer {
  readonly file: SourceFile;
}

/** The manifest's weights, read from the shards and named `<layer>/<param>`. */
export function readWeights(imp: WeightsSource, manifest: unknown, layerNames: ReadonlySet<string>): Map<string, Weight> | undefined {
  if (manifest === undefined || manifest === null) return undefined;
  const mPath: SpecPath = ['weightsManifest'];
  if (!Array.isArray(manifest)) return imp.fail(mPath, `"weightsManifest" must be a list of {"paths", "weights"} groups, got ${show(manifest)}`);
  const out = new Map<string, Weight>();
  const origin = new Map<string, string>();
  /** Every shard already read, by its real path, with the group that named it: each file is read once. */
  const shardGroups = new Map<string, number>();
  manifest.forEach((group, g) => {
    const gPath = [...mPath, g];
    if (!isObj(group) || !Array.isArray(group['paths']) || !Array.isArray(group['weights'])) {
      return imp.fail(gPath, 'a weights manifest group must be an object with "paths" and "weights" lists');
    }
    const specs = group['weights'].map((w, j) => manifestWeight(imp, w, [...gPath, 'weights', j]));
    // every weight is checked to belong to a layer, once, before any shard is read: what is read
    // is then bounded by the model's own parameters
    const names = specs.map((w, j) => {
      if (w.skip) return undefined;
      const name = modelcName(w.name, layerNames);
      if (name === undefined) {
        return imp.fail([...gPath, 'weights', j, 'name'], `weight ${q(w.name)} belongs to no layer of the model`, 'weights');
      }
      if (origin.has(name)) {
        imp.fail([...gPath, 'weights', j, 'name'], `weights ${q(origin.get(name)!)} and ${q(w.name)} are both ${q(name)}`, 'weights');
      }
      origin.set(name, w.name);
      return name;
    });
    const view = groupBytes(imp, group['paths'], specs, g, shardGroups);
    let offset = 0;
    specs.forEach((w, j) => {
      const start = offset;
      offset += w.bytes;
      const name = names[j];
      if (name === undefined) return;
      const values = new Float32Array(w.bytes / 4);
      for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(start + 4 * i, true);
      out.set(name, { shape: w.shape, data: values });
    });
  });
  return out;
}

/** Group `g`'s bytes: its shards concatenated, exactly as many as its weights need. */
function groupBytes(imp: WeightsSource, paths: readonly unknown[], specs: readonly ManifestWeight[], g: number, shardGroups: Map<string, number>): DataView {
  const gPath: SpecPath = ['weightsManifest', g];
  const dir = dirname(imp.file.path);
  const total = specs.reduce((n, w) => n + w.bytes, 0);
  /** The weight stored at byte `offset` of the group, to name in a complaint about a shard. */
  const holding = (offset: number): string | undefined => {
    let start = 0;
    return specs.find((w) => (start += w.bytes) > offset)?.name;
  };
  const shards: Uint8Array[] = [];
  let size = 0;
  paths.forEach((p, s) => {
    if (typeof p !== 'string' || p === '') return imp.fail([...gPath, 'paths', s], `a shard path must be a file name, got ${show(p)}`);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) imp.fail([...gPath, 'paths', s], `shard ${q(p)} is a URL; download it next to model.json and use a relative path`);
    // inside model.json's folder (symbolic links resolved), refused before anything is read
    const real = resolveInside(imp.file.path, p, { what: 'weight shard', refuse: (message) => imp.fail([...gPath, 'paths', s], message, 'io') });
    const named = shardGroups.get(real);
    if (named !== undefined) {
      const where = named === g ? 'this group' : `weights group ${named + 1}`;
      imp.fail([...gPath, 'paths', s], `weight shard ${q(p)} is already one of the shards of ${where}: each shard file holds one part of one group`, 'weights');
    }
    // the group's weights are all there: a further shard would be read for nothing
    if (size >= total) {
      imp.fail([...gPath, 'paths', s], `weights group ${g + 1} needs ${total} bytes, which its shards before ${q(p)} already hold: the manifest does not describe these files`, 'weights');
    }
    shardGroups.set(real, g);
    const w = holding(size);
    const label = `weight shard ${q(p)} of ${imp.file.path}${w ? ` (needed for weight ${q(w)})` : ''}`;
    const bytes = readRegularFile(real, 'shard', { label, shownAs: join(dir, p), noFollow: true });
    shards.push(bytes);
    size += bytes.length;
  });
  const lastShard = String(paths[paths.length - 1] ?? '');
  if (size < total) {
    const w = holding(size)!;
    fail('weights', `weight ${q(w)} does not fit in the shards of weights group ${g + 1} (${paths.join(', ')}): its weights need ${total} bytes, the shards hold ${size}; is ${q(lastShard)} truncated?`, undefined, join(dir, lastShard));
  }
  if (size > total) {
    fail('weights', `the shards of weights group ${g + 1} (${paths.join(', ')}) hold ${size} bytes, but its weights need ${total}: the manifest does not describe these files`, undefined, join(dir, lastShard));
  }
  const data = shards.length === 1 ? shards[0]! : concat(shards, size);
  return new DataView(data.buffer, data.byteOffset, data.byteLength);
}

function manifestWeight(imp: Failer, w: unknown, path: SpecPath): ManifestWeight {
  if (!isObj(w) || typeof w['name'] !== 'string') return imp.fail(path, `a manifest weight must be an object with a "name", got ${show(w)}`);
  const name = w['name'];
  const shape = w['shape'];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    return imp.fail([...path, 'shape'], `weight ${q(name)}: "shape" must be a list of sizes, got ${show(shape)}`);
  }
  if (w['quantization'] !== undefined && w['quantization'] !== null) {
    imp.fail([...path, 'quantization'], `weight ${q(name)} is quantized; only float32 weights can be imported (convert the model without quantization)`);
  }
  if (w['dtype'] !== 'float32') {
    const has = w['dtype'] === undefined ? 'has no "dtype"' : `has dtype ${show(w['dtype'])}`;
    imp.fail(w['dtype'] === undefined ? path : [...path, 'dtype'], `weight ${q(name)} ${has}; only float32 weights can be imported`);
  }
  const n = (shape as number[]).reduce((a, b) => a * b, 1);
  if (n > MAX_TENSOR_ELEMENTS) {
    imp.fail([...path, 'shape'], `weight ${q(name)}: shape ${show(shape)} has ${formatCount(n)} elements; a tensor holds at most 2^31 - 1`, 'limit');
  }
  return { name, shape: shape as number[], bytes: 4 * n, skip: w['group'] === 'optimizer' };
}

/**
 * `<layer>/<param>` from a manifest name: `dense_Dense1/kernel` (TF.js),
 * `dense/kernel:0`, `model/dense/kernel` (a prefix), `lstm/cell/kernel` (TF
 * 2.2's cell names): the param is the last part, the layer the longest prefix
 * that is a layer, else the first part, else the part before the param.
 */
function modelcName(name: string, layers: ReadonlySet<string>): string | undefined {
  const parts = name.replace(/:\d+$/, '').split('/');
  const param = parts[parts.length - 1]!;
  const candidates = [parts.slice(0, -1).join('/'), parts[0]!, parts[parts.length - 2] ?? ''];
  const layer = candidates.find((c) => layers.has(c));
  return layer === undefined ? undefined : `${layer}/${param}`;
}

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
