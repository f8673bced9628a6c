/**
 * conv2d 3x3 at stride 1 as Winograd F(2x2, 3x3) (Lavin & Gray 2015): the
 * forward template `path.ts` chooses where the cost rule says it pays.
 *
 * The output is cut in tiles of 2x2 cells; tile (ty, tx) reads the 4x4 input
 * window d at rows 2ty - before.., columns 2tx - before.. (zeros outside the
 * image). Per input channel c and filter f, with g = k[:, :, c, f],
 *
 *   Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d_c B) ] A
 *
 *   G  = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
 *   Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
 *   Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]
 *
 * so the sum over channels is 16 element-wise products per tile instead of
 * the 36 multiply-adds of 4 output cells: for each of the 16 positions ξ of
 * the 4x4 transform, M[ξ] [tiles, F] = V[ξ] [tiles, C] · U[ξ] [C, F], one
 * GEMM (`../gemm.ts`, float64 sums in register blocks) per ξ.
 *
 * Per call the kernel is transformed into U (weights can change between
 * calls in training modules); then, chunk by chunk of tiles (which may span
 * examples), the input transform fills V, the 16 GEMMs fill M and the output
 * transform adds the bias, applies the epilogue and stores the tile's cells
 * that lie inside the output (the last tile row and column are partial for
 * odd output sizes). U, V and M are module-level float32 scratch; the
 * transforms run in float64 locals. Measured against the float64 reference on
 * uniform [-1, 1) data, the results stay within about 1e-7 of the output
 * scale (im2col + GEMM: about 3e-8).
 */
import { epilogueCode, type Epilogue } from '../activation.js';
import { times } from '../emit.js';
import { BLOCK_ROWS, gemmCode, mul, plus, scratch32Helper } from '../gemm.js';
import type { ConvSizes, ConvTemplate } from './geometry.js';

/**
 * Floats of one chunk's V and M together: 192 KiB, within L2 next to U. (Measured: chunks of 12 to
 * 480 tiles ran the mnist_cnn conv2 shape within 1% of each other; the 16 GEMMs take 94% of the time.)
 */
export const WINOGRAD_CHUNK_FLOATS = 49152;

/** Tiles of a chunk: WINOGRAD_CHUNK_FLOATS worth of V and M, a multiple of the register block, at least 4 blocks. */
export function winogradChunkTiles(channels: number, filters: number): number {
  return Math.max(4 * BLOCK_ROWS, Math.floor(WINOGRAD_CHUNK_FLOATS / (16 * (channels + filters)) / BLOCK_ROWS) * BLOCK_ROWS);
}

/** Whether F(2x2, 3x3) computes this conv: a 3x3 window at stride 1, dilation 1, one group. */
export function winogradApplies(s: Pick<ConvSizes, 'kernel' | 'groups' | 'window'>): boolean {
  const [kh, kw] = s.kernel;
  return kh === 3 && kw === 3 && s.groups === 1 && s.window.strides.every((v) => v === 1) && s.window.dilation_rate.every((v) => v === 1);
}

/**
 * Floats from U[ξ] to U[ξ + 1]: C*F rounded up to a multiple of 16 (64 bytes), plus 16, so the
 * 16 store streams of the kernel transform do not share cache sets (C*F = 1024 put them 4 KiB apart).
 */
function uStride(cf: number): number {
  return Math.ceil(cf / 16) * 16 + 16;
}

const R4 = [0, 1, 2, 3] as const;
const R3 = [0, 1, 2] as const;

/** Bᵀ v for a column v of 4 expressions. */
function inputRows(v: readonly string[]): string[] {
  return [`${v[0]} - ${v[2]}`, `${v[1]} + ${v[2]}`, `${v[2]} - ${v[1]}`, `${v[1]} - ${v[3]}`];
}

/** G v for a column v of 3 expressions. */
function kernelRows(v: readonly string[]): string[] {
  return [v[0]!, `(${v[0]} + ${v[1]} + ${v[2]}) * 0.5`, `(${v[0]} - ${v[1]} + ${v[2]}) * 0.5`, v[2]!];
}

/** Aᵀ v for a column v of 4 expressions. */
function outputRows(v: readonly string[]): string[] {
  return [`${v[0]} + ${v[1]} + ${v[2]}`, `${v[1]} - ${v[2]} - ${v[3]}`];
}

/**
 * `const` declarations of P = T v Tᵀ for the 2-D array of names `v` (rows x
 * cols), through the 1-D transform `rows` (Bᵀ, G or Aᵀ): first down the
 * columns into `mid`, then along the rows into `out`. Returns the lines.
 */
