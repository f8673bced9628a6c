/**
 * The training program of a model: three IR graphs built from the lowered
 * (unoptimized) inference graph and the spec's training block, each then
 * optimized by the ordinary passes and emitted by the ordinary code generator.
 *
 *   step      one optimizer step: the training-mode forward (batch statistics,
 *             dropout masks), the loss (and accuracy), the backward pass and
 *             the optimizer's updates. Outputs: loss, accuracy?, and the new
 *             value of every updated parameter (weights, moving statistics,
 *             optimizer slots, the iteration count).
 *   evaluate  the inference-mode forward (moving statistics, no dropout), the
 *             loss and accuracy. Outputs: loss, accuracy?.
 *   predict   the inference-mode forward. Outputs: the prediction.
 *
 * Algorithm of `step`:
 *  1. Copy the forward nodes; a `training-dependent` op is replaced by its
 *     training rule (batchnorm -> batchnorm_train + moving-average updates,
 *     dropout -> multiply by a mask input).
 *  2. Loss and metric on the prediction (`buildLoss`, which fuses a softmax
 *     or sigmoid right before a crossentropy into the logits form).
 *  3. Reverse-mode gradients of the loss for every trainable parameter.
 *  4. The optimizer's update of each parameter and its slots.
 *  5. Passes: cse, fuse-activation, dce (const-fold would freeze the
 *     parameters: it does not run).
 * A parameter updated by the step is only read by it: the trainer writes the
 * new values back after the step, all at once, once every value is finite.
 */
import { fail, q } from '../diagnostics/diagnostic.js';
import type { TrainingSpec } from '../spec/training.js';
import type { Graph, Node } from '../ir/graph.js';
import type { TensorType } from '../ir/types.js';
import type { OpNode, TrainingBuilder } from '../ops/op-def.js';
import { getOp } from '../ops/registry.js';
import { createPassManager } from '../passes/pipeline.js';
import { GraphBuilder } from './builder.js';
import { buildLoss } from './loss.js';
import { buildOptimizer, resolveOptimizer, type ResolvedOptimizer } from './optimizers.js';
import { gradients } from './reverse.js';

/** A step input the trainer fills with an inverted-dropout mask before each step. */
export interface DropoutMask {
  readonly input: string;
  readonly rate: number;
  /** The layer's own seed, else the trainer's seed decides. */
  readonly seed: number | null;
  /** The dropout layer (provenance), for messages and the stream of its numbers. */
  readonly layer: string;
}

export interface TrainingProgram {
  readonly step: Graph;
  readonly evaluate: Graph;
  readonly predict: Graph;
  /** The data input and the labels input (both graphs that take labels call it the same). */
  readonly data: string;
  readonly labels: string;
  readonly labelsType: TensorType;
  readonly loss: string;
  readonly accuracy?: string;
  readonly masks: readonly DropoutMask[];
  /** After each step, `param` takes the step's output `value`. */
  readonly updates: readonly { readonly param: string; readonly value: string }[];
  /** The model's own weights (getWeights/saveWeights), in the inference graph's order. */
  readonly weights: readonly string[];
  readonly optimizer: ResolvedOptimizer;
  readonly training: TrainingSpec;
}

export interface TrainingOptions {
  /** Overrides the spec's learning rate. */
  readonly learningRate?: number;
}

/** The passes every training graph goes through, in order. */
export const trainingPipeline = ['remove-identity', 'cse', 'fuse-activation', 'dce'];

export function buildTrainingProgram(graph: Graph, training: TrainingSpec | undefined, options: TrainingOptions = {}): TrainingProgram {
  if (!training) fail('train', `model ${q(graph.name)} has no training block (loss and optimizer): add one to train it`);
  if (graph.inputs.length !== 1 || graph.outputs.length !== 1) {
    fail('train', `the trainer takes one input and one output; model ${q(graph.name)} has ${graph.inputs.length} inputs and ${graph.outputs.length} outputs`);
  }
  for (const p of graph.params) {
    if (!p.value) fail('weights', `parameter ${q(p.name)} has no value: load weights or sample the initializers first`);
  }
  const resolved = resolveOptimizer(training.optimizer);
  const optimizer = options.learningRate === undefined ? resolved : { ...resolved, learning_rate: options.learningRate };
  const passes = createPassManager();

  // step: 1. training-mode forward
  const b = new GraphBuilder({ inputs: graph.inputs, params: graph.params, nodes: [] });
  b.reserve(graph.nodes.map((n) => n.result));
  const masks: DropoutMask[] = [];
  const modelUpdates: [string, string][] = [];
  const renamed = new Map<string, string>();
  const value = (v: string) => renamed.get(v) ?? v;
  for (const node of graph.nodes) {
    const operands = node.operands.map(value);
    const op = getOp(node.op)!;
    if (op.training === undefined) {
      b.copy(node, operands);
      continue;
    }
    b.release(node.result).naming(node.result, node.layer);
    const t = trainingBuilder(b, node, masks, modelUpdates);
    renamed.set(node.result, op.training(t, { ...node, operands } as unknown as OpNode<never>));
  }
  // 2. loss and metric
  b.naming('loss', 'loss');
  const scored = buildLoss(b, training, value(graph.outputs[0]!));
  // 3. gradients of the trainable parameters
  const trainable = graph.params.filter((p) => p.trainable).map((p) => p.name);
  const grads = gradients(b, scored.loss, trainable);
  // 4. optimizer updates
  b.naming('optimizer', 'optimizer');
  const { updates: optimizerUpdates } = buildOptimizer(
    b,
    optimizer,
    trainable.map((param) => ({ param, grad: grads.get(param)! })),
    options.learningRate,
  );
  const updates = [...modelUpdates, ...optimizerUpdates].map(([param, v]) => ({ param, value: v }));
  const stepOutputs = [scored.loss, ...(scored.accuracy ? [scored.accuracy] : []), ...updates.map((u) => u.value)];
  const step = passes.run(b.finish(`${graph.name}_step`, unique(stepOutputs)), trainingPipeline);

  // evaluate and predict: the inference-mode forward
  const e = new GraphBuilder(graph);
  e.naming('loss', 'loss');
  const evaluated = buildLoss(e, training, graph.outputs[0]!);
  const evaluate = passes.run(
    e.finish(`${graph.name}_evaluate`, [evaluated.loss, ...(evaluated.accuracy ? [evaluated.accuracy] : [])]),
    ['remove-dropout', ...trainingPipeline],
  );
  const predict = passes.run({ ...graph, name: `${graph.name}_predict` }, ['remove-dropout', ...trainingPipeline]);

  return {
    step,
    evaluate,
    predict,
    data: graph.inputs[0]!.name,
    labels: scored.labels,
    labelsType: b.typeOf(scored.labels),
    loss: scored.loss,
    ...(scored.accuracy ? { accuracy: scored.accuracy } : {}),
    masks,
    updates,
    weights: graph.params.map((p) => p.name),
    optimizer,
    training,
  };
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** The TrainingBuilder a training rule sees for one node. */
function trainingBuilder(b: GraphBuilder, node: Node, masks: DropoutMask[], updates: [string, string][]): TrainingBuilder {
  return {
    op: (op, operands, attrs, name) => b.op(op, operands, attrs, name),
    typeOf: (v) => b.typeOf(v),
    dropoutMask: (type, rate, seed) => {
      const input = b.addInput(`${node.result}/mask`, type);
      masks.push({ input, rate, seed, layer: node.layer });
      return input;
    },
    update: (param, v) => {
      updates.push([param, v]);
    },
  };
}
