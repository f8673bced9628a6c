/**
 * The command table: every command's name, one-line description and
 * arguments. `main` loads only the module of the command being run (its
 * `loaders`), which adds the options and action to what `declare` makes; the
 * others stay stubs built from this table (enough for `modelc --help`), so a
 * command pays only for what it uses and `--help` loads no compiler at all.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';

/** Adds a command's options and action to the command `declare` made. */
export type Register = (program: Command, context: CliContext) => void;

export interface CommandInfo {
  readonly name: string;
  readonly description: string;
  /** Positional arguments: usage form and description. */
  readonly args: readonly (readonly [usage: string, description: string])[];
}

const modelFile = 'a .nn or .json model spec, a TF.js model.json, or a Keras .keras/.h5 file';

/** Every command, in the order `modelc --help` lists them. */
export const commandTable = [
  {
    name: 'check',
    description: 'validate a spec and print its layer summary (like Keras model.summary())',
    args: [['<spec>', modelFile]],
  },
  {
    name: 'ir',
    description: 'print the textual IR of a spec, optimized with -O or --passes',
    args: [['<spec>', modelFile]],
  },
  {
    name: 'verify',
    description: 'check that the optimized graph computes what the original does (reference interpreter)',
    args: [['<spec>', modelFile]],
  },
  {
    name: 'compile',
    description: 'generate a standalone TypeScript inference module (optimized by default) and/or training module',
    args: [['<specs...>', `one or more: ${modelFile} (several: one start-up, one set of files each)`]],
  },
  {
    name: 'train',
    description: 'train a spec on MNIST, a CSV or .npy data; write the trained weights, history.json, a chart and the folded inference module',
    args: [['<spec>', 'a .nn or .json model spec with a training block, or a Keras .keras/.h5 file']],
  },
  {
    name: 'predict',
    description: 'run a model on MNIST, a CSV or .npy data: print its accuracy or loss against the labels (a summary without), and write the predictions',
    args: [['<model>', modelFile]],
  },
  {
    name: 'init',
    description: 'sample the initial weights of a spec (Keras initializers, seeded) into a safetensors file',
    args: [['<spec>', modelFile]],
  },
  {
    name: 'export',
    description: 'write an ONNX model (opset 17) that onnxruntime runs, optimized with -O or --passes, or a Keras 3 .keras model',
    args: [['<spec>', modelFile]],
  },
  {
    name: 'experiments',
    description: 'run the batch-normalization experiments of the seed articles on MNIST: charts (SVG, PNG) and a summary of the measured numbers',
    args: [['[names...]', 'experiments to run, or all (without a name: list them)']],
  },
  {
    name: 'insert-bn',
    description: 'insert batch normalization after conv/dense layers of a trained model without changing its predictions (statistics from calibration data); writes the spec and all its weights',
    args: [['<model>', modelFile]],
  },
  {
    name: 'import',
    description: 'import a Keras model (.keras, legacy .h5) or a TF.js LayersModel (model.json and its weight shards) as a JSON spec and safetensors weights',
    args: [['<model>', 'a Keras .keras or .h5 file (model.save), a Keras model config (.json), or a TF.js model.json']],
  },
  {
    name: 'convert',
    description: 'convert a spec between the .nn DSL and JSON (round-trips exactly)',
    args: [['<spec>', modelFile]],
  },
  {
    name: 'fmt',
    description: 'print specs in canonical form (comments kept in .nn files)',
    args: [['<specs...>', '.nn or .json model specs']],
  },
] as const satisfies readonly CommandInfo[];

export type CommandName = (typeof commandTable)[number]['name'];

/** Declares command `name` on `program` from the table: name, description, arguments. */
export function declare(program: Command, name: string): Command {
  const info = (commandTable as readonly CommandInfo[]).find((c) => c.name === name);
  if (info === undefined) throw new Error(`no command '${name}' in the command table`);
  const command = program.command(name).description(info.description);
  for (const [usage, description] of info.args) command.argument(usage, description);
  return command;
}
