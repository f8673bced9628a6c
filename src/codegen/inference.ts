/**
 * The inference module: a printer over the final IR that assembles, with
 * ts-morph, a standalone TypeScript module exporting `inputs`, `outputs`,
 * `class Model` and (with embedded weights) `predict`.
 *
 * Layout of a generated module, top to bottom:
 *   header comment (model, inputs, outputs, passes, how to use it)
 *   inputs / outputs             per-example shapes
 *   class Model                  params, scratch buffers, predict, run, forward
 *   predict                      a shared Model over the embedded weights
 *   kernels                      one function per distinct kernel body, with the layers it implements
 *   helpers                      activations and support code, only those used
 *   PARAMS, SCRATCH, WEIGHTS     tables and the embedded data, last
 */
import { Project, Scope, StructureKind, VariableDeclarationKind, type StatementStructures } from 'ts-morph';
import { fail } from '../diagnostics/diagnostic.js';
import type { Graph, Node } from '../ir/graph.js';
import { exampleShape } from '../ir/types.js';
import { perExample } from '../ops/emit.js';
import { collectHelpers, kernelFunctions, kernelRecords, nameKernels, type KernelRecord, type NamedKernel } from './kernels.js';
import { base64Length, dataExpression } from './format.js';
import { commentText, Namer, str } from './names.js';
import { planBuffers, type BufferPlan, type Placement } from './plan.js';
import { planSimd, simdConstructor, simdGrow, simdHooks, simdModuleNames, simdSource, simdThreads, type SimdHooks, type SimdPlan } from './simd.js';
import { base64BytesSource, checkBatchSizeSource, checkInputSource, decodeWeightsSource, embeddedWeightsSource, readSafetensorsSource } from './runtime.js';

export interface InferenceOptions {
  /** The module's name (its file stem); default: the graph's name. */
  readonly name?: string;
  /** `embed` (default): weights inside the module; `external`: safetensors bytes given to the constructor. */
  readonly weightsMode?: 'embed' | 'external';
  /** Where the spec came from, for the header comment. */
  readonly source?: string;
  /** The passes that ran, for the header comment. */
  readonly passes?: readonly string[];
  /** Dense and convolution kernels also as WebAssembly SIMD (`--simd`), used where the engine supports it. */
  readonly simd?: boolean;
}

/** The module text before formatting, and the parameters it reads, in PARAMS order. */
export interface InferenceUnit {
  readonly text: string;
  readonly params: readonly { readonly name: string; readonly shape: readonly number[]; readonly value: Float32Array }[];
  /** The string literal standing for the embedded weights, when embedded. */
  readonly placeholder?: string;
  /** Every kernel function of the module, with its plan. */
  readonly kernels: readonly KernelRecord[];
}

/** Names the module itself defines at the top level. */
const moduleNames = [
  'inputs', 'outputs', 'Model', 'predict', 'defaultModel', 'PARAMS', 'SCRATCH', 'WEIGHTS', 'embedded', 'embeddedWeights',
  'decodeWeights', 'base64Bytes', 'readSafetensors', 'utf8', 'checkBatchSize', 'checkInput', 'feed',
];

export function buildInference(graph: Graph, options: InferenceOptions = {}): InferenceUnit {
  const external = options.weightsMode === 'external';
  const plan = planBuffers(graph);
  const params = usedParams(graph);
  const top = new Namer(options.simd ? [...moduleNames, ...simdModuleNames] : moduleNames);
  const helpers = collectHelpers(plan);
  for (const h of helpers) top.name(h.name); // reserve (helper names are fixed by the ops)
  const kernels = nameKernels(plan, top);
  const simd = options.simd ? planSimd(graph, plan, (node) => kernels.get(node)!.name) : undefined;
  const embedsWeights = !external && params.length > 0;

  // Each group is what one ts-morph `add` call used to insert; see printGroups for how they join.
  const groups: Group[] = [[header(graph, options)], shapeStatements(graph), modelStatements(graph, plan, params, kernels, external, top, simd)];
  if (!external) {
    groups.push(['/** The Model over the embedded weights that `predict` uses, made on first call. */', 'let defaultModel: Model | undefined;'], [{
      kind: StructureKind.Function,
      name: 'predict',
      isExported: true,
      docs: ['`new Model().predict(x, batchSize)` with one Model kept for every call.'],
      parameters: [{ name: 'x', type: 'Float32Array' }, { name: 'batchSize', type: 'number' }],
      returnType: 'Float32Array',
      statements: ['defaultModel ??= new Model();', 'return defaultModel.predict(x, batchSize);'],
    }]);
  }
  groups.push(kernelFunctions(kernels), [...helpers.map((h) => h.source), checkBatchSizeSource, checkInputSource, feedSource, readSafetensorsSource]);
  // One base64 decoder for the embedded weights and the SIMD kernels' bytes.
  if (embedsWeights || simd) groups.push([base64BytesSource]);
  if (simd) groups.push([simdSource(simd)]);
  groups.push(...tableStatements(params, plan).map((t) => [t]));
  const records = kernelRecords(kernels, simd && { module: simd.module, kernelOf: (node) => simd.nodes.get(node)?.kernel });
  if (!embedsWeights) return { text: printGroups(groups), params, kernels: records };
  // The weights literal is a placeholder that occurs nowhere else, swapped for the data after formatting.
  const floats = params.reduce((s, p) => s + p.value.length, 0);
  for (let k = 0; ; k++) {
    const placeholder = `MODELC_WEIGHTS_${k}`;
    const text = printGroups([...groups, [
      decodeWeightsSource,
      embeddedWeightsSource,
      `/** ${floats} float32 weights, little-endian, base64. */`,
      `const WEIGHTS = ${dataExpression(placeholder, base64Length(floats))};`,
    ]]);
    if (text.split(placeholder).length === 2) return { text, params, placeholder, kernels: records };
  }
}

