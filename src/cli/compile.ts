/**
 * `modelc compile`: the library's `compile()` with the command's flags, then
 * its files written atomically, one path printed per line, so that a failure
 * leaves no partial output behind.
 */
import { checkFileStem, compile } from '../compile/index.js';
import { writeIntoDirectory } from '../util/fs.js';
import { explainText, printBetweenPasses, weightsOf, type OptimizeOptions } from './optimize.js';
import { printWarnings } from './warnings.js';

export interface CompileOptions extends OptimizeOptions {
  output: string;
  name?: string;
  emit: 'ts' | 'js' | 'both';
  weightsMode: 'embed' | 'external';
  emitTest?: boolean;
  /** Which modules: the inference module, the training module (`<name>.train.ts`), or both. */
  target?: 'inference' | 'training' | 'both';
  learningRate?: number;
  /** Dense and convolution kernels also as WebAssembly SIMD. */
  simd?: boolean;
}

/** Compiles `path`; returns the paths written, in order. */
export async function compileCommand(path: string, opts: CompileOptions, stderr: (t: string) => void): Promise<string[]> {
  if (opts.name !== undefined) checkFileStem(opts.name, '--name');
  const result = await compile(
    { path },
    {
      name: opts.name,
      emit: opts.emit,
      weightsMode: opts.weightsMode,
      target: opts.target,
      learningRate: opts.learningRate,
      simd: opts.simd,
      emitTest: opts.emitTest,
      passes: opts.passes,
      optimize: opts.optimize,
      ...weightsOf(opts),
      allowNonfinite: opts.allowNonfinite ?? false,
      afterPass: printBetweenPasses(opts, stderr),
    },
  );
  printWarnings(result.warnings, stderr);
  if (opts.explain && result.passes.length > 0) stderr(explainText(result.explain));
  return writeIntoDirectory(opts.output, result.files.map((f) => [f.path, f.contents] as const));
}
