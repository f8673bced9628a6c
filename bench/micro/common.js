// Shared pieces of the micro-benchmarks: generate modules through the built
// library (dist/, so run `npm run build` first), import the emitted
// JavaScript, and time a function by the median of repeated runs.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ts } from 'ts-morph';

export const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;

/**
 * Compiles an example spec (`examples/<name>.nn`) with `modelc compile
 * --target both --emit js` into a temporary directory and imports both
 * modules: { inference, training, dir }.
 */
export async function compileExample(name, seed = 0) {
  const { compileCommand } = await import(dist('cli/compile.js'));
  const dir = mkdtempSync(join(tmpdir(), 'modelc-bench-'));
  const spec = join(root, 'examples', `${name}.nn`);
  await compileCommand(spec, { output: dir, emit: 'js', weightsMode: 'embed', target: 'both', seed: String(seed) }, () => {});
  return importExample(name, dir);
}

/** The modules of `compileExample` from a directory (one saved with `--save`, say). */
export async function importExample(name, dir) {
  const inference = await import(pathToFileURL(join(dir, `${name}.js`)).href);
  const training = await import(pathToFileURL(join(dir, `${name}.train.js`)).href);
  return { inference, training, dir, source: (file) => readFileSync(join(dir, file), 'utf8') };
}

/**
 * One op's codegen template (OpDef.emit) from dist/, transpiled to a
 * callable kernel(n, ...operands, y), with its helpers: what the
 * generated modules contain, outside a module.
 */
export async function emitKernel(op, operandTypes, attrs) {
  const { getOp } = await import(dist('ops/registry.js'));
  const { tensor } = await import(dist('ir/types.js'));
  const def = getOp(op);
  const types = operandTypes.map((s) => tensor(s));
  const result = def.infer(types, attrs);
  const emitted = def.emit({ operands: types, result, attrs });
  return { ...kernelFunction(emitted), result, emitted };
}

/** A KernelCode (what OpDef.emit returns) with its helpers, transpiled: { kernel(n, ...operands, y), js }. */
export function kernelFunction(emitted) {
  const helpers = new Map();
  const visit = (h) => {
    helpers.set(h.name, h.source);
    (h.uses ?? []).forEach(visit);
  };
  emitted.helpers.forEach(visit);
  const source = `${[...helpers.values()].join('\n')}\nreturn function kernel(n: number, ${emitted.params.map((p) => `${p}: Float32Array`).join(', ')}, y: Float32Array): void {\n${emitted.body}\n};`;
  const js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022 } }).outputText;
  return { kernel: new Function(js)(), js };
}

/** A kernel from the JavaScript `emitKernel` returned (saved earlier: the baseline of a comparison). */
export function loadKernel(js) {
  return new Function(js)();
}

/**
 * `--save DIR` and `--against DIR` from the command line: where to write the
 * generated code of this run, and where to read a baseline's to time side by
 * side (interleaved, so both see the same machine load).
 */
export function options() {
  const args = process.argv.slice(2);
  const value = (flag) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  return { save: value('--save'), against: value('--against') };
}

/** A seeded uniform [-1, 1) Float32Array. */
export function randomArray(size, seed = 1) {
  let s = seed >>> 0 || 1;
  const a = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

/**
 * Median seconds per call of `f`: warm-up calls first, then `reps` samples,
 * each timing enough calls to last at least `minTime` seconds.
 */
export function time(f, opts = {}) {
  return timeAll([f], opts)[0];
}

/**
 * Median seconds per call of each function, sampled in turn (f0, f1, f0,
 * f1, ...) so that a change in machine load hits all of them alike.
 */
export function timeAll(fs, { reps = 9, minTime = 0.05, warmup = 3 } = {}) {
  const calls = fs.map((f) => {
    for (let i = 0; i < warmup; i++) f();
    let k = 1;
    for (;;) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < k; i++) f();
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      if (dt >= minTime) return k;
      k = Math.max(k + 1, Math.ceil(k * Math.min(10, (minTime * 1.2) / Math.max(dt, 1e-9))));
    }
  });
  const samples = fs.map(() => []);
  for (let r = 0; r < reps; r++) {
    fs.forEach((f, j) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls[j]; i++) f();
      samples[j].push(Number(process.hrtime.bigint() - t0) / 1e9 / calls[j]);
    });
  }
  return samples.map((s) => s.sort((a, b) => a - b)[s.length >> 1]);
}

/** 1.23 ms, 456 µs, ... */
export function fmt(seconds) {
  if (seconds >= 1) return `${seconds.toFixed(3)} s`;
  if (seconds >= 1e-3) return `${(seconds * 1e3).toFixed(2)} ms`;
  if (seconds >= 1e-6) return `${(seconds * 1e6).toFixed(2)} µs`;
  return `${(seconds * 1e9).toFixed(1)} ns`;
}

/** The command-line arguments that are not options (--save DIR, --against DIR). */
export function filters() {
  return process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
}

/**
 * Command-line filter: run only the cases whose name contains one of the
 * arguments (or, with `prefix`, that could: a group of cases named
 * `name ...`).
 */
export function selected(name, prefix = false) {
  const args = filters();
  return args.length === 0 || args.some((a) => name.includes(a) || (prefix && a.startsWith(name)));
}
