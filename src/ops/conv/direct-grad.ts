/**
 * The convolution gradients as direct loops (`path.ts` chooses them where the
 * cost rule says so). Both serve conv2d and depthwise_conv2d (the grouped conv
 * with one group per input channel, see `ConvSizes`). Every result element is
 * one float64 sum, written once (so `y` needs no clearing):
 *   input gradient:  dx[e,iy,ix,c] gathers dy[e,oy,ox,f] k[ky,kx,c mod cg,f] over the
 *                    taps with iy = oy*s + ky*d - p (the output cells whose window reads
 *                    the input cell) and the filters f of c's group;
 *   kernel gradient: dk[ky,kx,ci,f] sums x[e,iy,ix,c] dy[e,oy,ox,f] over the batch and
 *                    every output cell whose tap (ky, kx) lies inside the image,
 *                    4 filters at a time (one input load per 4 multiply-adds).
 */
import { times } from '../emit.js';
import { tap, type ConvSizes } from './geometry.js';

/**
 * Where channel c's filters start: `kOff` in a kernel row [cg, F] of one tap,
 * `dOff` in a row of dy (the first filter of c's group).
 */
function channelOffsets(s: ConvSizes): string {
  const [, , cg, filters] = s.kernel;
  const fg = filters / s.groups;
  if (s.groups === 1) return `const kOff = ${times('c', filters)}, dOff = 0;`;
  if (cg === 1) return `const kOff = ${times('c', fg)}, dOff = kOff;`;
  return `const g = Math.floor(c / ${cg}), kOff = (c - g * ${cg}) * ${filters} + g * ${fg}, dOff = g * ${fg};`;
}

/**
 * The output cell `v` whose tap `k` reads input cell `from` (iy = oy*s + ky*d - p
 * solved for oy), or `continue` when there is none inside the output.
 */
function gatherTap(v: string, from: string, k: string, stride: number, dilation: number, before: number, size: number): string {
  const index = `${from}${before ? ` + ${before}` : ''} - ${dilation === 1 ? k : `${k} * ${dilation}`}`;
  if (stride === 1) return `const ${v} = ${index};\nif (${v} < 0 || ${v} >= ${size}) continue;`;
  return `const t${v} = ${index};
if (t${v} < 0 || t${v} >= ${size * stride} || t${v} % ${stride} !== 0) continue;
const ${v} = t${v} / ${stride};`;
}

/** dx = the transposed conv of dy (params dy, k), gathered per input cell and channel. */
export function gradInputDirectBody(s: ConvSizes): string {
  const [h, w, c] = s.input;
  const [oh, ow] = s.output;
  const [kh, kw, cg, filters] = s.kernel;
  const fg = filters / s.groups;
  const g = s.window;
  const accumulate = fg === 1 ? 's += dy[at]! * k[ka]!;' : `for (let f = 0; f < ${fg}; f++) s += dy[at + f]! * k[ka + f]!;`;
  return `for (let e = 0; e < n; e++) {
  for (let iy = 0; iy < ${h}; iy++) {
    for (let ix = 0; ix < ${w}; ix++) {
      const xAt = ((e * ${h} + iy) * ${w} + ix) * ${c};
      for (let c = 0; c < ${c}; c++) {
        ${channelOffsets(s)}
        let s = 0;
        for (let ky = 0; ky < ${kh}; ky++) {
          ${gatherTap('oy', 'iy', 'ky', g.strides[0]!, g.dilation_rate[0]!, g.before[0], oh)}
          for (let kx = 0; kx < ${kw}; kx++) {
            ${gatherTap('ox', 'ix', 'kx', g.strides[1]!, g.dilation_rate[1]!, g.before[1], ow)}
            const at = ((e * ${oh} + oy) * ${ow} + ox) * ${filters} + dOff;
            const ka = (ky * ${kw} + kx) * ${cg * filters} + kOff;
            ${accumulate}
          }
        }
        y[xAt + c] = s;
      }
    }
  }
}`;
}

/** dk = x correlated with dy over the batch (params x, dy), 4 filters per register block. */
export function gradKernelDirectBody(s: ConvSizes): string {
  const [h, w, c] = s.input;
  const [oh, ow] = s.output;
  const [kh, kw, cg, filters] = s.kernel;
  const fg = filters / s.groups;
  const g = s.window;
  const wide = fg - (fg % 4);
  const block = (width: number) => {
    const js = Array.from({ length: width }, (_, j) => j);
    const off = (j: number) => (j ? ` + ${j}` : '');
    return `let ${js.map((j) => `s${j} = 0`).join(', ')};
for (let e = 0; e < n; e++) {
  for (let oy = 0; oy < ${oh}; oy++) {
    ${tap('iy', 'oy', 'ky', g.strides[0]!, g.dilation_rate[0]!, g.before[0], h, g.valid)}
    for (let ox = 0; ox < ${ow}; ox++) {
      ${tap('ix', 'ox', 'kx', g.strides[1]!, g.dilation_rate[1]!, g.before[1], w, g.valid)}
      const v = x[((e * ${h} + iy) * ${w} + ix) * ${c} + c]!;
      const at = ((e * ${oh} + oy) * ${ow} + ox) * ${filters} + dOff + f;
      ${js.map((j) => `s${j} += v * dy[at${off(j)}]!;`).join(' ')}
    }
  }
}
${js.map((j) => `y[kAt + kOff + f${off(j)}] = s${j};`).join('\n')}`;
  };
  const filterLoops = [
    wide > 0 ? `for (let f = 0; f < ${wide}; f += 4) {\n${block(4)}\n}` : '',
    wide < fg ? `for (let f = ${wide}; f < ${fg}; f++) {\n${block(1)}\n}` : '',
  ].filter((b) => b !== '').join('\n');
  return `for (let ky = 0; ky < ${kh}; ky++) {
  for (let kx = 0; kx < ${kw}; kx++) {
    const kAt = (ky * ${kw} + kx) * ${cg * filters};
    for (let c = 0; c < ${c}; c++) {
      ${channelOffsets(s)}
      ${filterLoops}
    }
  }
}`;
}
