/**
 * Parsers of option values shared by several commands. A bad value is a
 * usage error: commander reports an `InvalidArgumentError` as
 * `error: option '--seed <n>' argument 'abc' is invalid. expected ...` and the
 * CLI exits 2, before any work starts.
 */
import { InvalidArgumentError } from 'commander';
import { checkFileStem } from '../compile/index.js';
import { ModelcError } from '../diagnostics/diagnostic.js';
import { parsePassList } from '../compile/pipeline.js';
import { createPassManager } from '../passes/pipeline.js';

/** A --seed value: a decimal integer that a double holds exactly (|n| < 2^53); kept as written. */
export function seedValue(text: string): string {
  const trimmed = text.trim();
  if (!/^[-+]?\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) {
    throw new InvalidArgumentError('expected an integer between -(2^53 - 1) and 2^53 - 1');
  }
  return trimmed;
}

/** The pass manager's own message for an unknown id, as a usage error. */
function checkPass(id: string): void {
  try {
    createPassManager().get(id);
  } catch (err) {
    if (err instanceof ModelcError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

/** A --passes value: a comma-separated list of known pass ids; kept as written. */
export function passList(text: string): string {
  for (const id of parsePassList(text)) checkPass(id);
  return text;
}

/** One --print-after value (the option is variadic: commander hands over the list so far). */
export function passNames(text: string, previous: string[] | undefined): string[] {
  checkPass(text);
  return [...(previous ?? []), text];
}

/** A --name value: a plain file name (the stem of the files written). */
export function fileStemValue(text: string): string {
  try {
    checkFileStem(text, '--name');
  } catch (err) {
    if (err instanceof ModelcError) throw new InvalidArgumentError("expected a plain file name: letters, digits, '_', '-' and '.'");
    throw err;
  }
  return text;
}
