/**
 * Renders diagnostics the way compilers do:
 *
 *   examples/bad.nn:3:9: error: unknown layer type 'dens'; did you mean 'dense'?
 *     dens(64)
 *     ^~~~
 *
 * A diagnostic with severity `warning` says `warning:` instead.
 */
import pc from 'picocolors';
import type { Diagnostic } from './diagnostic.js';

export interface RenderOptions {
  color?: boolean;
}

export function renderDiagnostic(d: Diagnostic, options: RenderOptions = {}): string {
  const c = pc.createColors(options.color ?? false);
  const label = d.severity === 'warning' ? c.yellow(c.bold('warning')) : c.red(c.bold('error'));
  const head = `${label}: ${c.bold(d.message)}`;
  if (!d.span) return d.path ? `${d.path}: ${head}` : `modelc: ${head}`;
  const { file, start, end } = d.span;
  const { line, col } = file.position(start);
  const full = file.lineText(line).replace(/\t/g, ' ');
  const endPos = file.position(end);
  const fullWidth = endPos.line === line ? Math.max(1, endPos.col - col) : Math.max(1, full.length - col + 1);
  const { text, at, width } = excerpt(full, col - 1, fullWidth);
  const caret = ' '.repeat(at) + '^' + '~'.repeat(Math.max(0, width - 1));
  return `${file.path}:${line}:${col}: ${head}\n  ${text}\n  ${c.green(caret)}`;
}

/** Lines longer than this (minified JSON such as a TF.js model.json) are shown as a window around the caret. */
const MAX_LINE = 120;

/** The part of a long line around `[start, start + width)`, with `...` where it is cut. */
function excerpt(line: string, start: number, width: number): { text: string; at: number; width: number } {
  if (line.length <= MAX_LINE) return { text: line, at: start, width };
  const from = Math.max(0, start - 40);
  const to = Math.min(line.length, from + MAX_LINE);
  const shown = Math.max(1, Math.min(width, to - start));
  const lead = from > 0 ? '...' : '';
  return { text: lead + line.slice(from, to) + (to < line.length ? '...' : ''), at: lead.length + start - from, width: shown };
}

export function renderDiagnostics(ds: readonly Diagnostic[], options: RenderOptions = {}): string {
  return ds.map((d) => renderDiagnostic(d, options)).join('\n');
}
