/**
 * The training module: a printer over a TrainingProgram's graphs that
 * assembles, with ts-morph, a standalone TypeScript module exporting
 * `class Trainer` (trainOnBatch, fit, evaluate, predict, recalibrate,
 * get/set/saveWeights).
 *
 * Layout, top to bottom:
 *   header comment (model, loss, optimizer, how to use it)
 *   inputs / outputs, Logs, TrainerOptions, FitOptions, trace and
 *   recalibrate options
 *   class Trainer      parameters and optimizer state, scratch, the public
 *                      methods, and one private forward per graph (step, the
 *                      traced step, evaluate, predict, predict in training
 *                      mode, each batchnorm input's cut) calling the kernels
 *   kernels            one function per distinct kernel body over all graphs
 *   helpers, tables    PARAMS (the model's weights), SCRATCH, MASKS, TRACEABLE, WEIGHTS
 *
 * The graphs share one set of scratch buffers (they never run at the same
 * time): slot k of each graph's buffer plan is buffer k, sized for the
 * largest; per-example slots come first, fixed-size ones (gradients,
 * updates, losses) after them. The traced step's results are pinned to the
 * buffers where the step leaves them, so one commit serves both.
 */
import { Project, Scope, VariableDeclarationKind, type SourceFile } from 'ts-morph';
import { fail } from '../diagnostics/diagnostic.js';
import type { BatchnormStatistics, TrainingProgram } from '../autodiff/training.js';
import type { Graph } from '../ir/graph.js';
import { aroundAxis } from '../ir/tensor.js';
import type { TensorType } from '../ir/types.js';
import { perExample } from '../ops/emit.js';
import { base64Length, dataExpression, placeholderFor } from './format.js';
import { forwardBody, shapesOf, type ModelNames } from './inference.js';
import { addKernels, collectHelpers, kernelRecords, nameKernels, type KernelRecord } from './kernels.js';
import { commentText, Namer, str } from './names.js';
import { planBuffers, type BufferPlan, type Placement } from './plan.js';
import { base64BytesSource, checkBatchSizeSource, checkInputSource, decodeWeightsSource, embeddedWeightsSource, safetensorsReader, writeSafetensorsSource } from './runtime.js';
import { planTrainingSimd, trainingSimdBindParams, trainingSimdConstructor, trainingSimdGrow, trainingSimdHooks, trainingSimdLocals, trainingSimdThreads, type TrainingSimd } from './simd-train.js';
import { simdModuleNames } from './simd.js';
import { simdRuntimeSource } from './wasm/index.js';
import { dropoutMaskSource, finiteSource, momentsSource, nextTurnSource, randomSource, recordTraceSource, startTraceSource, trainerLoops } from './trainer-runtime.js';

export interface TrainingModuleOptions {
  readonly name?: string;
  readonly source?: string;
  /** The dense layers' forward and gradient products also as WebAssembly SIMD (`--simd`), used where the engine supports it. */
  readonly simd?: boolean;
}

export interface TrainingUnit {
  readonly text: string;
  /** The model's weights (embedded as the initial values), in PARAMS order. */
  readonly weights: readonly { readonly name: string; readonly shape: readonly number[]; readonly value: Float32Array }[];
  readonly placeholder?: string;
  /** Every kernel function of the module (the three graphs'), with its plan. */
  readonly kernels: readonly KernelRecord[];
}

const moduleNames = [
  'inputs', 'outputs', 'Trainer', 'Params', 'Logs', 'TrainerOptions', 'FitOptions', 'FitAsyncOptions', 'PARAMS', 'SCRATCH', 'PER_EXAMPLE_SLOTS', 'MASKS',
  'WEIGHTS', 'LEARNING_RATE', 'embedded', 'embeddedWeights', 'decodeWeights', 'base64Bytes', 'readSafetensors', 'writeSafetensors', 'utf8',
  'checkBatchSize', 'checkInput', 'mulberry32', 'dropoutMask', 'streamSeed', 'allFinite', 'examples', 'own', 'fromRecord', 'nextTurn',
  'TraceOptions', 'TraceSeries', 'FitResult', 'PredictOptions', 'RecalibrateOptions', 'TRACEABLE', 'Trace', 'startTrace', 'recordTrace',
  'percentiles', 'select', 'addMoments',
];

/**
 * Values of plan `plan` that must sit in the shared buffer where plan `like`
 * leaves its values `theirs` (the traced step's results where the step's
 * code reads them, so one commit serves both).
 */
interface Pin {
  readonly plan: number;
  readonly like: number;
  readonly pairs: readonly (readonly [own: string, theirs: string])[];
}

/**
 * The plans with slots renumbered into one shared space; the shared sizes.
 * Per-example slots come first, fixed-size ones after them; a plan's slots
 * keep their order within each kind, except that pinned slots take the
 * shared slot of their partner (a plan pins only to an earlier one).
 */
