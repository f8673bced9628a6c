/**
 * The JavaScript side of the SIMD kernels (`simdRuntimeSource`): the source
 * type-checks under the flags generated modules promise (--strict
 * --noUncheckedIndexedAccess --noUnusedLocals --noUnusedParameters, lib
 * es2022 without DOM: WebAssembly is declared inside), and, imported as a
 * module, decodes the embedded bytes, packs the weights into its memory
 * (which then grows under them), runs every kernel bit for bit as the
 * module run directly does, and falls back when WebAssembly, SIMD or
 * synchronous compilation is missing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ts } from 'ts-morph';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { base64BytesSource } from '../../src/codegen/runtime.js';
import type { SimdKernelLayout } from '../../src/codegen/wasm/kernel-common.js';
import { buildSimdModule, packWeights, padBias, simdRuntimeSource, toBase64 } from '../../src/codegen/wasm/module.js';
import type { SimdKernelRequest } from '../../src/ops/simd-def.js';
import { importModule, strictTypecheck } from '../helpers/generated.js';
import { rng } from '../helpers/tensors.js';

interface Wasm {
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<object>;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number }) => { buffer: ArrayBuffer };
}
const realWasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

const requests: SimdKernelRequest[] = [
  { kind: 'dense', inDim: 37, units: 23, bias: true, epilogue: 'relu' },
  { kind: 'dense', inDim: 8, units: 5, bias: false },
  { kind: 'conv2d', input: [7, 8, 3], kernel: [3, 3], filters: 10, padding: 'same', bias: true },
  { kind: 'depthwise_conv2d', input: [6, 6, 7], kernel: [3, 3], strides: [2, 2], padding: 'same', bias: true, epilogue: 'relu6' },
];
const mod = buildSimdModule(requests);

/** The snippet and a driver that uses every entry point. */
const source = `${base64BytesSource}

${simdRuntimeSource(mod)}

/** Every kernel's name. */
export const names: readonly (keyof SimdKernels)[] = [${mod.exports.map((e) => JSON.stringify(e)).join(', ')}];

/** One kernel on n examples in a runtime of its own; undefined when the SIMD kernels cannot run. */
export function runKernel(name: keyof SimdKernels, n: number, x: Float32Array, kernel: Float32Array, bias: Float32Array | undefined, outFloats: number): Float32Array | undefined {
  const rt = SimdRuntime.create();
  if (rt === undefined) return undefined;
  const [w, b] = rt.weights(name, kernel, bias);
  // Grow the memory past its first page after the weights are in: they must survive.
  rt.alloc(100000);
  const xp = rt.alloc(x.length);
  const yp = rt.alloc(n * outFloats);
  rt.view(xp, x.length).set(x);
  rt.kernels[name](n, xp, w, b, yp);
  return rt.view(yp, n * outFloats).slice();
}

export function ready(): Promise<boolean> {
  return SimdRuntime.ready();
}
`;

interface Driver {
  names: readonly string[];
  runKernel(name: string, n: number, x: Float32Array, kernel: Float32Array, bias: Float32Array | undefined, outFloats: number): Float32Array | undefined;
  ready(): Promise<boolean>;
}

const js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
/** A fresh copy of the module (its compile cache starts empty). */
const load = () => importModule<Driver>(js, 'simd-runtime');

/** The kernel run directly on a memory, with host-side packing: what the runtime must reproduce. */
function direct(layout: SimdKernelLayout, n: number, x: Float32Array, kernel: Float32Array, bias: Float32Array): Float32Array {
  const memory = new realWasm.Memory({ initial: 4 });
  const { exports } = new realWasm.Instance(new realWasm.Module(mod.bytes), { env: { memory } });
  const f = new Float32Array(memory.buffer);
  const w = packWeights(layout, kernel);
  const xp = 16, wp = xp + x.length * 4 + 16, bp = wp + w.length * 4 + 16, yp = bp + layout.biasFloats * 4 + 16;
  f.set(x, xp / 4);
  f.set(w, wp / 4);
  f.set(padBias(layout, bias), bp / 4);
  (exports[layout.name] as (...a: number[]) => void)(n, xp, wp, bp, yp);
  return f.slice(yp / 4, yp / 4 + n * layout.outputFloats);
}

