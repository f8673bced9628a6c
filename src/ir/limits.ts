/**
 * Size limits: what modelc can allocate, checked before anything is.
 *
 * Every tensor is a typed array indexed by 32-bit integers in generated code,
 * so a tensor (a parameter, or one example's activation) holds at most
 * 2^31 - 1 elements, and every dimension is a positive integer below that. A
 * model's parameters plus one example's activations together hold at most
 * 2^32 elements (16 GiB as float32): beyond that no process of ours could
 * hold the model, let alone run it. A batch's largest activation must fit one
 * tensor, and all its activations together at most 2^28 elements (the
 * Trainer and the reference interpreter keep them all).
 *
 * The frontend checks these as it lowers a spec (errors located at the
 * layer); the IR verifier checks the per-tensor limit for graphs from
 * elsewhere (IR text, code). The functions here only compute the message.
 */
import type { Graph } from './graph.js';

/** The most elements one tensor may hold: typed arrays indexed by signed 32-bit integers. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

/** The most elements of parameters plus one example's activations a model may declare (16 GiB as float32). */
export const MAX_MODEL_ELEMENTS = 2 ** 32;

/** `784 x 1000000000000`. */
const product = (shape: readonly number[]) => shape.map(String).join(' x ');

/** A count for a message: exact up to a million, else `7.8e14`. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return 'more than 1.8e308';
  if (n < 1e6) return String(n);
  const [mantissa, exponent] = n.toExponential(1).split('e');
  return `${mantissa!.replace(/\.0$/, '')}e${exponent!.replace(/^\+/, '')}`;
}

/**
 * Why a tensor of this (per-example or parameter) shape cannot exist, or
 * undefined if it can: a dimension that is not a positive safe integer, or
 * more than 2^31 - 1 elements. `what` leads the message ("layer 'dense'
 * would need a kernel"); `perExample` for activations (batch excluded).
 */
export function tensorSizeProblem(shape: readonly number[], what: string, perExample = false): string | undefined {
  const bad = shape.find((d) => !Number.isSafeInteger(d) || d < 1);
  if (bad !== undefined) return `${what} of shape [${shape.join(', ')}]: dimension ${bad} is not a positive integer`;
  const n = shape.reduce((a, b) => a * b, 1);
  if (n <= MAX_TENSOR_ELEMENTS) return undefined;
  const each = perExample ? ' per example' : '';
  return `${what} of ${product(shape)} = ${formatCount(n)} elements${each}; a tensor holds at most 2^31 - 1 (${MAX_TENSOR_ELEMENTS.toLocaleString('en-US')})`;
}

/** One example's activations: the largest one's elements, and all of them (inputs and node results). */
export interface ActivationSizes {
  readonly largest: number;
  readonly total: number;
}

export function activationSizes(graph: Graph): ActivationSizes {
  let largest = 1;
  let total = 0;
  for (const t of [...graph.inputs.map((i) => i.type), ...graph.nodes.map((n) => n.type)]) {
    const n = t.shape.reduce<number>((a, d) => (d === 'N' ? a : a * d), 1);
    largest = Math.max(largest, n);
    total += n;
  }
  return { largest, total: Math.max(1, total) };
}

/**
 * The most elements a batch's activations may hold together: 2^28 (1 GiB as
 * float32, 2 GiB as the reference interpreter's float64). A Trainer and the
 * interpreter keep every activation of a batch, so this bounds their memory.
 */
export const MAX_BATCH_ELEMENTS = 2 ** 28;

/** The largest batch that fits both limits: each tensor, and all activations together. */
export function maxBatch(sizes: ActivationSizes): number {
  return Math.min(Math.floor(MAX_TENSOR_ELEMENTS / sizes.largest), Math.floor(MAX_BATCH_ELEMENTS / sizes.total));
}

/**
 * Why a batch of `batch` examples does not fit, or undefined: its largest
 * activation above 2^31 - 1 elements, or all its activations above 2^28.
 */
export function batchProblem(batch: number, sizes: ActivationSizes): string | undefined {
  if (!Number.isSafeInteger(batch) || batch < 1) return `a batch must be a positive integer, got ${batch}`;
  if (batch <= maxBatch(sizes)) return undefined;
  const most = `so the batch can be at most ${maxBatch(sizes)}`;
  if (batch > Math.floor(MAX_TENSOR_ELEMENTS / sizes.largest)) {
    return `a batch of ${batch} would need ${batch} x ${sizes.largest} = ${formatCount(batch * sizes.largest)} elements for its largest tensor; a tensor holds at most 2^31 - 1, ${most}`;
  }
  return (
    `a batch of ${batch} would need ${batch} x ${sizes.total} = ${formatCount(batch * sizes.total)} elements of activations (${sizes.total} per example); ` +
    `a batch holds at most 2^28 (268,435,456; 1 GiB as float32), ${most}`
  );
}
