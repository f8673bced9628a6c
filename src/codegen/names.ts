/**
 * Names and text from specs made safe for generated code.
 *
 * Spec names are arbitrary strings. In generated code they appear only as
 *  - identifiers, through `Namer` (letters, digits and `_`; never a reserved
 *    word; unique within the module),
 *  - string literals, through `str` (JSON escaping plus the two line
 *    separators that JSON leaves raw),
 *  - comments, through `commentText` (no line terminators, no `*\/`).
 * so nothing a spec names can end a literal or a comment early.
 */

/** ECMAScript reserved words (strict mode included) and names that would shadow globals the module uses. */
const reserved = new Set(
  (
    'break case catch class const continue debugger default delete do else enum export extends false finally for ' +
    'function if import in instanceof new null return super switch this throw true try typeof var void while with ' +
    'yield let static implements interface package private protected public await async of get set as any number ' +
    'string boolean symbol type declare module namespace require undefined NaN Infinity arguments eval Math Object ' +
    'Array Float32Array Float64Array Uint8Array DataView Error RangeError TypeError JSON Number String globalThis'
  ).split(' '),
);

/** Letters, digits and `_` only; never empty, never starting with a digit, never a reserved word. */
export function safeIdentifier(raw: string): string {
  let id = raw.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  if (id === '') id = 'v';
  if (/^[0-9]/.test(id)) id = `_${id}`;
  if (reserved.has(id)) id = `${id}_`;
  return id;
}

/** Hands out identifiers that are unique in one scope. */
export class Namer {
  private readonly used: Set<string>;

  constructor(taken: Iterable<string> = []) {
    this.used = new Set(taken);
  }

  /** A namer for an inner scope: avoids every name handed out here so far, and `locals`. */
  child(locals: Iterable<string> = []): Namer {
    return new Namer([...this.used, ...locals]);
  }

  /** A fresh identifier that reads like `raw`: `conv2d/kernel` -> `conv2d_kernel`, then `conv2d_kernel_2`, ... */
  name(raw: string): string {
    const base = safeIdentifier(raw);
    let id = base;
    for (let i = 2; this.used.has(id) || reserved.has(id); i++) id = `${base}_${i}`;
    this.used.add(id);
    return id;
  }
}

/** A JavaScript string literal for any string. */
export function str(s: string): string {
  return JSON.stringify(s).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Text that is safe inside a `//` or `/** *\/` comment: escapes shown as in a string literal. */
export function commentText(s: string): string {
  const escaped = JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"');
  return escaped.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029').replace(/\*\//g, '*\\/');
}