/** Statements that were one ts-morph `add` call: all source text, or all structures. */
type Group = readonly string[] | readonly StatementStructures[];

/**
 * The module text: each group printed on its own, then joined as successive
 * `add` calls on one file joined them (source text on the next line; a
 * function, class or interface after a blank line; a variable statement after
 * one only when the text before ends in a brace). One
 * file grown call by call was reparsed whole after each call: 3 s of a
 * DenseNet121 compile; each group here is parsed once, alone.
 */
function printGroups(groups: readonly Group[]): string {
  const project = new Project({ useInMemoryFileSystem: true });
  let text = '';
  for (const group of groups) {
    if (group.length === 0) continue; // e.g. no kernels: -O emptied the graph
    const printed = project.createSourceFile('group.ts', { statements: [...group] }, { overwrite: true }).getFullText().replace(/\n+$/, '');
    const first = group[0]!;
    const blank = typeof first !== 'string' && (first.kind !== StructureKind.VariableStatement || text.endsWith('}'));
    const gap = text === '' ? '' : blank ? '\n\n' : '\n';
    text += gap + printed;
  }
  return text + '\n';
}

/** PARAMS, and SCRATCH when there are scratch buffers. */
function tableStatements(params: InferenceUnit['params'], plan: BufferPlan): StatementStructures[] {
  const tables: StatementStructures[] = [{
    kind: StructureKind.VariableStatement,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['Every parameter the kernels read: safetensors name and shape, in the order of the embedded data.'],
    declarations: [{
      name: 'PARAMS',
      type: 'ReadonlyArray<readonly [name: string, shape: readonly number[]]>',
      initializer: `[${params.map((p) => `[${str(p.name)}, [${p.shape.join(', ')}]]`).join(', ')}]`,
    }],
  }];
  if (plan.slotSizes.length > 0) tables.push({
    kind: StructureKind.VariableStatement,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['Floats per example of each scratch buffer; layers whose values do not overlap in time share one.'],
    declarations: [{ name: 'SCRATCH', type: 'readonly number[]', initializer: `[${plan.slotSizes.join(', ')}]` }],
  });
  return tables;
}

const feedSource = `/** feeds[name], own properties only (a feed named "__proto__" or "toString" is not inherited). */
function feed(feeds: Record<string, Float32Array>, name: string): Float32Array {
  const x = Object.prototype.hasOwnProperty.call(feeds, name) ? feeds[name] : undefined;
  if (x === undefined) throw new TypeError("run: no feed for input " + JSON.stringify(name));
  return x;
}`;

/** The parameters nodes read, in the graph's order; each must carry a value. */
function usedParams(graph: Graph) {
  const read = new Set(graph.nodes.flatMap((n) => n.operands));
  for (const out of graph.outputs) {
    if (graph.params.some((p) => p.name === out)) fail('verify', `output '${out}' is a parameter; codegen needs it computed`);
  }
  return graph.params.filter((p) => read.has(p.name)).map((p) => {
    if (!p.value) fail('weights', `parameter '${p.name}' has no value: load weights or sample the initializers first`);
    return { name: p.name, shape: p.type.shape as number[], value: p.value };
  });
}

