// Scalar activation helpers of generated modules: ns per element of the
// generated `relu`, `tanh` and `sigmoid` (dist/ops/activation.js) against
// Math.max, Math.tanh and the exp form of sigmoid, over 2^20 points of
// random sign in [-6, 6] (as activations come: a branch on the sign
// mispredicts), medians; and the largest absolute error against the exact
// forms on a dense grid.
//
//   npm run build && node bench/micro/activations.js
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { ts } from 'ts-morph';
import { fmt, randomArray, root, timeAll } from './common.js';

const { activationHelper } = await import(pathToFileURL(join(root, 'dist/ops/activation.js')).href);

/**
 * The helper (and those it calls) compiled as a module compiles it, and a
 * loop summing it over an array: each loop its own code, so every call site
 * sees one function and V8 inlines it as it would in a kernel.
 */
function compile(sources, name) {
  const js = ts.transpileModule(sources.join('\n'), { compilerOptions: { target: ts.ScriptTarget.ES2022 } }).outputText;
  return new Function(`${js}\nreturn [${name}, (xs) => { let s = 0; for (let i = 0; i < xs.length; i++) s += ${name}(xs[i]); return s; }];`)();
}
function helperSources(helper, sources = new Map()) {
  sources.set(helper.name, helper.source);
  (helper.uses ?? []).forEach((h) => helperSources(h, sources));
  return [...sources.values()];
}

const exactSigmoid = 'function exactSigmoid(x) { if (x >= 0) return 1 / (1 + Math.exp(-x)); const e = Math.exp(x); return e / (1 + e); }';
const pairs = [
  ['relu', compile(['function exactRelu(x) { return Math.max(x, 0); }'], 'exactRelu'), compile(helperSources(activationHelper('relu')), 'relu')],
  ['tanh', compile(['const exactTanh = Math.tanh;'], 'exactTanh'), compile(helperSources(activationHelper('tanh')), 'tanh')],
  ['sigmoid', compile([exactSigmoid], 'exactSigmoid'), compile(helperSources(activationHelper('sigmoid')), 'sigmoid')],
];
const xs = Float64Array.from(randomArray(1 << 20, 9), (v) => v * 6);
let sink = 0;
for (const [name, [exact, exactLoop], [generated, generatedLoop]] of pairs) {
  let worst = 0;
  for (let i = -2e6; i <= 2e6; i++) worst = Math.max(worst, Math.abs(generated(i * 1e-5) - exact(i * 1e-5)));
  const [a, b] = timeAll([() => (sink += exactLoop(xs)), () => (sink += generatedLoop(xs))]);
  console.log(`${name.padEnd(8)} exact ${fmt(a / xs.length).padStart(8)}  generated ${fmt(b / xs.length).padStart(8)}  speedup ${(a / b).toFixed(2)}x  max |error| on [-20, 20] ${worst.toExponential(2)}`);
}
if (sink === 42) console.log('');
