/**
 * The SIMD kernels of a model as one WebAssembly module, and the TypeScript
 * a generated module carries to load and run it.
 *
 *   const mod = buildSimdModule([{ kind: 'dense', inDim: 784, units: 64, bias: true, epilogue: 'relu' }]);
 *   mod.bytes     // the .wasm binary: imports env.memory, exports one function per kernel
 *   mod.layouts   // per kernel: its export name, packed weight and bias sizes, packing
 *   simdRuntimeSource(mod)   // TypeScript: the bytes (base64) and class SimdRuntime
 *
 * Memory. The module imports its memory, so each `SimdRuntime` owns one
 * `WebAssembly.Memory` and its own instance of the (shared, compiled once)
 * module. Weights are packed and copied in once (`runtime.weights(...)`);
 * activations are Float32Array views on the same memory (`runtime.alloc` +
 * `runtime.view`), so consecutive kernels (wasm or pure TypeScript) read and
 * write the memory directly: only the caller's inputs are copied in per call.
 * Growing the memory (`alloc` past its end) detaches every earlier view: take
 * views after the last `alloc`.
 *
 * Loading. `SimdRuntime.create()` compiles synchronously on first use and
 * returns undefined when it cannot run the kernels: no WebAssembly, no SIMD
 * (`WebAssembly.validate` of the bytes fails: Safari < 16.4, old engines), or
 * the engine refused to compile synchronously. Chrome before 114 refused
 * `new WebAssembly.Module` on the main thread for modules over 4 KB (since
 * 114 the limit is 8 MB), so keep modules small or `await
 * SimdRuntime.ready()` (asynchronous compilation) before `create()`. The
 * caller falls back to its pure-TypeScript kernels when `create()` returns
 * undefined.
 */
import type { AnySimdKernelRequest } from '../../ops/simd-def.js';
import { ModuleBuilder } from './encode.js';
import type { SimdKernel, SimdKernelLayout } from './kernel-common.js';
import { CONTROL_WORDS, SPIN, workerSource, type KernelSplit } from './threads.js';
import { batchnormTrainGradGammaKernel, batchnormTrainGradInputKernel, batchnormTrainKernel } from './batchnorm.js';
import { channelMeanKernel, channelSumKernel, channelVarianceKernel } from './channel-stats.js';
import { col2imKernel, im2colKernel } from './columns.js';
import { depthwiseKernel } from './depthwise.js';
import { conv2dKernel, denseKernel } from './kernels.js';
import { maxPoolGradKernel, maxPoolKernel } from './pool.js';
import { reluGradKernel, reluKernel } from './relu.js';
import { denseGradInputKernel, denseGradKernelKernel } from './train-kernels.js';

export interface SimdModule {
  /** The WebAssembly binary. */
  readonly bytes: Uint8Array;
  /** Export names, in request order. */
  readonly exports: string[];
  readonly layouts: SimdKernelLayout[];
  /** The bytes that import a shared memory instead (threads): these with [start, end) replaced by \`bytes\` (the import section). */
  readonly shared: { readonly start: number; readonly end: number; readonly bytes: Uint8Array };
}

/**
 * The builder of each SIMD kernel kind (the request kinds of ops/simd-def.ts,
 * named after the computation they do; the op records choose them).
 */
const builders: { readonly [K in AnySimdKernelRequest['kind']]: (req: Extract<AnySimdKernelRequest, { kind: K }>) => SimdKernel } = {
  dense: denseKernel,
  conv2d: conv2dKernel,
  depthwise_conv2d: depthwiseKernel,
  dense_grad_input: denseGradInputKernel,
  dense_grad_kernel: denseGradKernelKernel,
  im2col: im2colKernel,
  col2im: col2imKernel,
  batchnorm_train: batchnormTrainKernel,
  batchnorm_train_grad_input: batchnormTrainGradInputKernel,
  batchnorm_train_grad_gamma: batchnormTrainGradGammaKernel,
  max_pool2d: maxPoolKernel,
  max_pool2d_grad: maxPoolGradKernel,
  relu: reluKernel,
  relu_grad: reluGradKernel,
  channel_sum: channelSumKernel,
  channel_mean: channelMeanKernel,
  channel_variance: channelVarianceKernel,
};

