/**
 * `--simd`: which kernels of an inference module run as WebAssembly SIMD
 * (src/codegen/wasm/), and the code that wires them into the Model class.
 *
 * A node gets a SIMD kernel when its op's `simd` rule has one for it
 * (`simdRequestFor`, use `inference`) with every epilogue in the kernel,
 * its weights are parameters, and its input is a graph input or a scratch
 * value. Everything else keeps its TypeScript kernel. With SIMD available,
 * the scratch buffers are views into the WebAssembly memory, so SIMD and
 * TypeScript kernels read each other's results without copies; a graph
 * input a SIMD kernel reads is copied in once per call. Without SIMD
 * (`SimdRuntime.create()` gives undefined), every node runs its TypeScript
 * kernel: the same module, the same results within float32 rounding (the
 * SIMD kernels sum in float32, the TypeScript ones in float64).
 */
import type { Graph, Node } from '../ir/graph.js';
import { perExample } from '../ops/emit.js';
import type { AnySimdKernelRequest } from '../ops/simd-def.js';
import type { BufferPlan } from './plan.js';
import { buildSimdModule, simdRequestFor, simdRuntimeSource, type SimdModule } from './wasm/index.js';
import { kernelSplit, type KernelSplit } from './wasm/threads.js';

export interface SimdNode {
  /** The kernel's export name. */
  readonly kernel: string;
  /** Its position in `this.sw` (weight pointer; bias pointer at +1). */
  readonly index: number;
  readonly weights: string;
  readonly bias?: string;
}

export interface SimdPlan {
  readonly module: SimdModule;
  readonly nodes: ReadonlyMap<Node, SimdNode>;
  /** Graph inputs a SIMD kernel reads directly: copied into WebAssembly memory per call. */
  readonly staged: readonly number[];
  /** Floats per example of each graph input. */
  readonly inputSizes: readonly number[];
  /** Per kernel export: how its calls divide between threads (startThreads): by examples. */
  readonly splits: ReadonlyMap<string, KernelSplit>;
}

/**
 * How a forward method calls SIMD kernels (inference here, training in
 * simd-train.ts): statements after `p` and `s` are bound (the runtime as
 * \`simd\`, and the pointers the calls use), and per node the kernel call,
 * or undefined for the TypeScript kernel. A SIMD call runs when \`simd\` is
 * defined; the TypeScript call otherwise.
 */
export interface SimdHooks {
  start(inputIds: readonly string[]): string[];
  call(node: Node, resultSlot: number): string | undefined;
}

/** The inference module's hooks. */
export function simdHooks(simd: SimdPlan, plan: BufferPlan): SimdHooks {
  return {
    start: (inputIds) => simdForwardStart(simd, inputIds),
    call: (node, resultSlot) => (simd.nodes.has(node) ? simdCall(simd, plan, node, resultSlot) : undefined),
  };
}

/** Top-level names the SIMD runtime source defines. */
export const simdModuleNames = ['WasmMemory', 'WasmInstance', 'WasmApi', 'SimdKernel', 'SimdKernels', 'SIMD_LAYOUT', 'SIMD_SPLIT', 'SIMD_SPLIT_WORK', 'SIMD_WASM', 'SIMD_SHARED_IMPORT', 'SIMD_MAX_PAGES', 'SIMD_WORKER', 'packPanels', 'AtomicsApi', 'SimdWorker', 'NodeWorker', 'WebWorker', 'simdWorkers', 'SimdRuntime'];

/** The SIMD kernels of `graph` (named after their TypeScript kernels), or undefined when no node has one. */
export function planSimd(graph: Graph, plan: BufferPlan, kernelName: (node: Node) => string): SimdPlan | undefined {
  const types = new Map([...graph.inputs, ...graph.params].map((v) => [v.name, v.type]));
  for (const n of graph.nodes) types.set(n.result, n.type);
  const params = new Set(graph.params.map((p) => p.name));
  const nodes = new Map<Node, SimdNode>();
  const requests: AnySimdKernelRequest[] = [];
  const staged = new Set<number>();
  const splits = new Map<string, KernelSplit>();
  for (const { node, kernel } of plan.steps) {
    if (!kernel) continue;
    const selection = simdRequestFor(node.op, { operands: node.operands.map((o) => types.get(o)!), result: node.type, attrs: node.attrs });
    if (!selection || selection.remaining) continue;
    const [x, w, b] = node.operands;
    const at = plan.placement.get(x!);
    if (!w || !params.has(w) || (b !== undefined && !params.has(b)) || !at || at.kind === 'param') continue;
    if (at.kind === 'input') staged.add(at.index);
    const name = kernelName(node);
    requests.push({ ...selection.request, name });
    splits.set(name, kernelSplit(selection.request, [perExample(types.get(x!)!), 0, 0, perExample(node.type)], perExample(node.type)));
    nodes.set(node, { kernel: name, index: 2 * nodes.size, weights: w, ...(b !== undefined ? { bias: b } : {}) });
  }
  if (nodes.size === 0) return undefined;
  return { module: buildSimdModule(requests), nodes, staged: [...staged].sort((a, b) => a - b), inputSizes: graph.inputs.map((i) => perExample(i.type)), splits };
}

/** The runtime source (embedded WebAssembly, loader, weight packing) added to the module. */
export function simdSource(simd: SimdPlan): string {
  return simdRuntimeSource(simd.module, simd.splits);
}

