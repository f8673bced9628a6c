/**
 * A small WebAssembly binary writer: just what modelc's SIMD kernels need.
 *
 * A module imports its linear memory (`env.memory`) so the JavaScript side
 * owns it: it creates the `WebAssembly.Memory`, writes the weights into it
 * once, keeps Float32Array views on it for the activations (no copy per call
 * between kernels), and several small modules can share one memory. Every
 * function is exported by name.
 *
 * Instructions are written through `Code`, one method per instruction family
 * (the names follow the text format: `code.i32('add')` is `i32.add`,
 * `code.load('v128', 16)` is `v128.load offset=16`). Structured control flow
 * uses label objects instead of relative depths: `const done = code.block()`
 * ... `code.brIf(done)` ... `code.end()`; the depth is computed from the
 * current nesting.
 *
 * Binary format reference: the WebAssembly core specification, chapter 5
 * (binary format), and the fixed-width SIMD proposal's opcode table.
 */

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128';

const VALTYPE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b };

// ---------------------------------------------------------------------------
// Byte sink and LEB128

/** A growable byte buffer with the primitive encodings of the binary format. */
export class ByteWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  get length(): number {
    return this.len;
  }

  byte(b: number): this {
    if (this.len === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.len++] = b & 0xff;
    return this;
  }

  bytes(bs: ArrayLike<number>): this {
    for (let i = 0; i < bs.length; i++) this.byte(bs[i]!);
    return this;
  }

  /** Unsigned LEB128 (u32: counts, indices, sizes, offsets). */
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
    return this;
  }

  /** Signed LEB128 (i32.const immediates). */
  s32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw new RangeError(`i32 out of range: ${v}`);
    v |= 0; // as a signed 32-bit value (2^31.. wraps, as i32.const does)
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      const done = (v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return this;
    }
  }

  /** IEEE 754 single precision, little-endian. */
  f32(v: number): this {
    const view = new DataView(new ArrayBuffer(4));
    view.setFloat32(0, v, true);
    return this.bytes(new Uint8Array(view.buffer));
  }

  /** A UTF-8 name, length first. */
  name(s: string): this {
    const utf8: number[] = [];
    for (const ch of s) {
      const c = ch.codePointAt(0)!;
      if (c < 0x80) utf8.push(c);
      else if (c < 0x800) utf8.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) utf8.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else utf8.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return this.u32(utf8.length).bytes(utf8);
  }

  /** A vector of items: the count, then each item. */
  vec<T>(items: readonly T[], each: (item: T) => void): this {
    this.u32(items.length);
    for (const item of items) each(item);
    return this;
  }

  /** The contents of another writer, its byte length first (sections, function bodies). */
  sized(inner: ByteWriter): this {
    return this.u32(inner.length).bytes(inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

// ---------------------------------------------------------------------------
// Opcode tables, one per instruction family

/** i32 instructions without immediates (numeric, comparison, bitwise). */
const I32_OPS = {
  eqz: 0x45, eq: 0x46, ne: 0x47, lt_s: 0x48, lt_u: 0x49, gt_s: 0x4a, gt_u: 0x4b, le_s: 0x4c, le_u: 0x4d, ge_s: 0x4e, ge_u: 0x4f,
  add: 0x6a, sub: 0x6b, mul: 0x6c, div_s: 0x6d, div_u: 0x6e, rem_s: 0x6f, rem_u: 0x70,
  and: 0x71, or: 0x72, xor: 0x73, shl: 0x74, shr_s: 0x75, shr_u: 0x76,
} as const;
export type I32Op = keyof typeof I32_OPS;

/** f32 instructions without immediates. */
const F32_OPS = {
  eq: 0x5b, ne: 0x5c, lt: 0x5d, gt: 0x5e, le: 0x5f, ge: 0x60,
  abs: 0x8b, neg: 0x8c, sqrt: 0x91, add: 0x92, sub: 0x93, mul: 0x94, div: 0x95, min: 0x96, max: 0x97,
  convert_i32_u: 0xb3,
} as const;
export type F32Op = keyof typeof F32_OPS;

/**
 * f32x4 instructions without immediates (after the 0xfd SIMD prefix).
 */
const F32X4_OPS = {
  splat: 0x13,
  eq: 0x41, ne: 0x42, lt: 0x43, gt: 0x44, le: 0x45, ge: 0x46,
  abs: 0xe0, neg: 0xe1, sqrt: 0xe3, add: 0xe4, sub: 0xe5, mul: 0xe6, div: 0xe7, min: 0xe8, max: 0xe9, pmin: 0xea, pmax: 0xeb,
  nearest: 0x6a,
} as const;
export type F32x4Op = keyof typeof F32X4_OPS;

/** i32x4 instructions without immediates (after the 0xfd SIMD prefix); `shl` takes its shift count as an i32 operand. */
const I32X4_OPS = { shl: 0xab, add: 0xae, trunc_sat_f32x4_s: 0xf8 } as const;
export type I32x4Op = keyof typeof I32X4_OPS;

/**
 * v128 bitwise instructions (after the 0xfd SIMD prefix). `andnot` is a & ~b;
 * `bitselect` (v1, v2, mask) takes v1's bits where the mask's are set, v2's elsewhere.
 */
const V128_OPS = { not: 0x4d, and: 0x4e, andnot: 0x4f, or: 0x50, xor: 0x51, bitselect: 0x52 } as const;
export type V128Op = keyof typeof V128_OPS;

/** Loads: opcode, the SIMD prefix or not, and the natural alignment (log2 bytes). */
const LOADS = {
  i32: { op: 0x28, simd: false, align: 2 },
  f32: { op: 0x2a, simd: false, align: 2 },
  v128: { op: 0x00, simd: true, align: 4 },
  v128_load32_splat: { op: 0x09, simd: true, align: 2 },
  v128_load32_zero: { op: 0x5c, simd: true, align: 2 },
  v128_load64_zero: { op: 0x5d, simd: true, align: 3 },
} as const;
export type LoadKind = keyof typeof LOADS;

const STORES = {
  i32: { op: 0x36, simd: false, align: 2 },
  f32: { op: 0x38, simd: false, align: 2 },
  v128: { op: 0x0b, simd: true, align: 4 },
} as const;
export type StoreKind = keyof typeof STORES;

/** Lane stores: v128.store32_lane / v128.store64_lane (memarg, then the lane index). */
const LANE_STORES = { 32: { op: 0x5a, align: 2 }, 64: { op: 0x5b, align: 3 } } as const;

const SIMD_PREFIX = 0xfd;

// ---------------------------------------------------------------------------
// Function bodies

/** A local variable (parameters are locals 0..params-1). */
export interface Local {
  readonly index: number;
  readonly type: ValType;
}

/** A structured-control label: the target of `br`/`br_if`. */
export interface Label {
  readonly id: number;
  readonly kind: 'block' | 'loop' | 'if';
}

/** The instruction stream of one function, with its locals. */
export class Code {
  private readonly out = new ByteWriter();
  private readonly extra: ValType[] = [];
  private readonly stack: Label[] = [];
  private nextLabel = 0;
  readonly params: readonly Local[];

  constructor(params: readonly ValType[]) {
    this.params = params.map((type, index) => ({ index, type }));
  }

  /** A new local of `type` (zero-initialized on entry). */
  local(type: ValType): Local {
    this.extra.push(type);
    return { index: this.params.length + this.extra.length - 1, type };
  }

  // --- variables -----------------------------------------------------------

  get(l: Local): this {
    this.out.byte(0x20).u32(l.index);
    return this;
  }

  set(l: Local): this {
    this.out.byte(0x21).u32(l.index);
    return this;
  }

  tee(l: Local): this {
    this.out.byte(0x22).u32(l.index);
    return this;
  }

  // --- constants -----------------------------------------------------------

  i32Const(v: number): this {
    this.out.byte(0x41).s32(v);
    return this;
  }

  f32Const(v: number): this {
    this.out.byte(0x43).f32(v);
    return this;
  }

  /** v128.const with four f32 lanes. */
  v128Const(lanes: readonly [number, number, number, number]): this {
    this.simdOp(0x0c);
    for (const v of lanes) this.out.f32(v);
    return this;
  }

  // --- numeric families ----------------------------------------------------

  i32(op: I32Op): this {
    this.out.byte(I32_OPS[op]);
    return this;
  }

  f32(op: F32Op): this {
    this.out.byte(F32_OPS[op]);
    return this;
  }

  f32x4(op: F32x4Op): this {
    this.simdOp(F32X4_OPS[op]);
    return this;
  }

  i32x4(op: I32x4Op): this {
    this.simdOp(I32X4_OPS[op]);
    return this;
  }

  /** The bitwise v128 instructions (on the lanes' bits, whatever their type). */
  v128(op: V128Op): this {
    this.simdOp(V128_OPS[op]);
    return this;
  }

  /** f32x4.extract_lane: the f32 in lane `lane` (0..3). */
  extractLane(lane: number): this {
    this.simdOp(0x1f).byte(checkLane(lane, 4));
    return this;
  }

  /** f32x4.replace_lane. */
  replaceLane(lane: number): this {
    this.simdOp(0x20).byte(checkLane(lane, 4));
    return this;
  }

  /** `select`: the first of two values if the i32 on top is nonzero, else the second. */
  select(): this {
    this.out.byte(0x1b);
    return this;
  }

  drop(): this {
    this.out.byte(0x1a);
    return this;
  }

  // --- memory --------------------------------------------------------------

  /** A load at (address on the stack) + `offset` bytes; alignment defaults to the natural one. */
  load(kind: LoadKind, offset = 0, align?: number): this {
    const l = LOADS[kind];
    if (l.simd) this.simdOp(l.op);
    else this.out.byte(l.op);
    this.memarg(align ?? l.align, offset);
    return this;
  }

  store(kind: StoreKind, offset = 0, align?: number): this {
    const s = STORES[kind];
    if (s.simd) this.simdOp(s.op);
    else this.out.byte(s.op);
    this.memarg(align ?? s.align, offset);
    return this;
  }

  /** v128.store32_lane / v128.store64_lane: one 32- or 64-bit lane of the vector on the stack. */
  storeLane(bits: 32 | 64, lane: number, offset = 0): this {
    const s = LANE_STORES[bits];
    this.simdOp(s.op);
    this.memarg(s.align, offset);
    this.out.byte(checkLane(lane, 128 / bits));
    return this;
  }

  // --- control -------------------------------------------------------------

  /** `block` (empty block type); `br` to it exits it. */
  block(): Label {
    return this.open('block', 0x02);
  }

  /** `loop`; `br` to it jumps back to its start. */
  loop(): Label {
    return this.open('loop', 0x03);
  }

  /** `if` on the i32 on the stack; `br` to it exits it. */
  if(): Label {
    return this.open('if', 0x04);
  }

  else(): this {
    const top = this.stack[this.stack.length - 1];
    if (top?.kind !== 'if') throw new Error('else outside an if');
    this.out.byte(0x05);
    return this;
  }

  /** Closes the innermost block, loop or if. */
  end(): this {
    if (this.stack.pop() === undefined) throw new Error('end without an open block');
    this.out.byte(0x0b);
    return this;
  }

  br(target: Label): this {
    this.out.byte(0x0c).u32(this.depth(target));
    return this;
  }

  brIf(target: Label): this {
    this.out.byte(0x0d).u32(this.depth(target));
    return this;
  }

  return(): this {
    this.out.byte(0x0f);
    return this;
  }

  /** The encoded body: local declarations (runs of one type), instructions, `end`. */
  encode(): ByteWriter {
    if (this.stack.length > 0) throw new Error(`${this.stack.length} block(s) left open`);
    const runs: [number, ValType][] = [];
    for (const t of this.extra) {
      const last = runs[runs.length - 1];
      if (last && last[1] === t) last[0]++;
      else runs.push([1, t]);
    }
    const body = new ByteWriter();
    body.vec(runs, ([count, t]) => body.u32(count).byte(VALTYPE[t]));
    body.bytes(this.out.finish());
    body.byte(0x0b);
    return body;
  }

  private open(kind: Label['kind'], op: number): Label {
    const label = { id: this.nextLabel++, kind };
    this.stack.push(label);
    this.out.byte(op).byte(0x40); // empty block type
    return label;
  }

  private depth(target: Label): number {
    const at = this.stack.lastIndexOf(target);
    if (at < 0) throw new Error('branch to a label that is not open');
    return this.stack.length - 1 - at;
  }

  private simdOp(op: number): ByteWriter {
    return this.out.byte(SIMD_PREFIX).u32(op);
  }

  private memarg(align: number, offset: number): void {
    this.out.u32(align).u32(offset);
  }
}

function checkLane(lane: number, lanes: number): number {
  if (!Number.isInteger(lane) || lane < 0 || lane >= lanes) throw new RangeError(`lane ${lane} out of 0..${lanes - 1}`);
  return lane;
}

// ---------------------------------------------------------------------------
// Modules

export interface FuncSpec {
  readonly name: string;
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
  readonly code: Code;
}

const SECTION = { type: 1, import: 2, function: 3, memory: 5, export: 7, code: 10 } as const;
const EXTERNAL = { func: 0x00, memory: 0x02 } as const;

/**
 * A module: an imported or defined memory, exported functions. Function
 * types are deduplicated.
 */
export class ModuleBuilder {
  private readonly funcs: FuncSpec[] = [];
  private memory: { readonly import?: readonly [string, string]; readonly min: number; readonly max?: number; readonly shared?: boolean; readonly exportAs?: string } | undefined;

  /** Imports the linear memory as `module.name` (default `env.memory`), at least `minPages` 64 KiB pages; `shared` (threads) needs `maxPages`. */
  importMemory(minPages = 1, module = 'env', name = 'memory', maxPages?: number, shared = false): this {
    if (shared && maxPages === undefined) throw new Error('a shared memory needs a maximum');
    this.memory = { import: [module, name], min: minPages, ...(maxPages !== undefined ? { max: maxPages } : {}), ...(shared ? { shared } : {}) };
    return this;
  }

  /** Defines the memory in the module instead, exported as `exportAs`. */
  defineMemory(minPages: number, exportAs = 'memory', maxPages?: number): this {
    this.memory = { min: minPages, exportAs, ...(maxPages !== undefined ? { max: maxPages } : {}) };
    return this;
  }

  /** Adds an exported function; `build` writes its body through `code`. */
  func(name: string, params: readonly ValType[], results: readonly ValType[], build: (code: Code) => void): this {
    if (this.funcs.some((f) => f.name === name)) throw new Error(`two functions named ${name}`);
    const code = new Code(params);
    build(code);
    this.funcs.push({ name, params, results, code });
    return this;
  }

  get exports(): string[] {
    return this.funcs.map((f) => f.name);
  }

  encode(): Uint8Array {
    const out = new ByteWriter().bytes([0x00, 0x61, 0x73, 0x6d]).bytes([0x01, 0x00, 0x00, 0x00]); // "\0asm", version 1
    const section = (id: number, write: (w: ByteWriter) => void) => {
      const w = new ByteWriter();
      write(w);
      out.byte(id).sized(w);
    };
    const limits = (w: ByteWriter, min: number, max?: number, shared?: boolean) => {
      if (max === undefined) w.byte(0x00).u32(min);
      else w.byte(shared ? 0x03 : 0x01).u32(min).u32(max);
    };

    const types: string[] = [];
    const typeOf = this.funcs.map((f) => {
      const key = `${f.params.join(',')}->${f.results.join(',')}`;
      let i = types.indexOf(key);
      if (i < 0) i = types.push(key) - 1;
      return i;
    });
    const typeSpecs = types.map((key) => this.funcs[typeOf.indexOf(types.indexOf(key))]!);
    section(SECTION.type, (w) => w.vec(typeSpecs, (f) => {
      w.byte(0x60);
      w.vec(f.params, (t) => w.byte(VALTYPE[t]));
      w.vec(f.results, (t) => w.byte(VALTYPE[t]));
    }));

    const mem = this.memory;
    if (mem?.import) {
      section(SECTION.import, (w) => w.vec([mem], () => {
        w.name(mem.import![0]).name(mem.import![1]).byte(EXTERNAL.memory);
        limits(w, mem.min, mem.max, mem.shared);
      }));
    }
    section(SECTION.function, (w) => w.vec(typeOf, (t) => w.u32(t)));
    if (mem && !mem.import) section(SECTION.memory, (w) => w.vec([mem], () => limits(w, mem.min, mem.max)));
    const exports: [string, number, number][] = this.funcs.map((f, i) => [f.name, EXTERNAL.func, i]);
    if (mem?.exportAs !== undefined) exports.push([mem.exportAs, EXTERNAL.memory, 0]);
    section(SECTION.export, (w) => w.vec(exports, ([name, kind, index]) => w.name(name).byte(kind).u32(index)));
    section(SECTION.code, (w) => w.vec(this.funcs, (f) => w.sized(f.code.encode())));
    return out.finish();
  }
}