/** The kernel builder of a request. */
export function simdKernel(req: AnySimdKernelRequest): SimdKernel {
  return (builders[req.kind] as (r: AnySimdKernelRequest) => SimdKernel)(req);
}

/** One module exporting a kernel per request; requests with equal names must be equal kernels (deduplicated). */
export function buildSimdModule(kernels: readonly AnySimdKernelRequest[]): SimdModule {
  const builder = new ModuleBuilder().importMemory(1);
  const layouts: SimdKernelLayout[] = [];
  const seen = new Map<string, string>();
  for (const req of kernels) {
    const k = simdKernel(req);
    const key = JSON.stringify({ ...req, name: undefined });
    const prior = seen.get(k.layout.name);
    if (prior !== undefined) {
      if (prior !== key) throw new Error(`two different SIMD kernels named ${k.layout.name}`);
      continue;
    }
    if (!/^[A-Za-z_$][\w$]*$/.test(k.layout.name)) throw new Error(`SIMD kernel name ${JSON.stringify(k.layout.name)} is not an identifier`);
    seen.set(k.layout.name, key);
    builder.func(k.layout.name, ['i32', 'i32', 'i32', 'i32', 'i32'], [], k.build);
    layouts.push(k.layout);
  }
  const bytes = builder.encode();
  return { bytes, exports: builder.exports, layouts, shared: patchTo(bytes, builder.importMemory(1, 'env', 'memory', SIMD_MAX_PAGES, true).encode()) };
}

/** The largest shared memory the threads use, in 64 KiB pages (4 GiB: all of wasm32). */
export const SIMD_MAX_PAGES = 65536;

/** `to` as `from` with bytes [start, end) replaced by `bytes` (the one differing range). */
function patchTo(from: Uint8Array, to: Uint8Array): SimdModule['shared'] {
  let start = 0;
  while (start < from.length && from[start] === to[start]) start++;
  let tail = 0;
  while (tail < from.length - start && tail < to.length - start && from[from.length - 1 - tail] === to[to.length - 1 - tail]) tail++;
  return { start, end: from.length - tail, bytes: to.slice(start, to.length - tail) };
}

/**
 * Keras-layout weights ([k, units] row-major: a dense kernel, or a conv
 * kernel [kh, kw, cin, cout] flattened) in the kernel's packed layout.
 */
export function packWeights(layout: SimdKernelLayout, kernel: Float32Array): Float32Array {
  const { k, units, panel } = layout.pack;
  if (kernel.length !== k * units) throw new RangeError(`${layout.name}: expected ${k * units} kernel floats, got ${kernel.length}`);
  const out = new Float32Array(layout.weightFloats);
  packPanels(kernel, k, units, panel, out, 0);
  return out;
}

/** The bias padded with zeros to the kernel's bias length. */
export function padBias(layout: SimdKernelLayout, bias: Float32Array): Float32Array {
  const out = new Float32Array(layout.biasFloats);
  out.set(bias.subarray(0, Math.min(bias.length, out.length)));
  return out;
}

/** The packing loop (the same code as `packPanels` in the runtime source). */
function packPanels(src: Float32Array, k: number, units: number, panel: number, dst: Float32Array, at: number): void {
  for (let j0 = 0; j0 < units; j0 += panel) {
    const width = Math.min(panel, Math.ceil((units - j0) / 4) * 4);
    const cols = Math.min(panel, units - j0);
    for (let r = 0; r < k; r++, at += width) {
      for (let j = 0; j < cols; j++) dst[at + j] = src[r * units + j0 + j]!;
    }
  }
}

