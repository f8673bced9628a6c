// Builds what the workers run, with the library (dist/), into a temporary
// directory: for each spec, the weights sampled from its initializers (seed 0,
// what `modelc init --seed 0` writes), and from that one weighted graph the
// generated inference module (-O), the ONNX export (-O), the training module,
// and the safetensors file TF.js is loaded from. Everything runs on the same
// weights.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));

/** @typedef {import('./common.js').ModelArtifact} ModelArtifact */

/** The library, loaded once (ts-morph and prettier make it slow to load). */
let libs;
async function load() {
  libs ??= {
    lib: await import('../dist/index.js'),
    // Not exported from the package index: the training pieces.
    training: await import('../dist/autodiff/training.js'),
    keras: await import('../dist/export/keras.js'),
    codegen: await import('../dist/codegen/index.js'),
  };
  return libs;
}

/**
 * Whether the code generator takes a `simd` option: its declared
 * InferenceOptions mention it (the generated module is then compared with the
 * plain one as well: an identical module means the option did nothing).
 */
export function simdDeclared() {
  try {
    return /\bsimd\b/.test(readFileSync(join(dist, 'codegen', 'inference.d.ts'), 'utf8'));
  } catch {
    return false;
  }
}

/**
 * The spec without its dropout layers (a reference to a dropout layer becomes
 * a reference to its input): the model whose first training step every
 * runtime must agree on, since dropout masks come from different generators.
 * @param {any} spec  annotated: every layer has its name
 */
function withoutDropout(spec) {
  /** @type {Map<string, string>} */
  const alias = new Map();
  const resolve = (/** @type {string} */ n) => alias.get(n) ?? n;
  /** @type {any[]} */
  const layers = [];
  let previous = spec.inputs[0].name;
  for (const l of spec.layers) {
    const inputs = l.inputs?.map(resolve);
    if (l.type === 'dropout') {
      alias.set(l.name, inputs ? inputs[0] : resolve(previous));
    } else {
      layers.push(inputs ? { ...l, inputs } : l.inputs === undefined && resolve(previous) !== previous ? { ...l, inputs: [resolve(previous)] } : l);
    }
    previous = l.name;
  }
  const outputs = (spec.outputs ?? [previous]).map(resolve);
  return { ...spec, name: `${spec.name}_nodropout`, layers, outputs };
}

/**
 * @typedef {object} Needs
 * @property {boolean} [infer]   inference module + ONNX export (+ the simd module when asked)
 * @property {boolean} [simd]
 * @property {boolean} [train]   training module, and the dropout-free twin's when the spec has dropout
 */

/**
 * Builds one spec's artifacts.
 * @param {string} specPath
 * @param {Needs} needs
 * @param {string} dir  where to write
 * @param {(line: string) => void} log
 * @returns {Promise<{ model: ModelArtifact, checkModel?: ModelArtifact, simd: 'built' | 'not built yet' | 'no-op' }>}
 */
