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
 * and four companions for the Trainer's diagnostics, built from the same parts:
 *
 *   stepTraced       `step` with the input of every layer's nonlinearity as an
 *                    extra output (recomputed without the epilogue where it
 *                    was fused): the step `fit`'s `trace` runs every K steps.
 *   predictTraining  the training-mode forward without dropout and without
 *                    updates (batch statistics of each chunk): `predict(x, n,
 *                    { training: true })`; absent when nothing but dropout
 *                    trains differently (then it is `predict`).
 *   batchnorms       per batchnorm layer, in graph order, the inference-mode
 *                    forward cut at the layer's input: `recalibrate` computes
 *                    the statistics of that input layer by layer, each cut
 *                    reading the statistics already recomputed before it.
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
import { getActivation } from '../ops/activation.js';
import { batchnormOp } from '../ops/norm.js';
import { byRole, type OpNode, type TrainingBuilder } from '../ops/op-def.js';
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

/** A layer whose nonlinearity's input `fit` can trace. */
export interface Traceable {
  /** The spec layer (as `modelc check` names it). */
  readonly layer: string;
  /** Its nonlinearity's input in `stepTraced` (an output of it): a standalone activation's operand, or a fused `activation:`'s pre-activation. */
  readonly value: string;
}

/** A batchnorm layer as `recalibrate` sees it. */
export interface BatchnormStatistics {
  readonly layer: string;
  /** The inference-mode forward cut at the layer's input: its one output is that input (or the data input itself). */
  readonly graph: Graph;
  /** The channel axis (counting the batch dimension). */
  readonly axis: number;
  readonly movingMean: string;
  readonly movingVariance: string;
}

export interface TrainingProgram {
  readonly step: Graph;
  /** `step` with every `traceable` value as an extra output, after the step's own outputs (the same numbers). */
  readonly stepTraced: Graph;
  readonly evaluate: Graph;
  readonly predict: Graph;
  /** The training-mode forward (batch statistics, no dropout, nothing updated); absent when it is `predict`. */
  readonly predictTraining?: Graph;
  /** The layers whose nonlinearity's input can be traced, in graph order. */
  readonly traceable: readonly Traceable[];
  /** The batchnorm layers in graph order, for recalibration. */
  readonly batchnorms: readonly BatchnormStatistics[];
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
  const masks: DropoutMask[] = [];
  const modelUpdates: [string, string][] = [];
  const value = trainingForward(b, graph, masks, modelUpdates);
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
  const stepOutputs = unique([scored.loss, ...(scored.accuracy ? [scored.accuracy] : []), ...updates.map((u) => u.value)]);
  const step = passes.run(b.finish(`${graph.name}_step`, stepOutputs), trainingPipeline);
  const { graph: stepTraced, traceable } = tracedStep(
    step,
    traceableLayers(graph).map((t) => ({ layer: t.layer, value: value(t.value), activation: value(t.activation) })),
  );

  // evaluate and predict: the inference-mode forward
  const e = new GraphBuilder(graph);
  e.naming('loss', 'loss');
  const evaluated = buildLoss(e, training, graph.outputs[0]!);
  const evaluateGraph = e.finish(`${graph.name}_evaluate`, [evaluated.loss, ...(evaluated.accuracy ? [evaluated.accuracy] : [])]);
  const evaluate = ownNodes(passes.run(evaluateGraph, ['remove-dropout', ...trainingPipeline]));
  const predict = ownNodes(passes.run({ ...graph, name: `${graph.name}_predict` }, ['remove-dropout', ...trainingPipeline]));
  const predictTraining = trainingModePredict(graph);

