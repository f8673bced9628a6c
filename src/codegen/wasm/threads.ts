/**
 * Threads for the SIMD kernels (`startThreads` of the generated Model and
 * Trainer): how each kernel call divides between threads, and the worker
 * the generated module starts for every thread after the first.
 *
 * The calling thread and its workers share one WebAssembly memory (shared,
 * so the module is instantiated once per thread on the same bytes). A kernel
 * call that is worth dividing becomes a job: the caller writes it into a
 * control block in the memory (kernel, example count, base offsets and
 * strides), bumps the job counter and wakes the workers (Atomics.notify);
 * each thread t of T runs the kernel on its own range of examples,
 * [floor(n t / T), floor(n (t + 1) / T)), the caller as thread 0, and the
 * caller waits until every worker has counted itself done. A kernel whose
 * result sums over the examples (`reduce`: a weight gradient) writes one
 * partial per thread, and a second job adds the partials in thread order,
 * each thread a range of the floats. So a result does not depend on how the
 * threads are scheduled: per example kernels give the same floats for any
 * thread count, sums over examples the same floats for a given count.
 *
 * Workers are Node worker_threads (eval) or Web Workers (from a Blob URL);
 * the worker source below is plain JavaScript that runs as either.
 */
import type { AnySimdKernelRequest, SimdSplit } from '../../ops/simd-def.js';
import { simdSplits } from '../../ops/simd-def.js';

/** How one kernel's calls divide between threads. */
export interface KernelSplit {
  readonly split: SimdSplit;
  /** Arithmetic per example (flops, or floats moved by copies): calls with less than SIMD_SPLIT_WORK in all run on one thread. */
  readonly work: number;
  /**
   * Per argument (a, b, bias, y): how its byte offset moves for a thread:
   * floats per example (0: the same for every example, a weight), or,
   * negative, floats per thread (a scratch buffer of each thread's own, at
   * the given offset + t * floats). For a `reduce` kernel, y's entry is the
   * result's floats (the partials are allocated per thread).
   */
  readonly floats: readonly [number, number, number, number];
}

/** Atomics.load calls a waiting thread spins through before it sleeps (tens of microseconds). */
export const SPIN = 20000;

/** Words of the control block (Int32): job counter, command, workers still running, examples, step kind, kernel, four (offset, stride) pairs, partials, floats, error flag. */
export const CONTROL_WORDS = 20;

/** Arithmetic per example of a request: GEMM-like kinds by their multiply-adds, the rest by the floats they write. */
export function simdWork(req: AnySimdKernelRequest, outFloats: number): number {
  if ('inDim' in req && 'units' in req) return 2 * (req.rowsPerExample ?? 1) * req.inDim * req.units;
  if ('filters' in req) return 2 * outFloats * req.kernel[0] * req.kernel[1] * req.input[2];
  if ('kernel' in req) return 2 * outFloats * req.kernel[0] * req.kernel[1];
  return outFloats;
}

/** The split of a kernel called with these per-example floats (see KernelSplit.floats). */
export function kernelSplit(req: AnySimdKernelRequest, floats: readonly [number, number, number, number], outFloats: number): KernelSplit {
  return { split: simdSplits[req.kind], work: simdWork(req, outFloats), floats };
}

/**
 * The worker (JavaScript, no TypeScript syntax). It receives the module, the
 * shared memory, the control block's offset, its thread number, the thread
 * count and the kernel export names; answers "ready"; then runs its share of
 * every job until the command word says stop. A kernel that traps sets the
 * error word instead of leaving the caller waiting.
 */
export const workerSource = `"use strict";
// modelc SIMD worker: runs its share of the jobs the calling thread writes into the control block.
const nodeWorker = typeof require === "function";
const port = nodeWorker ? require("node:worker_threads").parentPort : self;
function start(init) {
  const { module, memory, control, thread, threads, names } = init;
  const exported = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const kernels = names.map((name) => exported[name]);
  const c = new Int32Array(memory.buffer, control, ${CONTROL_WORDS});
  let job = Atomics.load(c, 0);
  port.postMessage("ready");
  for (;;) {
    // Spin a little before sleeping: jobs often come back to back, and waking a sleeping thread takes longer than a job's gap.
    for (let spin = 0; spin < ${SPIN} && Atomics.load(c, 0) === job; spin++);
    Atomics.wait(c, 0, job);
    job = Atomics.load(c, 0);
    if (c[1] === 1) break;
    try {
      const n = c[3];
      if (c[4] === 0) {
        // A kernel on this thread's examples: offsets move by floats per example (or, negative, per thread).
        const from = Math.floor((n * thread) / threads), to = Math.floor((n * (thread + 1)) / threads);
        const at = (k) => (c[7 + 2 * k] < 0 ? c[6 + 2 * k] - 4 * c[7 + 2 * k] * thread : c[6 + 2 * k] + 4 * c[7 + 2 * k] * from);
        if (to > from) kernels[c[5]](to - from, at(0), at(1), at(2), at(3));
      } else {
        // The sum of the threads' partials (c[14], one after another) into the result (c[12]), this thread's range of c[15] floats.
        const floats = c[15], from = Math.floor((floats * thread) / threads), to = Math.floor((floats * (thread + 1)) / threads);
        const f = new Float32Array(memory.buffer), y = c[12] >> 2, p = c[14] >> 2;
        for (let i = from; i < to; i++) {
          let s = f[p + i];
          for (let t = 1; t < threads; t++) s += f[p + t * floats + i];
          f[y + i] = s;
        }
      }
    } catch (e) {
      Atomics.store(c, 16, 1);
    }
    if (Atomics.sub(c, 2, 1) === 1) Atomics.notify(c, 2);
  }
  if (nodeWorker) port.close();
  else self.close();
}
if (nodeWorker) port.once("message", start);
else self.onmessage = (e) => start(e.data);
`;
