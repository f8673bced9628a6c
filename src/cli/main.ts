/**
 * The `modelc` command line: commander wiring only. Each command calls the
 * library and prints; every user error is a rendered diagnostic with exit
 * code 1, usage errors exit 2, and no stack trace ever reaches the user.
 * Only the module of the command being run is loaded (see commands.ts).
 */
import { Command, CommanderError, Help } from 'commander';
import { createRequire } from 'node:module';
import { ModelcError } from '../diagnostics/diagnostic.js';
import { renderDiagnostics } from '../diagnostics/render.js';
import { commandTable, declare, type CommandName, type Register } from './commands.js';
import { quit, UsageError, type Io, type RunState } from './context.js';

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** Where each command's options and action live: imported only when that command runs. */
const loaders: Record<CommandName, () => Promise<Register>> = {
  check: async () => (await import('./spec-commands.js')).registerCheck,
  ir: async () => (await import('./spec-commands.js')).registerIr,
  verify: async () => (await import('./spec-commands.js')).registerVerify,
  compile: async () => (await import('./compile.js')).registerCompile,
  train: async () => (await import('./train.js')).registerTrain,
  predict: async () => (await import('./predict.js')).registerPredict,
  init: async () => {
    const { registerInit } = await import('./init.js');
    return (program, { io }) => registerInit(program, io);
  },
  export: async () => {
    const { registerExport } = await import('./export.js');
    return (program, { io }) => void registerExport(program, io);
  },
  experiments: async () => {
    const { registerExperiments } = await import('./experiments.js');
    return (program, { io, state }) => registerExperiments(program, io, () => (state.exitCode = 1));
  },
  'insert-bn': async () => {
    const { registerInsertBn } = await import('./insert-bn.js');
    return (program, { io }) => void registerInsertBn(program, io);
  },
  import: async () => (await import('./import.js')).registerImport,
  convert: async () => (await import('./spec-commands.js')).registerConvert,
  fmt: async () => (await import('./spec-commands.js')).registerFmt,
};

const defaultIo = (): Io => {
  guardStreams();
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    color: Boolean(process.stderr.isTTY) && !process.env['NO_COLOR'],
    ...(process.stderr.isTTY ? { terminal: process.stderr } : {}),
  };
};

let streamsGuarded = false;

/**
 * A closed pipe on stdout (`modelc ir big.nn | head -1`) ends the run quietly
 * with exit 0, as `git` and `ls` do; any other stdout error ends it with exit
 * 1 and a one-line message. Errors on stderr are dropped: there is nowhere
 * left to report them, and the run's own outcome decides the exit code.
 */
function guardStreams(): void {
  if (streamsGuarded) return;
  streamsGuarded = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') quit(0);
    process.stderr.write(`modelc: cannot write to standard output: ${err.message}\n`);
    quit(1);
  });
  process.stderr.on('error', () => {});
}

/** The command `args` (argv after node and the script) runs: its name, or the one `help` asks about. */
function selectedCommand(args: readonly string[]): string | undefined {
  const i = args.findIndex((a) => !a.startsWith('-'));
  if (i < 0) return undefined;
  return args[i] === 'help' ? args.slice(i + 1).find((a) => !a.startsWith('-')) : args[i];
}

/**
 * The program with every command of the table: the one being run with its
 * options and action (its module loaded now), the others as stubs that only
 * name and describe themselves for `modelc --help`.
 */
async function build(io: Io, state: RunState, selected: string | undefined): Promise<Command> {
  const program = new Command('modelc')
    .description('Compile neural-network specs (.nn DSL, JSON, a TF.js model.json, or a Keras .keras/.h5 file) to a typed IR and standalone TypeScript.')
    .version(version)
    .showSuggestionAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .configureHelp({
      // Stubs have no options yet: list every command as it is used.
      subcommandTerm: (cmd) => {
        const info = commandTable.find((c) => c.name === cmd.name());
        return info ? [cmd.name(), '[options]', ...info.args.map(([usage]) => usage)].join(' ') : new Help().subcommandTerm(cmd);
      },
    })
    .exitOverride();
  for (const { name } of commandTable) {
    if (name === selected) (await loaders[name]())(program, { io, state });
    else declare(program, name);
  }
  return program;
}

/** Runs the CLI on `argv` (as process.argv: node, script, args...); returns the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  const state: RunState = { exitCode: 0 };
  // Ctrl-C and SIGTERM end the run (train handles its first Ctrl-C itself), removing temp files first.
  const onSigint = () => (state.interrupt ? state.interrupt() : quit(130));
  const onSigterm = () => quit(143);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    const program = await build(io, state, selectedCommand(argv.slice(2)));
    await program.parseAsync([...argv]);
    return state.exitCode;
  } catch (err) {
    if (err instanceof ModelcError) {
      io.stderr(renderDiagnostics(err.diagnostics, { color: io.color }) + '\n');
      return 1;
    }
    if (err instanceof CommanderError) {
      // Help and version exit 0; everything else commander reports is a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n`);
      return 2;
    }
    io.stderr(`modelc: internal error: ${(err as Error)?.message ?? String(err)}\n(this is a bug in modelc; please report it with the input that caused it)\n`);
    return 70;
  } finally {
    await handlePendingSignals();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}

/**
 * Lets a signal that arrived during synchronous work (writing the files) reach
 * its handler before the handlers go: a run interrupted while it wrote ends
 * with 130 (its files complete, no temp file) rather than 0. The loop polls
 * for signals between turns; the first immediate can run before that poll.
 */
async function handlePendingSignals(): Promise<void> {
  for (let turn = 0; turn < 2; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
}
