/**
 * The kernel functions of a generated module (inference and training): one
 * function per distinct kernel body, named after the op and shape, the
 * helpers they call, and the record of each kernel as data (`KernelRecord`:
 * name, op, layers and the plan its op's emit chose), which the module's
 * generator returns beside the text so that tests and tools read plans
 * instead of doc comments.
 */
import { StructureKind, type FunctionDeclarationStructure, type SourceFile } from 'ts-morph';
import type { Node } from '../ir/graph.js';
import type { KernelCode, KernelPlan, RuntimeHelper } from '../ops/emit.js';
import { commentText, type Namer } from './names.js';
import type { BufferPlan } from './plan.js';
import type { SimdModule } from './wasm/index.js';

/** What a module records about one of its kernel functions. */
export interface KernelRecord {
  /** The function's name in the module. */
  readonly name: string;
  readonly op: string;
  /** The spec layers (node provenance) it implements, in order of first use. */
  readonly layers: readonly string[];
  /** The template the op's emit chose for this shape, and why. */
  readonly plan: KernelPlan;
  /**
   * With `--simd`: the WebAssembly kernel (export name) that runs instead
   * where the engine has SIMD, for the nodes the SIMD planner gave one, and
   * its plan (path `simd`).
   */
  readonly simd?: {
    readonly name: string;
    readonly plan: KernelPlan;
    /** A convolution as a GEMM (the Trainer's): the export that copies its windows (im2col) or sums them back (col2im). */
    readonly columns?: string;
  };
}

/** The SIMD kernels of a module (`--simd`): the module, and per node the export that replaces its kernel. */
export interface SimdKernels {
  readonly module: SimdModule;
  kernelOf(node: Node): string | undefined;
  /** The window-copy export that runs with it, for a convolution computed as a GEMM. */
  columnsOf?(node: Node): string | undefined;
}

/** A kernel function of the module: its name, its code and what it implements. */
export interface NamedKernel {
  readonly name: string;
  readonly code: KernelCode;
  /** The op of the first node it computes. */
  readonly op: string;
  /** The spec layers (node provenance) it implements, in order of first use. */
  readonly layers: string[];
}

/** One function per distinct kernel: equal params and body are one function (across every plan given). */
export function nameKernels(plans: BufferPlan | readonly BufferPlan[], top: Namer): Map<Node, NamedKernel> {
  const byBody = new Map<string, NamedKernel>();
  const byNode = new Map<Node, NamedKernel>();
  for (const { node, kernel } of [plans].flat().flatMap((p) => p.steps)) {
    if (!kernel) continue;
    const key = `${kernel.params.join(',')}\n${kernel.body}`;
    let named = byBody.get(key);
    if (!named) {
      named = { name: top.name(kernel.stem), code: kernel, op: node.op, layers: [] };
      byBody.set(key, named);
    }
    if (!named.layers.includes(node.layer)) named.layers.push(node.layer);
    byNode.set(node, named);
  }
  return byNode;
}

/** Every helper the kernels call, and the helpers those call, sorted by name. */
export function collectHelpers(plans: BufferPlan | readonly BufferPlan[]): RuntimeHelper[] {
  const found = new Map<string, RuntimeHelper>();
  const visit = (h: RuntimeHelper) => {
    const seen = found.get(h.name);
    if (seen && seen.source !== h.source) throw new Error(`two helpers named ${h.name} with different code`);
    found.set(h.name, h);
    for (const u of h.uses ?? []) visit(u);
  };
  for (const { kernel } of [plans].flat().flatMap((p) => p.steps)) for (const h of kernel?.helpers ?? []) visit(h);
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** One function per named kernel (see kernelFunctions), added in one call: ts-morph reparses the file after each. */
export function addKernels(file: SourceFile, kernels: Map<Node, NamedKernel>): void {
  file.addFunctions(kernelFunctions(kernels));
}

/** One function per named kernel, with its summary, the layers it implements and the passes that shaped them. */
export function kernelFunctions(kernels: Map<Node, NamedKernel>): FunctionDeclarationStructure[] {
  const distinct = new Map([...kernels.values()].map((k) => [k.name, k]));
  return [...distinct.values()].map((k) => {
    const passes = [...new Set(k.layers.flatMap(shapedBy))];
    return {
      kind: StructureKind.Function,
      name: k.name,
      docs: [[
        commentText(k.code.summary),
        `Implements: ${k.layers.map(commentText).join('; ')}`,
        ...(passes.length > 0 ? [`Shaped by: ${passes.join(', ')}`] : []),
      ].join('\n')],
      // A parameter the body never reads (the batch size of a weight update) is `_`-named.
      parameters: [
        { name: unread('n', k.code.body), type: 'number' },
        ...k.code.params.map((p) => ({ name: unread(p, k.code.body), type: 'Float32Array' })),
        { name: 'y', type: 'Float32Array' },
      ],
      returnType: 'void',
      statements: k.code.body,
    };
  });
}

/** `name`, or `_name` when `body` never mentions it (clean under noUnusedParameters). */
function unread(name: string, body: string): string {
  return new RegExp(`(^|[^\\w$.])${name}(?![\\w$])`).test(body) ? name : `_${name}`;
}

/** Passes named by the markers they leave in a node's provenance. */
function shapedBy(layer: string): string[] {
  const passes: string[] = [];
  if (layer.includes('(folded)')) passes.push('fold-bn');
  if (/\bfused\)/.test(layer)) passes.push('fuse-activation');
  return passes;
}

/** The record of every kernel function, in the order of `kernels` (first use). */
export function kernelRecords(kernels: ReadonlyMap<Node, NamedKernel>, simd?: SimdKernels): KernelRecord[] {
  const records = new Map<NamedKernel, KernelRecord>();
  for (const [node, k] of kernels) {
    const prior = records.get(k);
    const simdName = prior?.simd?.name ?? simd?.kernelOf(node);
    const layout = simdName === undefined ? undefined : simd!.module.layouts.find((l) => l.name === simdName);
    const columnsName = prior?.simd?.columns ?? simd?.columnsOf?.(node);
    const columns = columnsName === undefined ? undefined : simd!.module.layouts.find((l) => l.name === columnsName);
    // With a window copy, the plan says both steps in the order they run.
    const reason = !layout ? '' : !columns ? layout.summary : columns.request.kind === 'im2col' ? `${columns.summary}, then ${layout.summary}` : `${layout.summary}, then ${columns.summary}`;
    records.set(k, {
      name: k.name,
      op: k.op,
      layers: [...k.layers],
      plan: k.code.plan,
      ...(layout ? { simd: { name: layout.name, plan: { path: 'simd', reason }, ...(columns ? { columns: columns.name } : {}) } } : {}),
    });
  }
  return [...records.values()];
}
