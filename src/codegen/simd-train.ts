/**
 * `--simd` for training modules: which nodes of the step, evaluate and
 * predict graphs run as WebAssembly SIMD kernels, and the Trainer code that
 * keeps their operands in the WebAssembly memory.
 *
 * The SIMD nodes are those whose op's `simd` rule has a kernel for the
 * Trainer (use `training`), where a training step spends its time: the dense
 * family (the forward product with the kernel unpacked, since it changes
 * every step; dx = dy · kernelᵀ and dk = xᵀ · dy, src/codegen/wasm/train-kernels.ts)
 * with units a multiple of 4, and conv2d in one group with filters a multiple
 * of 4 as the same GEMMs over its windows: im2col copies the windows of x into
 * the Trainer's column buffer (one, sized for the largest conv, reused by
 * every conv of every graph), and col2im sums dy · kernelᵀ back into dx
 * (src/codegen/wasm/columns.ts); and training batchnorm, channels last
 * (src/codegen/wasm/batchnorm.ts), with the per-channel sums, means and
 * variances around it (bias and beta gradients, batch statistics;
 * src/codegen/wasm/channel-stats.ts). Nodes need no epilogue the kernel cannot
 * fuse and every operand in the memory (a scratch buffer, a parameter, or a
 * staged graph input). With SIMD available, the Trainer allocates every parameter
 * (weights, optimizer state) and every scratch buffer in the memory and
 * works on Float32Array views of it, so the TypeScript kernels around the
 * SIMD ones (pooling, activations, the optimizer) read and write the same
 * floats without copies. Growing the memory for a larger batch detaches the
 * views: `grow` allocates, then binds new views of the parameters (their
 * values stay in place). Without SIMD everything runs in TypeScript, as in a
 * module compiled without `--simd`.
 */
import type { Graph, Node } from '../ir/graph.js';
import type { TensorType } from '../ir/types.js';
import { perExample } from '../ops/emit.js';
import type { AnySimdKernelRequest, SimdSelection } from '../ops/simd-def.js';
import type { BufferPlan } from './plan.js';
import { threadMembers, type SimdHooks } from './simd.js';
import { buildSimdModule, simdRequestFor, type SimdModule } from './wasm/index.js';
import { kernelSplit, type KernelSplit } from './wasm/threads.js';

export interface TrainingSimd {
  readonly module: SimdModule;
  /** Per node of any of the graphs: its SIMD kernel call (pointers `q[slot]`, `pp[param]`, `st[staged]`). */
  readonly calls: ReadonlyMap<Node, string>;
  /** Per node with a call: the SIMD kernel's export name. */
  readonly kernels: ReadonlyMap<Node, string>;
  /** Per convolution computed as a GEMM: the export that copies its windows (im2col) or sums them back (col2im). */
  readonly columns: ReadonlyMap<Node, string>;
  /** Graph inputs (by name) a SIMD kernel reads, copied into the memory per call, and their floats per example. */
  readonly staged: readonly { readonly name: string; readonly floats: number }[];
  /** Floats per example of the column buffer the convolutions' window copies share (0: none). */
  readonly columnFloats: number;
  /** Floats of the scratch the transposed dx kernels copy a kernel into (0: none); one per thread. */
  readonly transposedFloats: number;
  /** Per kernel export: how its calls divide between threads (startThreads). */
  readonly splits: ReadonlyMap<string, KernelSplit>;
}

/** Locals the forward methods declare for the SIMD calls. */
export const trainingSimdLocals = ['simd', 'q', 'pp', 'st'];

/**
 * The SIMD kernels of the graphs (each with its buffer plan), named after
 * their TypeScript kernels; undefined when no node has one. `paramIndex`:
 * a parameter's position in the Trainer's parameter pointers.
 */
