/**
 * Import warnings on the command line: an import that kept what it could
 * not express (an initializer, a Dropout noise_shape) says so on stderr,
 * located like an error, and the command goes on.
 */
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import { renderDiagnostics } from '../diagnostics/render.js';

export type Stderr = (text: string) => void;

/** Prints `warnings` (if any) to `stderr`, one rendered diagnostic each. */
export function printWarnings(warnings: readonly Diagnostic[] | undefined, stderr: Stderr, color = false): void {
  if (warnings && warnings.length > 0) stderr(renderDiagnostics(warnings, { color }) + '\n');
}

/** `value`, after printing its `warnings` to `stderr`: for `await loadSpecAsync(...)` and the like. */
export function warned<T extends { readonly warnings?: readonly Diagnostic[] | undefined }>(value: T, stderr: Stderr, color = false): T {
  printWarnings(value.warnings, stderr, color);
  return value;
}
