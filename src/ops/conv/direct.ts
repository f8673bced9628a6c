/**
 * Convolutions as direct loops with every size inlined: conv2d's direct path
 * (`path.ts` chooses it where the cost rule says so), and the only templates
 * of depthwise_conv2d and conv2d_transpose.
 *
 * conv2d and depthwise walk the output cells and, per cell, the window taps
 * whose input cell lies inside the image (padding cells are skipped, so they
 * count as zero; with `valid` padding the bounds checks are not emitted).
 * An ungrouped conv2d keeps blocks of 4 filters in registers over every tap
 * and input channel (one input load per 4 multiply-adds) and stores them
 * once; a grouped conv2d and depthwise initialize the cell's row of output
 * channels with the bias and accumulate x[cell] * k[tap, :] into it, the
 * innermost loop over output channels, contiguous in both the kernel (Keras
 * layouts) and the output (NHWC). A scalar epilogue applies to each finished
 * value, a per-row one (softmax) in a last pass. conv2d_transpose scatters
 * instead (see its template).
 */
import type { TensorType } from '../../ir/types.js';
import { epilogueCode, type Epilogue, type EpilogueCode } from '../activation.js';
import { kernel, shapeTag, type KernelCode } from '../emit.js';
import { geometryTag, tap, type ConvSizes, type ConvTemplate, type Dims4, type WindowGeometry } from './geometry.js';

/** [0, h, w, c] of an NHWC type (the batch dimension left out). */
function dims(t: TensorType): [number, number, number, number] {
  return [0, ...t.shape.slice(1)] as [number, number, number, number];
}

/** The epilogue over each finished row of `len` channels at `yAt`, and the softmax pass. */
function finish(ep: EpilogueCode, len: number): string {
  const v = ep.scalar('y[yAt + f]!');
  return v === 'y[yAt + f]!' ? '' : `for (let f = 0; f < ${len}; f++) y[yAt + f] = ${v};`;
}

/** conv2d as direct loops: blocks of 4 filters in registers (one group), or per-group rows. */
export function conv2dDirectBody(s: ConvSizes, bias: boolean, epilogue: Epilogue | undefined): ConvTemplate {
  const [h, w, c] = s.input;
  const [oh, ow, filters] = s.output;
  const [kh, kw, cg] = s.kernel;
  const { groups, window: g } = s;
  const ep = epilogueCode(epilogue);
  const window = (inner: string) => `for (let ky = 0; ky < ${kh}; ky++) {
  ${tap('iy', 'oy', 'ky', g.strides[0]!, g.dilation_rate[0]!, g.before[0], h, g.valid)}
  for (let kx = 0; kx < ${kw}; kx++) {
    ${tap('ix', 'ox', 'kx', g.strides[1]!, g.dilation_rate[1]!, g.before[1], w, g.valid)}
    const xAt = ((e * ${h} + iy) * ${w} + ix) * ${c};
    ${inner}
  }
}`;
  const cell = groups === 1 ? filterBlocks(filters, c, kw, bias, ep, window) : groupedCell(filters, groups, cg, kw, bias, ep, window);
  const body = `for (let e = 0; e < n; e++) {
  for (let oy = 0; oy < ${oh}; oy++) {
    for (let ox = 0; ox < ${ow}; ox++) {
      const yAt = ((e * ${oh} + oy) * ${ow} + ox) * ${filters};
      ${cell}
    }
  }
}
${ep.rows(`n * ${oh * ow}`, filters)}`;
  return { body, helpers: ep.helpers };
}

/**
 * One output cell of an ungrouped conv: blocks of 4 filters accumulated in
 * registers over every tap and input channel (1 input load per 4
 * multiply-adds), then the leftover filters one at a time.
 */
function filterBlocks(filters: number, c: number, kw: number, bias: boolean, ep: EpilogueCode, window: (inner: string) => string): string {
  const wide = filters - (filters % 4);
  const block = (width: number) => {
    const js = Array.from({ length: width }, (_, j) => j);
    const off = (j: number) => (j ? ` + ${j}` : '');
    return `let ${js.map((j) => `c${j} = ${bias ? `b[f${off(j)}]!` : '0'}`).join(', ')};
${window(`let kAt = (ky * ${kw} + kx) * ${c * filters} + f;
for (let c = 0; c < ${c}; c++, kAt += ${filters}) {
  const v = x[xAt + c]!;
  ${js.map((j) => `c${j} += v * k[kAt${off(j)}]!;`).join(' ')}
}`)}
${js.map((j) => `y[yAt + f${off(j)}] = ${ep.scalar(`c${j}`)};`).join('\n')}`;
  };
  return [
    wide > 0 ? `for (let f = 0; f < ${wide}; f += 4) {\n${block(4)}\n}` : '',
    wide < filters ? `for (let f = ${wide}; f < ${filters}; f++) {\n${block(1)}\n}` : '',
  ].filter((b) => b !== '').join('\n');
}

/** One output cell of a grouped conv: the channel row starts at the bias and accumulates in place. */
function groupedCell(filters: number, groups: number, cg: number, kw: number, bias: boolean, ep: EpilogueCode, window: (inner: string) => string): string {
  const fg = filters / groups;
  return `for (let f = 0; f < ${filters}; f++) y[yAt + f] = ${bias ? 'b[f]!' : '0'};
${window(`const kAt = (ky * ${kw} + kx) * ${cg * filters};
for (let g = 0; g < ${groups}; g++) {
  for (let c = 0; c < ${cg}; c++) {
    const v = x[xAt + g * ${cg} + c]!;
    const k0 = kAt + c * ${filters} + g * ${fg};
    const y0 = yAt + g * ${fg};
    for (let f = 0; f < ${fg}; f++) y[y0 + f]! += v * k[k0 + f]!;
  }
}`)}
${finish(ep, filters)}`;
}

