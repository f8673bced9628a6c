/**
 * `modelc experiments [name...] [-o dir]`: runs the batch-normalization
 * experiments (src/experiments/) by name, or `all`, with a progress bar on a
 * terminal (one line per step otherwise), writing each into `<dir>/<name>/`
 * (summary.md, results.json, charts as SVG and PNG). Without a name it lists
 * them. The experiments module loads only when one runs.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { dirname, join, relative } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { seedValue } from './options.js';
import { declare } from './commands.js';

/** The experiments' names and claims, without loading them (kept equal to src/experiments/index.ts by a test). */
export const experimentList: readonly (readonly [name: string, claim: string])[] = [
  ['ics', "without BN a sigmoid's input distribution moves during training; with BN it is stable and training is faster"],
  ['learning-rate', 'BN lets a network train at much higher learning rates; BN before vs after the activation'],
  ['renorm', 'at batch 4, training-mode and inference-mode BN disagree; batch renormalization narrows the gap'],
  ['insert-bn', 'BN added to a trained CNN without changing it, fine-tuned at a 10x higher rate, folded away'],
];

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  terminal?: NodeJS.WritableStream & { isTTY?: boolean };
}

interface ExperimentsOptions {
  output: string;
  report?: string;
  seed: string;
  scale: number;
}

function nameValue(value: string, previous: string[] | undefined): string[] {
  if (value !== 'all' && !experimentList.some(([name]) => name === value)) {
    throw new InvalidArgumentError(`no experiment '${value}'; the experiments are ${experimentList.map(([n]) => n).join(', ')} (or all)`);
  }
  return [...(previous ?? []), value];
}

function scaleValue(text: string): number {
  const x = Number(text);
  if (!(x > 0 && x <= 1)) throw new InvalidArgumentError('expected a number in (0, 1]');
  return x;
}

/** `failed()` marks the run as failed (exit 1) when an experiment's own checks do not all hold. */
export function registerExperiments(program: Command, io: Io, failed: () => void): void {
  const command = declare(program, 'experiments');
  command.registeredArguments[0]!.argParser(nameValue);
  command
    .option('-o, --output <dir>', 'output directory: one folder per experiment', 'experiments-output')
    .addOption(new Option('--seed <n>', 'seed of the initial weights and shuffling').default('1').argParser(seedValue))
    .option('--report <file>', 'also write one markdown report of every experiment run, its charts linked from their folders')
    .addOption(new Option('--scale <f>', 'fraction of the full run (data and steps) for a quick look').default(1).argParser(scaleValue))
    .action(async (names: string[] | undefined, opts: ExperimentsOptions) => {
      if (!names || names.length === 0) {
        io.stdout(experimentList.map(([name, claim]) => `${name.padEnd(16)} ${claim}\n`).join('') + 'run one with: modelc experiments <name> (or all)\n');
        return;
      }
      const chosen = names.includes('all') ? experimentList.map(([n]) => n) : [...new Set(names)];
      const { experiments, runExperiment } = await import('../experiments/index.js');
      const sections: string[] = [];
      for (const name of chosen) {
        const experiment = experiments.find((e) => e.name === name)!;
        io.stderr(`${experiment.title}\n`);
        const bar = io.terminal ? new cliProgress.SingleBar({ stream: io.terminal, format: '  {bar} {value}/{total} {what}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined;
        let last = '';
        const result = await (async () => {
          try {
            return await runExperiment(experiment, {
              output: join(opts.output, name),
              seed: Number(opts.seed),
              scale: opts.scale,
              progress: (done, total, what) => {
                if (bar) {
                  if (done === 0 && last === '') bar.start(total, 0, { what });
                  bar.update(done, { what });
                } else if (what !== last) io.stderr(`  [${done}/${total}] ${what}\n`);
                last = what;
              },
            });
          } finally {
            bar?.stop();
          }
        })();
        for (const file of result.files) io.stdout(file + '\n');
        const broken = result.checks.filter((c) => !c.ok).length;
        io.stderr(`${name}: ${result.seconds.toFixed(0)} s, ${result.checks.length - broken} of ${result.checks.length} checks hold\n`);
        if (broken > 0) failed();
        if (opts.report !== undefined) {
          // the summary's images are relative to its folder; the report's must be relative to the report
          const folder = relative(dirname(opts.report), join(opts.output, name)).split('\\').join('/') || '.';
          sections.push(result.summary.replace(/^# /, '## ').replace(/!\[([^\]]*)\]\(([^)]+)\)/g, (_, alt: string, file: string) => `![${alt}](${folder}/${file})`));
        }
      }
      if (opts.report !== undefined) {
        const header = `# Experiments\n\nWritten by \`modelc experiments ${names.join(' ')} -o ${opts.output} --report ${opts.report}\` (seed ${opts.seed}, scale ${opts.scale}); do not edit by hand, rerun it. Each section is the experiment's summary.md; results.json next to its charts holds every number.\n\n`;
        writeFileAtomic(opts.report, header + sections.join('\n'));
        io.stdout(opts.report + '\n');
      }
    });
}
