/**
 * Turns the generated parser's errors into located `syntax` diagnostics with
 * readable messages. Peggy reports the furthest position it could not pass
 * and every token it tried there; we name the token found there, collapse
 * the alternatives into what a person would say ("a value", "a statement"),
 * and add the context the alternatives imply:
 *
 *   dense(64 relu)   ->  expected ',' or ')' after argument, found 'relu'
 */
import { ModelcError } from '../../diagnostics/diagnostic.js';
import { span, type SourceFile } from '../../diagnostics/source.js';
import type { Expectation, SyntaxError as PeggySyntaxError } from './parser.generated.js';

/** The characters that may appear outside strings, names and comments. */
const dslChar = /[A-Za-z0-9_ \t\r\n#"`()[\]{},:;=\->.+]/;

/** Expectations that all start a value, said together as "a value". */
const valueStarts = ['number', 'string', 'name', "'['", "'{'", "'true'", "'false'", "'null'", "'model'", "'input'", "'output'", "'train'", "'reuse'"];
const statementStarts = ["'input'", "'output'", "'train'", "'reuse'", 'name'];

function describe(e: Expectation): string {
  switch (e.type) {
    case 'literal':
      return `'${e.text}'`;
    case 'other':
      return e.description === 'end of statement' ? 'end of line' : e.description;
    case 'end':
      return 'end of file';
    default:
      return 'a character';
  }
}

/** The expected alternatives, collapsed and in a stable order. */
function alternatives(expected: readonly Expectation[]): string[] {
  let items = [...new Set(expected.map(describe))];
  const collapse = (group: readonly string[], as: string) => {
    items = [as, ...items.filter((i) => !group.includes(i))];
  };
  if (items.includes('number')) collapse(valueStarts, 'a value');
  else if (items.includes("'input'")) collapse(statementStarts, 'a statement');
  else if (items.includes("'reuse'")) collapse(["'reuse'", 'name'], 'a layer call');
  // After a name argument `x`, `x: value` was possible too; not worth saying.
  if (items.includes("','") && items.length > 2) items = items.filter((i) => i !== "':'");
  // Separators before closers: "',' or ')'" reads better than the other way round.
  return items.sort((a, b) => rank(a) - rank(b));
}

function rank(item: string): number {
  return ["'->'", "':'", "','", 'end of line', "';'", "')'", "']'", "'}'"].indexOf(item);
}

/** "after argument" and the like, from the closers on offer. */
function context(items: readonly string[]): string {
  if (!items.includes("','")) return '';
  if (items.includes("')'")) return ' after argument';
  if (items.includes("']'")) return ' after list element';
  if (items.includes("'}'")) return ' after member';
  return '';
}

function joinOr(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? 'nothing') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** The token at `offset`, as shown in a message, and its length. */
export function tokenAt(text: string, offset: number): { shown: string; length: number } {
  if (offset >= text.length) return { shown: 'end of file', length: 0 };
  const c = text[offset]!;
  if (c === '\n' || c === '\r') return { shown: 'end of line', length: 0 };
  const word = /^(?:[A-Za-z0-9_]+|-?[0-9][0-9.eE+-]*|->)/.exec(text.slice(offset))?.[0];
  if (word) return { shown: `'${word}'`, length: word.length };
  const cp = text.codePointAt(offset)!;
  const char = String.fromCodePoint(cp);
  const code = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  const shown = cp > 0x20 && cp < 0x7f ? `'${char}'` : /[\p{L}\p{N}\p{S}\p{P}]/u.test(char) ? `'${char}' (${code})` : code;
  return { shown, length: char.length };
}

export function syntaxError(file: SourceFile, e: PeggySyntaxError): ModelcError {
  const start = e.location.start.offset;
  // Errors raised by grammar actions (`error(...)`) carry their own message and span.
  if (!e.expected) return new ModelcError({ code: 'syntax', message: e.message, span: span(file, start, e.location.end.offset) });
  const token = tokenAt(file.text, start);
  const at = span(file, start, start + token.length);
  if (token.length > 0 && !dslChar.test(file.text[start]!)) {
    const letter = /\p{L}/u.test(String.fromCodePoint(file.text.codePointAt(start)!));
    const hint = letter ? '; names with characters other than A-Z, a-z, 0-9 and _ are written in backticks' : '';
    return new ModelcError({ code: 'syntax', message: `unexpected character ${token.shown}${hint}`, span: at });
  }
  const items = alternatives(e.expected);
  if (token.shown === 'end of file' && (items.includes('end of line') || items.includes("'}'"))) {
    return new ModelcError({ code: 'syntax', message: "unexpected end of file: missing '}'", span: at });
  }
  const message = `expected ${joinOr(items)}${context(items)}, found ${token.shown}`;
  return new ModelcError({ code: 'syntax', message, span: at });
}
