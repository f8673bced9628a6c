/**
 * What every command of the CLI shares, kept light (commander and node only)
 * so that `modelc --help` and the command table load nothing heavy: the
 * streams, the run's state, usage errors, and the option value parsers.
 */
import { InvalidArgumentError } from 'commander';
import { removeTempFiles } from '../util/fs.js';

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  color: boolean;
  /** A terminal to draw progress bars on (train); without one, progress is one line per epoch on `stderr`. */
  terminal?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** What a run ends with, set by commands that fail without a diagnostic (fmt --check). */
export interface RunState {
  exitCode: number;
  /** What a SIGINT does while a command runs that handles it itself (train); otherwise the run ends with 130. */
  interrupt?: (() => void) | undefined;
}

/** A command's view of the run: its streams and state. */
export interface CliContext {
  readonly io: Io;
  readonly state: RunState;
}

/** Usage errors found after commander's own parsing (exit 2). */
export class UsageError extends Error {}

/** Text ending in exactly one newline. */
export function printed(text: string): string {
  return text.endsWith('\n') ? text : text + '\n';
}

/** Ends the process now with `code`, leaving no temp file behind. */
export function quit(code: number): never {
  removeTempFiles();
  process.exit(code);
}

/** An --epochs or --batch-size value: a positive integer. */
export function positiveInteger(text: string): number {
  const x = Number(text);
  if (!Number.isSafeInteger(x) || x <= 0) throw new InvalidArgumentError('expected a positive integer');
  return x;
}

/** A --trace-unit value: an integer from 0. */
export function nonNegativeInteger(text: string): number {
  const x = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(x) || x < 0) throw new InvalidArgumentError('expected an integer from 0');
  return x;
}

/** A --trace value: layer names separated by commas. */
export function layerList(text: string): string[] {
  const layers = text.split(',').map((l) => l.trim());
  if (layers.some((l) => l === '')) throw new InvalidArgumentError('expected layer names separated by commas');
  return layers;
}

/** A --validation-split value: a number in [0, 1). */
export function fraction(text: string): number {
  const x = Number(text);
  if (!(x >= 0 && x < 1)) throw new InvalidArgumentError('expected a number in [0, 1)');
  return x;
}

/** A --learning-rate value: a positive finite number. */
export function positiveNumber(text: string): number {
  const x = Number(text);
  if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError('expected a positive number');
  return x;
}
