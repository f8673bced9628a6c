/**
 * Register-blocked matrix products for codegen templates (dense, the conv
 * family through im2col), and the module-level scratch memory kernels pack
 * operands into.
 *
 *   C[i, j] = start(i, j) + sum_{t < depth} A[i, t] B[t, j]      (i < rows, j < cols)
 *
 * Operands are addressed by strides, so a transposed operand is other strides:
 *   A[i, t] = a[aBase + i*aRow + t*aStep],  B[t, j] = b[bBase + t*bStep + j*bCol],
 *   C[i, j] = c[cBase + i*cRow + j].
 * `start` is zero, a bias b[j], or C itself (accumulating into C). The loops
 * keep a block of BLOCK_ROWS rows x 4 columns of sums in registers over the
 * whole depth (BLOCK_ROWS + 4 loads per 4*BLOCK_ROWS multiply-adds), then do
 * the leftover columns and rows in narrower blocks. Sums are float64; each C
 * element is written once per product, through `value` (a fused activation).
 *
 * Why 3 x 4: measured in V8 on x64 (bench/micro/kernels.js), 4 x 4 blocks ran
 * 13-22% slower on the mnist_cnn conv shapes: their 16 sums plus 8 operands
 * spill out of the 16 vector registers (3 x 4 already spills a few); 2 x 4,
 * 4 x 2 and 2 x 8 were slower still. Packing B into contiguous panels gained
 * nothing measurable here except for the input gradient (3%), where the
 * kernel is rearranged anyway. Plain scalar JavaScript tops out near
 * 6.5 GFLOP/s this way: bounds and overflow checks cost more than the
 * arithmetic.
 */
import type { KernelPlan, RuntimeHelper } from './emit.js';

/** The plan of the ops whose one template is this GEMM over their operands (dense and its gradients). */
export const gemmPlan: KernelPlan = { path: 'gemm', reason: 'the op has one template: the register-blocked GEMM' };

/** Rows of a register block. */
export const BLOCK_ROWS = 3;
/** Columns of a register block. */
export const BLOCK_COLS = 4;

/** A strided matrix operand: element (i, t) of A is at base + i*row + t*step (B: t*step + j*col). */
export interface Strided {
  readonly name: string;
  /** Offset of element (0, 0): an expression (default 0). */
  readonly base?: string;
}

/** B[t, j] = b[base + t*step + j*col]. */
export type StridedB = Strided & { readonly step: number | string; readonly col: number };

export interface GemmSpec {
  /** Rows of C: a constant or an expression (`n * 4`, `rows`). */
  readonly rows: number | string;
  readonly cols: number;
  /** Length of the sums: a constant or an expression. */
  readonly depth: number | string;
  readonly a: Strided & { readonly row: number | string; readonly step: number | string };
  /** B strided, or packed into column panels by `packPanelsCode` (same depth and cols). */
  readonly b: StridedB | { readonly name: string; readonly panels: true; readonly base?: string };
  readonly c: Strided & { readonly row: number | string };
  /** Where the sums start: 0, C's current value, or element base + j of a bias vector. */
  readonly start: 'zero' | 'accumulate' | { readonly bias: string; readonly base?: string };
  /** The stored value of a finished sum (a fused activation); default: the sum. */
  readonly value?: (sum: string) => string;
  /** Columns per cache tile (`columnTile`); default: no tiling. */
  readonly tileCols?: number;
}

/** `a + b`, folding constants: no `+ 0`, and `pc + 64 + 1` is `pc + 65`. */
export function plus(a: string | number, b: string | number): string {
  const terms = [...topLevelTerms(String(a)), ...topLevelTerms(String(b))];
  const constant = terms.filter((t) => /^\d+$/.test(t)).reduce((sum, t) => sum + Number(t), 0);
  const rest = terms.filter((t) => !/^\d+$/.test(t));
  return [...rest, ...(constant !== 0 || rest.length === 0 ? [String(constant)] : [])].join(' + ');
}

/** The terms of a sum `x + y + ...`, not splitting inside parentheses. */
function topLevelTerms(expr: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i];
    if (ch === '(' || ch === '[') depth++;
    else if (ch === ')' || ch === ']') depth--;
    else if (depth === 0 && expr.startsWith(' + ', i)) {
      terms.push(expr.slice(start, i));
      start = i + 3;
      i += 2;
    }
  }
  terms.push(expr.slice(start));
  return terms;
}

/** `a * b`, folding constants: no `* 1`, `2 * 288` is `576`; a sum is parenthesized. */
export function mul(a: string | number, b: string | number): string {
  const wrap = (v: string | number) => (typeof v === 'string' && /[+-]/.test(v) ? `(${v})` : String(v));
  const num = (v: string | number) => (typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : undefined);
  const [x, y] = [num(a), num(b)];
  if (x !== undefined && y !== undefined) return String(x * y);
  if (x === 0 || y === 0) return '0';
  if (x === 1) return String(b);
  if (y === 1) return String(a);
  return `${wrap(a)} * ${wrap(b)}`;
}

