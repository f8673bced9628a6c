/**
 * Convolutions as matrix products (im2col + GEMM): the templates that
 * `path.ts` chooses for shapes where they beat the direct loops.
 *
 * im2col packs, for a chunk of output cells, each cell's window [kh, kw, cg]
 * into one row of a panel (zeros where the window leaves the image), so a
 * grouped conv of group g is the product of the panel [cells, kh*kw*cg] with
 * the kernel's columns [kh*kw*cg, g's filters] (`../gemm.ts`: float64 sums in
 * 3x4 register blocks). The panel lives in module-level scratch (`scratch32`),
 * sized for one chunk of PANEL_FLOATS floats whatever the batch; kernels
 * allocate nothing per call.
 *
 *   forward:         y[cells, F]   = panel(x) · k                    (+ bias, activation)
 *   input gradient:  dx[cells, C]  = panel(dy) · k flipped and transposed, for stride 1:
 *                    dx is then the stride-1 conv of dy padded by (k-1)*d - p with the
 *                    kernel k'[kh-1-ky, kw-1-kx, f, c] = k[ky, kx, c, f], per group
 *   kernel gradient: dk[kh*kw*cg, F] = panel(x)ᵀ · dy, summed over every chunk in float64
 */
import { epilogueCode, type Epilogue } from '../activation.js';
import { times } from '../emit.js';
import { BLOCK_ROWS, gemmCode, mul, packPanelsCode, plus, scratch32Helper, scratch64Helper } from '../gemm.js';
import type { ConvSizes, ConvTemplate } from './geometry.js';

/** Floats of one im2col panel (a chunk of rows): 128 KiB, within L2 next to the kernel. */
export const PANEL_FLOATS = 32768;

/** Rows of a panel chunk: PANEL_FLOATS worth, a multiple of the register block, at least 4 blocks. */
export function chunkRows(depth: number): number {
  return Math.max(4 * BLOCK_ROWS, Math.floor(PANEL_FLOATS / depth / BLOCK_ROWS) * BLOCK_ROWS);
}

/** One window axis of a packing: source index = out * stride + tap * dilation - pad. */
interface PackAxis {
  readonly size: number;
  readonly out: number;
  readonly taps: number;
  readonly stride: number;
  readonly dilation: number;
  readonly pad: number;
}

/** What im2col copies: `len` channels from `chOff` of source cells [h, w, channels]. */
export interface PackSpec {
  readonly src: string;
  readonly channels: number;
  readonly rows: PackAxis;
  readonly cols: PackAxis;
  readonly len: number;
  readonly chOff: string;
}

/** Whether every source index of an axis lies inside the image (no check needed). */
function alwaysInside(a: PackAxis): boolean {
  const last = (a.out - 1) * a.stride + (a.taps - 1) * a.dilation - a.pad;
  return -a.pad >= 0 && last < a.size;
}

/** `out * stride + tap * dilation - pad` without the zero terms. */
function sourceIndex(out: string, tap: string, a: PackAxis): string {
  const sum = plus(mul(out, a.stride), mul(tap, a.dilation));
  return a.pad > 0 ? `${sum} - ${a.pad}` : a.pad < 0 ? `${sum} + ${-a.pad}` : sum;
}

/**
 * Fills `panel` rows 0..rows-1 with the windows of cells m0, m0+1, ... (cell
 * = example, row, column of the output grid), tap by tap in kernel order.
 */