/** Base64 of bytes (for embedding). */
export function toBase64(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!, b = bytes[i + 1], c = bytes[i + 2];
    const v = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    s += alphabet[v >> 18]! + alphabet[(v >> 12) & 63]! + (b === undefined ? '=' : alphabet[(v >> 6) & 63]!) + (c === undefined ? '=' : alphabet[v & 63]!);
  }
  return s;
}

/**
 * TypeScript declarations that load and run `mod` (clean under --strict
 * --noUncheckedIndexedAccess --noUnusedLocals --noUnusedParameters with
 * --lib es2022: the WebAssembly, worker and Atomics APIs are declared as
 * minimal interfaces and read from globalThis, never as globals). Top-level
 * names: simdModuleNames in codegen/simd.ts. It calls \`base64Bytes\`
 * (runtime.ts's base64BytesSource), which the module must also contain.
 * `splits`: how each kernel divides between threads (threads.ts; a kernel
 * without one runs on the calling thread). Entry points (all on SimdRuntime):
 *
 *   SimdRuntime.create(): SimdRuntime | undefined    synchronous; undefined -> use the TS kernels
 *   SimdRuntime.ready(): Promise<boolean>           compiles asynchronously if need be
 *   rt.kernels.<name>(n, x, w, b, y)               byte offsets into rt's memory
 *   rt.weights(name, kernel, bias?)                packs and copies weights in: [wPtr, bPtr]
 *   rt.alloc(floats) / rt.view(ptr, floats)        activation buffers
 *   await rt.startThreads(count) / rt.stopThreads()  threads (moves to a shared memory: take views again)
 */
