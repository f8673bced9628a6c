/**
 * Keras 3 `.keras` export: a zip of `metadata.json`, `config.json` (the
 * functional model, `keras-config.ts`) and `model.weights.h5` (each layer's
 * variables), which `keras.saving.load_model` loads and can train further.
 * The model is the spec as written, before any pass: batchnorm stays
 * batchnorm, dropout stays dropout.
 *
 * model.weights.h5 holds what Keras 3's saving_lib writes: a group per layer
 * `layers/<path>/vars` (attribute `name`, the layer's name) with datasets
 * `0, 1, ...`, the model's own `vars` group, and with a training block the
 * optimizer's `optimizer/vars` (iterations and learning rate, as Keras saves
 * a compiled optimizer that has not taken a step). It is written with h5wasm
 * (HDF5 compiled to WebAssembly); its Node build reads and writes the real
 * file system, so the file goes through a temporary directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { kerasJson } from '../ops/keras-export-def.js';
import { readRegularFile } from '../util/fs.js';
import { kerasModel, type KerasLayerWeights, type KerasModel, type KerasModelSource } from './keras-config.js';

export type { KerasModelSource } from './keras-config.js';

/** The Keras version whose format is written (metadata.json; Keras does not read it back). */
export const KERAS_VERSION = '3.15.1';

export interface KerasExportOptions {
  /** When the file was saved (metadata.json's `date_saved`); default now. */
  readonly date?: Date;
  /** modelc's version, recorded in metadata.json. */
  readonly producerVersion?: string;
}

/** The bytes of a `.keras` file for the spec, its layer table and its graph with parameter values. */
export async function exportKeras(source: KerasModelSource, options: KerasExportOptions = {}): Promise<Uint8Array> {
  const model = kerasModel(source);
  const weights = await writeWeights(model, source.spec.name);
  const metadata = {
    keras_version: KERAS_VERSION,
    date_saved: kerasDate(options.date ?? new Date()),
    ...(options.producerVersion ? { producer: `modelc ${options.producerVersion}` } : {}),
  };
  return zipSync({
    'metadata.json': strToU8(JSON.stringify(metadata)),
    'config.json': strToU8(kerasJson(model.config)),
    // stored, as Keras stores it: float weights barely compress, and Keras reads the member in place
    'model.weights.h5': [weights, { level: 0 }],
  });
}

/** Keras's `date_saved`: `2026-12-04@19:05:01` (UTC here). */
function kerasDate(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', '@');
}

type H5 = typeof import('h5wasm/node');
type H5Group = InstanceType<H5['Group']>;

/** model.weights.h5 as bytes. */
async function writeWeights(model: KerasModel, modelName: string): Promise<Uint8Array> {
  const h5: H5 = await import('h5wasm/node');
  await h5.ready;
  const dir = mkdtempSync(join(tmpdir(), 'modelc-keras-'));
  try {
    const path = join(dir, 'model.weights.h5');
    const file = new h5.File(path, 'w');
    try {
      const layers = file.create_group('layers');
      for (const layer of model.weights) writeLayer(layers, layer);
      if (model.optimizer) writeOptimizer(file, model);
      varsGroup(file, modelName);
    } finally {
      file.close();
    }
    return readRegularFile(path, 'h5');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A compiled optimizer before its first step: iterations 0, the learning rate, zero slots (`KerasOptimizerState`). */
function writeOptimizer(file: H5Group, model: KerasModel): void {
  const { name, learningRate, slotPasses } = model.optimizer!;
  const vars = varsGroup(file.create_group('optimizer'), name);
  vars.create_dataset({ name: '0', data: new BigInt64Array([0n]), shape: [], dtype: '<q' });
  vars.create_dataset({ name: '1', data: new Float32Array([learningRate]), shape: [], dtype: '<f' });
  const trainable = model.weights.flatMap((l) => l.variables.slice(0, l.trainable));
  let at = 2;
  for (const pass of slotPasses) {
    for (const v of trainable) {
      for (let s = 0; s < pass.length; s++) {
        vars.create_dataset({ name: String(at++), data: new Float32Array(v.data.length), shape: [...v.shape], dtype: '<f' });
      }
    }
  }
}

function writeLayer(layers: H5Group, layer: KerasLayerWeights): void {
  const vars = varsGroup(layers.create_group(layer.path), layer.name);
  layer.variables.forEach((v, i) => {
    vars.create_dataset({ name: String(i), data: v.data, shape: [...v.shape], dtype: '<f' });
  });
}

/** A `vars` group under `parent` with the owner's name as attribute `name`, as Keras writes it. */
function varsGroup(parent: H5Group, name: string): H5Group {
  const vars = parent.create_group('vars');
  vars.create_attribute('name', name);
  return vars;
}