function header(graph: Graph, options: InferenceOptions): string {
  const io = (vs: readonly { name: string; shape: readonly number[] }[]) =>
    vs.map((v) => `${commentText(v.name)} [${v.shape.join(', ')}]`).join(', ');
  const lines = [
    `${commentText(options.name ?? graph.name)}: inference module generated by modelc${options.source ? ` from ${commentText(options.source)}` : ''}.`,
    'Do not edit: regenerate it with `modelc compile`.',
    '',
    `Inputs:  ${io(shapesOf(graph, 'inputs'))}`,
    `Outputs: ${io(shapesOf(graph, 'outputs'))}`,
    `Passes:  ${options.passes && options.passes.length > 0 ? options.passes.join(', ') : 'none'}`,
    '',
    'Standalone: imports nothing, runs in Node and browsers. Arrays are float32,',
    'batch-major and row-major (NHWC for images).',
    '',
    '  const model = new Model();',
    '  const y = model.predict(x, batchSize);  // first input -> first output',
    options.weightsMode === 'external'
      ? 'Weights: pass the safetensors bytes written next to this module to `new Model(bytes)`.'
      : 'Weights: embedded; `new Model(bytes)` takes other safetensors weights of the same shapes.',
  ];
  return `/**\n${lines.map((l) => (l ? ` * ${l}` : ' *')).join('\n')}\n */`;
}

export function shapesOf(graph: Graph, which: 'inputs' | 'outputs') {
  const types = new Map([...graph.inputs.map((i) => [i.name, i.type] as const), ...graph.nodes.map((n) => [n.result, n.type] as const)]);
  const names = which === 'inputs' ? graph.inputs.map((i) => i.name) : graph.outputs;
  return names.map((name) => ({ name, shape: exampleShape(types.get(name)!) }));
}

function shapeStatements(graph: Graph): StatementStructures[] {
  return (['inputs', 'outputs'] as const).map((which) => {
    const list = shapesOf(graph, which).map((v) => `{ name: ${str(v.name)}, shape: [${v.shape.join(', ')}] }`);
    return {
      kind: StructureKind.VariableStatement,
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: [which === 'inputs'
        ? 'The inputs, in the order `run` feeds and `predict` takes them: per-example shapes (NHWC).'
        : 'The outputs, in the order `run` returns them (`predict` returns the first): per-example shapes.'],
      declarations: [{ name: which, type: 'ReadonlyArray<{ name: string; shape: readonly number[] }>', initializer: `[${list.join(', ')}]` }],
    };
  });
}

/** Identifiers for the Model's methods: params (as properties of `p`), inputs and values (as locals). */
export interface ModelNames {
  readonly propOf: ReadonlyMap<string, string>;
  readonly inputIds: readonly string[];
  readonly locals: Namer;
}