function inputs(layout: SimdKernelLayout, n: number, seed: number) {
  const next = rng(seed);
  const floats = (k: number) => Float32Array.from({ length: k }, () => next() * 2 - 1);
  return { x: floats(n * layout.inputFloats), kernel: floats(layout.pack.k * layout.pack.units), bias: floats(layout.pack.units) };
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('simdRuntimeSource', () => {
  it('type-checks strictly without DOM types', () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelc-simd-'));
    writeFileSync(join(dir, 'simd.ts'), source);
    expect(strictTypecheck(dir, ['simd.ts'])).toBe('');
  }, 60_000);

  it('embeds the module as base64', () => {
    expect(source).toContain(`const SIMD_WASM = "${toBase64(mod.bytes)}";`);
    expect(toBase64(Uint8Array.from([1]))).toBe('AQ==');
    expect(toBase64(Uint8Array.from([1, 2]))).toBe('AQI=');
    expect(toBase64(Uint8Array.from([1, 2, 3]))).toBe('AQID');
    expect(toBase64(Uint8Array.from([255, 254, 253, 0]))).toBe('//79AA==');
  });

  it('runs every kernel as the module run directly does, weights surviving memory growth', async () => {
    const driver = await load();
    expect([...driver.names]).toEqual(mod.exports);
    for (const [i, layout] of mod.layouts.entries()) {
      for (const n of [1, 3]) {
        const { x, kernel, bias } = inputs(layout, n, 10 * i + n);
        const y = driver.runKernel(layout.name, n, x, kernel, layout.biasFloats > 0 ? bias : undefined, layout.outputFloats);
        expect(y).toBeDefined();
        expect([...y!]).toEqual([...direct(layout, n, x, kernel, layout.biasFloats > 0 ? bias : new Float32Array(layout.pack.units))]);
      }
    }
    expect(await driver.ready()).toBe(true);
  });

  it('checks the kernel size it is given', async () => {
    const driver = await load();
    expect(() => driver.runKernel(mod.exports[0]!, 1, new Float32Array(37), new Float32Array(3), undefined, 23)).toThrow(/expected 851 kernel floats/);
  });

  it('falls back without WebAssembly', async () => {
    const driver = await load();
    vi.stubGlobal('WebAssembly', undefined);
    expect(driver.runKernel(mod.exports[1]!, 1, new Float32Array(8), new Float32Array(40), undefined, 5)).toBeUndefined();
    expect(await driver.ready()).toBe(false);
  });

  it('falls back when SIMD does not validate', async () => {
    const driver = await load();
    vi.stubGlobal('WebAssembly', { ...wasmParts(), validate: () => false });
    expect(driver.runKernel(mod.exports[1]!, 1, new Float32Array(8), new Float32Array(40), undefined, 5)).toBeUndefined();
    expect(await driver.ready()).toBe(false);
  });

  it('compiles asynchronously when synchronous compilation is refused (a browser main thread)', async () => {
    const driver = await load();
    const refuse = function Module(): never {
      throw new RangeError('WebAssembly.Compile is disallowed on the main thread, if the buffer size is larger than 4KB');
    };
    vi.stubGlobal('WebAssembly', { ...wasmParts(), Module: refuse });
    const layout = mod.layouts[1]!;
    const { x, kernel } = inputs(layout, 2, 5);
    expect(driver.runKernel(layout.name, 2, x, kernel, undefined, layout.outputFloats)).toBeUndefined();
    expect(await driver.ready()).toBe(true);
    // Compiled now: create() instantiates without compiling again.
    const y = driver.runKernel(layout.name, 2, x, kernel, undefined, layout.outputFloats);
    expect([...y!]).toEqual([...direct(layout, 2, x, kernel, new Float32Array(5))]);
  });
});

/** The real WebAssembly API as a plain object (to replace one member). */
function wasmParts(): Wasm {
  return {
    validate: (b) => realWasm.validate(b),
    compile: (b) => realWasm.compile(b),
    Module: realWasm.Module,
    Instance: realWasm.Instance,
    Memory: realWasm.Memory,
  };
}
