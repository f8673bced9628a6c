/**
 * The WebAssembly binary writer (src/codegen/wasm/encode.ts): LEB128 and
 * float encodings byte for byte, and small modules that must validate and
 * compute what their instructions say when run in Node.
 */
import { describe, expect, it } from 'vitest';
import { ByteWriter, Code, ModuleBuilder, type Local, type ValType } from '../../src/codegen/wasm/encode.js';
import { wasm } from '../helpers/wasm.js';


const bytesOf = (write: (w: ByteWriter) => void) => {
  const w = new ByteWriter();
  write(w);
  return [...w.finish()];
};

/** One exported function `f` in a module importing a 1-page memory; returns it and the memory. */
function single(params: ValType[], results: ValType[], build: (c: Code) => void) {
  const bytes = new ModuleBuilder().importMemory(1).func('f', params, results, build).encode();
  expect(wasm.validate(bytes)).toBe(true);
  const memory = new wasm.Memory({ initial: 1 });
  const { exports } = new wasm.Instance(new wasm.Module(bytes), { env: { memory } });
  return { f: exports['f'] as (...args: number[]) => number, f32: new Float32Array(memory.buffer), bytes };
}

describe('ByteWriter', () => {
  it('writes unsigned LEB128', () => {
    expect(bytesOf((w) => w.u32(0))).toEqual([0]);
    expect(bytesOf((w) => w.u32(127))).toEqual([0x7f]);
    expect(bytesOf((w) => w.u32(128))).toEqual([0x80, 0x01]);
    expect(bytesOf((w) => w.u32(624485))).toEqual([0xe5, 0x8e, 0x26]);
    expect(bytesOf((w) => w.u32(0xffffffff))).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(() => bytesOf((w) => w.u32(-1))).toThrow(RangeError);
    expect(() => bytesOf((w) => w.u32(2 ** 32))).toThrow(RangeError);
  });

  it('writes signed LEB128', () => {
    expect(bytesOf((w) => w.s32(0))).toEqual([0]);
    expect(bytesOf((w) => w.s32(63))).toEqual([0x3f]);
    expect(bytesOf((w) => w.s32(64))).toEqual([0xc0, 0x00]);
    expect(bytesOf((w) => w.s32(-1))).toEqual([0x7f]);
    expect(bytesOf((w) => w.s32(-64))).toEqual([0x40]);
    expect(bytesOf((w) => w.s32(-65))).toEqual([0xbf, 0x7f]);
    expect(bytesOf((w) => w.s32(-123456))).toEqual([0xc0, 0xbb, 0x78]);
    expect(bytesOf((w) => w.s32(-0x80000000))).toEqual([0x80, 0x80, 0x80, 0x80, 0x78]);
    expect(bytesOf((w) => w.s32(0x7fffffff))).toEqual([0xff, 0xff, 0xff, 0xff, 0x07]);
  });

  it('writes f32 little-endian and UTF-8 names', () => {
    expect(bytesOf((w) => w.f32(1))).toEqual([0, 0, 0x80, 0x3f]);
    expect(bytesOf((w) => w.f32(-2.5))).toEqual([0, 0, 0x20, 0xc0]);
    expect(bytesOf((w) => w.name('mé'))).toEqual([3, 0x6d, 0xc3, 0xa9]);
  });

  it('grows past its initial buffer', () => {
    const w = new ByteWriter();
    for (let i = 0; i < 1000; i++) w.byte(i);
    const out = w.finish();
    expect(out.length).toBe(1000);
    expect(out[999]).toBe(999 & 255);
  });
});