function sharePlans(plans: readonly BufferPlan[], pins: readonly Pin[] = []): { plans: BufferPlan[]; sizes: number[]; perExampleSlots: number } {
  const perExampleSlots = Math.max(...plans.map((p) => p.slotBatched.filter((b) => b).length));
  const maps: number[][] = [];
  plans.forEach((plan, i) => {
    // Pinned slots first (checked one to one), then the others in order, skipping the shared slots taken.
    const map: number[] = [];
    for (const pin of pins.filter((p) => p.plan === i)) {
      for (const [own, theirs] of pin.pairs) {
        const k = slotOf(plan, own);
        const shared = maps[pin.like]![slotOf(plans[pin.like]!, theirs)]!;
        if ((map[k] ?? shared) !== shared || map.some((m, j) => m === shared && j !== k)) fail('verify', `cannot pin '${own}' to the buffer of '${theirs}'`);
        map[k] = shared;
      }
    }
    const taken = new Set(map.filter((m) => m !== undefined));
    const next = { batched: 0, fixed: perExampleSlots };
    plan.slotBatched.forEach((b, k) => {
      if (map[k] !== undefined) return;
      const kind = b ? 'batched' : 'fixed';
      while (taken.has(next[kind])) next[kind]++;
      map[k] = next[kind]++;
    });
    maps.push(map);
  });
  const sizes: number[] = [];
  const shared = plans.map((plan, i) => {
    const map = maps[i]!;
    plan.slotSizes.forEach((size, k) => (sizes[map[k]!] = Math.max(sizes[map[k]!] ?? 0, size)));
    const placement = new Map<string, Placement>();
    for (const [v, at] of plan.placement) placement.set(v, at.kind === 'slot' ? { kind: 'slot', slot: map[at.slot]! } : at);
    return { ...plan, placement };
  });
  for (let k = 0; k < sizes.length; k++) sizes[k] ??= 0;
  return { plans: shared, sizes, perExampleSlots };
}

/** The scratch buffer holding a graph value (codegen needs every read-out value computed). */
function slotOf(plan: BufferPlan, value: string): number {
  const at = plan.placement.get(value);
  if (at?.kind !== 'slot') fail('verify', `training value '${value}' is not computed by a kernel`);
  return at.slot;
}

/** Code reading a batched value after its graph ran: its scratch buffer, or the data input `x` itself. */
function valueCode(plan: BufferPlan, value: string, x: string, scratch = 'this.scratch'): string {
  const at = plan.placement.get(value);
  if (at?.kind === 'input') return x;
  return `${scratch}[${slotOf(plan, value)}]!`;
}

