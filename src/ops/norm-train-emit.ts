/**
 * Codegen templates of training batch normalization (the ops are in
 * `norm-train.ts`) for the channels-last layout, the normalized axis
 * innermost (NHWC, or dense [N, C]): x is [rows, C].
 *
 * There a channel's values are C floats apart, so the per-channel loops of
 * the general templates touch a cache line per element. These walk blocks of
 * neighbouring channels down the rows together (`channel-emit.ts`), sums and
 * per-channel constants in registers; per-channel results go to module
 * scratch (scratch64 0), in segments of C values:
 *   mean | sigma | r | d | A | B
 * The statistics are the reference's, two passes in float64 (mean, then the
 * mean square deviation), each channel's additions in the same order. The
 * gradients need one more pass for two sums per channel,
 *   A = sum(dy),  B = sum(dy * (x - mean)),
 * from which (with g = dy * gamma * r, xhat = (x - mean) / sigma, count values
 * per channel)
 *   dx     = (g - mean(g) - xhat * mean(g * xhat)) / sigma
 *          = dy * (gamma r / sigma) - gamma r A / (count sigma) - (x - mean) * gamma r B / (count sigma^3),
 *   dgamma = sum(dy * (r * xhat + d)) = r B / sigma + d A.
 */
import { aroundAxis } from '../ir/tensor.js';
import type { TensorType } from '../ir/types.js';
import { channelPassCode, elem, lane, type ChannelPass } from './channel-emit.js';
import { lit, times } from './emit.js';

export interface NormAttrs {
  readonly axis: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  readonly renorm: boolean;
  readonly renorm_clipping: { readonly rmax: number | null; readonly rmin: number; readonly dmax: number | null };
}

const SEGMENTS = ['mean', 'sigma', 'r', 'd', 'A', 'B'] as const;
type Segment = (typeof SEGMENTS)[number];

/** Whether the normalized axis is the innermost one (these templates apply). */
export function channelsLast(x: TensorType, a: { axis: number }): boolean {
  return aroundAxis([1, ...(x.shape.slice(1) as number[])], a.axis).inner === 1;
}

function clipCode(v: string, lo: number | null, hi: number | null): string {
  if (lo === null && hi === null) return v;
  if (hi === null) return `Math.max(${v}, ${lit(lo!)})`;
  if (lo === null) return `Math.min(${v}, ${lit(hi)})`;
  return `Math.min(Math.max(${v}, ${lit(lo)}), ${lit(hi)})`;
}

/** The pieces of a channels-last template: segment access, the statistics, the gradient sums, maps. */
function layout(x: TensorType, a: NormAttrs) {
  const { outer, n: channels } = aroundAxis([1, ...(x.shape.slice(1) as number[])], a.axis);
  const rows = times('n', outer);
  /** Channel `ch`'s value in a segment (an lvalue; add `!` to read it). */
  const at = (name: Segment, ch = 'c') => {
    const k = SEGMENTS.indexOf(name);
    return `st[${k === 0 ? ch : `${k * channels} + ${ch}`}]`;
  };
  const v = (name: Segment, ch = 'c') => `${at(name, ch)}!`;
  const channelLoop = (stmts: string) => `for (let c = 0; c < ${channels}; c++) {\n${stmts}\n}`;
  const pass = (p: Omit<ChannelPass, 'rows' | 'channels'>) => channelPassCode({ rows, channels, ...p });
  /** mean, sigma (and with renorm r, and d unless told otherwise) of every channel. */
  const stats = (withD = true) => {
    const { rmin, rmax, dmax } = a.renorm_clipping;
    return [
      `const st = scratch64(0, ${SEGMENTS.length * channels});`,
      '// Per channel in float64: mean, then sigma = sqrt(mean((x - mean)^2) + epsilon).',
      pass({ sums: ['s'], step: (j) => `s${j} += x[${elem(j)}]!;`, finish: (j) => `${at('mean', lane(j))} = s${j} / (${rows});` }),
      pass({
        sums: ['s'],
        setup: (j) => `const m${j} = ${v('mean', lane(j))};`,
        step: (j) => `s${j} += (x[${elem(j)}]! - m${j}) ** 2;`,
        finish: (j) => `${at('sigma', lane(j))} = Math.sqrt(s${j} / (${rows}) + ${lit(a.epsilon)});`,
      }),
      ...(a.renorm
        ? [
            '// Batch renormalization: r and d against the moving statistics.',
            channelLoop([
              `const movingSigma = Math.sqrt(movingVariance[c]! + ${lit(a.epsilon)});`,
              `${at('r')} = ${clipCode(`${v('sigma')} / movingSigma`, rmin, rmax)};`,
              ...(withD ? [`${at('d')} = ${clipCode(`(${v('mean')} - movingMean[c]!) / movingSigma`, dmax === null ? null : -dmax, dmax)};`] : []),
            ].join('\n')),
          ]
        : []),
    ].join('\n');
  };
  /** A = sum(dy), B = sum(dy * (x - mean)) of every channel. */
  const gradientSums = [
    '// A = sum(dy), B = sum(dy * (x - mean)) per channel.',
    pass({
      sums: ['a', 'b'],
      setup: (j) => `const m${j} = ${v('mean', lane(j))};`,
      step: (j) => `const g${j} = dy[${elem(j)}]!; a${j} += g${j}; b${j} += g${j} * (x[${elem(j)}]! - m${j});`,
      finish: (j) => `${at('A', lane(j))} = a${j}; ${at('B', lane(j))} = b${j};`,
    }),
  ].join('\n');
  /** y = (x - mean) * p + q with per-channel p, q from two segments (`dy` scaled by a third, when given). */
  const map = (p: Segment, q: Segment, dyFactor?: Segment) =>
    pass({
      sums: [],
      setup: (j) => `const m${j} = ${v('mean', lane(j))}, p${j} = ${v(p, lane(j))}, q${j} = ${v(q, lane(j))}${dyFactor ? `, f${j} = ${v(dyFactor, lane(j))}` : ''};`,
      step: (j) => `y[${elem(j)}] = ${dyFactor ? `dy[${elem(j)}]! * f${j} - q${j} - (x[${elem(j)}]! - m${j}) * p${j}` : `(x[${elem(j)}]! - m${j}) * p${j} + q${j}`};`,
    });
  return { rows, at, v, channelLoop, stats, gradientSums, map };
}