export async function prepareModel(specPath, needs, dir, log) {
  const { lib, training, codegen, keras } = await load();
  const t0 = performance.now();
  const compiled = lib.lowerFile(specPath);
  const spec = structuredClone(compiled.spec);
  if (compiled.layers.length !== spec.layers.length) throw new Error(`${specPath}: ${compiled.layers.length} layers lowered from ${spec.layers.length} spec layers`);
  spec.layers.forEach((/** @type {any} */ l, /** @type {number} */ k) => (l.name = compiled.layers[k].name));
  const graph = lib.materialize(compiled.graph, 0);
  const name = graph.name;
  if (graph.inputs.length !== 1 || graph.outputs.length !== 1) throw new Error(`${specPath}: the bench needs one input and one output`);
  const types = lib.valueTypes(graph);
  const base = join(dir, name);
  const weights = lib.extractWeights(graph);
  writeFileSync(`${base}.safetensors`, lib.writeSafetensors(weights));
  /** @type {ModelArtifact} */
  const model = {
    name,
    spec,
    input: { name: graph.inputs[0].name, shape: graph.inputs[0].type.shape.slice(1) },
    output: graph.outputs[0],
    outputShape: /** @type {number[]} */ (types.get(graph.outputs[0]).shape.slice(1)),
    weightsPath: `${base}.safetensors`,
  };
  /** @type {'built' | 'not built yet' | 'no-op'} */
  let simd = 'not built yet';
  if (needs.infer) {
    const optimized = lib.createPassManager().run(graph, lib.defaultPipeline);
    const options = { name, source: specPath, passes: lib.defaultPipeline };
    const mod = await lib.generateInferenceModule(optimized, options);
    writeFileSync((model.modulePath = `${base}.mjs`), mod.js);
    writeFileSync((model.onnxPath = `${base}.onnx`), lib.exportOnnx(optimized));
    if (needs.simd && simdDeclared()) {
      const simdMod = await lib.generateInferenceModule(optimized, { ...options, simd: true });
      if (simdMod.js === mod.js) {
        // No layer takes a SIMD kernel: the --simd module is the plain one, timed as such.
        simd = 'no-op';
        model.simdModulePath = model.modulePath;
      } else {
        simd = 'built';
        writeFileSync((model.simdModulePath = `${base}.simd.mjs`), simdMod.js);
      }
    }
  }
  /** @type {ModelArtifact | undefined} */
  let checkModel;
  if (needs.train) {
    const program = training.buildTrainingProgram(graph, compiled.spec.training);
    const mod = await codegen.generateTrainingModule(program, { name, source: specPath });
    writeFileSync((model.trainModulePath = `${base}.train.mjs`), mod.js);
    if (simdDeclared()) {
      const simdMod = await codegen.generateTrainingModule(program, { name, source: specPath, simd: true });
      if (simdMod.js === mod.js) model.simdTrainModulePath = model.trainModulePath;
      else writeFileSync((model.simdTrainModulePath = `${base}.simd.train.mjs`), simdMod.js);
    }
    // The Keras runtime's model: modelc's .keras export, the same weights (trained in Keras, not folded).
    writeFileSync((model.kerasPath = `${base}.keras`), await keras.exportKeras({ ...compiled, graph }));
    checkModel = model;
    if (spec.layers.some((/** @type {any} */ l) => l.type === 'dropout')) {
      const twinSpec = withoutDropout(spec);
      const twinPath = `${base}_nodropout.json`;
      writeFileSync(twinPath, JSON.stringify(twinSpec, null, 2));
      const twin = await prepareModel(twinPath, { train: true }, dir, () => {});
      // The initializers draw from one stream per parameter name, so the twin's weights are the model's.
      const twinWeights = lib.extractWeights(lib.materialize(lib.lowerFile(twinPath).graph, 0));
      for (const [n, w] of twinWeights) {
        const mine = weights.get(n);
        if (!mine || mine.data.length !== w.data.length || mine.data.some((/** @type {number} */ v, /** @type {number} */ i) => v !== w.data[i])) {
          throw new Error(`${specPath}: the dropout-free twin's weight ${n} differs from the model's`);
        }
      }
      checkModel = twin.model;
    }
  }
  log(`prepared ${name} (${[needs.infer && 'inference module, ONNX', needs.train && 'training module'].filter(Boolean).join(', ')}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { model, ...(checkModel ? { checkModel } : {}), simd };
}

/**
 * A deep MLP spec for the compiler benchmark: `pairs` times dense(64, relu)
 * then batchnorm (2 * pairs layers).
 * @param {number} pairs
 */
export function deepMlpSource(pairs) {
  const lines = [`# ${2 * pairs} layers: ${pairs} dense + batchnorm pairs (generated by bench/prepare.js)`, `model deep_mlp_${2 * pairs} {`, '  input x: [64]'];
  for (let i = 0; i < pairs; i++) lines.push('  dense(64, activation: relu)', '  batchnorm');
  lines.push('}', '');
  return lines.join('\n');
}