export function buildTraining(program: TrainingProgram, options: TrainingModuleOptions = {}): TrainingUnit {
  // The step, its traced form, evaluate, predict, predict in training mode, the batchnorm inputs' cuts.
  const graphs = [program.step, program.stepTraced, program.evaluate, program.predict, ...(program.predictTraining ? [program.predictTraining] : []), ...program.batchnorms.map((bn) => bn.graph)];
  const stepResults = program.step.outputs.map((o, k) => [program.stepTraced.outputs[k]!, o] as const);
  const { plans, sizes, perExampleSlots } = sharePlans(graphs.map(planBuffers), [{ plan: 1, like: 0, pairs: stepResults }]);
  const [stepPlan, tracedPlan, evalPlan, predictPlan] = plans as [BufferPlan, BufferPlan, BufferPlan, BufferPlan];
  const predictTrainingPlan = program.predictTraining ? plans[4] : undefined;
  const statisticsPlans = plans.slice(program.predictTraining ? 5 : 4);
  const project = new Project({ useInMemoryFileSystem: true });
  const file = project.createSourceFile('module.ts', '', { overwrite: true });
  const top = new Namer(options.simd ? [...moduleNames, ...simdModuleNames] : moduleNames);
  const helpers = collectHelpers(plans);
  for (const h of helpers) top.name(h.name);
  const kernels = nameKernels(plans, top);

  // Every parameter any graph reads: the model's weights first (PARAMS), then the trainer's state.
  const allParams = new Map(graphs.flatMap((g) => g.params).map((p) => [p.name, p]));
  const weights = program.weights.filter((w) => allParams.has(w)).map((name) => {
    const p = allParams.get(name)!;
    if (!p.value) fail('weights', `parameter '${name}' has no value`);
    return { name, shape: p.type.shape as number[], value: p.value };
  });
  const state = [...allParams.values()].filter((p) => !program.weights.includes(p.name));
  const props = new Namer();
  const propOf = new Map<string, string>([...weights.map((w) => w.name), ...state.map((p) => p.name)].map((n) => [n, props.name(n)]));

  // Floats of every parameter, in propOf order (the SIMD runtime's parameter pointers).
  const paramFloats = [...propOf].map(([name, prop]) => ({ prop, floats: allParams.get(name)!.type.shape.reduce<number>((a, d) => a * (d as number), 1) }));
  const simd = options.simd
    ? planTrainingSimd(
        graphs.map((graph, k) => ({ graph, plan: plans[k]! })),
        (node) => kernels.get(node)!.name,
        new Map([...propOf.keys()].map((name, k) => [name, k])),
      )
    : undefined;

  // The header and the tables in one text: ts-morph loses track of statements added one by one after a lone comment.
  file.addStatements(`${header(program, options)}\n${tables(program)}`);
  const method = (graph: Graph, plan: BufferPlan, name: string) => {
    const locals = top.child(['n', 'p', 's', 'x', 'y', 'batchSize', ...(simd ? trainingSimdLocals : [])]);
    const names: ModelNames = { propOf, inputIds: graph.inputs.map((i) => locals.name(i.name)), locals };
    return {
      name,
      scope: Scope.Private,
      docs: [`${graph.name}: every node in order; results stay in the scratch buffers.`],
      parameters: [{ name: 'n', type: 'number' }, ...names.inputIds.map((id) => ({ name: id, type: 'Float32Array' }))],
      returnType: 'void',
      statements: forwardBody(graph, plan, kernels, names, simd ? trainingSimdHooks(simd, graph) : undefined),
    };
  };
  const stateInit = state.map((p) => {
    const size = p.type.shape.reduce<number>((a, d) => a * (d as number), 1);
    if (p.name === 'optimizer/learning_rate') return `${propOf.get(p.name)}: Float32Array.of(options.learningRate ?? LEARNING_RATE)`;
    const v = p.value;
    const constant = v && v.every((e) => e === v[0]) ? v[0]! : 0;
    return `${propOf.get(p.name)}: ${constant === 0 ? `new Float32Array(${size})` : `new Float32Array(${size}).fill(${constant})`}`;
  });
  addTrainer(file, program, {
    stepPlan, tracedPlan, evalPlan, predictPlan, statisticsPlans, propOf, weights, stateInit, method, paramFloats,
    ...(predictTrainingPlan ? { predictTrainingPlan } : {}),
    ...(simd ? { simd } : {}),
  });
  addKernels(file, kernels);
  file.addStatements([
    ...helpers.map((h) => h.source),
    checkBatchSizeSource, checkInputSource, randomSource, ...(program.masks.length > 0 ? [dropoutMaskSource] : []), finiteSource, nextTurnSource,
    startTraceSource, ...(program.traceable.length > 0 ? [recordTraceSource] : []), ...(program.batchnorms.length > 0 ? [momentsSource] : []),
  ]);
  file.addStatements([
    safetensorsReader('the trainer reads exactly the model weights in PARAMS (Keras names, moving statistics included)'),
    writeSafetensorsSource,
  ]);
  file.addVariableStatement({
    declarationKind: VariableDeclarationKind.Const,
    docs: ['The model weights (getWeights, setWeights, saveWeights): safetensors name and shape, in the order of the embedded data.'],
    declarations: [{ name: 'PARAMS', type: 'ReadonlyArray<readonly [name: string, shape: readonly number[]]>', initializer: `[${weights.map((w) => `[${str(w.name)}, [${w.shape.join(', ')}]]`).join(', ')}]` }],
  });
  file.addStatements([
    `/** Floats of each scratch buffer: per example for the first ${perExampleSlots} (activations and their gradients), in all for the rest. */`,
    `const SCRATCH: readonly number[] = [${sizes.join(', ')}];`,
    `const PER_EXAMPLE_SLOTS = ${perExampleSlots};`,
  ]);
  const placeholder = placeholderFor(file.getFullText(), 'MODELC_WEIGHTS_');
  const floats = weights.reduce((s, w) => s + w.value.length, 0);
  if (simd) file.addStatements(simdRuntimeSource(simd.module, simd.splits));
  file.addStatements([
    base64BytesSource,
    decodeWeightsSource,
    embeddedWeightsSource,
    `/** ${floats} float32 initial weights, little-endian, base64. */`,
    `const WEIGHTS = ${dataExpression(placeholder, base64Length(floats))};`,
  ]);
  const records = kernelRecords(kernels, simd && { module: simd.module, kernelOf: (node) => simd.kernels.get(node), columnsOf: (node) => simd.columns.get(node) });
  return { text: file.getFullText(), weights, placeholder, kernels: records };
}

function header(program: TrainingProgram, options: TrainingModuleOptions): string {
  const name = options.name ?? program.predict.name.replace(/_predict$/, '');
  const opt = program.optimizer;
  const lines = [
    `${commentText(name)}: training module generated by modelc${options.source ? ` from ${commentText(options.source)}` : ''}.`,
    'Do not edit: regenerate it with `modelc compile --target training`.',
    '',
    `Loss:      ${program.training.loss}${program.accuracy ? ' (metric: accuracy)' : ''}`,
    `Optimizer: ${commentText(JSON.stringify(opt))}`,
    `Dropout:   ${program.masks.length === 0 ? 'none' : program.masks.map((m) => `${commentText(m.layer)} (rate ${m.rate})`).join(', ')}`,
    '',
    'Standalone: imports nothing, runs in Node and browsers. Arrays are float32,',
    'batch-major and row-major (NHWC for images). Batch normalization trains on',
    'batch statistics and updates its moving statistics; predict and evaluate',
    'use the moving statistics and no dropout.',
    '',
    '  const trainer = new Trainer({ seed: 1 });',
    '  const loss = trainer.trainOnBatch(x, y, batchSize);',
    '  const { history } = trainer.fit(x, y, { epochs: 5, batchSize: 32 });',
    '  await trainer.fitAsync(x, y, { epochs: 5, batchSize: 32, signal });  // yields between batches',
    '  const bytes = trainer.saveWeights();  // for modelc compile --weights',
    '  trainer.recalibrate(x);  // precise BN: moving statistics = the statistics of each batchnorm input over x',
    '  trainer.fit(x, y, { epochs: 5, batchSize: 32, trace: { layers: ["dense"], every: 50 } });  // percentiles of nonlinearity inputs',
    'Initial weights: embedded (those modelc compiled with); `seed` fixes dropout masks and shuffling.',
  ];
  return `/**\n${lines.map((l) => (l ? ` * ${l}` : ' *')).join('\n')}\n */`;
}

