/**
 * Is an optimized graph the same function as the original? Two checks, both
 * in the float64 reference interpreter:
 *
 * 1. Random inputs (seeded): per output, the max absolute difference and the
 *    max relative difference  max|opt - ref| / max|ref|  (norm-wise, so values
 *    near zero after relu do not dominate).
 * 2. Each folded region (a linear op and the batchnorm folded into it) is an
 *    affine map of its input, so it is proved equal up to rounding by
 *    evaluating both sides at zero and at basis vectors: every channel, at
 *    every position for dense inputs and at the corners, edge midpoints and
 *    centre for images (where padding matters), instead of hoping random
 *    samples hit the bad case.
 */
import type { Graph, Node } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { size } from '../ir/tensor.js';
import { interpret } from '../interp/interpret.js';
import type { ExplainEntry } from '../rewrite/explain.js';
import { Pcg32 } from '../util/prng.js';

export interface Difference {
  readonly name: string;
  readonly maxAbs: number;
  readonly maxRel: number;
  /** max|ref|, the norm maxRel is relative to. */
  readonly scale: number;
}

export function compareTensors(name: string, ref: Tensor, opt: Tensor): Difference {
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < ref.data.length; i++) {
    const d = Math.abs(ref.data[i]! - opt.data[i]!);
    if (!(d <= maxAbs)) maxAbs = d; // NaN propagates
    scale = Math.max(scale, Math.abs(ref.data[i]!));
  }
  const maxRel = maxAbs === 0 ? 0 : scale === 0 ? Infinity : maxAbs / scale;
  return { name, maxAbs, maxRel, scale };
}

/** Seeded inputs uniform in [-2, 2) for every graph input. */
export function randomFeeds(graph: Graph, batch: number, seed: number): Record<string, Tensor> {
  const rng = new Pcg32(BigInt(seed), 54n);
  return Object.fromEntries(
    graph.inputs.map((i) => {
      const shape = i.type.shape.map((d) => (d === 'N' ? batch : d));
      return [i.name, { shape, data: Float64Array.from({ length: size(shape) }, () => rng.nextFloat() * 4 - 2) }];
    }),
  );
}

/** Output-by-output differences of `optimized` against `original` on random inputs. */
export function compareOnRandomInputs(original: Graph, optimized: Graph, options: { batch?: number; seed?: number } = {}): Difference[] {
  const feeds = randomFeeds(original, options.batch ?? 2, options.seed ?? 1);
  const ref = interpret(original, feeds);
  const opt = interpret(optimized, feeds);
  return original.outputs.map((o, i) => compareTensors(o, ref[o]!, opt[optimized.outputs[i]!]!));
}

/**
 * How far each output of `graph` moves on the same random inputs when every
 * weight moves by about one float32 ulp (relative 2^-23, seeded random
 * signs; the largest of a few trials). A fold stores weights computed in
 * float64 and rounded to float32, so it may differ from the original by about
 * this much: where the graph cancels large intermediate values into a small
 * output (a batchnorm with a tiny variance added back to its input), this
 * noise floor exceeds any fixed relative tolerance of the output.
 */
export function roundingNoise(graph: Graph, options: { batch?: number; seed?: number; trials?: number } = {}): Map<string, number> {
  const feeds = randomFeeds(graph, options.batch ?? 2, options.seed ?? 1);
  const ref = interpret(graph, feeds);
  const rng = new Pcg32(BigInt(options.seed ?? 1), 55n);
  const noise = new Map(graph.outputs.map((o) => [o, 0]));
  for (let t = 0; t < (options.trials ?? 4); t++) {
    const params = graph.params.map((p) =>
      p.value ? { ...p, value: Float32Array.from(p.value, (v) => v * (1 + (rng.nextU32() & 1 ? 2 ** -23 : -(2 ** -23)))) } : p,
    );
    const moved = interpret({ ...graph, params }, feeds);
    for (const o of graph.outputs) noise.set(o, Math.max(noise.get(o)!, compareTensors(o, ref[o]!, moved[o]!).maxAbs));
  }
  return noise;
}

/** The subgraph of `g` computing `output` from `input` (walking first operands back). */
function region(g: Graph, input: string, output: string): Graph {
  const nodes: Node[] = [];
  for (let v = output; v !== input; ) {
    const n = g.nodes.find((x) => x.result === v);
    if (!n) throw new Error(`internal: ${input} does not lead to ${output} in ${g.name}`);
    nodes.unshift(n);
    v = n.operands[0]!;
  }
  const used = new Set(nodes.flatMap((n) => n.operands));
  const type = g.inputs.find((i) => i.name === input)?.type ?? g.nodes.find((n) => n.result === input)!.type;
  return { name: `${g.name}_region`, inputs: [{ name: input, type }], params: g.params.filter((p) => used.has(p.name)), nodes, outputs: [output] };
}

/**
 * Zero, then one example per channel holding 1 at every probe position of
 * that channel: for images the corners, edge midpoints and centre (far enough
 * apart that a kernel window rarely spans two, so the responses stay
 * separable), for vectors every position.
 */
function basisBatch(example: readonly number[]): Tensor {
  const channels = example[example.length - 1]!;
  const per = size(example);
  const positions: number[] = [];
  if (example.length === 3) {
    const [h, w] = example as [number, number];
    for (const r of new Set([0, Math.floor((h - 1) / 2), h - 1])) {
      for (const c of new Set([0, Math.floor((w - 1) / 2), w - 1])) positions.push((r * w + c) * channels);
    }
  } else {
    for (let i = 0; i < per / channels; i++) positions.push(i * channels);
  }
  if (example.length !== 3) {
    // Vectors: a true basis, one example per element.
    const data = new Float64Array((1 + per) * per);
    for (let i = 0; i < per; i++) data[(1 + i) * per + i] = 1;
    return { shape: [1 + per, ...example], data };
  }
  const data = new Float64Array((1 + channels) * per);
  for (let c = 0; c < channels; c++) for (const p of positions) data[(1 + c) * per + p + c] = 1;
  return { shape: [1 + channels, ...example], data };
}

/**
 * Checks one fold exactly. `before` and `after` are the graphs around the
 * fold-bn pass; the region is what the folded node replaced: from its input
 * (in `after`) to the fold's output value, the same in both graphs. Returns
 * undefined for a fold whose node a later fold absorbed (checked with it).
 */
export function checkFoldExactly(before: Graph, after: Graph, fold: ExplainEntry): Difference | undefined {
  const output = fold.values!['output']!;
  const folded = after.nodes.find((n) => n.result === output);
  // A later fold absorbed this one's node under another name; that fold's region covers both.
  if (!folded) return undefined;
  const input = folded.operands[0]!;
  const a = region(before, input, output);
  const b = region(after, input, output);
  const feed = { [input]: basisBatch(a.inputs[0]!.type.shape.slice(1) as number[]) };
  return compareTensors(fold.message, interpret(a, feed)[output]!, interpret(b, feed)[output]!);
}
