/**
 * The training module: a printer over a TrainingProgram's three graphs that
 * assembles, with ts-morph, a standalone TypeScript module exporting
 * `class Trainer` (trainOnBatch, fit, evaluate, predict, get/set/saveWeights).
 *
 * Layout, top to bottom:
 *   header comment (model, loss, optimizer, how to use it)
 *   inputs / outputs, Logs, TrainerOptions, FitOptions
 *   class Trainer      parameters and optimizer state, scratch, the public
 *                      methods, and one private forward per graph
 *                      (step, evaluate, predict) calling the kernels
 *   kernels            one function per distinct kernel body over all three graphs
 *   helpers, tables    PARAMS (the model's weights), SCRATCH, MASKS, WEIGHTS
 *
 * The three graphs share one set of scratch buffers (they never run at the
 * same time): slot k of each graph's buffer plan is buffer k, sized for the
 * largest; per-example slots come first, fixed-size ones (gradients,
 * updates, losses) after them.
 */
import { Project, Scope, VariableDeclarationKind, type SourceFile } from 'ts-morph';
import { fail } from '../diagnostics/diagnostic.js';
import type { TrainingProgram } from '../autodiff/training.js';
import type { Graph } from '../ir/graph.js';
import { perExample } from '../ops/emit.js';
import { base64Length, dataExpression, placeholderFor } from './format.js';
import { forwardBody, shapesOf, type ModelNames } from './inference.js';
import { addKernels, collectHelpers, kernelRecords, nameKernels, type KernelRecord } from './kernels.js';
import { commentText, Namer, str } from './names.js';
import { planBuffers, type BufferPlan, type Placement } from './plan.js';
import { base64BytesSource, checkBatchSizeSource, checkInputSource, decodeWeightsSource, embeddedWeightsSource, safetensorsReader, writeSafetensorsSource } from './runtime.js';
import { planTrainingSimd, trainingSimdBindParams, trainingSimdConstructor, trainingSimdGrow, trainingSimdHooks, trainingSimdLocals, type TrainingSimd } from './simd-train.js';
import { simdModuleNames } from './simd.js';
import { simdRuntimeSource } from './wasm/index.js';
import { dropoutMaskSource, finiteSource, nextTurnSource, randomSource, trainerLoops } from './trainer-runtime.js';

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
];

