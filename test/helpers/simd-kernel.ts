/**
 * Runs a single WebAssembly SIMD kernel as the Trainer calls it, (n, a, b, 0, y)
 * with the operands as they are, for the kernel tests: operands between NaN
 * guards, checked unchanged afterwards, and y NaN-filled before the call (an
 * unwritten float shows) with its guards checked after it.
 */
import { expect } from 'vitest';
import { buildSimdModule } from '../../src/codegen/wasm/module.js';
import type { AnySimdKernelRequest } from '../../src/ops/simd-def.js';
import { wasm } from './wasm.js';

const GUARD = 8;

/** The kernel of `req` on n examples of `operands` (at most two); returns y's first `yFloats` floats. */
export function runSimdKernel(req: AnySimdKernelRequest, n: number, operands: readonly Float32Array[], yFloats: number): Float32Array {
  const mod = buildSimdModule([req]);
  expect(wasm.validate(mod.bytes), 'the SIMD module validates').toBe(true);
  const parts = [...operands, new Float32Array(yFloats).fill(NaN)];
  const floats = parts.reduce((s, p) => s + Math.ceil(p.length / 4) * 4 + GUARD, GUARD);
  const memory = new wasm.Memory({ initial: Math.ceil((floats * 4 + 64) / 65536) });
  const all = new Float32Array(memory.buffer).fill(NaN);
  const at: number[] = [];
  let p = GUARD;
  for (const part of parts) {
    at.push(p);
    all.set(part, p);
    p += Math.ceil(part.length / 4) * 4 + GUARD;
  }
  const y = at[at.length - 1]!;
  const [a = 0, b = 0] = at.slice(0, -1);
  const { exports } = new wasm.Instance(new wasm.Module(mod.bytes), { env: { memory } });
  (exports[mod.layouts[0]!.name] as (...args: number[]) => void)(n, a * 4, b * 4, 0, y * 4);
  const guards = at.flatMap((start, i) => [...all.slice(start - GUARD, start), ...all.slice(start + parts[i]!.length, start + parts[i]!.length + GUARD)]);
  expect(guards.every(Number.isNaN), 'writes stay inside y').toBe(true);
  operands.forEach((o, i) => expect(all.slice(at[i]!, at[i]! + o.length), `operand ${i} unchanged`).toEqual(o));
  return all.slice(y, y + yFloats);
}