export function planTrainingSimd(
  graphs: readonly { readonly graph: Graph; readonly plan: BufferPlan }[],
  kernelName: (node: Node) => string,
  paramIndex: ReadonlyMap<string, number>,
): TrainingSimd | undefined {
  const requests: AnySimdKernelRequest[] = [];
  const calls = new Map<Node, string>();
  const kernels = new Map<Node, string>();
  const columnCopies = new Map<Node, string>();
  const staged: { name: string; floats: number }[] = [];
  let columnFloats = 0;
  let transposedFloats = 0;
  const splits = new Map<string, KernelSplit>();
  /** A kernel's split, one thread for a name called two different ways (never expected: names follow shapes). */
  const split = (name: string, req: AnySimdKernelRequest, floats: readonly [number, number, number, number]) => {
    const s = kernelSplit(req, floats, Math.abs(floats[3]));
    const prior = splits.get(name);
    splits.set(name, prior === undefined || JSON.stringify(prior) === JSON.stringify(s) ? s : { ...s, split: 'none' });
  };
  for (const { graph, plan } of graphs) {
    const types = new Map<string, TensorType>([...graph.inputs, ...graph.params].map((v) => [v.name, v.type]));
    for (const n of graph.nodes) types.set(n.result, n.type);
    const pointer = (value: string): string | undefined => {
      const at = plan.placement.get(value);
      if (at?.kind === 'slot') return `q[${at.slot}]!`;
      if (at?.kind === 'param' && paramIndex.has(at.name)) return `pp[${paramIndex.get(at.name)}]!`;
      if (at?.kind !== 'input') return undefined;
      // A graph input (the caller's array): staged, copied into the memory at the start of the call.
      const input = graph.inputs[at.index]!;
      let k = staged.findIndex((s) => s.name === input.name);
      if (k < 0) k = staged.push({ name: input.name, floats: perExample(input.type) }) - 1;
      return `st[${k}]!`;
    };
    for (const { node, kernel } of plan.steps) {
      if (!kernel) continue;
      const selection = selectionFor(node, node.operands.map((o) => types.get(o)!));
      const result = plan.placement.get(node.result);
      if (!selection || result?.kind !== 'slot' || node.operands.some((o) => plan.placement.get(o) === undefined)) continue;
      const ptrs = node.operands.map(pointer);
      if (ptrs.some((p) => p === undefined)) continue;
      const name = kernelName(node);
      const [a, b, bias] = ptrs as string[];
      const y = `q[${result.slot}]!`;
      const { request, columns } = selection;
      requests.push({ ...request, name });
      // Per argument, the floats its offset moves per example for a thread (0: a weight); a sum over examples gives its result's floats.
      const floats = [0, 1, 2].map((k) => (k < node.operands.length ? perExampleOf(types.get(node.operands[k]!)!) : 0));
      const yFloats = perExampleOf(node.type) || node.type.shape.reduce<number>((p, d) => p * (d as number), 1);
      // A transposed dx kernel takes its scratch (the kernel transposed) where a bias would go: one per thread.
      let third = bias ?? '0';
      if ('transposed' in request && request.transposed) {
        transposedFloats = Math.max(transposedFloats, request.inDim * request.units);
        third = 'this.transposed';
        floats[2] = -request.inDim * request.units;
      }
      if (columns === undefined) {
        calls.set(node, `simd.kernels.${name}(n, ${a}, ${b ?? '0'}, ${third}, ${y});`);
        split(name, request, [floats[0]!, floats[1]!, floats[2]!, yFloats]);
      } else {
        // A conv as a GEMM over its windows, through the Trainer's column buffer.
        const copy = `${name}_${columns.kind}`;
        requests.push({ ...columns, name: copy });
        columnCopies.set(node, copy);
        const w = columns.window;
        const cols = w.output[0] * w.output[1] * w.kernel[0] * w.kernel[1] * w.input[2];
        columnFloats = Math.max(columnFloats, cols);
        if (columns.kind === 'im2col') {
          split(copy, columns, [floats[0]!, 0, 0, cols]);
          split(name, request, [cols, floats[1]!, floats[2]!, yFloats]);
        } else {
          split(name, request, [floats[0]!, floats[1]!, floats[2]!, cols]);
          split(copy, columns, [cols, 0, 0, yFloats]);
        }
        calls.set(
          node,
          columns.kind === 'im2col'
            ? `{ simd.kernels.${copy}(n, ${a}, 0, 0, this.columns); simd.kernels.${name}(n, this.columns, ${b}, ${third}, ${y}); }`
            : `{ simd.kernels.${name}(n, ${a}, ${b}, ${third}, this.columns); simd.kernels.${copy}(n, this.columns, 0, 0, ${y}); }`,
        );
      }
      kernels.set(node, name);
    }
  }
  return calls.size === 0 ? undefined : { module: buildSimdModule(requests), calls, kernels, columns: columnCopies, staged, columnFloats, transposedFloats, splits };
}

/** Floats per example of a batched value (its leading dimension the batch), 0 for one without (a weight, a weight gradient). */
function perExampleOf(t: TensorType): number {
  return typeof t.shape[0] === 'number' ? 0 : perExample(t);
}

/** The Trainer's SIMD kernel for a node (every epilogue in the kernel), or undefined. */
function selectionFor(node: Node, operands: readonly TensorType[]): SimdSelection | undefined {
  const selection = simdRequestFor(node.op, { operands, result: node.type, attrs: node.attrs }, 'training');
  return selection && !selection.remaining ? selection : undefined;
}

