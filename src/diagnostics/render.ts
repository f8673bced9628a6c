/**
 * Renders diagnostics the way compilers do:
 *
 *   examples/bad.nn:3:9: error: unknown layer type 'dens'; did you mean 'dense'?
 *     dens(64)
 *     ^~~~
 */
import pc from 'picocolors';
import type { Diagnostic } from './diagnostic.js';

export interface RenderOptions {
  color?: boolean;
}

export function renderDiagnostic(d: Diagnostic, options: RenderOptions = {}): string {
  const c = pc.createColors(options.color ?? false);
  const head = `${c.red(c.bold('error'))}: ${c.bold(d.message)}`;
  if (!d.span) return d.path ? `${d.path}: ${head}` : `modelc: ${head}`;
  const { file, start, end } = d.span;
  const { line, col } = file.position(start);
  const text = file.lineText(line).replace(/\t/g, ' ');
  const endPos = file.position(end);
  const width = endPos.line === line ? Math.max(1, endPos.col - col) : Math.max(1, text.length - col + 1);
  const caret = ' '.repeat(col - 1) + '^' + '~'.repeat(Math.max(0, width - 1));
  return `${file.path}:${line}:${col}: ${head}\n  ${text}\n  ${c.green(caret)}`;
}

export function renderDiagnostics(ds: readonly Diagnostic[], options: RenderOptions = {}): string {
  return ds.map((d) => renderDiagnostic(d, options)).join('\n');
}