export function im2colCode(s: PackSpec): string {
  const { rows: R, cols: C, len } = s;
  const cellsPerExample = R.out * C.out;
  const zeros = (count: number | string) => `panel.fill(0, p, p + ${count});\np += ${count};`;
  const copy = (count: number | string) => `for (let q = 0; q < ${count}; q++) panel[p++] = ${s.src}[at + q]!;`;
  const perTap = [
    `for (let kx = 0; kx < ${C.taps}; kx++) {`,
    `const ix = ${sourceIndex('ox', 'kx', C)};`,
    alwaysInside(C) ? '' : `if (ix < 0 || ix >= ${C.size}) {\n${zeros(len)}\ncontinue;\n}`,
    `const at = ${plus(mul(plus('rowAt', 'ix'), s.channels), s.chOff)};`,
    copy(len),
    '}',
  ].filter((l) => l !== '').join('\n');
  // With dilation 1 and every channel taken, a window row is one run of memory.
  const contiguous = C.dilation === 1 && len === s.channels;
  const first = sourceIndex('ox', '0', C);
  const run = (from: string) => `const at = ${mul(plus('rowAt', from), s.channels)};\n${copy(C.taps * len)}`;
  const windowRow = !contiguous
    ? perTap
    : alwaysInside(C)
      ? run(first)
      : `const ix0 = ${first};\nif (ix0 >= 0 && ix0 + ${C.taps - 1} < ${C.size}) {\n${run('ix0')}\n} else {\n${perTap}\n}`;
  const rowCheck = alwaysInside(R) ? '' : `if (iy < 0 || iy >= ${R.size}) {\n${zeros(C.taps * len)}\ncontinue;\n}`;
  const tapLoop = [`const iy = ${sourceIndex('oy', 'ky', R)};`, rowCheck, `const rowAt = (e * ${R.size} + iy) * ${C.size};`, windowRow]
    .filter((l) => l !== '').join('\n');
  return `// im2col: rows of the panel are the output cells m0, m0 + 1, ...; each holds its ${R.taps}x${C.taps}x${len} window${alwaysInside(R) && alwaysInside(C) ? '' : ' (zeros outside the image)'}.
{
  const e0 = Math.floor(m0 / ${cellsPerExample});
  let e = e0, oy = Math.floor((m0 - e0 * ${cellsPerExample}) / ${C.out}), ox = m0 - e0 * ${cellsPerExample} - oy * ${C.out};
  for (let i = 0, p = 0; i < rows; i++) {
    for (let ky = 0; ky < ${R.taps}; ky++) {
      ${tapLoop}
    }
    if (++ox === ${C.out}) {
      ox = 0;
      if (++oy === ${R.out}) {
        oy = 0;
        e++;
      }
    }
  }
}`;
}

/** The packing of the forward window over x (forward and kernel gradient). */
function forwardPack(s: ConvSizes, grp: string): PackSpec {
  const [h, w, c] = s.input;
  const [oh, ow] = s.output;
  const [kh, kw, cg] = s.kernel;
  const g = s.window;
  const axis = (size: number, out: number, taps: number, i: 0 | 1): PackAxis =>
    ({ size, out, taps, stride: g.strides[i]!, dilation: g.dilation_rate[i]!, pad: g.before[i] });
  return { src: 'x', channels: c, rows: axis(h, oh, kh, 0), cols: axis(w, ow, kw, 1), len: cg, chOff: s.groups > 1 ? mul(grp, cg) : '0' };
}

/** `grp * size`, the offset of group grp's block of `size`; 0 with one group (no `grp` loop). */
function groupOffset(groups: number, size: number): string {
  return groups > 1 ? mul('grp', size) : '0';
}

/** `for (let grp = 0; grp < G; grp++) { body }`, or the body alone for one group. */
function perGroup(groups: number, body: string): string {
  return groups === 1 ? body : `for (let grp = 0; grp < ${groups}; grp++) {\n${body}\n}`;
}

/** The chunk loop over `cells` rows: `rows` of them from `m0` at a time. */
function chunks(cells: string, chunk: number, body: string): string {
  return `for (let m0 = 0; m0 < ${cells}; m0 += ${chunk}) {
  const rows = Math.min(${chunk}, ${cells} - m0);
  ${body}
}`;
}