function tables(program: TrainingProgram): string {
  const shapes = shapesOf(program.predict, 'inputs').concat(shapesOf(program.predict, 'outputs'));
  return [
    '/** The input `x` and the output `predict` returns: per-example shapes (NHWC). */',
    `export const inputs: ReadonlyArray<{ name: string; shape: readonly number[] }> = [{ name: ${str(shapes[0]!.name)}, shape: [${shapes[0]!.shape.join(', ')}] }];`,
    `export const outputs: ReadonlyArray<{ name: string; shape: readonly number[] }> = [{ name: ${str(shapes[1]!.name)}, shape: [${shapes[1]!.shape.join(', ')}] }];`,
    `/** What a step or an epoch reports${program.accuracy ? '' : ' (this model has no accuracy metric)'}. */`,
    'export interface Logs { loss: number; accuracy?: number; val_loss?: number; val_accuracy?: number }',
    'export interface TrainerOptions {',
    '  /** Seeds the dropout masks and fit\'s shuffling (default 0). */',
    '  seed?: number;',
    '  /** Initial weights instead of the embedded ones: safetensors bytes, or arrays by name (every weight in PARAMS). */',
    '  weights?: Uint8Array | Record<string, Float32Array>;',
    '  /** Overrides the learning rate of the spec. */',
    '  learningRate?: number;',
    '}',
    'export interface FitOptions {',
    '  epochs: number;',
    '  batchSize: number;',
    '  /** Shuffle the examples before each epoch (default true). */',
    '  shuffle?: boolean;',
    '  validationData?: [Float32Array, Float32Array];',
    '  onBatchEnd?: (batch: number, logs: Logs) => void;',
    '  onEpochEnd?: (epoch: number, logs: Logs) => void;',
    '  /** Record the percentiles of these layers\' nonlinearity inputs every `every` steps (fit returns them as `trace`). */',
    '  trace?: TraceOptions;',
    '}',
    '/**',
    ' * fit\'s trace (Ioffe & Szegedy 2015, Figure 1): for each layer (spec names, as `modelc check` prints',
    ' * them), the 15th, 50th and 85th percentiles of the input of its nonlinearity (a standalone activation\'s',
    ' * input, or the pre-activation of a fused `activation:`) over the whole batch, in training mode, on steps',
    ' * 1, 1 + every, 1 + 2 * every, ... (the trainer\'s step count).',
    ` * Traceable layers here: ${program.traceable.length === 0 ? 'none' : commentText(program.traceable.map((t) => t.layer).join(', '))}.`,
    ' */',
    'export interface TraceOptions {',
    '  layers: string[];',
    '  every: number;',
    '  /** Follow one unit (index on the last axis) of each layer: percentiles over the batch (and positions) of that unit only. */',
    '  unit?: number;',
    '}',
    '/** One traced layer: the steps recorded and the percentiles at each. */',
    'export interface TraceSeries {',
    '  step: number[];',
    '  p15: number[];',
    '  p50: number[];',
    '  p85: number[];',
    '}',
    'export interface FitResult {',
    '  history: Record<string, number[]>;',
    '  /** With the trace option: the series of each traced layer. */',
    '  trace?: Record<string, TraceSeries>;',
    '}',
    'export interface FitAsyncOptions extends FitOptions {',
    '  /** Stops after the current batch once aborted (an AbortSignal, or anything with `aborted`). */',
    '  signal?: { readonly aborted: boolean };',
    '}',
    'export interface PredictOptions {',
    `  /** Training mode: each chunk of \`batchSize\` normalized by its own batch statistics, as in a step${program.predictTraining ? '' : ' (this model has no batch normalization: the same as inference)'}; no dropout, nothing updated. */`,
    '  training?: boolean;',
    '}',
    'export interface RecalibrateOptions {',
    '  /** Examples per forward pass (default 32): memory, not the result. */',
    '  batchSize?: number;',
    '  /** Only the first `batches` batches of x (default: every example). */',
    '  batches?: number;',
    '}',
    `/** The default learning rate (the spec's, or modelc compile --learning-rate). */`,
    `const LEARNING_RATE = ${program.optimizer.learning_rate};`,
    `/** Each dropout layer's mask: floats per example, rate, and the layer's own seed (null: from the trainer's seed). */`,
    `const MASKS: ReadonlyArray<readonly [size: number, rate: number, seed: number | null]> = [${program.masks.map((m) => `[${perExample(program.step.inputs.find((i) => i.name === m.input)!.type)}, ${m.rate}, ${m.seed}]`).join(', ')}];`,
    '/** The layers fit can trace: spec layer name, floats per example of its nonlinearity\'s input, its units (last axis). */',
    `const TRACEABLE: ReadonlyArray<readonly [layer: string, floats: number, units: number]> = [${program.traceable
      .map((t) => {
        const type = typeIn(program.stepTraced, t.value);
        return `[${str(t.layer)}, ${perExample(type)}, ${type.shape[type.shape.length - 1] as number}]`;
      })
      .join(', ')}];`,
  ].join('\n');
}