export function simdRuntimeSource(mod: SimdModule, splits: ReadonlyMap<string, KernelSplit> = new Map()): string {
  const layout = mod.layouts
    .map((l) => `  ${l.name}: [${l.pack.k}, ${l.pack.units}, ${l.pack.panel}, ${l.weightFloats}, ${l.biasFloats}],`)
    .join('\n');
  const splitKinds = { none: 0, rows: 1, reduce: 2 } as const;
  const split = mod.layouts
    .map((l) => {
      const s = splits.get(l.name);
      return `  ${l.name}: [${s ? `${splitKinds[s.split]}, ${s.work}, ${s.floats.join(', ')}` : '0, 0, 0, 0, 0, 0'}],`;
    })
    .join('\n');
  const kernels = mod.layouts.map((l) => `  readonly ${l.name}: SimdKernel;`).join('\n');
  return `/** The part of the WebAssembly JS API the SIMD kernels use (not in lib es2022: read from globalThis). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<object>;
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => WasmInstance;
  readonly Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

/** A SIMD kernel: n examples from x to y; every argument after n a byte offset into the runtime's memory. */
type SimdKernel = (n: number, x: number, w: number, b: number, y: number) => void;

/** The kernels of SIMD_WASM by export name. */
interface SimdKernels {
${kernels}
}

/** Per kernel: the packed weights as [k, units] in column panels of \`panel\` floats; packed and bias floats. */
const SIMD_LAYOUT: Readonly<Record<keyof SimdKernels, readonly [k: number, units: number, panel: number, weightFloats: number, biasFloats: number]>> = {
${layout}
};

/**
 * Per kernel, how its calls divide between threads: split 0 (one thread), 1
 * (ranges of examples) or 2 (ranges of examples, each summed into a partial
 * of its own, then the partials added); the work per example; and per
 * argument (x, w, b, y) the floats its offset moves per example (0: a weight;
 * negative: per thread, a scratch of each thread's own). With split 2, y's
 * entry is the result's floats.
 */
const SIMD_SPLIT: Readonly<Record<keyof SimdKernels, readonly [split: number, work: number, x: number, w: number, b: number, y: number]>> = {
${split}
};

/** Calls with less work than this (work per example times examples) run on the calling thread alone: about 10 µs of arithmetic. */
const SIMD_SPLIT_WORK = 262144;

/** ${mod.bytes.length} bytes of WebAssembly (SIMD), base64. */
const SIMD_WASM = "${toBase64(mod.bytes)}";

/** SIMD_WASM importing a shared memory (threads): its bytes [start, end) replaced by these (the import section). */
const SIMD_SHARED_IMPORT: readonly [start: number, end: number, bytes: readonly number[]] = [${mod.shared.start}, ${mod.shared.end}, [${[...mod.shared.bytes].join(', ')}]];

/** The shared memory's maximum in 64 KiB pages, as that import declares it. */
const SIMD_MAX_PAGES = ${SIMD_MAX_PAGES};

/** The worker every thread after the first runs (JavaScript for a Node worker_threads eval worker or a Web Worker). */
const SIMD_WORKER = ${JSON.stringify(workerSource)};

/** [k, units] row-major weights into column panels of \`panel\` floats (the last rounded up to 4 with zeros). */
function packPanels(src: Float32Array, k: number, units: number, panel: number, dst: Float32Array): void {
  let at = 0;
  for (let j0 = 0; j0 < units; j0 += panel) {
    const width = Math.min(panel, Math.ceil((units - j0) / 4) * 4);
    const cols = Math.min(panel, units - j0);
    for (let r = 0; r < k; r++, at += width) {
      for (let j = 0; j < cols; j++) dst[at + j] = src[r * units + j0 + j]!;
    }
  }
}

/** The parts of Atomics the threads use (lib es2022 has them, but not on every engine: read from globalThis). */
interface AtomicsApi {
  load(a: Int32Array, i: number): number;
  store(a: Int32Array, i: number, v: number): number;
  add(a: Int32Array, i: number, v: number): number;
  wait(a: Int32Array, i: number, v: number, timeout?: number): string;
  notify(a: Int32Array, i: number, count?: number): number;
}

/** A started worker thread. */
interface SimdWorker {
  post(message: object): void;
  /** Resolves on the worker's first message, rejects if it fails before. */
  readonly ready: Promise<void>;
  terminate(): void;
}

/** Node's worker_threads.Worker, as far as it is used. */
interface NodeWorker {
  postMessage(message: object): void;
  once(event: string, listener: (value: unknown) => void): void;
  unref(): void;
  terminate(): unknown;
}
/** A Web Worker, as far as it is used. */
interface WebWorker {
  postMessage(message: object): void;
  onmessage: ((event: unknown) => void) | null;
  onerror: ((event: { message?: string }) => void) | null;
  terminate(): void;
}

/**
 * A function that starts a worker running SIMD_WORKER, or why this engine
 * cannot: Node's worker_threads, else Web Workers from a Blob URL.
 */
async function simdWorkers(): Promise<(() => SimdWorker) | string> {
  const g = globalThis as unknown as {
    SharedArrayBuffer?: unknown;
    crossOriginIsolated?: boolean;
    process?: { versions?: { node?: string }; getBuiltinModule?: (name: string) => unknown };
    Worker?: new (url: string) => WebWorker;
    Blob?: new (parts: string[], options: { type: string }) => object;
    URL?: { createObjectURL(blob: object): string };
  };
  if (g.crossOriginIsolated === false) return "the page is not cross-origin isolated (it needs the COOP and COEP headers), so there is no shared memory";
  if (typeof g.SharedArrayBuffer !== "function") return "this engine has no SharedArrayBuffer";
  if (g.process?.versions?.node !== undefined) {
    type Threads = { Worker: new (source: string, options: { eval: boolean }) => NodeWorker };
    const name = "node:worker_threads";
    const threads = (g.process.getBuiltinModule?.(name) ?? (await import(name))) as Threads;
    return () => {
      const worker = new threads.Worker(SIMD_WORKER, { eval: true });
      // Idle workers do not keep the process alive.
      worker.unref();
      const ready = new Promise<void>((resolve, reject) => {
        worker.once("message", () => resolve());
        worker.once("error", (e) => reject(e instanceof Error ? e : new Error(String(e))));
      });
      return { post: (message) => worker.postMessage(message), ready, terminate: () => void worker.terminate() };
    };
  }
  const { Worker, Blob, URL } = g;
  if (Worker === undefined || Blob === undefined || URL === undefined) return "this engine has no workers";
  const url = URL.createObjectURL(new Blob([SIMD_WORKER], { type: "text/javascript" }));
  return () => {
    const worker = new Worker(url);
    const ready = new Promise<void>((resolve, reject) => {
      worker.onmessage = () => resolve();
      worker.onerror = (e) => reject(new Error(e.message ?? "the worker failed to start"));
    });
    return { post: (message) => worker.postMessage(message), ready, terminate: () => worker.terminate() };
  };
}

/**
 * The SIMD kernels over a memory of their own. Not shared between models: a
 * memory that grows detaches the views taken on it before.
 */
class SimdRuntime {
  /** The compiled module: undefined before the first attempt, null when the kernels cannot run here. */
  private static compiled: object | null | undefined = undefined;
  private static pending: Promise<boolean> | undefined = undefined;

  /** The kernels, each dividing its work between the threads when they run (startThreads). */
  kernels: SimdKernels;
  /** The kernels of this thread's instance. */
  private own: SimdKernels;
  private memory: WasmMemory;
  private readonly api: WasmApi;
  /** The first free byte (16-byte aligned). */
  private top = 16;
  private workers: SimdWorker[] = [];
  /** The control block of the running workers (see SIMD_WORKER). */
  private control: Int32Array | undefined = undefined;
  /** Per kernel with split 2: the byte offset of its per-thread partials. */
  private partials: Partial<Record<keyof SimdKernels, number>> = {};
  /** Whether this thread may block in Atomics.wait (a browser's main thread may not: it spins). */
  private blocking = false;
  /** Why the last startThreads runs fewer threads than asked for (undefined when it runs them all). */
  threadsNote: string | undefined = undefined;
  /** Calls with less work than this run on this thread alone (the cost of waking the workers). */
  splitWork = SIMD_SPLIT_WORK;
  /** Jobs the threads have run. */
  jobs = 0;

  private constructor(module: object, api: WasmApi) {
    this.api = api;
    this.memory = new api.Memory({ initial: 1 });
    this.own = new api.Instance(module, { env: { memory: this.memory } }).exports as unknown as SimdKernels;
    this.kernels = this.own;
  }

  private static api(): WasmApi | undefined {
    const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    return api !== undefined && typeof api.validate === "function" ? api : undefined;
  }

  /**
   * A runtime, compiling the module synchronously on first use; undefined
   * when WebAssembly SIMD is unavailable or synchronous compilation was
   * refused (a browser's main thread): then use the TypeScript kernels, or
   * await SimdRuntime.ready() first.
   */
  static create(): SimdRuntime | undefined {
    const api = SimdRuntime.api();
    if (SimdRuntime.compiled === undefined && api !== undefined) {
      const bytes = base64Bytes(SIMD_WASM);
      if (!api.validate(bytes)) SimdRuntime.compiled = null;
      else {
        try {
          SimdRuntime.compiled = new api.Module(bytes);
        } catch {
          // Refused synchronously (size limit on a main thread): ready() compiles asynchronously.
        }
      }
    }
    const module = SimdRuntime.compiled;
    return api === undefined || module === undefined || module === null ? undefined : new SimdRuntime(module, api);
  }

  /** Compiles the module (asynchronously when needed); true when create() will return a runtime. */
  static ready(): Promise<boolean> {
    if (SimdRuntime.compiled !== undefined) return Promise.resolve(SimdRuntime.compiled !== null);
    const api = SimdRuntime.api();
    if (api === undefined) return Promise.resolve(false);
    const bytes = base64Bytes(SIMD_WASM);
    if (!api.validate(bytes)) {
      SimdRuntime.compiled = null;
      return Promise.resolve(false);
    }
    SimdRuntime.pending ??= api.compile(bytes).then(
      (module) => {
        SimdRuntime.compiled = module;
        return true;
      },
      () => {
        SimdRuntime.compiled = null;
        return false;
      },
    );
    return SimdRuntime.pending;
  }

  /** A 16-byte aligned block of \`floats\` floats; grows the memory (detaching earlier views) when needed. */
  alloc(floats: number): number {
    const ptr = this.top;
    this.top = Math.ceil((ptr + floats * 4) / 16) * 16;
    const short = this.top - this.memory.buffer.byteLength;
    if (short > 0) this.memory.grow(Math.ceil(short / 65536));
    return ptr;
  }

  /** The floats at byte offset \`ptr\`, valid until the memory next grows. */
  view(ptr: number, floats: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, floats);
  }

  /**
   * Copies a kernel's weights in, packed (Keras layout in: [k, units], a conv
   * kernel flattened); returns the byte offsets of the weights and the bias
   * (0 without one).
   */
  weights(name: keyof SimdKernels, kernel: Float32Array, bias?: Float32Array): [w: number, b: number] {
    const [k, units, panel, weightFloats, biasFloats] = SIMD_LAYOUT[name];
    if (kernel.length !== k * units) throw new RangeError(name + ": expected " + k * units + " kernel floats, got " + kernel.length);
    const w = this.alloc(weightFloats);
    const b = biasFloats > 0 ? this.alloc(biasFloats) : 0;
    packPanels(kernel, k, units, panel, this.view(w, weightFloats));
    if (bias !== undefined && b !== 0) this.view(b, biasFloats).set(bias.subarray(0, Math.min(bias.length, biasFloats)));
    return [w, b];
  }

  /** The threads the kernels run on: this one and its workers. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Runs the kernels on \`count\` threads (this one and count - 1 workers);
   * resolves to the count that runs, 1 with threadsNote saying why when the
   * engine has no shared memory or workers. The first call moves everything
   * into a shared memory: byte offsets stay, every view must be taken again.
   */
  async startThreads(count: number): Promise<number> {
    this.stopThreads();
    this.threadsNote = undefined;
    const want = Math.max(1, Math.floor(count));
    if (want === 1) return 1;
    const atomics = (globalThis as unknown as { Atomics?: AtomicsApi }).Atomics;
    const start = atomics === undefined ? "this engine has no Atomics" : await simdWorkers();
    if (typeof start === "string") {
      this.threadsNote = start;
      return 1;
    }
    if (this.shared === undefined) {
      // The same bytes importing a shared memory, and everything copied over.
      const bytes = base64Bytes(SIMD_WASM);
      const [from, to, shared] = SIMD_SHARED_IMPORT;
      const patched = new Uint8Array(bytes.length - (to - from) + shared.length);
      patched.set(bytes.subarray(0, from));
      patched.set(shared, from);
      patched.set(bytes.subarray(to), from + shared.length);
      const module = await this.api.compile(patched);
      const memory = new this.api.Memory({ initial: this.memory.buffer.byteLength / 65536, maximum: SIMD_MAX_PAGES, shared: true });
      new Uint8Array(memory.buffer).set(new Uint8Array(this.memory.buffer));
      this.memory = memory;
      this.shared = module;
      this.own = new this.api.Instance(module, { env: { memory } }).exports as unknown as SimdKernels;
    }
    // A fresh control block and partials per start: workers being stopped may still read the old ones.
    const control = this.alloc(${CONTROL_WORDS});
    for (const name of Object.keys(SIMD_SPLIT) as (keyof SimdKernels)[]) {
      const [split, , , , , floats] = SIMD_SPLIT[name];
      if (split === 2) this.partials[name] = this.alloc(floats * want);
    }
    const c = new Int32Array(this.memory.buffer, control, ${CONTROL_WORDS});
    const names = Object.keys(SIMD_LAYOUT);
    const workers = Array.from({ length: want - 1 }, () => start());
    workers.forEach((w, k) => w.post({ module: this.shared, memory: this.memory, control, thread: k + 1, threads: want, names }));
    try {
      await Promise.all(workers.map((w) => w.ready));
    } catch (e) {
      for (const w of workers) w.terminate();
      this.threadsNote = "a worker failed to start: " + (e instanceof Error ? e.message : String(e));
      return 1;
    }
    try {
      atomics!.wait(c, 1, 1, 0);
      this.blocking = true;
    } catch {
      this.blocking = false;
    }
    this.control = c;
    this.workers = workers;
    this.kernels = this.divided(atomics!);
    return want;
  }

  /** The module importing a shared memory, once compiled (startThreads). */
  private shared: object | undefined = undefined;

  /** Stops the workers: the kernels run on this thread alone (in the shared memory, if threads ran). */
  stopThreads(): void {
    const c = this.control;
    const atomics = (globalThis as unknown as { Atomics?: AtomicsApi }).Atomics;
    if (c !== undefined && atomics !== undefined) {
      atomics.store(c, 1, 1);
      atomics.add(c, 0, 1);
      atomics.notify(c, 0);
    }
    for (const w of this.workers) w.terminate();
    this.workers = [];
    this.control = undefined;
    this.kernels = this.own;
  }

  /** The kernels that divide their calls between the threads (SIMD_SPLIT). */
  private divided(atomics: AtomicsApi): SimdKernels {
    const kernels: Record<string, SimdKernel> = {};
    (Object.keys(SIMD_LAYOUT) as (keyof SimdKernels)[]).forEach((name, index) => {
      const own = this.own[name];
      const [split, work, ...floats] = SIMD_SPLIT[name];
      kernels[name] = (n, x, w, b, y) => {
        if (split === 0 || n * work < this.splitWork) own(n, x, w, b, y);
        else if (split === 1) this.job(atomics, own, index, n, [x, w, b, y], floats);
        else {
          const partials = this.partials[name]!;
          this.job(atomics, own, index, n, [x, w, b, partials], [floats[0]!, floats[1]!, floats[2]!, -floats[3]!]);
          this.job(atomics, undefined, index, n, [0, 0, 0, y], [0, 0, 0, 0], partials, floats[3]!);
        }
      };
    });
    return kernels as unknown as SimdKernels;
  }

  /**
   * One job on every thread (see SIMD_WORKER): with a kernel, kernel
   * \`index\` (\`own\` on this thread) on each thread's examples; without,
   * the sum of the threads' partials into y. This thread does its share
   * (thread 0), then waits for the others.
   */
  private job(atomics: AtomicsApi, own: SimdKernel | undefined, index: number, n: number, at: readonly number[], floats: readonly number[], partials = 0, sum = 0): void {
    const c = this.control!;
    const threads = this.threads;
    c[3] = n;
    c[4] = own === undefined ? 1 : 0;
    c[5] = index;
    for (let k = 0; k < 4; k++) {
      c[6 + 2 * k] = at[k]!;
      c[7 + 2 * k] = floats[k]!;
    }
    c[14] = partials;
    c[15] = sum;
    atomics.store(c, 2, threads - 1);
    this.jobs++;
    atomics.add(c, 0, 1);
    atomics.notify(c, 0);
    if (own !== undefined) {
      // Thread 0: the first examples, and the first per-thread scratch (offsets as given).
      const to = Math.floor(n / threads);
      if (to > 0) own(to, at[0]!, at[1]!, at[2]!, at[3]!);
    } else {
      const f = new Float32Array(this.memory.buffer);
      const y = at[3]! >> 2, p = partials >> 2;
      for (let i = 0, to = Math.floor(sum / threads); i < to; i++) {
        let s = f[p + i]!;
        for (let t = 1; t < threads; t++) s += f[p + t * sum + i]!;
        f[y + i] = s;
      }
    }
    for (let left = atomics.load(c, 2), spin = 0; left !== 0; left = atomics.load(c, 2), spin++) {
      // Spin a little first: the workers are usually about to finish.
      if (this.blocking && spin > ${SPIN}) atomics.wait(c, 2, left);
    }
    if (c[16] !== 0) {
      c[16] = 0;
      throw new Error("a SIMD kernel failed in a worker thread");
    }
  }
}`;
}