/** conv2d (forward) as im2col + GEMM, with bias and fused activation. */
export function conv2dGemmBody(s: ConvSizes, bias: boolean, epilogue: Epilogue | undefined): ConvTemplate {
  const [oh, ow, filters] = s.output;
  const [kh, kw, cg] = s.kernel;
  const fg = filters / s.groups;
  const depth = kh * kw * cg;
  const chunk = chunkRows(depth);
  const ep = epilogueCode(epilogue);
  const grpCol = groupOffset(s.groups, fg);
  const gemm = gemmCode({
    rows: 'rows', cols: fg, depth,
    a: { name: 'panel', row: depth, step: 1 },
    b: { name: 'k', base: grpCol, step: filters, col: 1 },
    c: { name: 'y', base: plus(mul('m0', filters), grpCol), row: filters },
    start: bias ? { bias: 'b', base: grpCol } : 'zero',
    value: ep.scalar,
  });
  const body = `const panel = scratch32(0, ${chunk * depth});
${chunks(times('n', oh * ow), chunk, perGroup(s.groups, `${im2colCode(forwardPack(s, 'grp'))}\n// y[cells, filters] = panel · kernel${bias ? ' + bias' : ''}\n${gemm}`))}
${ep.rows(times('n', oh * ow), filters)}`;
  return { body, helpers: [scratch32Helper, ...ep.helpers] };
}

/** dx of a stride-1 conv (params dy, k) as im2col of dy + GEMM with the flipped, transposed kernel. */
export function gradInputGemmBody(op: string, s: ConvSizes): ConvTemplate {
  if (s.window.strides.some((v) => v !== 1)) throw new Error(`${op}: the im2col input gradient is for stride 1, not ${s.window.strides.join('x')}`);
  const [h, w, c] = s.input;
  const [oh, ow, filters] = s.output;
  const [kh, kw, cg] = s.kernel;
  const fg = filters / s.groups;
  const depth = kh * kw * fg;
  const chunk = chunkRows(depth);
  const g = s.window;
  const axis = (size: number, out: number, taps: number, i: 0 | 1): PackAxis =>
    ({ size, out, taps, stride: 1, dilation: g.dilation_rate[i]!, pad: (taps - 1) * g.dilation_rate[i]! - g.before[i] });
  const pack: PackSpec = { src: 'dy', channels: filters, rows: axis(oh, h, kh, 0), cols: axis(ow, w, kw, 1), len: fg, chOff: groupOffset(s.groups, fg) };
  const gemm = gemmCode({
    rows: 'rows', cols: cg, depth,
    a: { name: 'panel', row: depth, step: 1 },
    b: { name: 'kp', panels: true, base: groupOffset(s.groups, depth * cg) },
    c: { name: 'y', base: plus(mul('m0', c), groupOffset(s.groups, cg)), row: c },
    start: 'zero',
  });
  const flipped = { name: 'kt', base: groupOffset(s.groups, depth * cg), step: cg, col: 1 };
  const body = `// kt: the kernel flipped and transposed, per group: kt[grp][ky, kx, f, c] = k[${kh - 1} - ky, ${kw - 1} - kx, c, grp * ${fg} + f].
const kt = scratch32(2, ${kh * kw * cg * filters});
for (let grp = 0, p = 0; grp < ${s.groups}; grp++) {
  for (let ky = 0; ky < ${kh}; ky++) {
    for (let kx = 0; kx < ${kw}; kx++) {
      for (let f = 0; f < ${fg}; f++) {
        for (let c = 0, at = ((${kh - 1} - ky) * ${kw} + ${kw - 1} - kx) * ${cg * filters} + grp * ${fg} + f; c < ${cg}; c++, at += ${filters}) kt[p++] = k[at]!;
      }
    }
  }
}
const kp = scratch32(1, ${kh * kw * cg * filters});
${perGroup(s.groups, packPanelsCode('kp', flipped, depth, cg, groupOffset(s.groups, depth * cg)))}
const panel = scratch32(0, ${chunk * depth});
${chunks(times('n', h * w), chunk, perGroup(s.groups, `${im2colCode(pack)}\n// dx[cells, channels] = panel · kt\n${gemm}`))}`;
  return { body, helpers: [scratch32Helper] };
}

/** dk (params x, dy) as im2col of x, transposed, times dy, summed over the batch in float64 chunk by chunk. */
export function gradKernelGemmBody(s: ConvSizes): ConvTemplate {
  const [oh, ow, filters] = s.output;
  const [kh, kw, cg] = s.kernel;
  const fg = filters / s.groups;
  const depth = kh * kw * cg;
  const size = depth * filters;
  const chunk = chunkRows(depth);
  const grpCol = groupOffset(s.groups, fg);
  const gemm = gemmCode({
    rows: depth, cols: fg, depth: 'rows',
    a: { name: 'panel', row: 1, step: depth },
    b: { name: 'dy', base: plus(mul('m0', filters), grpCol), step: filters, col: 1 },
    c: { name: 'sums', base: grpCol, row: filters },
    start: 'accumulate',
  });
  const body = `const sums = scratch64(0, ${size});
sums.fill(0, 0, ${size});
const panel = scratch32(0, ${chunk * depth});
${chunks(times('n', oh * ow), chunk, perGroup(s.groups, `${im2colCode(forwardPack(s, 'grp'))}
// sums[window, filters] += panelᵀ · dy
${gemm}`))}
for (let i = 0; i < ${size}; i++) y[i] = sums[i]!;`;
  return { body, helpers: [scratch32Helper, scratch64Helper] };
}