/** The three plans with slots renumbered into one shared space; the shared sizes. */
function sharePlans(plans: readonly BufferPlan[]): { plans: BufferPlan[]; sizes: number[]; perExampleSlots: number } {
  const perExampleSlots = Math.max(...plans.map((p) => p.slotBatched.filter((b) => b).length));
  const sizes: number[] = [];
  const shared = plans.map((plan) => {
    const map: number[] = [];
    let batched = 0;
    let fixed = perExampleSlots;
    plan.slotBatched.forEach((b, k) => (map[k] = b ? batched++ : fixed++));
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

export function buildTraining(program: TrainingProgram, options: TrainingModuleOptions = {}): TrainingUnit {
  const graphs = [program.step, program.evaluate, program.predict];
  const { plans, sizes, perExampleSlots } = sharePlans(graphs.map(planBuffers));
  const [stepPlan, evalPlan, predictPlan] = plans as [BufferPlan, BufferPlan, BufferPlan];
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
        [{ graph: program.step, plan: stepPlan }, { graph: program.evaluate, plan: evalPlan }, { graph: program.predict, plan: predictPlan }],
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
  addTrainer(file, program, { stepPlan, evalPlan, predictPlan, propOf, weights, stateInit, method, paramFloats, ...(simd ? { simd } : {}) });
  addKernels(file, kernels);
  file.addStatements([...helpers.map((h) => h.source), checkBatchSizeSource, checkInputSource, randomSource, ...(program.masks.length > 0 ? [dropoutMaskSource] : []), finiteSource, nextTurnSource]);
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
  if (simd) file.addStatements(simdRuntimeSource(simd.module));
  file.addStatements([
    base64BytesSource,
    decodeWeightsSource,
    embeddedWeightsSource,
    `/** ${floats} float32 initial weights, little-endian, base64. */`,
    `const WEIGHTS = ${dataExpression(placeholder, base64Length(floats))};`,
  ]);
  const records = kernelRecords(kernels, simd && { module: simd.module, kernelOf: (node) => simd.kernels.get(node) });
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
    '}',
    'export interface FitAsyncOptions extends FitOptions {',
    '  /** Stops after the current batch once aborted (an AbortSignal, or anything with `aborted`). */',
    '  signal?: { readonly aborted: boolean };',
    '}',
    `/** The default learning rate (the spec's, or modelc compile --learning-rate). */`,
    `const LEARNING_RATE = ${program.optimizer.learning_rate};`,
    `/** Each dropout layer's mask: floats per example, rate, and the layer's own seed (null: from the trainer's seed). */`,
    `const MASKS: ReadonlyArray<readonly [size: number, rate: number, seed: number | null]> = [${program.masks.map((m) => `[${perExample(program.step.inputs.find((i) => i.name === m.input)!.type)}, ${m.rate}, ${m.seed}]`).join(', ')}];`,
  ].join('\n');
}

interface TrainerParts {
  readonly stepPlan: BufferPlan;
  readonly evalPlan: BufferPlan;
  readonly predictPlan: BufferPlan;
  readonly propOf: ReadonlyMap<string, string>;
  readonly weights: TrainingUnit['weights'];
  readonly stateInit: readonly string[];
  readonly method: (graph: Graph, plan: BufferPlan, name: string) => object;
  readonly paramFloats: readonly { readonly prop: string; readonly floats: number }[];
  readonly simd?: TrainingSimd;
}

function addTrainer(file: SourceFile, program: TrainingProgram, parts: TrainerParts): void {
  const { stepPlan, evalPlan, predictPlan, propOf, weights, simd } = parts;
  const inSize = perExample(program.step.inputs.find((i) => i.name === program.data)!.type);
  const labelSize = perExample(program.labelsType);
  const prediction = program.predict.outputs[0]!;
  const outSize = perExample(program.predict.nodes.find((n) => n.result === prediction)?.type ?? program.predict.inputs[0]!.type);
  const acc = program.accuracy !== undefined;
  const dropout = program.masks.length > 0;
  const loops = trainerLoops({ inSize, labelSize, outSize, accuracy: acc });
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
  const trainOnBatch = [
    'checkBatchSize(batchSize);',
    `checkInput(x, batchSize, ${inSize}, "x");`,
    `checkInput(y, batchSize, ${labelSize}, "y (labels)");`,
    'if (batchSize > this.capacity) this.grow(batchSize);',
    ...program.masks.map((_, k) => `dropoutMask(this.masks[${k}]!, batchSize * MASKS[${k}]![0], MASKS[${k}]![1], this.maskState, ${k});`),
    `this.stepForward(batchSize, ${stepArgs.join(', ')});`,
    'const s = this.scratch;',
    `const loss = s[${slotOf(stepPlan, program.loss)}]![0]!;`,
    'const step = this.steps + 1;',
    'const nonFinite = (what: string) => new Error("trainOnBatch: step " + step + " produced a non-finite value in " + what + "; the weights are kept as they were before the step");',
    'if (!Number.isFinite(loss)) throw nonFinite("the loss (" + loss + ")");',
    ...updates.map((u) => `if (!allFinite(s[${u.slot}]!, ${u.size})) throw nonFinite(${str(`the new value of ${u.param}`)});`),
    '// Every value is finite: commit the step.',
    ...updates.map((u) => `this.p.${propOf.get(u.param)}.set(s[${u.slot}]!.subarray(0, ${u.size}));`),
    ...(acc ? [`this.lastAccuracy = s[${slotOf(stepPlan, program.accuracy!)}]![0]!;`] : []),
    'this.steps = step;',
    'return loss;',
  ];
  const methods = [
    { name: 'trainOnBatch', docs: ['One optimizer step on `batchSize` examples; returns the loss of that batch computed in the step (before the update). Throws on a non-finite loss or weight, keeping the weights from before the step.'], parameters: [{ name: 'x', type: 'Float32Array' }, { name: 'y', type: 'Float32Array' }, { name: 'batchSize', type: 'number' }], returnType: 'number', statements: trainOnBatch },
    { name: 'fit', docs: ['Trains for `epochs` over every example in batches (the last may be partial); returns the per-epoch history.'], parameters: [{ name: 'x', type: 'Float32Array' }, { name: 'y', type: 'Float32Array' }, { name: 'options', type: 'FitOptions' }], returnType: '{ history: Record<string, number[]> }', statements: loops.fit },
    { name: 'fitAsync', isAsync: true, docs: ['fit that lets the event loop run between batches (progress output, signal handlers, a browser\'s UI) and stops after the current batch when `options.signal` is aborted; `history` holds the epochs completed.'], parameters: [{ name: 'x', type: 'Float32Array' }, { name: 'y', type: 'Float32Array' }, { name: 'options', type: 'FitAsyncOptions' }], returnType: 'Promise<{ history: Record<string, number[]>; stopped: boolean }>', statements: loops.fitAsync },
    { name: 'evaluate', docs: ['Loss (and accuracy) in inference mode over every example, in chunks of `batchSize`: means weighted by chunk size.'], parameters: [{ name: 'x', type: 'Float32Array' }, { name: 'y', type: 'Float32Array' }, { name: 'batchSize', type: 'number' }], returnType: '{ loss: number; accuracy?: number }', statements: loops.evaluate },
    { name: 'predict', docs: ['Inference mode (moving statistics, no dropout) over every example of `x`, in chunks of `batchSize`.'], parameters: [{ name: 'x', type: 'Float32Array' }, { name: 'batchSize', type: 'number' }], returnType: 'Float32Array', statements: loops.predict },
    { name: 'getWeights', docs: ['Copies of every model weight by name (moving statistics included; no optimizer state).'], parameters: [], returnType: 'Record<string, Float32Array>', statements: [`return { ${weights.map((w, k) => `[${str(w.name)}]: ${weightProps[k]}.slice()`).join(', ')} };`] },
    { name: 'setWeights', docs: ['Replaces every model weight (all of PARAMS must be given); the optimizer state is kept.'], parameters: [{ name: 'weights', type: 'Record<string, Float32Array>' }], returnType: 'void', statements: ['const w = fromRecord(weights);', ...weightProps.map((p, k) => `${p}.set(w[${k}]!);`)] },
    { name: 'saveWeights', docs: ['The model weights as safetensors bytes (Keras names), loadable by `modelc compile --weights`.'], parameters: [], returnType: 'Uint8Array', statements: [`return writeSafetensors(PARAMS.map(([name, shape], k) => [name, shape, [${weightProps.join(', ')}][k]!] as const), { format: "pt", steps: String(this.steps) });`] },
    { name: 'fitSteps', scope: Scope.Private, isGenerator: true, docs: ['The epoch and batch loops of fit and fitAsync: yields after every batch; fills `history` as epochs end.'], parameters: [{ name: 'x', type: 'Float32Array' }, { name: 'y', type: 'Float32Array' }, { name: 'options', type: 'FitOptions' }, { name: 'history', type: 'Record<string, number[]>' }], returnType: 'Generator<void, void, void>', statements: loops.fitSteps },
    { name: 'evaluateBatch', scope: Scope.Private, parameters: [{ name: 'n', type: 'number' }, { name: 'x', type: 'Float32Array' }, { name: 'y', type: 'Float32Array' }], returnType: acc ? '[number, number]' : '[number]', statements: [`this.evaluateForward(n, ${evalArgs.join(', ')});`, `return [this.scratch[${slotOf(evalPlan, program.loss)}]![0]!${acc ? `, this.scratch[${slotOf(evalPlan, program.accuracy!)}]![0]!` : ''}];`] },
    { name: 'predictBatch', scope: Scope.Private, parameters: [{ name: 'n', type: 'number' }, { name: 'x', type: 'Float32Array' }], returnType: 'Float32Array', statements: ['this.predictForward(n, x);', `return this.scratch[${slotOf(predictPlan, prediction)}]!.subarray(0, n * ${outSize});`] },
    { name: 'grow', scope: Scope.Private, parameters: [{ name: 'batchSize', type: 'number' }], returnType: 'void', statements: [...(simd ? trainingSimdGrow(simd) : ['this.scratch = SCRATCH.map((size, k) => new Float32Array(k < PER_EXAMPLE_SLOTS ? size * batchSize : size));']), ...(dropout ? ['this.masks = MASKS.map(([size]) => new Float32Array(size * batchSize));'] : []), 'this.capacity = batchSize;'] },
    ...(simd ? [{ name: 'bindParams', scope: Scope.Private, docs: ['Views of every parameter in the SIMD memory (taken again after it grows).'], parameters: [{ name: 'simd', type: 'SimdRuntime' }], returnType: 'Params', statements: trainingSimdBindParams(parts.paramFloats) }] : []),
    parts.method(program.step, stepPlan, 'stepForward'),
    parts.method(program.evaluate, evalPlan, 'evaluateForward'),
    parts.method(program.predict, predictPlan, 'predictForward'),
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
  for (const m of methods) {
    try {
      cls.addMethod(m as never);
    } catch (err) {
      throw new Error(`method ${(m as { name: string }).name}: ${String(err).slice(0, 300)}`);
    }
  }
}

/** The number of floats of a parameter of the step graph. */
function allSize(step: Graph, param: string): number {
  const p = step.params.find((q) => q.name === param);
  if (!p) fail('verify', `updated parameter '${param}' is not a parameter of the step`);
  return p.type.shape.reduce<number>((a, d) => a * (d as number), 1);
}