/**
 * The loops computing C = start + A · B (see the file comment): row blocks
 * outermost, so a block's rows of A stay in cache while B is swept.
 */
export function gemmCode(g: GemmSpec): string {
  const value = g.value ?? ((v: string) => v);
  const step = (s: number | string) => (s === 1 || s === '1' ? '++' : ` += ${s}`);
  /** An R x C block of sums at rows r.., columns u.. */
  const block = (R: number, C: number): string => {
    const rs = Array.from({ length: R }, (_, i) => i);
    const cs = Array.from({ length: C }, (_, j) => j);
    const sum = (i: number, j: number) => `s${i}${j}`;
    const cAt = (i: number, j: number) => `${g.c.name}[${plus(plus('pc', mul(i, g.c.row)), j)}]`;
    const startOf = (i: number, j: number) =>
      g.start === 'zero' ? '0' : g.start === 'accumulate' ? `${cAt(i, j)}!` : `${g.start.bias}[${plus(plus(g.start.base ?? 0, 'u'), j)}]!`;
    const shortSum = typeof g.depth === 'number' && g.depth < 256;
    // A panel of C columns is [depth][C], contiguous, and starts at u * depth.
    const b = 'panels' in g.b ? { name: g.b.name, base: plus(g.b.base ?? 0, mul('u', g.depth)), step: C, col: 1 } : { ...g.b, base: plus(g.b.base ?? 0, mul('u', g.b.col)) };
    return [
      `const pc = ${plus('rc', 'u')};`,
      ...rs.map((i) => `let ${cs.map((j) => `${sum(i, j)} = ${startOf(i, j)}`).join(', ')};`),
      // Long sums walk running offsets pa, pb; short ones (under 256 terms) index from the block's
      // origin and t instead, which V8 runs 10% faster there (dense 16 -> 64 at batch 1) and 3% slower
      // on long sums.
      ...(shortSum
        ? [`for (let t = 0; t < ${g.depth}; t++) {`, `  const pa = ${plus('ra', mul('t', g.a.step))}, pb = ${plus(b.base, mul('t', b.step))};`]
        : [`for (let t = 0, pa = ra, pb = ${b.base}; t < ${g.depth}; t++, pa${step(g.a.step)}, pb${step(b.step)}) {`]),
      `  const ${cs.map((j) => `b${j} = ${b.name}[${plus('pb', mul(j, b.col))}]!`).join(', ')};`,
      ...rs.map((i) => `  const a${i} = ${g.a.name}[${plus('pa', mul(i, g.a.row))}]!;\n  ${cs.map((j) => `${sum(i, j)} += a${i} * b${j};`).join(' ')}`),
      '}',
      ...rs.map((i) => cs.map((j) => `${cAt(i, j)} = ${value(sum(i, j))};`).join(' ')),
    ].join('\n');
  };
  /**
   * Column blocks over columns lo .. lo + width - 1 for a block of R rows: 4
   * wide, then 1. A single row over a long sum (a GEMV, depth >= 256) goes 8
   * wide first: fewer loads of A per multiply-add, 12-20% faster on dense
   * 9216 -> 64 at batch 1. Not for short sums: there it gains nothing, and
   * V8, having optimized the kernel for batch 1 first, then ran batches of 16
   * 8% slower (bench/micro/models.js, seed_mlp).
   */
  const columns = (R: number, lo: string | number, width: number) => {
    const gemv = R === 1 && !('panels' in g.b) && typeof g.depth === 'number' && g.depth >= 256;
    const widths = [...(gemv ? [2 * BLOCK_COLS] : []), BLOCK_COLS, 1];
    const loops: string[] = [];
    let done = 0;
    for (const bw of widths) {
      const end = width - ((width - done) % bw);
      if (end > done) {
        loops.push(`for (let u = ${plus(lo, done)}; u < ${plus(lo, end)}; u${bw === 1 ? '++' : ` += ${bw}`}) {\n${block(R, bw)}\n}`);
      }
      done = end;
    }
    return loops.join('\n');
  };
  /** Every row of C over columns lo .. lo + width - 1: blocks of R rows, then single rows. */
  const rowLoops = (lo: string | number, width: number) => {
    const R = BLOCK_ROWS;
    const constantRows = typeof g.rows === 'number';
    // ra, rc: where row r starts in A and in C (hoisted: V8 does not move them out of the column loop).
    const origins = `const ra = ${plus(g.a.base ?? 0, mul('r', g.a.row))}, rc = ${plus(g.c.base ?? 0, mul('r', g.c.row))};`;
    const single = `for (; r < ${g.rows}; r++) {\n${origins}\n${columns(1, lo, width)}\n}`;
    const blocks = `// ${R} rows x ${BLOCK_COLS} columns at a time, their ${R * BLOCK_COLS} sums in registers over all ${g.depth} terms\nfor (; r + ${R} <= ${g.rows}; r += ${R}) {\n${origins}\n${columns(R, lo, width)}\n}`;
    const tail = typeof g.depth === 'number' && g.depth >= 256 ? `a GEMV, ${2 * BLOCK_COLS} columns per block` : `${BLOCK_COLS} columns per block`;
    if (constantRows && (g.rows as number) < R) return `let r = 0;\n${single}`;
    return [
      'let r = 0;',
      blocks,
      constantRows && (g.rows as number) % R === 0 ? '' : `// the remaining rows one at a time (${tail})\n${single}`,
    ].filter((s) => s !== '').join('\n');
  };
  const tile = g.tileCols;
  if (tile === undefined || tile >= g.cols) return rowLoops(0, g.cols);
  const tiled = g.cols - (g.cols % tile);
  return [
    `// Column tiles of ${tile}: their columns of B stay in cache while every row block passes.`,
    `for (let u0 = 0; u0 < ${tiled}; u0 += ${tile}) {\n${rowLoops('u0', tile)}\n}`,
    tiled < g.cols ? `{\n${rowLoops(tiled, g.cols - tiled)}\n}` : '',
  ].filter((s) => s !== '').join('\n');
}