/** The Params interface (when there are parameters) and class Model. */
function modelStatements(
  graph: Graph,
  plan: BufferPlan,
  params: InferenceUnit['params'],
  kernels: Map<Node, NamedKernel>,
  external: boolean,
  top: Namer,
  simd?: SimdPlan,
): StatementStructures[] {
  const props = new Namer();
  // Locals never shadow a module-level name (kernels, helpers, tables) the methods use.
  const locals = top.child(['n', 'p', 's', 'feeds', 'batchSize', 'name', ...(simd ? ['simd', 'q', 'sw'] : [])]);
  const names: ModelNames = {
    propOf: new Map(params.map((p) => [p.name, props.name(p.name)])),
    inputIds: graph.inputs.map((i) => locals.name(i.name)),
    locals,
  };
  const forward = forwardBody(graph, plan, kernels, names, simd ? simdHooks(simd, plan) : undefined);
  const { predict, run } = entryBodies(graph, plan, names);
  const { propOf, inputIds } = names;
  // A model of aliases only (reshape, dropout) computes nothing: no scratch, no forward.
  const computes = plan.slotSizes.length > 0;
  const read = new Set(graph.nodes.flatMap((nd) => nd.operands));
  const statements: StatementStructures[] = [];
  if (params.length > 0) statements.push({
    kind: StructureKind.Interface,
    name: 'Params',
    docs: ['The weights as the kernels read them (Keras layouts, after the passes).'],
    properties: params.map((p) => ({ name: propOf.get(p.name)!, type: 'Float32Array', isReadonly: true, docs: [`${commentText(p.name)} [${p.shape.join(', ')}]`] })),
  });
  statements.push({
    kind: StructureKind.Class,
    name: 'Model',
    isExported: true,
    docs: ['The model with its weights and reusable scratch buffers. Not reentrant: one call at a time per instance.'],
    properties: [
      ...(params.length > 0 ? [{ name: 'p', scope: Scope.Private, isReadonly: true, type: 'Params' }] : []),
      ...(computes
        ? [
            { name: 'scratch', scope: Scope.Private, type: 'Float32Array[]', initializer: '[]', docs: ['Scratch buffers for `capacity` examples, grown only when a larger batch comes.'] },
            { name: 'capacity', scope: Scope.Private, initializer: '0' },
          ]
        : []),
      ...(simd
        ? [
            { name: 'simd', scope: Scope.Private, isReadonly: true, type: 'SimdRuntime | undefined', docs: ['The WebAssembly SIMD kernels, or undefined where the engine lacks them.'] },
            { name: 'sw', scope: Scope.Private, type: 'number[]', initializer: '[]', docs: ['Byte offsets of each SIMD kernel\'s packed weights and bias.'] },
            { name: 'ptrs', scope: Scope.Private, type: 'number[]', initializer: '[]', docs: ['Byte offsets of the scratch buffers in WebAssembly memory.'] },
            { name: 'stagedPtrs', scope: Scope.Private, type: 'number[]', initializer: '[]' },
            { name: 'staged', scope: Scope.Private, type: 'Float32Array[]', initializer: '[]', docs: ['Inputs that SIMD kernels read, copied into WebAssembly memory.'] },
          ]
        : []),
    ],
    ctors: [{
      docs: [external
        ? '@param weights the bytes of the safetensors file written with this module (tensors as in PARAMS)'
        : '@param weights safetensors bytes to use instead of the embedded weights (tensors as in PARAMS)'],
      parameters: [{ name: 'weights', type: 'Uint8Array', hasQuestionToken: !external }],
      statements: [
        ...(external
          ? [`if (weights === undefined) throw new TypeError("this module was compiled with --weights-mode external: pass the bytes of its safetensors file to new Model(bytes)");`]
          : []),
        ...(params.length === 0
          ? [external ? 'readSafetensors(weights); // checks that the file holds no tensors' : 'if (weights !== undefined) readSafetensors(weights); // checks that it holds no tensors']
          : [
              external ? 'const t = readSafetensors(weights);' : 'const t = weights === undefined ? embeddedWeights() : readSafetensors(weights);',
              `this.p = { ${params.map((p, k) => `${propOf.get(p.name)}: t[${k}]!`).join(', ')} };`,
            ]),
        ...(simd ? simdConstructor(simd, propOf) : []),
      ],
    }],
    ...(simd ? { getAccessors: [{ name: 'usesSimd', docs: ['Whether the WebAssembly SIMD kernels run (else the TypeScript kernels do).'], returnType: 'boolean', statements: ['return this.simd !== undefined;'] }, ...(simdThreads(simd).getters as never[])] } : {}),
    methods: [
      {
        name: 'predict',
        docs: ['Runs the first input through the model: `batchSize` examples in, the first output out (a new array).'],
        // With several inputs predict only refers to run(): its parameters are unused, hence the `_`.
        parameters: graph.inputs.length === 1
          ? [{ name: 'x', type: 'Float32Array' }, { name: 'batchSize', type: 'number' }]
          : [{ name: '_x', type: 'Float32Array' }, { name: '_batchSize', type: 'number' }],
        returnType: 'Float32Array',
        statements: predict,
      },
      {
        name: 'run',
        docs: ['Runs the model on every input by name; returns every output by name (new arrays).'],
        parameters: [{ name: 'feeds', type: 'Record<string, Float32Array>' }, { name: 'batchSize', type: 'number' }],
        returnType: 'Record<string, Float32Array>',
        statements: run,
      },
      ...(computes ? [{
        name: 'grow',
        scope: Scope.Private,
        parameters: [{ name: 'batchSize', type: 'number' }],
        returnType: 'void',
        statements: simd ? simdGrow(simd) : ['this.scratch = SCRATCH.map((size) => new Float32Array(size * batchSize));', 'this.capacity = batchSize;'],
      },
      {
        name: 'forward',
        scope: Scope.Private,
        docs: ['Every layer in order; results stay in the scratch buffers.'],
        // An input no layer reads (an output as it is) is a parameter named with a leading `_`.
        parameters: [{ name: 'n', type: 'number' }, ...inputIds.map((id, k) => ({ name: read.has(graph.inputs[k]!.name) ? id : `_${id}`, type: 'Float32Array' }))],
        returnType: 'void',
        statements: forward,
      }] : []),
      ...(simd ? (simdThreads(simd).methods as never[]) : []),
    ],
  });
  return statements;
}

