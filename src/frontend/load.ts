/**
 * From a spec file to a verified IR graph: read, detect the format (`.nn` DSL,
 * JSON, or a TF.js model.json with its weights), parse with locations,
 * validate, lower, verify.
 */
import type { SourceFile } from '../diagnostics/source.js';
import { verifyGraph } from '../ops/verify.js';
import { readSource } from '../util/fs.js';
import { attachWeights, type Weight } from '../weights/attach.js';
import { parseDsl, type DslComments } from './dsl/parse.js';
import { parseJsonSpec } from './json.js';
import type { SpecLocations } from './locations.js';
import { lowerSpec, type Lowered } from './lower.js';
import type { ModelSpec } from './spec.js';
import { importTfjs, isTfjsModelJson } from './tfjs.js';
import { validateSpec } from './validate.js';

/** `tfjs`: a TF.js LayersModel model.json (Keras topology and weight shards), imported. */
export type SpecFormat = 'nn' | 'json' | 'tfjs';

export interface LoadedSpec {
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
}

/**
 * `.nn` by extension; JSON by extension or when the text starts with `{`; a
 * JSON object with `modelTopology` is a TF.js model.json.
 */
export function detectFormat(file: SourceFile): SpecFormat {
  if (/\.nn$/i.test(file.path)) return 'nn';
  if (/\.json$/i.test(file.path) || file.text.trimStart().startsWith('{')) return isTfjsModelJson(file.text) ? 'tfjs' : 'json';
  return 'nn';
}

export function parseSpecSource(file: SourceFile, format = detectFormat(file)): LoadedSpec {
  if (format === 'tfjs') {
    const { spec, locations, weights } = importTfjs(file);
    return { file, format, spec: validateSpec(spec, locations), locations, ...(weights ? { weights } : {}) };
  }
  if (format === 'json') {
    const { spec, locations } = parseJsonSpec(file);
    return { file, format, spec: validateSpec(spec, locations), locations };
  }
  const { spec, locations, comments } = parseDsl(file);
  return { file, format, spec: validateSpec(spec, locations), locations, comments };
}

export function loadSpec(path: string): LoadedSpec {
  return parseSpecSource(readSource(path));
}

/**
 * Lower a loaded spec and verify the graph (a verifier failure here is a
 * modelc bug); weights that came with the spec are attached.
 */
export function lowerLoaded(loaded: LoadedSpec): Lowered {
  const lowered = lowerSpec(loaded.spec, loaded.locations);
  verifyGraph(lowered.graph);
  if (!loaded.weights) return lowered;
  return { ...lowered, graph: attachWeights(lowered.graph, loaded.weights, loaded.file.path) };
}

/**
 * Reads, validates and lowers a spec file: the verified IR graph (with a TF.js
 * model's own weights), the spec and its layer table. No code: `compile()`
 * (src/compile/) turns a spec or graph into modules.
 */
export function lowerFile(path: string): LoadedSpec & Lowered {
  const loaded = loadSpec(path);
  return { ...loaded, ...lowerLoaded(loaded) };
}

/**
 * The old name of `lowerFile`: it returns the IR, not code.
 * @deprecated Use `lowerFile`, or `compile()` for generated modules.
 */
export const compileFile = lowerFile;

