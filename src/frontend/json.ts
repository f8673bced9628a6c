/**
 * The JSON front end: spec text -> plain object + locations of every value and
 * key, so that every later error points at `path:line:col` in the JSON file.
 * Strict JSON: no comments, no trailing commas, no duplicate keys, numbers
 * within float64's range, and at most MAX_JSON_DEPTH levels of nesting
 * (checked by a flat scan before parsing: the parser and every walker after
 * it recurse; real configs nest about 15 levels).
 */
import { parseTree, printParseErrorCode, type Node as JsonNode, type ParseError } from 'jsonc-parser';
import { fail } from '../diagnostics/diagnostic.js';
import { span, type SourceFile } from '../diagnostics/source.js';
import { canonicalize } from './canonical.js';
import { SpecLocations, type SpecPath } from './locations.js';
import type { ModelSpec } from './spec.js';

const errorText: Record<string, string> = {
  InvalidSymbol: 'invalid symbol',
  InvalidNumberFormat: 'invalid number',
  PropertyNameExpected: 'expected a property name in double quotes',
  ValueExpected: 'expected a value',
  ColonExpected: "expected ':'",
  CommaExpected: "expected ',' or a closing bracket",
  CloseBraceExpected: "expected '}'",
  CloseBracketExpected: "expected ']'",
  EndOfFileExpected: 'expected the end of the file after the top-level value',
  InvalidCommentToken: 'comments are not allowed in JSON',
  UnexpectedEndOfComment: 'unterminated comment',
  UnexpectedEndOfString: 'unterminated string',
  UnexpectedEndOfNumber: 'unterminated number',
  InvalidUnicode: 'invalid unicode escape',
  InvalidEscapeCharacter: 'invalid escape character',
  InvalidCharacter: 'invalid character in string',
};

/** How deep JSON input may nest (objects and arrays). */
export const MAX_JSON_DEPTH = 256;

/**
 * The offset of the first bracket nested deeper than `max` levels, if any:
 * one flat pass over the text, skipping strings (no recursion, so any depth
 * is safe to scan).
 */
export function tooDeepAt(text: string, max = MAX_JSON_DEPTH): number | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: skip to its closing quote (an unterminated one is the parser's error)
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
}

export function parseJsonSpec(file: SourceFile): { spec: unknown; locations: SpecLocations } {
  const deep = tooDeepAt(file.text);
  if (deep !== undefined) fail('limit', `JSON nested deeper than ${MAX_JSON_DEPTH} levels`, span(file, deep, deep + 1));
  const errors: ParseError[] = [];
  const root = parseTree(file.text, errors, { disallowComments: true, allowTrailingComma: false });
  const first = errors[0];
  if (first) {
    const code = printParseErrorCode(first.error);
    fail('syntax', `invalid JSON: ${errorText[code] ?? code}`, span(file, first.offset, first.offset + first.length));
  }
  if (!root) fail('syntax', 'invalid JSON: the file is empty', span(file, 0));
  const locations = new SpecLocations(file);
  return { spec: build(root, [], locations), locations };
}

function build(node: JsonNode, path: SpecPath, locations: SpecLocations, key?: JsonNode): unknown {
  locations.set(path, node.offset, node.offset + node.length, key?.offset, key ? key.offset + key.length : undefined);
  switch (node.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const prop of node.children ?? []) {
        const [k, v] = prop.children ?? [];
        if (!k || !v) continue;
        const name = k.value as string;
        if (Object.hasOwn(out, name)) {
          fail('syntax', `duplicate key '${name}'`, span(locations.file, k.offset, k.offset + k.length));
        }
        // defineProperty: a "__proto__" key stays a plain (and later rejected) key.
        Object.defineProperty(out, name, {
          value: build(v, [...path, name], locations, k),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    case 'array':
      return (node.children ?? []).map((c, i) => build(c, [...path, i], locations));
    case 'number':
      if (!Number.isFinite(node.value)) {
        const text = locations.file.text.slice(node.offset, node.offset + node.length);
        fail('syntax', `number ${text} is out of range for a float64 (largest magnitude about 1.8e308)`, span(locations.file, node.offset, node.offset + node.length));
      }
      return node.value;
    default:
      return node.value;
  }
}

/** The canonical JSON text of a spec: canonical key order, two-space indent, short arrays of numbers inline. */
export function printJsonSpec(spec: ModelSpec): string {
  const text = JSON.stringify(canonicalize(spec), null, 2);
  // Keep number lists like shapes and kernel sizes on one line: "shape": [28, 28, 1].
  return text.replace(/\[\s+(-?[\d.e+-]+(?:,\s+-?[\d.e+-]+)*)\s+\]/g, (_, items: string) => `[${items.split(/,\s+/).join(', ')}]`) + '\n';
}