/** forward: one call per kernel, in node order; an alias is a new name for its operand's data. */
export function forwardBody(graph: Graph, plan: BufferPlan, kernels: Map<Node, NamedKernel>, names: ModelNames, simd?: SimdHooks): string[] {
  const valueIds = new Map<string, string>(graph.inputs.map((i, k) => [i.name, names.inputIds[k]!]));
  const operand = (o: string) => (names.propOf.has(o) ? `p.${names.propOf.get(o)}` : valueIds.get(o)!);
  // A local is needed when a kernel reads it, or an alias of a needed value reads it (walking back).
  const read = new Set(plan.steps.filter((st) => st.kernel).flatMap((st) => st.node.operands));
  for (const { node, kernel } of [...plan.steps].reverse()) if (!kernel && read.has(node.result)) read.add(node.operands[0]!);
  const body: string[] = ['if (n > this.capacity) this.grow(n);'];
  // Only what is used is declared (generated code is clean under noUnusedLocals).
  if (graph.nodes.some((nd) => nd.operands.some((o) => names.propOf.has(o)))) body.push('const p = this.p;');
  if (plan.steps.some((st) => st.kernel)) body.push('const s = this.scratch;');
  if (simd) body.push(...simd.start(names.inputIds));
  for (const { node, kernel } of plan.steps) {
    const id = names.locals.name(node.result);
    body.push('', `// ${commentText(node.layer)}${node.layer === node.result ? '' : ` -> ${commentText(node.result)}`}`);
    if (kernel) {
      const slot = plan.placement.get(node.result) as Extract<Placement, { kind: 'slot' }>;
      body.push(`const ${id} = s[${slot.slot}]!;`);
      const call = `${kernels.get(node)!.name}(n, ${node.operands.map(operand).join(', ')}, ${id});`;
      const simdCall = simd?.call(node, slot.slot);
      if (simdCall !== undefined) body.push(`if (simd !== undefined) ${simdCall}`, `else ${call}`);
      else body.push(call);
    } else if (read.has(node.result)) {
      body.push(`const ${id} = ${operand(node.operands[0]!)}; // ${commentText(node.op)}: the same data`);
    } else {
      body.push(`// ${commentText(node.op)}: the same data as ${operand(node.operands[0]!)}`);
    }
    valueIds.set(node.result, id);
  }
  return body;
}

/** predict and run: check the arguments, run forward, copy the outputs out. */
function entryBodies(graph: Graph, plan: BufferPlan, names: ModelNames): { predict: string[]; run: string[] } {
  const shapes = shapesOf(graph, 'inputs');
  const what = (k: number) => str(`input ${JSON.stringify(shapes[k]!.name)} (shape [${shapes[k]!.shape.join(', ')}] per example)`);
  /** An output's data as a new array; `inputs` are the expressions holding the inputs. */
  const outputData = (name: string, inputs: readonly string[]) => {
    const at = plan.placement.get(name)!;
    const size = perExample(graph.nodes.find((nd) => nd.result === name)?.type ?? graph.inputs.find((i) => i.name === name)!.type);
    const data = at.kind === 'slot' ? `this.scratch[${at.slot}]!` : inputs[(at as { index: number }).index]!;
    return `${data}.slice(0, ${size === 1 ? 'batchSize' : `batchSize * ${size}`})`;
  };
  const predict = graph.inputs.length === 1
    ? [
        'checkBatchSize(batchSize);',
        `checkInput(x, batchSize, ${perExample(graph.inputs[0]!.type)}, ${what(0)});`,
        ...(plan.slotSizes.length > 0 ? ['this.forward(batchSize, x);'] : []),
        `return ${outputData(graph.outputs[0]!, ['x'])};`,
      ]
    : [`throw new TypeError(${str(`this model has ${graph.inputs.length} inputs: use run()`)});`];
  const ids = names.inputIds;
  const run = [
    'checkBatchSize(batchSize);',
    'for (const name of Object.keys(feeds)) {',
    `  if (!inputs.some((i) => i.name === name)) throw new TypeError("run: unknown input " + JSON.stringify(name) + "; the inputs are " + inputs.map((i) => JSON.stringify(i.name)).join(", "));`,
    '}',
    ...graph.inputs.flatMap((input, k) => [
      `const ${ids[k]} = feed(feeds, ${str(input.name)});`,
      `checkInput(${ids[k]}, batchSize, ${perExample(input.type)}, ${what(k)});`,
    ]),
    ...(plan.slotSizes.length > 0 ? [`this.forward(batchSize, ${ids.join(', ')});`] : []),
    `return { ${graph.outputs.map((o) => `[${str(o)}]: ${outputData(o, ids)}`).join(', ')} };`,
  ];
  return { predict, run };
}
