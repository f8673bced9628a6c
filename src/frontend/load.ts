/**
 * From a spec file to a verified IR graph: read, detect the format (`.nn` DSL,
 * JSON, a TF.js model.json with its weights, or a Keras model: a `.keras`
 * archive, a legacy `.h5` file or a bare Keras model config), parse with
 * locations, validate, lower, verify.
 *
 * `.keras` and `.h5` files are binary and their HDF5 reader loads
 * asynchronously, so they are read by `loadSpecAsync` / `lowerFileAsync`
 * (which read every format); the synchronous `loadSpec` / `lowerFile` read
 * the text formats and refuse a Keras file with a message saying so.
 */
import { fail, type Diagnostic } from '../diagnostics/diagnostic.js';
import { SourceFile } from '../diagnostics/source.js';
import { verifyGraph } from '../ops/verify.js';
import { readRegularFile } from '../util/fs.js';
import { attachWeights, type AttachOptions, type Weight } from '../weights/attach.js';
import { parseDsl, type DslComments } from './dsl/parse.js';
import { parseJsonSpec } from './json.js';
import { kerasFileKind, readKerasFile, type SavedWeights } from './keras/archive.js';
import { kerasWeights } from './keras/weights.js';
import type { SpecLocations } from './locations.js';
import { lowerSpec, type Lowered } from './lower.js';
import type { ModelSpec } from './spec.js';
import { importKerasConfig, importTfjs, isTfjsModelJson } from './tfjs.js';
import { validateSpec } from './validate.js';

/**
 * `tfjs`: a TF.js LayersModel model.json (Keras topology and weight shards);
 * `keras`: a `.keras` archive, a legacy `.h5` file, or a JSON Keras model
 * config (`model.to_json()`, a `.keras` archive's config.json), imported.
 */
export type SpecFormat = 'nn' | 'json' | 'tfjs' | 'keras';

export interface LoadedSpec {
  /** The spec's source: the file, or for a `.keras`/`.h5` file its model config (`model.keras:config.json`). */
  readonly file: SourceFile;
  readonly format: SpecFormat;
  readonly spec: ModelSpec;
  readonly locations: SpecLocations;
  /** Comments of a DSL source (kept by `fmt`; JSON has none). */
  readonly comments?: DslComments;
  /**
   * Parameter values that came with the spec (a TF.js model's weights), by
   * parameter name; `lowerLoaded` attaches them.
   */
  readonly weights?: ReadonlyMap<string, Weight>;
  /**
   * A Keras file's saved variables, by Keras layer in Keras's order;
   * `lowerLoaded` names them after the lowered parameters and attaches them.
   */
  readonly saved?: SavedWeights;
  /** For spec layers inlined from a nested Keras model: the Keras layer names down to them (where their weights are). */
  readonly kerasPaths?: ReadonlyMap<string, readonly string[]>;
  /** Import warnings located in the model (an initializer kept as written, ...); the import went on. */
  readonly warnings?: readonly Diagnostic[];
}

/** A JSON Keras model config at the root: `{"class_name": "Sequential" | "Functional" | "Model", "config": ...}`. */
export function isKerasConfigJson(text: string): boolean {
  if (!/"class_name"\s*:/.test(text)) return false;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
    const root = v as Record<string, unknown>;
    return ['Sequential', 'Functional', 'Model'].includes(root['class_name'] as string) && Object.hasOwn(root, 'config');
  } catch {
    return false;
  }
}

/**
 * `.nn` by extension; JSON by extension or when the text starts with `{`: a
 * JSON object with `modelTopology` is a TF.js model.json, one with a model
 * `class_name` and `config` a Keras model config.
 */
export function detectFormat(file: SourceFile): SpecFormat {
  if (/\.nn$/i.test(file.path)) return 'nn';
  if (/\.json$/i.test(file.path) || file.text.trimStart().startsWith('{')) {
    return isTfjsModelJson(file.text) ? 'tfjs' : isKerasConfigJson(file.text) ? 'keras' : 'json';
  }
  return 'nn';
}

