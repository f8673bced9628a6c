/**
 * TF.js LayersModel import: a `model.json` (what `model.save()` writes, or
 * `tensorflowjs_converter` from a Keras model) -> a modelc spec and its
 * weights.
 *
 * The topology is the Keras config of a Sequential or functional model:
 * `{class_name: 'Sequential' | 'Model' | 'Functional', config: {name, layers,
 * ...}}` (or the converter's `{model_config: ...}` around it), read by
 * `keras-model.ts`, which also reads a Keras model config on its own
 * (`importKerasConfig`: a `.keras` config.json, a legacy `.h5` file's
 * `model_config`) in Keras 2's dialect or Keras 3's. Anything without a
 * faithful modelc form (a layer class, `channels_first`, a regularizer, a
 * mask, a quantized weight) is an `import` diagnostic naming the layer and
 * its class, located in the file: an import never changes what the model
 * computes, or how it would train, without saying so (a warning when only
 * training could tell).
 *
 * Weights (`weightsManifest` and its shards) are read by `tfjs-weights.ts`.
 */
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import type { SourceFile } from '../diagnostics/source.js';
import { isObj } from '../ops/keras-def.js';
import type { Weight } from '../weights/attach.js';
import { parseJsonSpec } from './json.js';
import { Importer } from './keras-model.js';
import type { SpecLocations, SpecPath } from './locations.js';
import type { ModelSpec } from './spec.js';
import { readWeights } from './tfjs-weights.js';

export { importableClasses } from './keras-model.js';

/** A TF.js model.json: a JSON object with `modelTopology` (cheap test first, then a parse). */
export function isTfjsModelJson(text: string): boolean {
  if (!/"modelTopology"\s*:/.test(text)) return false;
  try {
    const v: unknown = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    return isObj(v) && Object.hasOwn(v, 'modelTopology');
  } catch {
    return false;
  }
}

export interface TfjsImport {
  readonly spec: ModelSpec;
  /** Spec paths located in model.json (each layer entry at its Keras layer). */
  readonly locations: SpecLocations;
  /** The weights under modelc's names; absent when model.json has no `weightsManifest`. */
  readonly weights?: Map<string, Weight>;
  /** Warnings located in model.json (an initializer modelc cannot express, ...); the import went on. */
  readonly warnings: readonly Diagnostic[];
}

/** A Keras model config, imported. */
export interface KerasConfigImport {
  readonly spec: ModelSpec;
  /** Spec paths located in the config (each layer entry at its Keras layer). */
  readonly locations: SpecLocations;
  /** Warnings located in the config; the import went on. */
  readonly warnings: readonly Diagnostic[];
  /**
   * For each spec layer inlined from a nested model (ConvNeXt's stem), the
   * Keras layer names from the outer model down to it (`['convnext_tiny_stem',
   * 'convnext_tiny_stem_conv']`): where Keras keeps its weights. Layers of the
   * outer model are absent (their path is their name).
   */
  readonly kerasPaths: ReadonlyMap<string, readonly string[]>;
}

/** Reads model.json and its weight shards. Every problem is a diagnostic located in model.json. */
export function importTfjs(file: SourceFile): TfjsImport {
  const { spec: root, locations: raw } = parseJsonSpec(file);
  const imp = new Importer(file, raw);
  if (!isObj(root)) return imp.fail([], 'a TF.js model.json must be a JSON object');
  if (root['format'] === 'graph-model') {
    imp.fail(['format'], "this is a TF.js graph model (format 'graph-model'); only layers models (tf.LayersModel, Keras) can be imported");
  }
  let topoPath: SpecPath = ['modelTopology'];
  let topo = root['modelTopology'];
  // tensorflowjs_converter (Keras HDF5): {keras_version, backend, model_config, training_config}
  if (isObj(topo) && isObj(topo['model_config'])) {
    topoPath = ['modelTopology', 'model_config'];
    topo = topo['model_config'];
  }
  if (!isObj(topo)) return imp.fail(topoPath, '"modelTopology" must be an object: the Keras config of the model');
  if (Object.hasOwn(topo, 'node')) imp.fail(topoPath, 'this is a TF.js graph model (a GraphDef topology); only layers models can be imported');
  const converted = imp.model(topo, topoPath);
  const layerNames = new Set(converted.layers.flatMap((l) => ('type' in l && l.name !== undefined ? [l.name] : [])));
  const weights = readWeights(imp, root['weightsManifest'], layerNames);
  return { spec: converted, locations: imp.locations, ...(weights ? { weights } : {}), warnings: imp.warnings };
}

/**
 * Reads a Keras model config: the JSON root is `{"class_name": "Functional" |
 * "Sequential" | "Model", "config": {...}}`, as a `.keras` archive's
 * config.json, a legacy `.h5` file's `model_config` attribute or
 * `model.to_json()` hold it. The same reading as a TF.js model.json's
 * `modelTopology`; weights are the caller's (they live beside the config).
 * `kerasVersion` (metadata.json's, or the .h5 file's `keras_version`)
 * decides the dialect when given; else the config's own forms do.
 */
export function importKerasConfig(file: SourceFile, options: { kerasVersion?: string } = {}): KerasConfigImport {
  const { spec: root, locations: raw } = parseJsonSpec(file);
  const imp = new Importer(file, raw);
  if (!isObj(root)) return imp.fail([], 'a Keras model config must be a JSON object with "class_name" and "config"');
  const spec = imp.model(root, [], options.kerasVersion);
  return { spec, locations: imp.locations, warnings: imp.warnings, kerasPaths: imp.kerasPaths };
}
