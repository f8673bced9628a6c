/**
 * Diagnostics are data: a code from the catalog, a message, and where it points.
 * Every user-facing failure of modelc is a `ModelcError` carrying diagnostics;
 * the CLI renders them and exits 1. Anything else escaping is a bug in modelc.
 */
import type { Span } from './source.js';

/** The catalog of diagnostic codes. The code names the category; the message says the specifics. */
export const codes = {
  io: 'cannot read or write a file',
  syntax: 'the DSL or JSON text does not parse',
  schema: 'the spec does not match the JSON Schema',
  unknownLayer: 'a layer type that modelc does not know',
  unknownAttribute: 'an attribute the layer does not take',
  attributeType: 'an attribute value of the wrong type or range',
  undefinedName: 'a reference to a name that is not defined (yet)',
  duplicateName: 'two layers or inputs share a name',
  cycle: 'layers that depend on each other',
  emptyModel: 'a model without layers',
  shape: 'an input shape a layer cannot take',
  limit: 'a size beyond what modelc can hold: a tensor of 2^31 elements or more, a model above 2^32, a batch too large, JSON nested too deep, a number out of range',
  arity: 'the wrong number of inputs for a layer',
  irSyntax: 'textual IR that does not parse',
  verify: 'an IR graph that breaks an invariant',
  interp: 'a graph the reference interpreter cannot run: a missing or misshapen input or parameter value',
  weights: 'parameter values that cannot be read, made or attached (weights files, initializers)',
  pass: 'an unknown pass, or a pass that breaks the IR',
  export: 'a model with a layer or option that the export format (Keras) cannot express',
  import: 'a TF.js or Keras model (model.json, .keras, .h5, a Keras config) with a layer, option or weight format that modelc cannot import',
  train: 'a model that cannot be trained as specified: no training block, no gradient through a layer, a parameter that does not reach the loss',
  data: 'training data that cannot be read or does not fit the model: a malformed CSV or .npy file, a non-numeric cell, a shape mismatch, a label out of range',
} as const;

export type DiagnosticCode = keyof typeof codes;

export interface Diagnostic {
  readonly code: DiagnosticCode;
  readonly message: string;
  /** Where in the source; absent when there is no source (e.g. a graph built in code). */
  readonly span?: Span | undefined;
  /** A file path to name when there is no span (e.g. an unreadable file). */
  readonly path?: string | undefined;
  /** `warning`: reported, and the work went on (an import that kept what it could not express); absent: an error. */
  readonly severity?: 'warning' | undefined;
}

export class ModelcError extends Error {
  readonly diagnostics: readonly Diagnostic[];

  constructor(diagnostics: Diagnostic | readonly Diagnostic[]) {
    const list = Array.isArray(diagnostics) ? diagnostics : [diagnostics as Diagnostic];
    super(list.map((d) => d.message).join('\n'));
    this.name = 'ModelcError';
    this.diagnostics = list;
  }
}

export function fail(code: DiagnosticCode, message: string, span?: Span, path?: string): never {
  throw new ModelcError({ code, message, span, path });
}

/** Quote a user-provided name for a message: `'dense_1'`. */
export function q(name: string): string {
  return `'${name}'`;
}

/** "did you mean 'x'?" for the closest candidate within a small edit distance. */
export function suggest(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && bestDistance <= limit ? `; did you mean ${q(best)}?` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