/** y = gamma * (r * (x - mean) / sigma + d) + beta = (x - mean) * A + B, per-channel A and B. */
export function forwardBody(x: TensorType, a: NormAttrs): string {
  const L = layout(x, a);
  const factor = [a.scale ? 'gamma[c]!' : '', a.renorm ? L.v('r') : ''].filter((f) => f !== '');
  const offset = [a.renorm ? `${a.scale ? 'gamma[c]! * ' : ''}${L.v('d')}` : '', a.center ? 'beta[c]!' : ''].filter((o) => o !== '');
  return [
    L.stats(),
    L.channelLoop([
      `${L.at('A')} = ${factor.length > 0 ? `${factor.join(' * ')} / ${L.v('sigma')}` : `1 / ${L.v('sigma')}`};`,
      `${L.at('B')} = ${offset.length > 0 ? offset.join(' + ') : '0'};`,
    ].join('\n')),
    '// y = (x - mean) * A + B',
    L.map('A', 'B'),
  ].join('\n');
}

/** dx (see the file comment); the per-channel factors overwrite r, A and B. */
export function gradInputBody(x: TensorType, a: NormAttrs): string {
  const L = layout(x, a);
  const scale = [a.scale ? 'gamma[c]!' : '', a.renorm ? L.v('r') : ''].filter((f) => f !== '').join(' * ') || '1';
  return [
    L.stats(false),
    L.gradientSums,
    '// dx = dy * r - A - (x - mean) * B, with r = scale / sigma, A = scale A / (count sigma), B = scale B / (count sigma^3), scale = gamma * r',
    L.channelLoop([
      `const scale = ${scale}, sigma = ${L.v('sigma')};`,
      `${L.at('r')} = scale / sigma;`,
      `${L.at('A')} = (scale * ${L.v('A')}) / ((${L.rows}) * sigma);`,
      `${L.at('B')} = (scale * ${L.v('B')}) / ((${L.rows}) * sigma * sigma * sigma);`,
    ].join('\n')),
    L.map('B', 'A', 'r'),
  ].join('\n');
}

/** dgamma = r B / sigma + d A per channel. */
export function gradGammaBody(x: TensorType, a: NormAttrs): string {
  const L = layout(x, a);
  return [
    L.stats(),
    L.gradientSums,
    L.channelLoop(`y[c] = ${a.renorm ? `${L.v('r')} * ${L.v('B')} / ${L.v('sigma')} + ${L.v('d')} * ${L.v('A')}` : `${L.v('B')} / ${L.v('sigma')}`};`),
  ].join('\n');
}