function transform2d(v: (i: number, j: number) => string, inRows: number, inCols: number, rows: (col: readonly string[]) => string[], mid: string, out: string): string[] {
  const is = Array.from({ length: inRows }, (_, i) => i);
  const js = Array.from({ length: inCols }, (_, j) => j);
  const down = js.map((j) => rows(is.map((i) => v(i, j))));
  const m = down[0]!.length;
  const lines = Array.from({ length: m }, (_, i) => `const ${js.map((j) => `${mid}${i}${j} = ${down[j]![i]}`).join(', ')};`);
  for (let i = 0; i < m; i++) {
    const across = rows(js.map((j) => `${mid}${i}${j}`));
    lines.push(`const ${across.map((e, j) => `${out}${i}${j} = ${e}`).join(', ')};`);
  }
  return lines;
}

/** Advances the tile counters (e, ty, tx) to the next tile, row-major within an example. */
function nextTile(th: number, tw: number): string {
  return `if (++tx === ${tw}) {
  tx = 0;
  if (++ty === ${th}) {
    ty = 0;
    e++;
  }
}`;
}

/** The tile counters of tile t0 (the chunk's first). */
function firstTile(th: number, tw: number): string {
  const perExample = th * tw;
  return `let e = Math.floor(t0 / ${perExample});
let ty = Math.floor((t0 - e * ${perExample}) / ${tw}), tx = t0 - e * ${perExample} - ty * ${tw};`;
}

