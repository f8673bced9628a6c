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
import { batchnormTrainGradGammaKernel, batchnormTrainGradInputKernel, batchnormTrainKernel } from './batchnorm.js';
import { col2imKernel, im2colKernel } from './columns.js';
import { depthwiseKernel } from './depthwise.js';
import { conv2dKernel, denseKernel } from './kernels.js';
import { denseGradInputKernel, denseGradKernelKernel } from './train-kernels.js';

export interface SimdModule {
  /** The WebAssembly binary. */
  readonly bytes: Uint8Array;
  /** Export names, in request order. */
  readonly exports: string[];
  readonly layouts: SimdKernelLayout[];
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
  return { bytes: builder.encode(), exports: builder.exports, layouts };
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
 * --lib es2022: the WebAssembly API is declared as minimal interfaces and read
 * from globalThis, never as a global). Top-level names: WasmMemory,
 * WasmInstance, WasmApi, SimdKernel, SimdKernels, SIMD_LAYOUT, SIMD_WASM,
 * packPanels, SimdRuntime. It calls \`base64Bytes\` (runtime.ts's
 * base64BytesSource), which the module must also contain. Entry points (all on SimdRuntime):
 *
 *   SimdRuntime.create(): SimdRuntime | undefined    synchronous; undefined -> use the TS kernels
 *   SimdRuntime.ready(): Promise<boolean>           compiles asynchronously if need be
 *   rt.kernels.<name>(n, x, w, b, y)               byte offsets into rt's memory
 *   rt.weights(name, kernel, bias?)                packs and copies weights in: [wPtr, bPtr]
 *   rt.alloc(floats) / rt.view(ptr, floats)        activation buffers
 */
export function simdRuntimeSource(mod: SimdModule): string {
  const layout = mod.layouts
    .map((l) => `  ${l.name}: [${l.pack.k}, ${l.pack.units}, ${l.pack.panel}, ${l.weightFloats}, ${l.biasFloats}],`)
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
  readonly Memory: new (descriptor: { initial: number }) => WasmMemory;
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

/** ${mod.bytes.length} bytes of WebAssembly (SIMD), base64. */
const SIMD_WASM = "${toBase64(mod.bytes)}";

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

/**
 * The SIMD kernels over a memory of their own. Not shared between models: a
 * memory that grows detaches the views taken on it before.
 */
class SimdRuntime {
  /** The compiled module: undefined before the first attempt, null when the kernels cannot run here. */
  private static compiled: object | null | undefined = undefined;
  private static pending: Promise<boolean> | undefined = undefined;

  readonly kernels: SimdKernels;
  private readonly memory: WasmMemory;
  /** The first free byte (16-byte aligned). */
  private top = 16;

  private constructor(module: object, api: WasmApi) {
    this.memory = new api.Memory({ initial: 1 });
    const instance = new api.Instance(module, { env: { memory: this.memory } });
    this.kernels = instance.exports as unknown as SimdKernels;
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
}`;
}
