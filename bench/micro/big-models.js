// Compile time, module size and load time of big models (issue 15, deliverable 6):
// for each spec, in order,
//
//   cli      `modelc compile <spec> --emit js` in a fresh process (what a user waits for)
//   lib      compile() in this process, after a warm-up compile of a small example
//            (the code generator loaded, the JIT warm), writing nothing; wall and CPU time
//            (CPU time is the steadier figure on a shared machine)
//   size     the written module (.js) and, with --weights-mode external, module + .safetensors
//   load     in a fresh process: import the module, `new Model()` (decodes the weights),
//            the first predict at batch 1; embedded and external weights
//
//   node bench/micro/big-models.js [spec...]   (default: bench/models/vgg16.nn bench/models/densenet121.nn)
//
// Needs dist/ (npm run build). Prints one markdown row per spec and mode.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const specs = process.argv.length > 2 ? process.argv.slice(2) : ['bench/models/vgg16.nn', 'bench/models/densenet121.nn'].map((p) => join(root, p));
const { compile } = await import(join(root, 'dist/index.js'));
const tmp = mkdtempSync(join(tmpdir(), 'modelc-big-'));
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
const s = (ms) => `${(ms / 1000).toFixed(2)} s`;

/** Wall time of `modelc compile` in a new process. */
function cliCompile(spec, out, mode) {
  const t = performance.now();
  const r = spawnSync(process.execPath, [join(root, 'bin/modelc.js'), 'compile', spec, '-o', out, '--emit', 'js', '--weights-mode', mode], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return performance.now() - t;
}

/** In a new process: import, new Model(), first predict; milliseconds each. */
function load(modulePath, weightsPath) {
  const code = `
    const t0 = performance.now();
    const mod = await import(${JSON.stringify(pathToFileURL(modulePath).href)});
    const t1 = performance.now();
    const bytes = ${weightsPath ? `new Uint8Array((await import('node:fs')).readFileSync(${JSON.stringify(weightsPath)}))` : 'undefined'};
    const model = new mod.Model(bytes);
    const t2 = performance.now();
    const size = mod.inputs[0].shape.reduce((a, b) => a * b, 1);
    const y = model.predict(new Float32Array(size).map((_, i) => Math.sin(i)), 1);
    const t3 = performance.now();
    if (!y.every(Number.isFinite)) throw new Error('non-finite output');
    console.log(JSON.stringify({ importMs: t1 - t0, modelMs: t2 - t1, predictMs: t3 - t2 }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

await compile({ path: join(root, 'examples/mnist_cnn.nn') }, { emit: 'js' });
console.log('| model | weights | cli compile | compile() | module | + weights file | import | new Model() | first predict (batch 1) |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const spec of specs) {
  const stem = basename(spec).replace(/\.(nn|json)$/, '');
  for (const mode of ['embed', 'external']) {
    const out = join(tmp, `${stem}-${mode}`);
    const cliMs = cliCompile(spec, out, mode);
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    await compile({ path: spec }, { emit: 'js', weightsMode: mode });
    const libMs = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    const libCpuMs = (cpu.user + cpu.system) / 1000;
    const js = join(out, `${stem}.js`);
    const weights = mode === 'external' ? join(out, `${stem}.safetensors`) : undefined;
    const l = load(js, weights);
    const side = weights ? mb(statSync(weights).size) : '';
    console.log(`| ${stem} | ${mode} | ${s(cliMs)} | ${s(libMs)} (cpu ${s(libCpuMs)}) | ${mb(statSync(js).size)} | ${side} | ${s(l.importMs)} | ${s(l.modelMs)} | ${s(l.predictMs)} |`);
    rmSync(out, { recursive: true, force: true });
  }
}
rmSync(tmp, { recursive: true, force: true });