interface TrainerParts {
  readonly stepPlan: BufferPlan;
  /** The traced step's plan: its results in the step's buffers (pinned), the traced values in others. */
  readonly tracedPlan: BufferPlan;
  readonly evalPlan: BufferPlan;
  readonly predictPlan: BufferPlan;
  readonly predictTrainingPlan?: BufferPlan;
  /** Per batchnorm layer, the plan of the forward cut at its input. */
  readonly statisticsPlans: readonly BufferPlan[];
  readonly propOf: ReadonlyMap<string, string>;
  readonly weights: TrainingUnit['weights'];
  readonly stateInit: readonly string[];
  readonly method: (graph: Graph, plan: BufferPlan, name: string) => object;
  readonly paramFloats: readonly { readonly prop: string; readonly floats: number }[];
  readonly simd?: TrainingSimd;
}

function addTrainer(file: SourceFile, program: TrainingProgram, parts: TrainerParts): void {
  const { stepPlan, tracedPlan, evalPlan, predictPlan, predictTrainingPlan, propOf, weights, simd } = parts;
  const inSize = perExample(program.step.inputs.find((i) => i.name === program.data)!.type);
  const labelSize = perExample(program.labelsType);
  const prediction = program.predict.outputs[0]!;
  const outSize = perExample(program.predict.nodes.find((n) => n.result === prediction)?.type ?? program.predict.inputs[0]!.type);
  const acc = program.accuracy !== undefined;
  const dropout = program.masks.length > 0;
  const tracing = program.traceable.length > 0;
  const loops = trainerLoops({ inSize, labelSize, outSize, accuracy: acc, tracing });
  const weightProps = weights.map((w) => `this.p.${propOf.get(w.name)}`);
  // The step's inputs in graph order: the data, the dropout masks, the labels.
  const stepArgs = program.step.inputs.map((i) => {
    if (i.name === program.data) return 'x';
    if (i.name === program.labels) return 'y';
    const k = program.masks.findIndex((m) => m.input === i.name);
    if (k < 0) fail('verify', `unexpected step input '${i.name}'`);
    return `this.masks[${k}]!`;
  });
  const evalArgs = program.evaluate.inputs.map((i) => (i.name === program.data ? 'x' : 'y'));
  const updates = program.updates.map((u) => ({ ...u, slot: slotOf(stepPlan, u.value), size: allSize(program.step, u.param) }));
  // A traced step runs the traced step graph instead: the same values, its results in the same buffers.
  const forward = tracing
    ? [
        'const traced = trace !== undefined && trace.layers.length > 0 && this.steps % trace.every === 0;',
        `if (traced) this.stepTracedForward(batchSize, ${stepArgs.join(', ')});`,
        `else this.stepForward(batchSize, ${stepArgs.join(', ')});`,
      ]
    : [`this.stepForward(batchSize, ${stepArgs.join(', ')});`];
  const tracedValues = program.traceable.map((t) => valueCode(tracedPlan, t.value, 'x', 's'));
  const trainStep = [
    'checkBatchSize(batchSize);',
    `checkInput(x, batchSize, ${inSize}, "x");`,
    `checkInput(y, batchSize, ${labelSize}, "y (labels)");`,
    'if (batchSize > this.capacity) this.grow(batchSize);',
    ...program.masks.map((_, k) => `dropoutMask(this.masks[${k}]!, batchSize * MASKS[${k}]![0], MASKS[${k}]![1], this.maskState, ${k});`),
    ...forward,
    'const s = this.scratch;',
    `const loss = s[${slotOf(stepPlan, program.loss)}]![0]!;`,
    'const step = this.steps + 1;',
    'const nonFinite = (what: string) => new Error("trainOnBatch: step " + step + " produced a non-finite value in " + what + "; the weights are kept as they were before the step");',
    'if (!Number.isFinite(loss)) throw nonFinite("the loss (" + loss + ")");',
    ...updates.map((u) => `if (!allFinite(s[${u.slot}]!, ${u.size})) throw nonFinite(${str(`the new value of ${u.param}`)});`),
    '// Every value is finite: commit the step.',
    ...updates.map((u) => `this.p.${propOf.get(u.param)}.set(s[${u.slot}]!.subarray(0, ${u.size}));`),
    ...(acc ? [`this.lastAccuracy = s[${slotOf(stepPlan, program.accuracy!)}]![0]!;`] : []),
    ...(tracing ? [`if (traced) recordTrace(trace, step, [${tracedValues.join(', ')}], batchSize);`] : []),
    'this.steps = step;',
    'return loss;',
  ];
  const xy = [{ name: 'x', type: 'Float32Array' }, { name: 'y', type: 'Float32Array' }];
  const trainOnBatch = tracing ? ['return this.trainStep(x, y, batchSize, undefined);'] : trainStep;
  const methods = [
    { name: 'trainOnBatch', docs: ['One optimizer step on `batchSize` examples; returns the loss of that batch computed in the step (before the update). Throws on a non-finite loss or weight, keeping the weights from before the step.'], parameters: [...xy, { name: 'batchSize', type: 'number' }], returnType: 'number', statements: trainOnBatch },
    ...(tracing ? [{ name: 'trainStep', scope: Scope.Private, docs: ['trainOnBatch, recording the trace on its steps when fit traces.'], parameters: [...xy, { name: 'batchSize', type: 'number' }, { name: 'trace', type: 'Trace | undefined' }], returnType: 'number', statements: trainStep }] : []),
    { name: 'fit', docs: ['Trains for `epochs` over every example in batches (the last may be partial); returns the per-epoch history (and the trace, when asked for).'], parameters: [...xy, { name: 'options', type: 'FitOptions' }], returnType: 'FitResult', statements: loops.fit },
    { name: 'fitAsync', isAsync: true, docs: ['fit that lets the event loop run between batches (progress output, signal handlers, a browser\'s UI) and stops after the current batch when `options.signal` is aborted; `history` (and `trace`) hold what was completed.'], parameters: [...xy, { name: 'options', type: 'FitAsyncOptions' }], returnType: 'Promise<FitResult & { stopped: boolean }>', statements: loops.fitAsync },
    { name: 'evaluate', docs: ['Loss (and accuracy) in inference mode over every example, in chunks of `batchSize`: means weighted by chunk size.'], parameters: [...xy, { name: 'batchSize', type: 'number' }], returnType: '{ loss: number; accuracy?: number }', statements: loops.evaluate },
    { name: 'predict', docs: ['The model\'s output for every example of `x`, in chunks of `batchSize`: in inference mode (moving statistics, no dropout), or with `training: true` by each chunk\'s batch statistics (no dropout, nothing updated).'], parameters: [{ name: 'x', type: 'Float32Array' }, { name: 'batchSize', type: 'number' }, { name: 'options', type: 'PredictOptions', initializer: '{}' }], returnType: 'Float32Array', statements: loops.predict },
    recalibrate(program, parts, inSize),
    { name: 'getWeights', docs: ['Copies of every model weight by name (moving statistics included; no optimizer state).'], parameters: [], returnType: 'Record<string, Float32Array>', statements: [`return { ${weights.map((w, k) => `[${str(w.name)}]: ${weightProps[k]}.slice()`).join(', ')} };`] },
    { name: 'setWeights', docs: ['Replaces every model weight (all of PARAMS must be given); the optimizer state is kept.'], parameters: [{ name: 'weights', type: 'Record<string, Float32Array>' }], returnType: 'void', statements: ['const w = fromRecord(weights);', ...weightProps.map((p, k) => `${p}.set(w[${k}]!);`)] },
    { name: 'saveWeights', docs: ['The model weights as safetensors bytes (Keras names), loadable by `modelc compile --weights`.'], parameters: [], returnType: 'Uint8Array', statements: [`return writeSafetensors(PARAMS.map(([name, shape], k) => [name, shape, [${weightProps.join(', ')}][k]!] as const), { format: "pt", steps: String(this.steps) });`] },
    { name: 'fitSteps', scope: Scope.Private, isGenerator: true, docs: ['The epoch and batch loops of fit and fitAsync: yields after every batch; fills `history` as epochs end (and the trace as steps go).'], parameters: [...xy, { name: 'options', type: 'FitOptions' }, { name: 'history', type: 'Record<string, number[]>' }, ...(tracing ? [{ name: 'trace', type: 'Trace | undefined' }] : [])], returnType: 'Generator<void, void, void>', statements: loops.fitSteps },
    { name: 'evaluateBatch', scope: Scope.Private, parameters: [{ name: 'n', type: 'number' }, { name: 'x', type: 'Float32Array' }, { name: 'y', type: 'Float32Array' }], returnType: acc ? '[number, number]' : '[number]', statements: [`this.evaluateForward(n, ${evalArgs.join(', ')});`, `return [this.scratch[${slotOf(evalPlan, program.loss)}]![0]!${acc ? `, this.scratch[${slotOf(evalPlan, program.accuracy!)}]![0]!` : ''}];`] },
    {
      name: 'predictBatch',
      scope: Scope.Private,
      parameters: [{ name: 'n', type: 'number' }, { name: 'x', type: 'Float32Array' }, { name: predictTrainingPlan ? 'training' : '_training', type: 'boolean' }],
      returnType: 'Float32Array',
      statements: predictTrainingPlan
        ? [
            `if (training) this.predictTrainingForward(n, x);`,
            'else this.predictForward(n, x);',
            `return ${either(valueCode(predictTrainingPlan, program.predictTraining!.outputs[0]!, 'x'), valueCode(predictPlan, prediction, 'x'))}.subarray(0, n * ${outSize});`,
          ]
        : ['// Without batch normalization, training mode without dropout is inference mode.', 'this.predictForward(n, x);', `return ${valueCode(predictPlan, prediction, 'x')}.subarray(0, n * ${outSize});`],
    },
    ...(program.batchnorms.length > 0 ? [{
      name: 'recalibrateLayer',
      scope: Scope.Private,
      docs: ['Sets one batchnorm layer\'s moving statistics to the mean and biased variance of its input over the first `count` examples of x, which `forward` computes chunk by chunk (per example: outer x channels x inner floats, the channel axis in the middle).'],
      parameters: [...xy.slice(0, 1), { name: 'count', type: 'number' }, { name: 'batchSize', type: 'number' }, { name: 'layer', type: 'string' }, { name: 'forward', type: '(n: number, x: Float32Array) => Float32Array' }, { name: '[outer, channels, inner]', type: 'readonly [number, number, number]' }, { name: 'mean', type: 'Float32Array' }, { name: 'variance', type: 'Float32Array' }],
      returnType: 'void',
      statements: loops.recalibrateLayer,
    }] : []),
    { name: 'grow', scope: Scope.Private, parameters: [{ name: 'batchSize', type: 'number' }], returnType: 'void', statements: [...(simd ? trainingSimdGrow(simd) : ['this.scratch = SCRATCH.map((size, k) => new Float32Array(k < PER_EXAMPLE_SLOTS ? size * batchSize : size));']), ...(dropout ? ['this.masks = MASKS.map(([size]) => new Float32Array(size * batchSize));'] : []), 'this.capacity = batchSize;'] },
    ...(simd ? trainingSimdThreads(simd).methods : []),
    ...(simd ? [{ name: 'bindParams', scope: Scope.Private, docs: ['Views of every parameter in the SIMD memory (taken again after it grows).'], parameters: [{ name: 'simd', type: 'SimdRuntime' }], returnType: 'Params', statements: trainingSimdBindParams(parts.paramFloats) }] : []),
    parts.method(program.step, stepPlan, 'stepForward'),
    ...(tracing ? [parts.method(program.stepTraced, tracedPlan, 'stepTracedForward')] : []),
    parts.method(program.evaluate, evalPlan, 'evaluateForward'),
    parts.method(program.predict, predictPlan, 'predictForward'),
    ...(predictTrainingPlan ? [parts.method(program.predictTraining!, predictTrainingPlan, 'predictTrainingForward')] : []),
    ...program.batchnorms.flatMap((bn, k) => (statisticsInput(bn, parts.statisticsPlans[k]!) ? [parts.method(bn.graph, parts.statisticsPlans[k]!, `statisticsForward${k}`)] : [])),
  ];
  file.addInterface({
    name: 'Params',
    docs: ['The model weights (Keras layouts) and the trainer state (optimizer slots, learning rate, step count).'],
    properties: [...propOf].map(([name, prop]) => ({ name: prop, type: 'Float32Array', isReadonly: true, docs: [commentText(name)] })),
  });
  file.addClass({
    name: 'Trainer',
    isExported: true,
    docs: ['The model in training: its weights, the optimizer state, and reusable scratch buffers. One call at a time per instance.'],
    properties: [
      { name: 'p', scope: Scope.Private, isReadonly: simd === undefined, type: 'Params' },
      ...(simd
        ? [
            { name: 'simd', scope: Scope.Private, isReadonly: true, type: 'SimdRuntime | undefined', docs: ['The WebAssembly SIMD kernels, or undefined where the engine lacks them.'] },
            { name: 'pp', scope: Scope.Private, type: 'number[]', initializer: '[]', docs: ['Byte offsets of the parameters in the SIMD memory, in Params order.'] },
            { name: 'ptrs', scope: Scope.Private, type: 'number[]', initializer: '[]', docs: ['Byte offsets of the scratch buffers in the SIMD memory.'] },
            ...(simd.columnFloats > 0
              ? [{ name: 'columns', scope: Scope.Private, initializer: '0', docs: ['Byte offset of the column buffer: the windows of a convolution as GEMM rows (im2col), or their gradient.'] }]
              : []),
            ...(simd.transposedFloats > 0
              ? [{ name: 'transposed', scope: Scope.Private, initializer: '0', docs: ['Byte offset of the scratch where the dx kernels transpose a layer kernel.'] }]
              : []),
            ...(simd.staged.length > 0
              ? [
                  { name: 'stagedPtrs', scope: Scope.Private, type: 'number[]', initializer: '[]', docs: ['Byte offsets of the inputs SIMD kernels read, copied in per call.'] },
                  { name: 'staged', scope: Scope.Private, type: 'Float32Array[]', initializer: '[]', docs: ['Views of stagedPtrs.'] },
                ]
              : []),
          ]
        : []),
      { name: 'scratch', scope: Scope.Private, type: 'Float32Array[]', initializer: '[]' },
      ...(dropout ? [{ name: 'masks', scope: Scope.Private, type: 'Float32Array[]', initializer: '[]' }] : []),
      { name: 'capacity', scope: Scope.Private, initializer: '0' },
      { name: 'steps', scope: Scope.Private, initializer: '0', docs: ['Steps taken so far.'] },
      ...(acc ? [{ name: 'lastAccuracy', scope: Scope.Private, initializer: '0' }] : []),
      ...(dropout ? [{ name: 'maskState', scope: Scope.Private, isReadonly: true, type: 'Uint32Array', docs: ['The mulberry32 state of each dropout layer\'s mask stream.'] }] : []),
      { name: 'shuffleRandom', scope: Scope.Private, isReadonly: true, type: '() => number' },
    ],
    ctors: [{
      parameters: [{ name: 'options', type: 'TrainerOptions', initializer: '{}' }],
      statements: [
        'const w = options.weights === undefined ? embeddedWeights() : options.weights instanceof Uint8Array ? readSafetensors(options.weights) : fromRecord(options.weights);',
        `this.p = { ${[...weights.map((wt, k) => `${propOf.get(wt.name)}: Float32Array.from(w[${k}]!)`), ...parts.stateInit].join(', ')} };`,
        ...(simd ? trainingSimdConstructor(parts.paramFloats) : []),
        'const seed = options.seed ?? 0;',
        ...(dropout ? ['this.maskState = Uint32Array.from(MASKS, ([, , own], k) => own ?? streamSeed(seed, k));'] : []),
        'this.shuffleRandom = mulberry32(streamSeed(seed, MASKS.length));',
      ],
    }],
  });
  const cls = file.getClassOrThrow('Trainer');
  const lr = `this.p.${propOf.get('optimizer/learning_rate')}[0]`;
  cls.addGetAccessor({ name: 'learningRate', docs: ['The learning rate of the next steps.'], returnType: 'number', statements: [`return ${lr}!;`] });
  cls.addSetAccessor({ name: 'learningRate', parameters: [{ name: 'value', type: 'number' }], statements: [`${lr} = value;`] });
  if (simd) cls.addGetAccessor({ name: 'usesSimd', docs: ['Whether the WebAssembly SIMD kernels run (else the TypeScript kernels do).'], returnType: 'boolean', statements: ['return this.simd !== undefined;'] });
  if (simd) for (const getter of trainingSimdThreads(simd).getters) cls.addGetAccessor(getter as never);
  for (const m of methods) {
    try {
      cls.addMethod(m as never);
    } catch (err) {
      throw new Error(`method ${(m as { name: string }).name}: ${String(err).slice(0, 300)}`);
    }
  }
}