  return {
    step,
    stepTraced,
    evaluate,
    predict,
    ...(predictTraining ? { predictTraining: ownNodes(passes.run(predictTraining, trainingPipeline)) } : {}),
    traceable,
    batchnorms: batchnormLayers(graph).map((bn, k) => ({
      ...bn,
      graph: ownNodes(passes.run({ ...graph, name: `${graph.name}_statistics_${k}`, outputs: [bn.input] }, ['remove-dropout', ...trainingPipeline])),
    })),
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

/**
 * The graph with node objects of its own. Passes keep the nodes they leave
 * unchanged, so graphs built from one graph share node objects, and code
 * generation keys per-graph facts (a node's SIMD call and its buffers) by node.
 */
function ownNodes(graph: Graph): Graph & { nodes: Node[] } {
  return { ...graph, nodes: graph.nodes.map((n) => ({ ...n })) };
}

/**
 * Appends the training-mode forward of `graph` to `b`: nodes copied with their
 * names, a `training-dependent` op replaced by its training rule (which may
 * add dropout masks and moving-statistics updates). Returns the map from the
 * inference graph's values to the training ones.
 */
function trainingForward(b: GraphBuilder, graph: Graph, masks: DropoutMask[], updates: [string, string][]): (v: string) => string {
  b.reserve(graph.nodes.map((n) => n.result));
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
    const t = trainingBuilder(b, node, masks, updates);
    renamed.set(node.result, op.training(t, { ...node, operands } as unknown as OpNode<never>));
  }
  return value;
}

/**
 * The training-mode forward without dropout, its updates dropped: batch
 * statistics but no randomness and no state. Undefined when no op other than
 * dropout trains differently (the graph would be `predict`).
 */
function trainingModePredict(graph: Graph): Graph | undefined {
  const withoutDropout = createPassManager().run(graph, ['remove-dropout']);
  if (!withoutDropout.nodes.some((n) => getOp(n.op)?.training !== undefined)) return undefined;
  const b = new GraphBuilder({ inputs: withoutDropout.inputs, params: withoutDropout.params, nodes: [] });
  const masks: DropoutMask[] = [];
  const value = trainingForward(b, withoutDropout, masks, []);
  if (masks.length > 0) return undefined; // a dropout remove-dropout had to keep (a graph output): no mask-free form
  return b.finish(`${graph.name}_predict_training`, [value(withoutDropout.outputs[0]!)]);
}

/**
 * The layers with a nonlinearity, in graph order, and its input: the operand
 * of each activation op (not `linear`) by the layer it belongs to: a
 * standalone activation layer's input, or a layer's fused `activation:`
 * applied to its pre-activation (`%dense/linear`).
 */
function traceableLayers(graph: Graph): { layer: string; value: string; activation: string }[] {
  const out: { layer: string; value: string; activation: string }[] = [];
  for (const n of graph.nodes) {
    const form = getActivation(n.op)?.form;
    if ((form === 'elementwise' || form === 'rows') && !out.some((t) => t.layer === n.layer)) out.push({ layer: n.layer, value: n.operands[0]!, activation: n.result });
  }
  return out;
}

/**
 * The traced step: the optimized `step`, node for node, with each traced value
 * as an extra output. A value that fuse-activation folded into its producer
 * (`%dense = dense(...) {epilogue=sigmoid}` where `%dense/linear` was) is
 * computed once more, by a copy of the producer without the epilogue right
 * after it. The step's own nodes stay as they are, so a traced step gives the
 * plain step's numbers bit for bit; the copy costs one layer's product on
 * traced steps only. A value neither computed nor fused (no pass does that
 * today) is not traceable.
 */
function tracedStep(step: Graph, layers: readonly { layer: string; value: string; activation: string }[]): { graph: Graph; traceable: Traceable[] } {
  const nodes = ownNodes(step).nodes;
  const computed = (v: string) => step.inputs.some((i) => i.name === v) || nodes.some((n) => n.result === v);
  const traceable: Traceable[] = [];
  for (const t of layers) {
    if (!computed(t.value)) {
      const k = nodes.findIndex((n) => n.result === t.activation && n.attrs['epilogue'] !== undefined);
      if (k < 0) continue;
      const { epilogue: _, ...attrs } = nodes[k]!.attrs;
      nodes.splice(k + 1, 0, { ...nodes[k]!, result: t.value, attrs, layer: `${t.layer} pre-activation (traced)` });
    }
    traceable.push({ layer: t.layer, value: t.value });
  }
  const outputs = unique([...step.outputs, ...traceable.map((t) => t.value)]);
  return { graph: { ...step, name: `${step.name}_traced`, nodes, outputs }, traceable };
}

/** The batchnorm nodes in graph order: layer, input, channel axis and moving statistics (by the op's operand roles). */
function batchnormLayers(graph: Graph): { layer: string; input: string; axis: number; movingMean: string; movingVariance: string }[] {
  return graph.nodes
    .filter((n) => n.op === batchnormOp.name)
    .map((n) => {
      const roles = byRole(getOp(n.op)!.operands(n.attrs as never), n.operands);
      return { layer: n.layer, input: roles['x']!, axis: n.attrs['axis'] as number, movingMean: roles['moving_mean']!, movingVariance: roles['moving_variance']! };
    });
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