/** depthwise_conv2d (its only template): the direct loops, each channel times its `m` multipliers. */
export function depthwiseKernel(x: TensorType, k: TensorType, bias: boolean, result: TensorType, g: WindowGeometry, epilogue: Epilogue | undefined): KernelCode {
  const [, h, w, c] = dims(x);
  const [kh, kw, , m] = k.shape as Dims4;
  const [, oh, ow, out] = dims(result);
  const ep = epilogueCode(epilogue);
  const accumulate =
    m === 1
      ? `for (let c = 0; c < ${c}; c++) y[yAt + c]! += x[xAt + c]! * k[kAt + c]!;`
      : `for (let c = 0; c < ${c}; c++) {
  const v = x[xAt + c]!;
  for (let m = 0; m < ${m}; m++) y[yAt + c * ${m} + m]! += v * k[kAt + c * ${m} + m]!;
}`;
  const body = `for (let e = 0; e < n; e++) {
  for (let oy = 0; oy < ${oh}; oy++) {
    for (let ox = 0; ox < ${ow}; ox++) {
      const yAt = ((e * ${oh} + oy) * ${ow} + ox) * ${out};
      for (let f = 0; f < ${out}; f++) y[yAt + f] = ${bias ? 'b[f]!' : '0'};
      for (let ky = 0; ky < ${kh}; ky++) {
        ${tap('iy', 'oy', 'ky', g.strides[0]!, g.dilation_rate[0]!, g.before[0], h, g.valid)}
        for (let kx = 0; kx < ${kw}; kx++) {
          ${tap('ix', 'ox', 'kx', g.strides[1]!, g.dilation_rate[1]!, g.before[1], w, g.valid)}
          const xAt = ((e * ${h} + iy) * ${w} + ix) * ${c};
          const kAt = (ky * ${kw} + kx) * ${c * m};
          ${accumulate}
        }
      }
      ${finish(ep, out)}
    }
  }
}
${ep.rows(`n * ${oh * ow}`, out)}`;
  const tag = `${shapeTag(x)}_k${kh}x${kw}${m > 1 ? `_m${m}` : ''}${geometryTag(g)}${ep.tag ? `_${ep.tag}` : ''}`;
  const what = `depthwise conv ${kh}x${kw}, ${c} channels x ${m}, ${h}x${w} -> ${oh}x${ow}`;
  return kernel(`depthwise_conv2d_${tag}`, bias ? ['x', 'k', 'b'] : ['x', 'k'], `${what}${ep.tag ? `, ${ep.tag}` : ''}`, body, ep.helpers);
}

/**
 * The transposed convolution scatters: each input cell adds x * k[tap, :, c]
 * to the output cell its tap reaches (the adjoint of conv2d), so the output
 * is cleared first and bias and epilogue run in a final pass.
 */
export function conv2dTransposeKernel(x: TensorType, k: TensorType, bias: boolean, result: TensorType, groups: number, g: WindowGeometry, epilogue: Epilogue | undefined): KernelCode {
  const [, h, w, c] = dims(x);
  const [kh, kw, fg] = k.shape as Dims4;
  const [, oh, ow, filters] = dims(result);
  const cg = c / groups;
  const ep = epilogueCode(epilogue);
  const scatter = `for (let c = 0; c < ${c}; c++) {
  const v = x[xAt + c]!;
  const y0 = yAt + ${groups === 1 ? '0' : `Math.floor(c / ${cg}) * ${fg}`};
  for (let f = 0; f < ${fg}; f++) y[y0 + f]! += v * k[kAt + f * ${c} + c]!;
}`;
  const value = ep.scalar(bias ? 'y[i + f]! + b[f]!' : 'y[i + f]!');
  const body = `y.fill(0, 0, n * ${oh * ow * filters});
for (let e = 0; e < n; e++) {
  for (let iy = 0; iy < ${h}; iy++) {
    for (let ix = 0; ix < ${w}; ix++) {
      const xAt = ((e * ${h} + iy) * ${w} + ix) * ${c};
      for (let ky = 0; ky < ${kh}; ky++) {
        ${tap('oy', 'iy', 'ky', g.strides[0]!, g.dilation_rate[0]!, g.before[0], oh, false)}
        for (let kx = 0; kx < ${kw}; kx++) {
          ${tap('ox', 'ix', 'kx', g.strides[1]!, g.dilation_rate[1]!, g.before[1], ow, false)}
          const yAt = ((e * ${oh} + oy) * ${ow} + ox) * ${filters};
          const kAt = (ky * ${kw} + kx) * ${fg * c};
          ${scatter}
        }
      }
    }
  }
}
${value === 'y[i + f]!' ? '' : `for (let i = 0; i < n * ${oh * ow * filters}; i += ${filters}) {\n  for (let f = 0; f < ${filters}; f++) y[i + f] = ${value};\n}`}
${ep.rows(`n * ${oh * ow}`, filters)}`;
  const tag = `${shapeTag(x)}_k${kh}x${kw}_f${filters}${groups > 1 ? `_g${groups}` : ''}${geometryTag(g)}${ep.tag ? `_${ep.tag}` : ''}`;
  const what = `transposed conv ${kh}x${kw}, ${c} -> ${filters} channels${groups > 1 ? ` in ${groups} groups` : ''}, ${h}x${w} -> ${oh}x${ow}`;
  return kernel(`conv2d_transpose_${tag}`, bias ? ['x', 'k', 'b'] : ['x', 'k'], `${what}${ep.tag ? `, ${ep.tag}` : ''}`, body, ep.helpers);
}
