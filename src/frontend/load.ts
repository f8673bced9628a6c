/**
 * From a spec file to a verified IR graph: read, detect the format (`.nn` DSL
 * or JSON), parse with locations, validate, lower, verify.
 */
import type { SourceFile } from '../diagnostics/source.js';
import { verifyGraph } from '../ir/verify.js';
import { readSource } from '../util/fs.js';
import { parseDsl, type DslComments } from './dsl/parse.js';
import { parseJsonSpec } from './json.js';
import type { SpecLocations } from './locations.js';
import { lowerSpec, type Lowered } from './lower.js';
import type { ModelSpec } from './spec.js';
import { validateSpec } from './validate.js';

export type SpecFormat = 'nn' | 'json';

export interface LoadedSpec {
  readonly file: SourceFile;
  readonly format: SpecFormat;
  readonly spec: ModelSpec;
  readonly locations: SpecLocations;
  /** Comments of a DSL source (kept by `fmt`; JSON has none). */
  readonly comments?: DslComments;
}

/** `.nn` and `.json` by extension; otherwise JSON if the text starts with `{`. */
export function detectFormat(file: SourceFile): SpecFormat {
  if (/\.nn$/i.test(file.path)) return 'nn';
  if (/\.json$/i.test(file.path)) return 'json';
  return file.text.trimStart().startsWith('{') ? 'json' : 'nn';
}

export function parseSpecSource(file: SourceFile, format = detectFormat(file)): LoadedSpec {
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

/** Lower a loaded spec and verify the graph (a verifier failure here is a modelc bug). */
export function lowerLoaded(loaded: LoadedSpec): Lowered {
  const lowered = lowerSpec(loaded.spec, loaded.locations);
  verifyGraph(lowered.graph);
  return lowered;
}

export function compileFile(path: string): LoadedSpec & Lowered {
  const loaded = loadSpec(path);
  return { ...loaded, ...lowerLoaded(loaded) };
}

