/**
 * The `.nn` front end: DSL text to the plain spec object (the same JSON
 * contract as a `.json` spec), the source span of each part of it, and the
 * file's comments (for `fmt`).
 *
 *   text --(generated parser, grammar/nn.peggy)--> syntax tree
 *        --(build.ts)--> spec + locations --(comments.ts)--> comments
 *
 * Every failure is a located `ModelcError`; semantic checks (names, types,
 * defaults) are left to schema validation and lowering, which use the
 * locations recorded here.
 */
import { fail } from '../../diagnostics/diagnostic.js';
import { span, type SourceFile } from '../../diagnostics/source.js';
import { SpecLocations } from '../locations.js';
import type { FileNode } from './ast.js';
import { SpecBuilder } from './build.js';
import { attachComments, type DslComments } from './comments.js';
import { parse, SyntaxError as PeggySyntaxError } from './parser.generated.js';
import { syntaxError } from './syntax-error.js';

export type { DslComments } from './comments.js';

export interface ParsedDsl {
  /** The spec as written (unvalidated). */
  readonly spec: unknown;
  readonly locations: SpecLocations;
  readonly comments: DslComments;
}

function parseTree(file: SourceFile): FileNode {
  try {
    return parse(file.text) as FileNode;
  } catch (e) {
    if (e instanceof PeggySyntaxError) throw syntaxError(file, e);
    throw e;
  }
}

export function parseDsl(file: SourceFile): ParsedDsl {
  try {
    return parseModel(file);
  } catch (e) {
    // Thousands of nested brackets exhaust the stack of the recursive-descent parser.
    if (e instanceof RangeError && /call stack/i.test(e.message)) fail('syntax', 'the model nests too deeply to parse', span(file, 0));
    throw e;
  }
}

function parseModel(file: SourceFile): ParsedDsl {
  const tree = parseTree(file);
  const [model, second] = tree.models;
  if (second) {
    fail('syntax', `a .nn file holds one model; '${model!.name.name}' is already defined`, span(file, second.keyword.start, second.keyword.end));
  }
  const locations = new SpecLocations(file);
  const { spec, anchor } = new SpecBuilder(locations).model(model!);
  return { spec, locations, comments: attachComments(file.text, anchor, tree.comments) };
}
