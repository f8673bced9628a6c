/**
 * Reads back a `.keras` archive for the export tests, the way Keras would
 * see it: config.json, metadata.json and every dataset and `name` attribute
 * of model.weights.h5 (through h5wasm), plus the fingerprint that
 * scripts/keras/check_export.py records for each archive it verified in
 * Keras (the same recipe on both sides: see that script).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strFromU8, unzipSync } from 'fflate';

export interface H5Dataset {
  readonly dtype: 'float32' | 'int64' | string;
  readonly shape: readonly number[];
  readonly value: Float32Array | BigInt64Array;
}

export interface KerasArchive {
  readonly configText: string;
  readonly config: Record<string, unknown>;
  readonly metadata: Record<string, unknown>;
  /** Every dataset by its path (`layers/dense/vars/0`). */
  readonly datasets: ReadonlyMap<string, H5Dataset>;
  /** Every group's `name` attribute by the group's path (`layers/dense/vars`). */
  readonly names: ReadonlyMap<string, string>;
}

type H5 = typeof import('h5wasm/node');
type H5Group = InstanceType<H5['Group']>;

export async function readKerasArchive(bytes: Uint8Array): Promise<KerasArchive> {
  const files = unzipSync(bytes);
  const configText = strFromU8(files['config.json']!);
  const h5: H5 = await import('h5wasm/node');
  await h5.ready;
  const dir = mkdtempSync(join(tmpdir(), 'modelc-keras-test-'));
  const datasets = new Map<string, H5Dataset>();
  const names = new Map<string, string>();
  try {
    const path = join(dir, 'w.h5');
    writeFileSync(path, files['model.weights.h5']!);
    const file = new h5.File(path, 'r');
    const walk = (group: H5Group, prefix: string): void => {
      for (const key of group.keys()) {
        const item = group.get(key);
        const at = prefix === '' ? key : `${prefix}/${key}`;
        if (item instanceof h5.Dataset) {
          const dtype = item.dtype === '<f' ? 'float32' : item.dtype === '<q' ? 'int64' : String(item.dtype);
          datasets.set(at, { dtype, shape: item.shape ?? [], value: item.value as Float32Array | BigInt64Array });
        } else if (item instanceof h5.Group) {
          if ('name' in item.attrs) names.set(at, String(item.attrs['name']!.value));
          walk(item, at);
        }
      }
    };
    walk(file, '');
    file.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { configText, config: JSON.parse(configText), metadata: JSON.parse(strFromU8(files['metadata.json']!)), datasets, names };
}

/** sha256 of config.json, a newline, and the sorted listing of the weights (check_export.py's `fingerprint`). */
export function kerasFingerprint(a: KerasArchive): string {
  const lines = [
    ...[...a.datasets].map(([path, d]) => `${path}:${d.dtype}:${JSON.stringify(d.shape)}`),
    ...[...a.names].map(([path, name]) => `${path}@name=${name}`),
  ].sort();
  return createHash('sha256').update(a.configText + '\n' + lines.join('\n')).digest('hex');
}

/** The layers of an archive's functional config: name, class and config. */
export function archiveLayers(a: KerasArchive): { name: string; class_name: string; config: Record<string, unknown> }[] {
  return (a.config['config'] as { layers: { name: string; class_name: string; config: Record<string, unknown> }[] }).layers;
}