export function parseSpecSource(file: SourceFile, format = detectFormat(file)): LoadedSpec {
  if (format === 'tfjs') {
    const { spec, locations, weights, warnings } = importTfjs(file);
    return { file, format, spec: validateSpec(spec, locations), locations, ...(weights ? { weights } : {}), warnings };
  }
  if (format === 'keras') {
    const { spec, locations, warnings, kerasPaths } = importKerasConfig(file);
    return { file, format, spec: validateSpec(spec, locations), locations, warnings, kerasPaths };
  }
  if (format === 'json') {
    const { spec, locations } = parseJsonSpec(file);
    return { file, format, spec: validateSpec(spec, locations), locations };
  }
  const { spec, locations, comments } = parseDsl(file);
  return { file, format, spec: validateSpec(spec, locations), locations, comments };
}

/** A spec file's bytes, capped as a Keras file when its first bytes say it is one, else as a text spec. */
function readBytes(path: string): Uint8Array {
  return readRegularFile(path, (head) => kerasFileKind(head) ?? 'spec');
}

/** The text of a spec file (a UTF-8 byte order mark dropped). */
function sourceOf(path: string, bytes: Uint8Array): SourceFile {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  return new SourceFile(path, text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
}

/** Loads a spec file of a text format; a `.keras` or `.h5` file is refused (use `loadSpecAsync`). */
export function loadSpec(path: string): LoadedSpec {
  const bytes = readBytes(path);
  if (kerasFileKind(bytes) !== undefined) {
    fail('import', 'a Keras .keras/.h5 file is read asynchronously: use `await loadSpecAsync(path)` or `await lowerFileAsync(path)` (or `compile({ path })`)', undefined, path);
  }
  return parseSpecSource(sourceOf(path, bytes));
}

/** Loads a spec file of any format, `.keras` archives and legacy `.h5` files (with their weights) included. */
export async function loadSpecAsync(path: string): Promise<LoadedSpec> {
  const bytes = readBytes(path);
  if (kerasFileKind(bytes) === undefined) return parseSpecSource(sourceOf(path, bytes));
  const { config, weights, kerasVersion } = await readKerasFile(path, bytes);
  const { spec, locations, warnings, kerasPaths } = importKerasConfig(config, kerasVersion ? { kerasVersion } : {});
  return { file: config, format: 'keras', spec: validateSpec(spec, locations), locations, saved: weights, warnings, kerasPaths };
}

/**
 * Lower a loaded spec and verify the graph (a verifier failure here is a
 * modelc bug); weights that came with the spec are attached.
 */
export function lowerLoaded(loaded: LoadedSpec, options: AttachOptions = {}): Lowered {
  const lowered = lowerSpec(loaded.spec, loaded.locations);
  verifyGraph(lowered.graph);
  const weights = loaded.saved ? kerasWeights(lowered.graph, loaded.spec, loaded.saved, loaded.kerasPaths) : loaded.weights;
  if (!weights) return lowered;
  return { ...lowered, graph: attachWeights(lowered.graph, weights, loaded.saved?.file ?? loaded.file.path, options) };
}

/**
 * Reads, validates and lowers a spec file of a text format: the verified IR
 * graph (with a TF.js model's own weights), the spec and its layer table. No
 * code: `compile()` (src/compile/) turns a spec or graph into modules. For
 * `.keras` and `.h5` files use `lowerFileAsync`. `options.allowNonfinite`
 * accepts NaN and infinite values in the weights that come with the spec.
 */
export function lowerFile(path: string, options: AttachOptions = {}): LoadedSpec & Lowered {
  const loaded = loadSpec(path);
  return { ...loaded, ...lowerLoaded(loaded, options) };
}

/** `lowerFile` for every format, `.keras` archives and legacy `.h5` files (with their weights) included. */
export async function lowerFileAsync(path: string, options: AttachOptions = {}): Promise<LoadedSpec & Lowered> {
  const loaded = await loadSpecAsync(path);
  return { ...loaded, ...lowerLoaded(loaded, options) };
}

/**
 * The old name of `lowerFile`: it returns the IR, not code.
 * @deprecated Use `lowerFile`, or `compile()` for generated modules.
 */
export const compileFile = lowerFile;
