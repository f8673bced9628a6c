/**
 * Where each part of a spec came from. Both front ends (JSON and DSL) produce
 * a plain spec object plus this map from JSON-pointer paths (`/layers/3/units`)
 * to source spans, so validation and lowering locate errors the same way
 * whatever the spec was written in.
 */
import { span, type SourceFile, type Span } from '../diagnostics/source.js';

export type SpecPath = readonly (string | number)[];

export function pointer(path: SpecPath): string {
  return path.map((p) => '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

export class SpecLocations {
  private readonly values = new Map<string, Span>();
  private readonly keys = new Map<string, Span>();

  constructor(readonly file: SourceFile) {}

  /** Record the span of the value at `path` (and of its key, for object members). */
  set(path: SpecPath, start: number, end: number, keyStart?: number, keyEnd?: number): void {
    const p = pointer(path);
    this.values.set(p, span(this.file, start, end));
    if (keyStart !== undefined) this.keys.set(p, span(this.file, keyStart, keyEnd ?? keyStart));
  }

  /** The span of the value at `path`, or of its nearest located ancestor. */
  value(path: SpecPath): Span {
    for (let n = path.length; n >= 0; n--) {
      const s = this.values.get(pointer(path.slice(0, n)));
      if (s) return s;
    }
    return span(this.file, 0);
  }

  /** The span of the key of `path` (for "unknown attribute"), else of its value. */
  key(path: SpecPath): Span {
    return this.keys.get(pointer(path)) ?? this.value(path);
  }
}