describe('ModuleBuilder', () => {
  it('writes the smallest module: the header and empty sections', () => {
    const bytes = new ModuleBuilder().encode();
    expect([...bytes.slice(0, 8)]).toEqual([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    expect(wasm.validate(bytes)).toBe(true);
  });

  it('imports env.memory, or defines and exports a memory', () => {
    const imported = new ModuleBuilder().importMemory(2).func('f', [], [], () => {}).encode();
    expect(wasm.validate(imported)).toBe(true);
    expect(() => new wasm.Instance(new wasm.Module(imported), { env: { memory: new wasm.Memory({ initial: 1 }) } })).toThrow();
    const own = new ModuleBuilder().defineMemory(1, 'mem').func('f', [], [], () => {}).encode();
    const { exports } = new wasm.Instance(new wasm.Module(own), {});
    expect((exports['mem'] as { buffer: ArrayBuffer }).buffer.byteLength).toBe(65536);
  });

  it('deduplicates function types and rejects duplicate names', () => {
    const m = new ModuleBuilder().importMemory();
    m.func('a', ['i32'], ['i32'], (c) => c.get(c.params[0]!));
    m.func('b', ['f32'], ['f32'], (c) => c.get(c.params[0]!));
    m.func('c', ['i32'], ['i32'], (c) => c.get(c.params[0]!).i32Const(1).i32('add'));
    expect(m.exports).toEqual(['a', 'b', 'c']);
    const bytes = m.encode();
    expect(wasm.validate(bytes)).toBe(true);
    // type section: id 1, size, 2 types
    expect(bytes[8]).toBe(1);
    expect(bytes[10]).toBe(2);
    expect(() => m.func('a', [], [], () => {})).toThrow(/two functions named a/);
  });
});

describe('Code', () => {
  it('computes with i32 arithmetic, locals and select', () => {
    const { f } = single(['i32', 'i32'], ['i32'], (c) => {
      const [a, b] = c.params as [Local, Local];
      const t = c.local('i32');
      // t = a * 3 - b; return t > 10 ? t : -t
      c.get(a).i32Const(3).i32('mul').get(b).i32('sub').tee(t);
      c.i32Const(0).get(t).i32('sub');
      c.get(t).i32Const(10).i32('gt_s').select();
    });
    expect(f(5, 2)).toBe(13);
    expect(f(2, 1)).toBe(-5);
    expect(f(-1000000, 7)).toBe(3000007);
  });

  it('runs loops with labels: the sum 1..n, and an early exit', () => {
    const { f } = single(['i32'], ['i32'], (c) => {
      const n = c.params[0]!;
      const i = c.local('i32');
      const s = c.local('i32');
      const done = c.block();
      const top = c.loop();
      c.get(i).get(n).i32('ge_s').brIf(done);
      c.get(i).i32Const(1).i32('add').set(i);
      c.get(s).get(i).i32('add').set(s);
      c.get(s).i32Const(1000).i32('gt_s');
      c.if();
      c.i32Const(-1).set(s);
      c.br(done);
      c.end();
      c.br(top);
      c.end();
      c.end();
      c.get(s);
    });
    expect(f(0)).toBe(0);
    expect(f(10)).toBe(55);
    expect(f(100)).toBe(-1);
  });

  it('loads and stores f32 at offsets; f32 arithmetic', () => {
    const { f, f32 } = single(['i32'], [], (c) => {
      const p = c.params[0]!;
      // y[2] = max(x[0] * x[1], x[0] - x[1])
      c.get(p);
      c.get(p).load('f32', 0).get(p).load('f32', 4).f32('mul');
      c.get(p).load('f32', 0).get(p).load('f32', 4).f32('sub');
      c.f32('max');
      c.store('f32', 8);
    });
    f32.set([3, -2, 0], 4);
    f(16);
    expect(f32[6]).toBe(5);
    f32.set([3, 2], 4);
    f(16);
    expect(f32[6]).toBe(6);
  });

  it('runs SIMD: splat, load32_splat, mul, add, max, min, const, extract_lane, lane stores', () => {
    const { f, f32 } = single(['i32'], ['f32'], (c) => {
      const p = c.params[0]!;
      const v = c.local('v128');
      // v = min(max(x[0..3] * splat(x[4]) + splat(1.5), 0), 6)
      c.get(p).load('v128', 0);
      c.get(p).load('v128_load32_splat', 16);
      c.f32x4('mul');
      c.f32Const(1.5).f32x4('splat');
      c.f32x4('add');
      c.v128Const([0, 0, 0, 0]).f32x4('max');
      c.v128Const([6, 6, 6, 6]).f32x4('min');
      c.set(v);
      c.get(p).get(v).store('v128', 32);
      c.get(p).get(v).storeLane(64, 1, 48); // lanes 2, 3
      c.get(p).get(v).storeLane(32, 0, 60); // lane 0
      c.get(v).extractLane(3);
    });
    f32.set([1, -1, 2, 10, 2]);
    const result = f(0);
    expect([...f32.slice(8, 12)]).toEqual([3.5, 0, 5.5, 6]);
    expect([...f32.slice(12, 16)]).toEqual([5.5, 6, 0, 3.5]);
    expect(result).toBe(6);
  });

  it('runs the zero-extending loads and replace_lane', () => {
    const { f, f32 } = single(['i32'], [], (c) => {
      const p = c.params[0]!;
      c.get(p);
      c.get(p).load('v128_load64_zero', 0);
      c.get(p).load('f32', 8).replaceLane(2);
      c.store('v128', 16);
      c.get(p);
      c.get(p).load('v128_load32_zero', 0);
      c.store('v128', 32);
    });
    f32.set([1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9]);
    f(0);
    expect([...f32.slice(4, 8)]).toEqual([1, 2, 3, 0]);
    expect([...f32.slice(8, 12)]).toEqual([1, 0, 0, 0]);
  });

  it('checks its structure: labels, lanes, open blocks', () => {
    const c = new Code([]);
    const outer = c.block();
    c.end();
    expect(() => c.br(outer)).toThrow(/not open/);
    expect(() => c.end()).toThrow(/without an open block/);
    expect(() => c.else()).toThrow(/outside an if/);
    expect(() => c.extractLane(4)).toThrow(RangeError);
    expect(() => c.storeLane(64, 2)).toThrow(RangeError);
    c.loop();
    expect(() => c.encode()).toThrow(/left open/);
  });

  it('encodes locals as runs of one type', () => {
    const c = new Code(['i32']);
    c.local('i32');
    c.local('i32');
    c.local('v128');
    c.local('i32');
    expect([...c.encode().finish()]).toEqual([3, 2, 0x7f, 1, 0x7b, 1, 0x7f, 0x0b]);
  });
});
