// @ts-check
/**
 * The graph-rewriting API in one runnable file (`node examples/rewrite-api.mjs`
 * after `npm ci`). The built-in passes (fold-bn, fuse-activation, ...) are
 * written with exactly these pieces.
 */
import { fileURLToPath } from 'node:url';
import {
  compareOnRandomInputs,
  createPassManager,
  defaultPipeline,
  editorPass,
  GraphEditor,
  hasSingleUser,
  lowerFile,
  materialize,
  matchAt,
  op,
  printGraph,
  rulePass,
} from 'modelc';

// 1. Load a spec into a graph, with weights sampled from its initializers (seed 7).
const spec = fileURLToPath(new URL('./mnist_cnn.nn', import.meta.url));
const graph = materialize(lowerFile(spec).graph, 7);

// 2. Walk and query: every conv2d whose only consumer is a batchnorm followed by relu.
const convBnRelu = op('relu', { as: 'act', x: op('batchnorm', { as: 'bn', x: op('conv2d', { as: 'conv' }) }) });
const ed = new GraphEditor(graph);
for (const node of ed.nodes) {
  const m = matchAt(ed, convBnRelu, node);
  if (m && ed.consumers(m['conv'].result) === 1) {
    console.log(`match: ${m['conv'].result} -> ${m['bn'].result} -> ${m['act'].result} (kernel ${ed.typeOf(m['conv'].operands[1]).shape})`);
  }
}

// 3. A rule: relu(relu(x)) -> relu(x), with a named guard and its algebra as its name.
const reluOfRelu = rulePass('relu-of-relu', 'relu is idempotent', [
  {
    name: 'relu(relu(x)) -> relu(x)',
    pattern: op('relu', { as: 'outer', x: op('relu', { as: 'inner' }) }),
    guards: [hasSingleUser('inner')],
    rewrite: (m, e) => {
      const reason = e.bypass(m['outer']); // remove the outer relu, uses move to the inner one
      return reason === undefined ? `removed ${m['outer'].result}` : { skipped: reason };
    },
  },
]);

// 4. A pass over the editor: insert a node (scale raw pixels 0..255 to 0..1 before the first layer)
//    and read and write parameter tensors (zero the smallest kernel weights).
const preprocess = editorPass('scale-pixels', 'divide the image input by 255', (e) => {
  const input = e.inputs[0].name;
  const first = e.users(input)[0];
  const channels = /** @type {number} */ (e.typeOf(input).shape.at(-1));
  const param = (/** @type {string} */ name, /** @type {number} */ v) =>
    e.addParam({ name, type: { dtype: 'f32', shape: [channels] }, trainable: false, init: { type: 'data', args: {} }, value: new Float32Array(channels).fill(v) });
  const scaled = e.freshName('scaled');
  e.replaceAllUses(input, scaled);
  e.insertBefore(first, {
    op: 'affine',
    result: scaled,
    type: e.typeOf(input),
    operands: [input, param('pixel/scale', 1 / 255), param('pixel/shift', 0)],
    attrs: { axis: 3 },
    layer: 'scale-pixels',
  });
  return true;
});

const prune = editorPass('prune-small-weights', 'zero kernel weights below 1e-3 in magnitude', (e, { explain }) => {
  let zeroed = 0;
  for (const p of e.params.filter((x) => x.name.endsWith('/kernel'))) {
    const w = Float32Array.from(e.paramValue(p.name), (v) => (Math.abs(v) < 1e-3 ? (zeroed++, 0) : v));
    e.setParam(p.name, { value: w });
  }
  explain.applied('prune', `zeroed ${zeroed} weights`);
  return zeroed > 0;
});

// 5. Register the custom passes and run them with the default pipeline; the verifier runs
//    after every pass and names any pass that breaks the IR.
const pm = createPassManager([reluOfRelu, preprocess, prune]);
const optimized = pm.run(graph, ['scale-pixels', ...defaultPipeline, 'relu-of-relu', 'prune-small-weights']);

// 6. Print the IR, and check the meaning with the reference interpreter.
console.log(printGraph(optimized));
const withScaling = pm.run(graph, ['scale-pixels']);
for (const d of compareOnRandomInputs(withScaling, optimized)) {
  console.log(`output ${d.name}: max relative difference ${d.maxRel.toExponential(1)} (pruning changes it a little)`);
}
