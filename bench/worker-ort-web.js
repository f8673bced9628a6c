// The onnxruntime-web runtime (issue 18): onnxruntime's WebAssembly build, the
// 'wasm' execution provider, run here in Node: one thread (numThreads 1), SIMD
// (the package's one CPU binary, ort-wasm-simd-threaded.wasm), no proxy worker,
// all graph optimizations, on modelc's ONNX export of the -O graph: the same
// file the onnxruntime-node column runs.
// Session and steps: onnx-session.js.
//
// The wasm binary and its Emscripten glue are read from node_modules/onnxruntime-web/dist
// (wasmBinary, wasmPaths): nothing is fetched. Without the package, or when this
// Node cannot compile the binary, the column says why and the run goes on.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { onnxHandlers } from './onnx-session.js';
import { serve } from './worker.js';

const require = createRequire(import.meta.url);
/** A variable, so that type checkers do not need the package. */
const ortPackage = 'onnxruntime-web';
const WASM = 'ort-wasm-simd-threaded.wasm';
const GLUE = 'ort-wasm-simd-threaded.mjs';

/** @type {any} */
let ort;
serve({
  async init() {
    let dist;
    try {
      // The CommonJS entry (dist/ort.node.min.js): where the wasm files are. (The package exports no ./package.json.)
      dist = dirname(require.resolve(ortPackage));
      // import gives Node the ESM build of the same (dist/ort.node.min.mjs): the wasm backend only.
      ort = await import(ortPackage);
      ort = ort.default ?? ort;
    } catch (err) {
      const e = /** @type {any} */ (err);
      const missing = e && (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND');
      return {
        available: false,
        reason: missing ? 'not installed' : `cannot load onnxruntime-web: ${e && e.message}`,
        ...(missing ? { hint: 'npm ci (onnxruntime-web is a devDependency)' } : {}),
      };
    }
    const version = ort.env.versions?.web ?? 'unknown';
    const wasmFile = join(dist, WASM);
    const glueFile = join(dist, GLUE);
    if (!existsSync(wasmFile) || !existsSync(glueFile)) return { available: false, reason: `onnxruntime-web ${version}: no ${WASM} and ${GLUE} in ${dist}` };
    const binary = readFileSync(wasmFile);
    if (!WebAssembly.validate(binary)) return { available: false, reason: `this Node cannot compile onnxruntime-web's ${WASM} (WebAssembly SIMD and threads)` };
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmBinary = binary;
    ort.env.wasm.wasmPaths = { mjs: pathToFileURL(glueFile).href, wasm: pathToFileURL(wasmFile).href };
    return { available: true, info: { version, numThreads: 1, simd: true, proxy: false } };
  },
  ...onnxHandlers(() => ort, 'onnxruntime-web', { executionProviders: ['wasm'] }),
});