/** The hooks of one forward method (its graph's SIMD calls; nothing when it has none). */
export function trainingSimdHooks(simd: TrainingSimd, graph: Graph): SimdHooks {
  const calls = graph.nodes.map((n) => simd.calls.get(n)).filter((c) => c !== undefined);
  return {
    start: (inputIds) => {
      if (calls.length === 0) return [];
      const copies = graph.inputs.flatMap((input, i) => {
        const k = simd.staged.findIndex((s) => s.name === input.name);
        return k < 0 || !calls.some((c) => c.includes(`st[${k}]`)) ? [] : [`if (simd !== undefined) this.staged[${k}]!.set(${inputIds[i]}.subarray(0, n * ${simd.staged[k]!.floats}));`];
      });
      return [
        'const simd = this.simd;',
        'const q = this.ptrs;',
        ...(calls.some((c) => c.includes('pp[')) ? ['const pp = this.pp;'] : []),
        ...(copies.length > 0 ? ['const st = this.stagedPtrs;', ...copies] : []),
      ];
    },
    call: (node) => simd.calls.get(node),
  };
}

/** Trainer constructor statements after `this.p` holds the initial values: move the parameters into the memory. */
export function trainingSimdConstructor(props: readonly { readonly prop: string; readonly floats: number }[]): string[] {
  return [
    '// WebAssembly SIMD kernels when this engine has them: then the parameters and the scratch buffers live in their memory.',
    'const simd = SimdRuntime.create();',
    'this.simd = simd;',
    'if (simd !== undefined) {',
    '  const initial = this.p;',
    `  this.pp = [${props.map((p) => p.floats).join(', ')}].map((floats) => simd.alloc(floats));`,
    '  this.p = this.bindParams(simd);',
    ...props.map((p) => `  this.p.${p.prop}.set(initial.${p.prop});`),
    '}',
  ];
}

/** bindParams: views of every parameter in the memory (again after it grows). */
export function trainingSimdBindParams(props: readonly { readonly prop: string; readonly floats: number }[]): string[] {
  return [`return { ${props.map((p, k) => `${p.prop}: simd.view(this.pp[${k}]!, ${p.floats})`).join(', ')} };`];
}

/** grow: scratch buffers (and staged inputs) in the memory when SIMD runs, then fresh views. */
export function trainingSimdGrow(simd: TrainingSimd): string[] {
  return [
    'const simd = this.simd;',
    'if (simd === undefined) {',
    '  this.scratch = SCRATCH.map((size, k) => new Float32Array(k < PER_EXAMPLE_SLOTS ? size * batchSize : size));',
    '} else {',
    '  // Allocate first, then take the views: growing the memory detaches views taken before.',
    '  this.ptrs = SCRATCH.map((size, k) => simd.alloc(k < PER_EXAMPLE_SLOTS ? size * batchSize : size));',
    ...(simd.columnFloats > 0 ? [`  this.columns = simd.alloc(${simd.columnFloats} * batchSize);`] : []),
    ...(simd.transposedFloats > 0 ? [`  if (this.transposed === 0) this.transposed = simd.alloc(${simd.transposedFloats} * simd.threads);`] : []),
    ...(simd.staged.length > 0 ? [`  this.stagedPtrs = [${simd.staged.map((s) => `simd.alloc(${s.floats} * batchSize)`).join(', ')}];`] : []),
    '  this.views(simd, batchSize);',
    '}',
  ];
}

/** views: every Float32Array the Trainer keeps on the memory, taken again (after it grows, or moves for threads). */
export function trainingSimdViews(simd: TrainingSimd): string[] {
  return [
    'if (this.ptrs.length > 0) {',
    '  this.scratch = SCRATCH.map((size, k) => simd.view(this.ptrs[k]!, k < PER_EXAMPLE_SLOTS ? size * batchSize : size));',
    ...(simd.staged.length > 0 ? [`  this.staged = [${simd.staged.map((s, k) => `simd.view(this.stagedPtrs[${k}]!, ${s.floats} * batchSize)`).join(', ')}];`] : []),
    '}',
    'this.p = this.bindParams(simd);',
  ];
}

/** The Trainer's thread methods and accessors (simd.ts threadMembers): each thread transposes kernels into a scratch of its own. */
export function trainingSimdThreads(simd: TrainingSimd): { methods: object[]; getters: object[] } {
  const transposed = simd.transposedFloats > 0 ? ['// Each thread transposes a layer kernel into a scratch of its own.', `if (threads > 1) this.transposed = simd.alloc(${simd.transposedFloats} * threads);`] : [];
  return threadMembers('trainer', transposed, trainingSimdViews(simd));
}
