/**
 * What `compile()` starts from: a spec (a file, a source text, or a parsed
 * object) or an IR graph, turned into one graph with parameter values, and
 * the file names made from it.
 */
import { fail, type Diagnostic } from '../diagnostics/diagnostic.js';
import { SourceFile } from '../diagnostics/source.js';
import { readSafetensors } from '../formats/safetensors.js';
import { kerasFileKind } from '../frontend/keras/archive.js';
import { loadSpecAsync, lowerLoaded, parseSpecSource } from '../frontend/load.js';
import type { ModelSpec } from '../frontend/spec.js';
import type { Graph } from '../ir/graph.js';
import { materialize } from '../ops/init.js';
import type { TrainingSpec } from '../spec/training.js';
import { readRegularFile } from '../util/fs.js';
import { attachWeights, type AttachOptions, type Weight } from '../weights/attach.js';

/**
 * A spec file (`.nn`, `.json`, a TF.js `model.json` or a Keras `.keras` or
 * `.h5` file, which bring their weights), a spec's source text with the path that names it in messages, a
 * parsed spec object, or an IR graph (with the `train` block to use, if any).
 */
export type CompileInput =
  | { readonly path: string }
  | { readonly source: string; readonly path: string }
  | { readonly spec: ModelSpec | Record<string, unknown>; readonly path?: string }
  | { readonly graph: Graph; readonly training?: TrainingSpec };

/** The input lowered: its graph (weights not yet attached), its train block and where it came from. */
export interface LoadedInput {
  readonly graph: Graph;
  readonly training?: TrainingSpec;
  readonly spec?: ModelSpec;
  /** The path the input came from, named in the modules' header comments. */
  readonly path?: string;
  /** Import warnings (TF.js and Keras files): what the import kept or left out, located. */
  readonly warnings: readonly Diagnostic[];
}

/** Loads, validates and lowers the input; located diagnostics name `path`. `options` apply to weights that come with it. */
export async function loadInput(input: CompileInput, options: AttachOptions = {}): Promise<LoadedInput> {
  if ('graph' in input) return { graph: input.graph, warnings: [], ...(input.training ? { training: input.training } : {}) };
  let loaded;
  if ('spec' in input) {
    // Printed as JSON so that validation and lowering locate their errors as in a spec file.
    const path = input.path ?? `${typeof input.spec['name'] === 'string' ? input.spec['name'] : 'model'}.json`;
    loaded = parseSpecSource(new SourceFile(path, JSON.stringify(input.spec, null, 2)), 'json');
  } else if ('source' in input) loaded = parseSpecSource(new SourceFile(input.path, input.source));
  else loaded = await loadSpecAsync(input.path);
  const { spec } = loaded;
  // the file's path, also for a Keras file, whose source is the config inside it (`model.keras:config.json`)
  const path = 'spec' in input ? loaded.file.path : input.path;
  return { graph: lowerLoaded(loaded, options).graph, spec, path, warnings: loaded.warnings ?? [], ...(spec.training ? { training: spec.training } : {}) };
}

/** Parameter values: a safetensors file's path or bytes, or tensors by parameter name. */
export type WeightsInput = string | Uint8Array | ReadonlyMap<string, Weight>;

/**
 * The graph with every parameter's value: `weights` replace all of them;
 * otherwise parameters without a value are sampled from their initializers
 * with `seed` (default 0), and values that came with the input are kept.
 * `options.allowNonfinite` accepts NaN and infinite values in `weights`.
 */
export function withWeights(graph: Graph, weights: WeightsInput | undefined, seed = 0, options: AttachOptions = {}): Graph {
  if (weights === undefined) return materialize(graph, seed);
  if (typeof weights !== 'string' && !(weights instanceof Uint8Array)) return attachWeights(graph, weights, undefined, options);
  const path = typeof weights === 'string' ? weights : undefined;
  const bytes = typeof weights === 'string' ? readRegularFile(weights, 'safetensors') : weights;
  if (kerasFileKind(bytes) !== undefined) {
    // a Keras file's weights are named by its layers, known only with its config: it is read as the spec
    fail('weights', 'this is a Keras .keras/.h5 file, not safetensors: give it as the spec itself (its weights come with it), or convert it with `modelc import model.keras -o dir`', undefined, path);
  }
  return attachWeights(graph, readSafetensors(bytes, path).tensors, path, options);
}

/** A file stem from a model name: letters, digits, `_`, `-` and `.`, not starting with a dot. */
export function fileStem(name: string): string {
  const stem = name.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[.]+/, '');
  return stem === '' ? 'model' : stem;
}

/** A name given for the output files must be a plain file name; `what` names it in the message (`--name`). */
export function checkFileStem(name: string, what = 'name'): void {
  if (name !== fileStem(name) || name.length > 200) {
    fail('io', `${what} '${name}' is not a plain file name: use letters, digits, '_', '-' and '.'`);
  }
}
