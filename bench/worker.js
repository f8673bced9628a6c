// The message loop every bench/worker-*.js runs: the orchestrator (bench/run.js)
// forks one worker per runtime and sends it requests over IPC (structured
// clone, so typed arrays travel as they are). A worker holds one case at a
// time; the timing loops run here, inside the worker, so IPC is never timed.
//
// Requests ({ seq, cmd, ... }) and their results:
//   init                       -> { available, reason?, hint?, info }
//   prepare { job }            -> {}                  load the case's model / module / session
//   check                      -> CheckResult         outputs, or loss + weights after one step
//   warmup { minIters, minMs, maxMs } -> { times }    untimed-for-the-table iterations, each timed
//   run { iters }              -> { ms }              one sample: `iters` iterations back to back
//   single                     -> { ms, check }       one cold timed step that is also the check
//   release                    -> {}
// Replies are { seq, ok: true, result } or { seq, ok: false, error }.

/**
 * @typedef {import('./common.js').Job} Job
 * @typedef {import('./common.js').CheckResult} CheckResult
 *
 * @typedef {object} Runner
 * @property {() => Promise<{ available: boolean, reason?: string, hint?: string, info?: Record<string, unknown> }>} init
 * @property {(job: Job) => Promise<void>} prepare
 * @property {() => Promise<CheckResult>} check
 * @property {() => unknown} step              one iteration (may return a promise, which is awaited)
 * @property {(iters: number) => Promise<number>} [run]  a whole sample timed by the runtime itself (ms): a runtime in another process
 * @property {() => Promise<{ ms: number, check: CheckResult }>} [single]
 * @property {() => Promise<void>} release
 */

/**
 * Serves requests with `runner` until the orchestrator disconnects.
 * @param {Runner} runner
 */
export function serve(runner) {
  if (!process.send) throw new Error('a bench worker runs under bench/run.js (child_process.fork)');
  const send = process.send.bind(process);

  /** @param {number} iters */
  async function run(iters) {
    if (runner.run) return runner.run(iters);
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) {
      const r = runner.step();
      if (r && typeof (/** @type {any} */ (r).then) === 'function') await r;
    }
    return performance.now() - t0;
  }

  /** @param {any} msg */
  async function handle(msg) {
    switch (msg.cmd) {
      case 'init':
        return runner.init();
      case 'prepare':
        await runner.prepare(msg.job);
        return {};
      case 'check':
        return runner.check();
      case 'warmup': {
        /** @type {number[]} */
        const times = [];
        const t0 = performance.now();
        for (;;) {
          times.push(await run(1));
          const spent = performance.now() - t0;
          if ((times.length >= msg.minIters && spent >= msg.minMs) || spent >= msg.maxMs) break;
        }
        return { times };
      }
      case 'run':
        return { ms: await run(msg.iters) };
      case 'single':
        if (!runner.single) throw new Error('this runtime has no single-step mode');
        return runner.single();
      case 'release':
        await runner.release();
        return {};
      default:
        throw new Error(`unknown request '${msg.cmd}'`);
    }
  }

  // One request at a time, in order (the orchestrator never overlaps them).
  let queue = Promise.resolve();
  process.on('message', (/** @type {any} */ msg) => {
    queue = queue.then(async () => {
      try {
        send({ seq: msg.seq, ok: true, result: await handle(msg) });
      } catch (err) {
        const e = /** @type {Error} */ (err);
        send({ seq: msg.seq, ok: false, error: e && e.message ? e.message : String(err) });
      }
    });
  });
  process.on('disconnect', () => process.exit(0));
}
