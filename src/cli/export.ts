/**
 * `modelc export <spec> -o model.onnx`: spec -> weights -> passes (with -O or
 * --passes) -> an ONNX model (opset 17) that onnxruntime runs.
 * `modelc export <spec> -o model.keras` (or `--format keras`): the spec as a
 * Keras 3 model with the same weights, before any pass, for a Keras user to
 * load and train further. The format is `--format`, else the extension of
 * `-o` (`.keras`), else ONNX. The file is made in memory and written
 * atomically.
 */
import { Option, type Command } from 'commander';
import { createRequire } from 'node:module';
import { pipelineFor } from '../compile/index.js';
import { fail } from '../diagnostics/diagnostic.js';
import { exportKeras } from '../export/keras.js';
import { exportOnnx } from '../formats/onnx.js';
import { lowerFileAsync } from '../frontend/load.js';
import { warned } from './warnings.js';
import { declare } from './commands.js';
import { writeFileAtomic } from '../util/fs.js';
import { optimize, pipelineOptions, withWeights, type OptimizeOptions } from './optimize.js';

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

export type ExportFormat = 'onnx' | 'keras';

export interface ExportOptions extends OptimizeOptions {
  output: string;
  format?: ExportFormat;
}

/** `--format`, else `keras` for a `.keras` output, else `onnx`. */
export function exportFormat(opts: Pick<ExportOptions, 'output' | 'format'>): ExportFormat {
  return opts.format ?? (/\.keras$/i.test(opts.output) ? 'keras' : 'onnx');
}

/** Exports `path` to `opts.output`; returns the path written. IR printing and --explain go to `stderr`. */
export async function exportCommand(path: string, opts: ExportOptions, stderr: (text: string) => void = () => {}): Promise<string> {
  const loaded = warned(await lowerFileAsync(path, { allowNonfinite: opts.allowNonfinite ?? false }), stderr);
  const original = withWeights(loaded.graph, opts);
  const passes = pipelineFor(opts, false);
  if (exportFormat(opts) === 'keras') {
    // Keras gets the model as written (batchnorm stays batchnorm, so it can train on)
    if (passes.length > 0) fail('export', 'a Keras export is the model before any pass: drop -O and --passes');
    const bytes = await exportKeras({ ...loaded, graph: original }, { producerVersion: version });
    writeFileAtomic(opts.output, bytes);
    return opts.output;
  }
  const graph = passes.length > 0 ? optimize(original, passes, opts, stderr).optimized : original;
  writeFileAtomic(opts.output, exportOnnx(graph, { producerVersion: version }));
  return opts.output;
}

/** Declares `modelc export` on `program`; it prints the path written. */
export function registerExport(program: Command, io: { stdout: (text: string) => void; stderr: (text: string) => void }): Command {
  return pipelineOptions(
    declare(program, 'export')
      .requiredOption('-o, --output <file>', 'the .onnx or .keras file to write')
      .addOption(new Option('--format <format>', 'onnx or keras (default: from the extension of -o, else onnx)').choices(['onnx', 'keras'])),
    false,
  ).action(async (path: string, opts: ExportOptions) => {
    io.stdout((await exportCommand(path, opts, io.stderr)) + '\n');
  });
}
