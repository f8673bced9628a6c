/**
 * `modelc export <spec> -o model.onnx`: spec -> weights -> passes (with -O or
 * --passes) -> an ONNX model (opset 17) that onnxruntime runs. The file is
 * made in memory and written atomically.
 */
import type { Command } from 'commander';
import { createRequire } from 'node:module';
import { pipelineFor } from '../compile/index.js';
import { exportOnnx } from '../formats/onnx.js';
import { lowerFile } from '../frontend/load.js';
import { writeFileAtomic } from '../util/fs.js';
import { optimize, pipelineOptions, withWeights, type OptimizeOptions } from './optimize.js';

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

export interface ExportOptions extends OptimizeOptions {
  output: string;
}

/** Exports `path` to `opts.output`; returns the path written. IR printing and --explain go to `stderr`. */
export function exportCommand(path: string, opts: ExportOptions, stderr: (text: string) => void = () => {}): string {
  const original = withWeights(lowerFile(path).graph, opts);
  const passes = pipelineFor(opts, false);
  const graph = passes.length > 0 ? optimize(original, passes, opts, stderr).optimized : original;
  writeFileAtomic(opts.output, exportOnnx(graph, { producerVersion: version }));
  return opts.output;
}

/** Declares `modelc export` on `program`; it prints the path written. */
export function registerExport(program: Command, io: { stdout: (text: string) => void; stderr: (text: string) => void }): Command {
  return pipelineOptions(
    program
      .command('export')
      .description('write an ONNX model (opset 17) that onnxruntime runs, optimized with -O or --passes')
      .argument('<spec>', 'a .nn or .json model spec')
      .requiredOption('-o, --output <file>', 'the .onnx file to write'),
    false,
  ).action((path: string, opts: ExportOptions) => {
    io.stdout(exportCommand(path, opts, io.stderr) + '\n');
  });
}