/** Model constructor statements after `this.p` is set: the runtime and the packed weights. */
export function simdConstructor(simd: SimdPlan, propOf: ReadonlyMap<string, string>): string[] {
  const calls = [...simd.nodes.values()].map(
    (s) => `...simd.weights(${JSON.stringify(s.kernel)}, this.p.${propOf.get(s.weights)}${s.bias ? `, this.p.${propOf.get(s.bias)}` : ''}),`,
  );
  return [
    '// WebAssembly SIMD kernels when this engine has them (else every layer runs its TypeScript kernel).',
    'const simd = SimdRuntime.create();',
    'this.simd = simd;',
    'if (simd !== undefined) {',
    '  this.sw = [',
    ...calls.map((c) => `    ${c}`),
    '  ];',
    '}',
  ];
}

/** grow: scratch buffers (and staged inputs) as views into the WebAssembly memory when SIMD runs. */
export function simdGrow(simd: SimdPlan): string[] {
  return [
    'const simd = this.simd;',
    'if (simd === undefined) {',
    '  this.scratch = SCRATCH.map((size) => new Float32Array(size * batchSize));',
    '} else {',
    '  // Allocate first, then take the views: growing the memory detaches views taken before.',
    '  this.ptrs = SCRATCH.map((size) => simd.alloc(size * batchSize));',
    `  this.stagedPtrs = [${simd.staged.map((k) => `simd.alloc(${simd.inputSizes[k]} * batchSize)`).join(', ')}];`,
    '  this.views(simd, batchSize);',
    '}',
    'this.capacity = batchSize;',
  ];
}

/** The Model's thread methods and accessors (threadMembers). */
export function simdThreads(simd: SimdPlan): { methods: object[]; getters: object[] } {
  return threadMembers('model', [], [
    'if (this.ptrs.length === 0) return;',
    'this.scratch = SCRATCH.map((size, k) => simd.view(this.ptrs[k]!, size * batchSize));',
    `this.staged = [${simd.staged.map((k, i) => `simd.view(this.stagedPtrs[${i}]!, ${simd.inputSizes[k]} * batchSize)`).join(', ')}];`,
  ]);
}

/**
 * startThreads, stopThreads and a private views(simd, batchSize) (taking
 * every view of the memory again: \`views\`), and the threads and
 * threadsNote accessors, as ts-morph structures, for a Model or a Trainer.
 * \`afterStart\`: statements after the runtime started \`threads\`.
 */
export function threadMembers(what: 'model' | 'trainer', afterStart: readonly string[], views: readonly string[]): { methods: object[]; getters: object[] } {
  const noSimd = '"this engine has no WebAssembly SIMD, so the TypeScript kernels run, on one thread"';
  const results = what === 'trainer' ? 'Results depend on the count only by float rounding (weight gradients sum per thread), and are the same on every run with the same count. Call between steps' : 'Every example is computed as on one thread (the same floats). Call between predictions';
  return {
    methods: [
      {
        name: 'startThreads',
        isAsync: true,
        docs: [
          `Runs the SIMD kernels on \`count\` threads: this one and \`count - 1\` workers (worker_threads in Node; Web Workers in a browser, which needs a cross-origin isolated page, and blocks only inside a worker: on a main thread it spins while it waits). Resolves to the number that runs: 1 when the engine has no shared memory or workers, with \`threadsNote\` saying why. Calls too small to gain run on this thread alone. ${results}; \`stopThreads\` ends them.`,
        ],
        parameters: [{ name: 'count', type: 'number' }],
        returnType: 'Promise<number>',
        statements: [
          'const simd = this.simd;',
          'if (simd === undefined) return 1;',
          'const threads = await simd.startThreads(count);',
          ...afterStart,
          '// The first start moves the memory: the views are taken again.',
          'this.views(simd, this.capacity);',
          'return threads;',
        ],
      },
      { name: 'stopThreads', docs: ['Stops the worker threads: the kernels run on this thread alone.'], returnType: 'void', statements: ['this.simd?.stopThreads();'] },
      { name: 'views', scope: 'private', docs: ['Views of the buffers in the SIMD memory (taken again after it grows or moves).'], parameters: [{ name: 'simd', type: 'SimdRuntime' }, { name: 'batchSize', type: 'number' }], returnType: 'void', statements: [...views] },
    ],
    getters: [
      { name: 'threads', docs: ['The threads the kernels run on (1 until startThreads).'], returnType: 'number', statements: ['return this.simd?.threads ?? 1;'] },
      { name: 'threadsNote', docs: ['Why startThreads runs fewer threads than asked for; undefined when it ran them all.'], returnType: 'string | undefined', statements: [`return this.simd === undefined ? ${noSimd} : this.simd.threadsNote;`] },
    ],
  };
}

/** forward's first statements: the runtime, and the graph inputs SIMD kernels read copied in. */
export function simdForwardStart(simd: SimdPlan, inputIds: readonly string[]): string[] {
  return [
    'const simd = this.simd;',
    'const q = this.ptrs;',
    'const sw = this.sw;',
    ...simd.staged.map((k, i) => `if (simd !== undefined) this.staged[${i}]!.set(${inputIds[k]}.subarray(0, n * ${simd.inputSizes[k]}));`),
  ];
}

/** The call of a SIMD node's kernel, with byte offsets: the input, weights, bias, result. */
export function simdCall(simd: SimdPlan, plan: BufferPlan, node: Node, resultSlot: number): string {
  const s = simd.nodes.get(node)!;
  const at = plan.placement.get(node.operands[0]!)!;
  const x = at.kind === 'slot' ? `q[${at.slot}]!` : `this.stagedPtrs[${simd.staged.indexOf((at as { index: number }).index)}]!`;
  return `simd.kernels.${s.kernel}(n, ${x}, sw[${s.index}]!, sw[${s.index + 1}]!, q[${resultSlot}]!);`;
}