/** `training ? a : b`, or the one of them when they are the same buffer. */
function either(a: string, b: string): string {
  return a === b ? a : `(training ? ${a} : ${b})`;
}

/** Whether a batchnorm layer's input is computed (its cut has a forward method), not the data input itself. */
function statisticsInput(bn: BatchnormStatistics, plan: BufferPlan): boolean {
  return plan.placement.get(bn.graph.outputs[0]!)?.kind !== 'input';
}

/**
 * recalibrate: each batchnorm layer in graph order gets the statistics of its
 * input, which its cut computes in inference mode, so with the statistics of
 * the layers before it already recomputed. On a failure every moving
 * statistic goes back to its value from before the call.
 */
function recalibrate(program: TrainingProgram, parts: TrainerParts, inSize: number): object {
  const docs = [
    [
      'Precise batch normalization: sets every batchnorm layer\'s moving mean and moving variance to the exact',
      'statistics of its input over `x` (or its first `batches` batches), with the current weights, layer by',
      'layer in graph order: the input of a layer is computed in inference mode, through the layers before it',
      'already recalibrated. The variance is the biased (population) one, as the moving variance of a step',
      'averages. Sums in float64 (two-pass per batch, batches combined exactly). Nothing else changes.',
      ...(program.batchnorms.length === 0 ? ['This model has no batch normalization: it only checks its arguments.'] : []),
    ].join('\n'),
  ];
  const check = [
    'const batchSize = options.batchSize ?? 32;',
    'checkBatchSize(batchSize);',
    `${program.batchnorms.length === 0 ? '' : 'const count = '}examples(x, ${inSize}, "x");`,
    'if (options.batches !== undefined && (!Number.isInteger(options.batches) || options.batches < 1)) throw new RangeError("batches must be a positive integer, got " + String(options.batches));',
  ];
  const layers = program.batchnorms.map((bn, k) => {
    const plan = parts.statisticsPlans[k]!;
    const input = bn.graph.outputs[0]!;
    const shape = typeIn(bn.graph, input).shape.slice(1) as number[];
    const { outer, n: channels, inner } = aroundAxis([1, ...shape], bn.axis);
    const forward = statisticsInput(bn, plan) ? `(n, xb) => {\n  this.statisticsForward${k}(n, xb);\n  return ${valueCode(plan, input, 'xb')};\n}` : '(_, xb) => xb';
    const [mean, variance] = [bn.movingMean, bn.movingVariance].map((m) => `p.${parts.propOf.get(m)}`);
    return [
      `// ${commentText(bn.layer)}: its input (${commentText(input)}), ${channels} channels along axis ${bn.axis}`,
      `this.recalibrateLayer(x, used, chunk, ${str(bn.layer)}, ${forward}, [${outer}, ${channels}, ${inner}], ${mean}, ${variance});`,
    ];
  });
  const statements = program.batchnorms.length === 0 ? check : [
    ...check,
    'const used = options.batches === undefined ? count : Math.min(count, options.batches * batchSize);',
    'const chunk = Math.min(batchSize, used);',
    'if (chunk > this.capacity) this.grow(chunk);',
    'const p = this.p;',
    `const moving = [${program.batchnorms.flatMap((bn) => [bn.movingMean, bn.movingVariance]).map((m) => `p.${parts.propOf.get(m)}`).join(', ')}];`,
    'const before = moving.map((m) => m.slice());',
    'try {',
    ...layers.flat().map((l) => `  ${l.replace(/\n/g, '\n  ')}`),
    '} catch (err) {',
    '  moving.forEach((m, k) => m.set(before[k]!));',
    '  throw err;',
    '}',
  ];
  return { name: 'recalibrate', docs, parameters: [{ name: 'x', type: 'Float32Array' }, { name: 'options', type: 'RecalibrateOptions', initializer: '{}' }], returnType: 'void', statements };
}

/** The type of a value of a graph (an input or a node's result). */
function typeIn(graph: Graph, value: string): TensorType {
  const t = graph.inputs.find((i) => i.name === value)?.type ?? graph.nodes.find((n) => n.result === value)?.type;
  if (!t) fail('verify', `no value '${value}' in graph ${graph.name}`);
  return t;
}

/** The number of floats of a parameter of the step graph. */
function allSize(step: Graph, param: string): number {
  const p = step.params.find((q) => q.name === param);
  if (!p) fail('verify', `updated parameter '${param}' is not a parameter of the step`);
  return p.type.shape.reduce<number>((a, d) => a * (d as number), 1);
}