/** The body of conv2d as Winograd F(2x2, 3x3), with bias and fused epilogue (see the file comment). */
export function conv2dWinogradBody(s: ConvSizes, bias: boolean, epilogue: Epilogue | undefined): ConvTemplate {
  if (!winogradApplies(s)) throw new Error('conv2d: Winograd F(2x2, 3x3) is for 3x3 windows at stride 1, dilation 1, one group');
  const [h, w, c] = s.input;
  const [oh, ow, f] = s.output;
  const [top, left] = s.window.before;
  const th = Math.ceil(oh / 2);
  const tw = Math.ceil(ow / 2);
  const chunk = winogradChunkTiles(c, f);
  const cf = c * f;
  const us = uStride(cf);
  const ep = epilogueCode(epilogue);

  // Kernel transform: U[ξ][c][f] = (G g Gᵀ)[ξ], g = k[:, :, c, f].
  const gLoads = R3.map((i) => `const ${R3.map((j) => `g${i}${j} = k[${plus('at', (i * 3 + j) * cf)}]!`).join(', ')};`);
  const kernelTransform = `// Winograd F(2x2, 3x3): y = Aᵀ [Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)] A per 2x2 output tile, d its 4x4 input window.
// U[ξ][c][f] = (G g Gᵀ)[ξ] for each 3x3 window g = k[:, :, c, f]: the kernel in the transform domain, per call.
const U = scratch32(2, ${16 * us});
for (let at = 0; at < ${cf}; at++) {
  ${gLoads.join('\n')}
  ${transform2d((i, j) => `g${i}${j}`, 3, 3, kernelRows, 'q', 'u').join('\n')}
  ${R4.flatMap((i) => R4.map((j) => `U[${plus('at', (i * 4 + j) * us)}] = u${i}${j};`)).join(' ')}
}`;

  // Input transform: whether the 4x4 window can leave the image, per axis.
  const rowsLeave = top > 0 || 2 * (th - 1) - top + 3 >= h;
  const colsLeave = left > 0 || 2 * (tw - 1) - left + 3 >= w;
  const inputTransform = (load: (i: number, j: number) => string) => `for (let ch = 0; ch < ${c}; ch++) {
  ${R4.map((i) => `const ${R4.map((j) => `d${i}${j} = ${load(i, j)}`).join(', ')};`).join('\n')}
  ${transform2d((i, j) => `d${i}${j}`, 4, 4, inputRows, 'p', 'v').join('\n')}
  ${R4.flatMap((i) => R4.map((j) => `V[${plus(plus('vAt', (i * 4 + j) * c), 'ch')}] = v${i}${j};`)).join(' ')}
}`;
  const at = (i: number, j: number) => plus(plus('xAt', (i * w + j) * c), 'ch');
  const inside = inputTransform((i, j) => `x[${at(i, j)}]!`);
  const checks = [
    ...(rowsLeave ? ['iy >= 0', `iy + 3 < ${h}`] : []),
    ...(colsLeave ? ['ix >= 0', `ix + 3 < ${w}`] : []),
  ];
  const rowOk = (i: number) => (rowsLeave ? `r${i}` : '');
  const colOk = (j: number) => (colsLeave ? `q${j}` : '');
  const edge = `// The window leaves the image: cells outside read as zeros.
${rowsLeave ? `const ${R4.map((i) => `r${i} = ${plus('iy', i)} >= 0 && ${plus('iy', i)} < ${h}`).join(', ')};` : ''}
${colsLeave ? `const ${R4.map((j) => `q${j} = ${plus('ix', j)} >= 0 && ${plus('ix', j)} < ${w}`).join(', ')};` : ''}
${inputTransform((i, j) => `${[rowOk(i), colOk(j)].filter((v) => v !== '').join(' && ')} ? x[${at(i, j)}]! : 0`)}`;
  const windows = `// V[tile][ξ][c] = (Bᵀ d B)[ξ] for each tile's 4x4 input window d of channel c.
{
  ${firstTile(th, tw)}
  for (let i = 0; i < tiles; i++) {
    const iy = ${top ? `ty * 2 - ${top}` : 'ty * 2'}, ix = ${left ? `tx * 2 - ${left}` : 'tx * 2'};
    const xAt = ((e * ${h} + iy) * ${w} + ix) * ${c};
    const vAt = i * ${16 * c};
    ${checks.length === 0 ? inside : `if (${checks.join(' && ')}) {\n${inside}\n} else {\n${edge}\n}`}
    ${nextTile(th, tw)}
  }
}`;

  const gemm = gemmCode({
    rows: 'tiles', cols: f, depth: c,
    a: { name: 'V', base: mul('xi', c), row: 16 * c, step: 1 },
    b: { name: 'U', base: mul('xi', us), step: f, col: 1 },
    c: { name: 'M', base: mul('xi', f), row: 16 * f },
    start: 'zero',
  });
  const products = `// M[tile][ξ][f] = Σ_c V[tile][ξ][c] U[ξ][c][f]: for each ξ, [tiles, ${c}] · [${c}, ${f}].
for (let xi = 0; xi < 16; xi++) {
  ${gemm}
}`;

  // Output transform: the tile's second row and column exist unless the output size is odd there.
  const downCheck = oh % 2 === 1;
  const rightCheck = ow % 2 === 1;
  const b = bias ? ' + bf' : '';
  const store = (i: number, j: number) => {
    const cond = [i === 1 && downCheck ? 'down' : '', j === 1 && rightCheck ? 'right' : ''].filter((v) => v !== '');
    const assign = `y[${plus(plus('yAt', i * ow * f + j * f), 'fi')}] = ${ep.scalar(`y${i}${j}${b}`)};`;
    return cond.length === 0 ? assign : `if (${cond.join(' && ')}) ${assign}`;
  };
  const flags = [downCheck ? `down = ty * 2 + 1 < ${oh}` : '', rightCheck ? `right = tx * 2 + 1 < ${ow}` : ''].filter((v) => v !== '');
  const outputs = `// y = Aᵀ M A${bias ? ' + bias' : ''} for each tile and filter: its 2x2 output cells${downCheck || rightCheck ? ' (those inside the output)' : ''}.
{
  ${firstTile(th, tw)}
  for (let i = 0; i < tiles; i++) {
    const yAt = ((e * ${oh} + ty * 2) * ${ow} + tx * 2) * ${f};
    const mAt = i * ${16 * f};
    ${flags.length ? `const ${flags.join(', ')};` : ''}
    for (let fi = 0; fi < ${f}; fi++) {
      ${R4.map((i) => `const ${R4.map((j) => `m${i}${j} = M[${plus(plus('mAt', (i * 4 + j) * f), 'fi')}]!`).join(', ')};`).join('\n')}
      ${transform2d((i, j) => `m${i}${j}`, 4, 4, outputRows, 's', 'y').join('\n')}
      ${bias ? 'const bf = b[fi]!;' : ''}
      ${[0, 1].flatMap((i) => [0, 1].map((j) => store(i, j))).join('\n')}
    }
    ${nextTile(th, tw)}
  }
}`;

  const all = times('n', th * tw);
  const body = `${kernelTransform}
const V = scratch32(0, ${chunk * 16 * c});
const M = scratch32(1, ${chunk * 16 * f});
// Chunks of ${chunk} tiles of 2x2 output cells (${th}x${tw} tiles per example; a chunk may span examples).
for (let t0 = 0; t0 < ${all}; t0 += ${chunk}) {
  const tiles = Math.min(${chunk}, ${all} - t0);
  ${windows}
  ${products}
  ${outputs}
}
${ep.rows(times('n', oh * ow), f)}`;
  return { body, helpers: [scratch32Helper, ...ep.helpers] };
}