/**
 * Column tiles for a GEMM whose B does not fit in cache: when B [depth, cols]
 * outgrows 1 MiB (half of L2 here), columns go in tiles of about 256 KiB of
 * B, a multiple of 8 columns. Measured: dense 4096 -> 512 at batch 64 ran
 * 19% faster in tiles of 16 columns; shapes whose B fits were unchanged.
 */
export function columnTile(depth: number, cols: number): number | undefined {
  if (depth * cols <= 262144) return undefined;
  const tile = Math.max(2 * BLOCK_COLS, Math.floor(65536 / depth / (2 * BLOCK_COLS)) * 2 * BLOCK_COLS);
  return tile < cols ? tile : undefined;
}

/**
 * Copies B [depth, cols] (strided) into `to` as column panels: columns
 * u..u+3 as one [depth][4] block at to[u * depth], then each leftover column
 * as [depth][1]. The GEMM then reads B in one sequential stream per block
 * (measured: 10-15% faster than a strided B once B outgrows L1).
 */
export function packPanelsCode(to: string, b: StridedB, depth: number | string, cols: number, toBase: string | number = 0): string {
  const wide = cols - (cols % BLOCK_COLS);
  const panel = (width: number) => `for (let t = 0, at = ${plus(b.base ?? 0, mul('u', b.col))}; t < ${depth}; t++, at += ${b.step}) {
  ${Array.from({ length: width }, (_, j) => `${to}[p++] = ${b.name}[${plus('at', mul(j, b.col))}]!;`).join(' ')}
}`;
  return [
    `// ${to}: B in column panels of ${BLOCK_COLS} ([depth][${BLOCK_COLS}] each, contiguous), then single columns`,
    '{',
    `let p = ${toBase};`,
    wide > 0 ? `for (let u = 0; u < ${wide}; u += ${BLOCK_COLS}) {\n${panel(BLOCK_COLS)}\n}` : '',
    wide < cols ? `for (let u = ${wide}; u < ${cols}; u++) {\n${panel(1)}\n}` : '',
    '}',
  ].filter((l) => l !== '').join('\n');
}

/**
 * Module-level float32 scratch (im2col panels, rearranged kernels): buffer
 * `k` grows on demand and is never shrunk, so kernels allocate nothing per
 * call once warm. Kernels run one at a time; each uses its buffers only
 * during its own call.
 */
export const scratch32Helper: RuntimeHelper = {
  name: 'scratch32',
  source: `/** Module-level float32 scratch of the kernels (im2col panels, rearranged kernels): grown on demand, never shrunk. */
const scratch32Buffers: Float32Array[] = [];
/** Float32 scratch buffer \`k\` with room for at least \`size\` floats (its contents are garbage). */
function scratch32(k: number, size: number): Float32Array {
  const b = scratch32Buffers[k];
  if (b !== undefined && b.length >= size) return b;
  const grown = new Float32Array(size);
  scratch32Buffers[k] = grown;
  return grown;
}`,
};

/** Module-level float64 scratch (sums kept across chunks of a reduction); as scratch32. */
export const scratch64Helper: RuntimeHelper = {
  name: 'scratch64',
  source: `/** Module-level float64 scratch of the kernels (sums carried across chunks of a reduction): grown on demand, never shrunk. */
const scratch64Buffers: Float64Array[] = [];
/** Float64 scratch buffer \`k\` with room for at least \`size\` values (its contents are garbage). */
function scratch64(k: number, size: number): Float64Array {
  const b = scratch64Buffers[k];
  if (b !== undefined && b.length >= size) return b;
  const grown = new Float64Array(size);
  scratch64Buffers[k] = grown;
  return grown;
}`,
};
