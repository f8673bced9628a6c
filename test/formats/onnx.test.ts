/**
 * ONNX export: every op kind (and the example models) run in onnxruntime and
 * match the reference interpreter, before and after the default pipeline
 * (whose folded batchnorms and fused epilogues must come out as plain ONNX
 * nodes); the file decodes back with protobufjs; hostile names; the CLI.
 */
import { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { exportCommand, registerExport } from '../../src/cli/export.js';
import { exportOnnx, onnxModelType } from '../../src/formats/onnx.js';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile } from '../../src/frontend/load.js';
import { interpret } from '../../src/interp/interpret.js';
import type { Graph } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { materialize } from '../../src/ops/init.js';
import { compareTensors, randomFeeds } from '../../src/passes/equivalence.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { tempDir } from '../helpers/cli.js';
import { lowerJson, model, type JsonSpec } from '../helpers/graphs.js';
import { withRandomParams } from '../helpers/tensors.js';

const BATCH = 3;
const TOLERANCE = 1e-4;

const optimized = (g: Graph) => createPassManager().run(g, [...defaultPipeline], {});

/** Seeded inputs in [-2, 2), rounded to float32 (what the ONNX model takes). */
function feedsOf(graph: Graph, seed = 11): Record<string, Tensor> {
  const feeds = randomFeeds(graph, BATCH, seed);
  for (const t of Object.values(feeds)) t.data.forEach((v, i) => (t.data[i] = Math.fround(v)));
  return feeds;
}

/** The exported model's outputs (in graph output order) on `feeds`. */
async function runOnnx(bytes: Uint8Array, graph: Graph, feeds: Record<string, Tensor>): Promise<Tensor[]> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    expect(session.inputNames.length).toBe(graph.inputs.length);
    const inputs: Record<string, ort.Tensor> = {};
    graph.inputs.forEach((input, i) => {
      const feed = feeds[input.name]!;
      inputs[session.inputNames[i]!] = new ort.Tensor('float32', Float32Array.from(feed.data), [...feed.shape]);
    });
    const results = await session.run(inputs);
    return session.outputNames.map((name) => {
      const t = results[name]!;
      return { shape: t.dims.map(Number), data: Float64Array.from(t.data as Float32Array) };
    });
  } finally {
    await session.release();
  }
}

/**
 * Exports `graph` (and `-O` of it) and checks each output against the
 * interpreter on the original: same shape, max |diff| <= 1e-4 * max |ref|.
 */
async function expectMatches(graph: Graph): Promise<void> {
  const feeds = feedsOf(graph);
  const want = interpret(graph, feeds);
  for (const [mode, g] of [['unoptimized', graph], ['optimized', optimized(graph)]] as const) {
    const got = await runOnnx(exportOnnx(g), g, feeds);
    expect(got.length, mode).toBe(graph.outputs.length);
    graph.outputs.forEach((o, i) => {
      const ref = want[o]!;
      expect(got[i]!.shape, `${mode} ${o}`).toEqual(ref.shape);
      const d = compareTensors(o, ref, got[i]!);
      expect(d.maxRel, `${mode} ${o}: max abs ${d.maxAbs}`).toBeLessThanOrEqual(TOLERANCE);
    });
  }
}

const withParams = (spec: JsonSpec, seed = 3) => withRandomParams(lowerJson(spec).graph, seed);

const conv = (extra: object) => ({ type: 'conv2d', filters: 4, kernel_size: 3, ...extra });
const img = (shape: number[], ...layers: object[]) => model(shape, layers);

const activations: [string, object][] = [
  ['relu', {}],
  ['relu6', {}],
  ['leaky_relu', { alpha: 0.1 }],
  ['elu', { alpha: 0.5 }],
  ['selu', {}],
  ['gelu', { approximate: false }],
  ['gelu', { approximate: true }],
  ['swish', {}],
  ['tanh', {}],
  ['sigmoid', {}],
  ['hard_sigmoid', {}],
  ['softplus', {}],
  ['softmax', {}],
  ['linear', {}],
];

const cases: [string, JsonSpec][] = [
  // conv2d geometry: same padding with odd/even sizes, strides, dilation; valid with leftover cells
  ['conv same 3x3 stride 2, odd input', img([7, 7, 3], conv({ strides: 2, padding: 'same' }))],
  ['conv same 3x3 stride 2, even input', img([8, 8, 3], conv({ strides: 2, padding: 'same' }))],
  ['conv same 2x2 stride 1 (odd cell at the end)', img([6, 5, 2], conv({ kernel_size: 2, padding: 'same' }))],
  ['conv same 4x4 stride 3', img([10, 9, 2], conv({ kernel_size: 4, strides: 3, padding: 'same' }))],
  ['conv same dilated', img([9, 8, 2], conv({ dilation_rate: 2, padding: 'same' }))],
  ['conv valid dilated', img([9, 9, 2], conv({ dilation_rate: [2, 3], padding: 'valid' }))],
  ['conv valid stride 2 with leftover', img([8, 8, 2], conv({ strides: 2 }))],
  ['conv non-square kernel and strides', img([6, 7, 2], conv({ kernel_size: [2, 3], strides: [1, 2], padding: 'same' }))],
  ['conv no bias', img([5, 5, 2], conv({ use_bias: false, padding: 'same' }))],
  ['grouped conv', img([6, 6, 4], conv({ filters: 6, groups: 2, padding: 'same' }))],
  ['depthwise multiplier 2, same, stride 2', img([7, 7, 3], { type: 'depthwise_conv2d', kernel_size: 3, depth_multiplier: 2, strides: 2, padding: 'same' })],
  ['depthwise valid, no bias', img([6, 6, 3], { type: 'depthwise_conv2d', kernel_size: [3, 2], use_bias: false })],
  // conv2d_transpose: valid and same, stride 2, kernels wider and narrower than the stride
  ['conv2d_transpose valid 3x3 stride 2', img([4, 5, 3], { type: 'conv2d_transpose', filters: 2, kernel_size: 3, strides: 2 })],
  ['conv2d_transpose valid 2x2 stride 3 (output_padding)', img([4, 4, 3], { type: 'conv2d_transpose', filters: 2, kernel_size: 2, strides: 3 })],
  ['conv2d_transpose same 3x3 stride 2', img([4, 5, 3], { type: 'conv2d_transpose', filters: 2, kernel_size: 3, strides: 2, padding: 'same' })],
  ['conv2d_transpose same 4x4 stride 2', img([4, 4, 3], { type: 'conv2d_transpose', filters: 2, kernel_size: 4, strides: 2, padding: 'same' })],
  ['conv2d_transpose same 1x1 stride 2', img([3, 3, 2], { type: 'conv2d_transpose', filters: 2, kernel_size: 1, strides: 2, padding: 'same' })],
  ['conv2d_transpose same output_padding 1', img([4, 4, 2], { type: 'conv2d_transpose', filters: 3, kernel_size: 3, strides: 2, padding: 'same', output_padding: 1 })],
  ['conv2d_transpose valid output_padding', img([3, 3, 2], { type: 'conv2d_transpose', filters: 2, kernel_size: 3, strides: 3, output_padding: [2, 1] })],
  ['conv2d_transpose dilated, grouped', img([4, 4, 4], { type: 'conv2d_transpose', filters: 6, kernel_size: 3, dilation_rate: 2, groups: 2, padding: 'same' })],
  // pools
  ['max pool valid', img([7, 7, 2], { type: 'max_pool2d', pool_size: 2 })],
  ['max pool same 3x3 stride 2', img([7, 8, 2], { type: 'max_pool2d', pool_size: 3, strides: 2, padding: 'same' })],
  ['avg pool valid 3x3 stride 2', img([7, 7, 2], { type: 'avg_pool2d', pool_size: 3, strides: 2 })],
  ['avg pool same (padding cells not counted)', img([7, 6, 2], { type: 'avg_pool2d', pool_size: 3, strides: 2, padding: 'same' })],
  ['avg pool same 2x2 stride 1', img([5, 5, 2], { type: 'avg_pool2d', pool_size: 2, strides: 1, padding: 'same' })],
  ['global avg pool', img([5, 4, 3], conv({ padding: 'same' }), { type: 'global_avg_pool2d' })],
  ['global max pool keepdims', img([5, 4, 3], conv({ padding: 'same' }), { type: 'global_max_pool2d', keepdims: true })],
  ['global avg pool keepdims then conv', img([5, 4, 3], { type: 'global_avg_pool2d', keepdims: true }, conv({ kernel_size: 1 }))],
  // merges and shapes
  [
    'concatenate conv branches on channels',
    {
      name: 't',
      inputs: [{ name: 'x', shape: [6, 6, 2] }],
      layers: [
        { ...conv({ padding: 'same' }), name: 'a', inputs: ['x'] },
        { ...conv({ filters: 3, kernel_size: 1 }), name: 'b', inputs: ['x'] },
        { type: 'concatenate', inputs: ['a', 'b'] },
        conv({ filters: 2, kernel_size: 1 }),
      ],
    },
  ],
  [
    'concatenate along height, mixed layouts',
    {
      name: 't',
      inputs: [{ name: 'x', shape: [4, 4, 2] }],
      layers: [
        { ...conv({ padding: 'same' }), name: 'a', inputs: ['x'] },
        { type: 'dense', units: 4, name: 'b', inputs: ['x'] },
        { type: 'concatenate', axis: 1, inputs: ['a', 'b'] },
      ],
    },
  ],
  [
    'concatenate two inputs',
    { name: 't', inputs: [{ name: 'p', shape: [3] }, { name: 'q', shape: [5] }], layers: [{ type: 'concatenate', inputs: ['p', 'q'] }, { type: 'dense', units: 2 }] },
  ],
  [
    'add of three, relu after',
    {
      name: 't',
      inputs: [{ name: 'x', shape: [5, 5, 3] }],
      layers: [
        { ...conv({ filters: 3, padding: 'same' }), name: 'a', inputs: ['x'] },
        { ...conv({ filters: 3, kernel_size: 1 }), name: 'b', inputs: ['x'] },
        { type: 'add', inputs: ['x', 'a', 'b'] },
        { type: 'relu' },
      ],
    },
  ],
  [
    'shared weights (reuse), two outputs',
    {
      name: 't',
      inputs: [{ name: 'x', shape: [5, 5, 2] }, { name: 'x2', shape: [5, 5, 2] }],
      layers: [
        { ...conv({ padding: 'same', activation: 'tanh' }), name: 'enc', inputs: ['x'] },
        { reuse: 'enc', inputs: ['x2'] },
        { type: 'add', name: 'sum', inputs: ['enc', 'enc_1'] },
        { type: 'global_max_pool2d', name: 'pooled' },
      ],
      outputs: ['pooled', 'enc', 'sum'],
    },
  ],
  ['an input as an output', { name: 't', inputs: [{ name: 'x', shape: [3] }], layers: [{ type: 'dense', units: 2, name: 'd' }], outputs: ['d', 'x'] }],
  ['reshape, dense on rank 3, flatten', img([4, 4, 2], { type: 'reshape', target_shape: [8, -1] }, { type: 'dense', units: 3, activation: 'relu' }, { type: 'flatten' }, { type: 'dense', units: 2 })],
  ['flatten after conv', img([5, 5, 2], conv({}), { type: 'flatten' }, { type: 'dense', units: 3, activation: 'softmax' })],
  // batchnorm alone (no linear neighbour: becomes affine under -O)
  ['batchnorm rank 2', model([6], [{ type: 'batchnorm' }])],
  ['batchnorm rank 2 center false', model([6], [{ type: 'batchnorm', center: false }])],
  ['batchnorm rank 4', img([4, 3, 5], { type: 'batchnorm' })],
  ['batchnorm rank 4 scale false', img([4, 3, 5], { type: 'batchnorm', scale: false })],
  ['batchnorm rank 4 center and scale false', img([4, 3, 5], { type: 'batchnorm', scale: false, center: false, epsilon: 0.1 })],
  ['batchnorm rank 4 axis 1', img([4, 3, 5], { type: 'batchnorm', axis: 1 })],
  ['batchnorm rank 4 axis 2', img([4, 3, 5], { type: 'batchnorm', axis: 2 })],
  ['batchnorm rank 3', img([4, 5], { type: 'batchnorm' }, { type: 'relu' })],
  ['batchnorm after pool, relu', img([6, 6, 3], { type: 'max_pool2d' }, { type: 'batchnorm' }, { type: 'relu' }, conv({ kernel_size: 1 }))],
  ['batchnorm after add', model([4], [{ type: 'dense', units: 4, name: 'a' }, { type: 'add', inputs: ['x', 'a'] }, { type: 'batchnorm' }, { type: 'elu' }])],
  // folds under -O: BN into conv/dense/transpose/depthwise, with fused activations
  ['conv bn relu conv', img([6, 6, 2], conv({ padding: 'same' }), { type: 'batchnorm' }, { type: 'relu' }, conv({ strides: 2 }), { type: 'batchnorm' }, { type: 'softmax' })],
  ['depthwise bn relu6', img([6, 6, 2], { type: 'depthwise_conv2d', kernel_size: 3, depth_multiplier: 2, padding: 'same' }, { type: 'batchnorm' }, { type: 'relu6' })],
  ['transpose bn gelu', img([3, 3, 2], { type: 'conv2d_transpose', filters: 3, kernel_size: 3, strides: 2, padding: 'same' }, { type: 'batchnorm' }, { type: 'gelu' })],
  ['bn before dense (folds forward), dropout', model([5], [{ type: 'batchnorm' }, { type: 'dense', units: 3 }, { type: 'dropout', rate: 0.5 }, { type: 'swish' }])],
  // every activation, after dense (fused under -O) and after conv (channels-first)
  ...activations.map(([a, attrs]): [string, JsonSpec] => [`${a} ${JSON.stringify(attrs)} after dense`, model([5], [{ type: 'dense', units: 4 }, { type: a, ...attrs }])]),
  ...activations.map(([a, attrs]): [string, JsonSpec] => [`${a} ${JSON.stringify(attrs)} after conv`, img([4, 4, 2], conv({ padding: 'same' }), { type: a, ...attrs })]),
  ['activation on the input', img([3, 3, 2], { type: 'activation', activation: 'hard_sigmoid' }, { type: 'softmax', axis: 1 })],
];

describe('exportOnnx matches the interpreter in onnxruntime', () => {
  it.each(cases)('%s', async (_, spec) => {
    await expectMatches(withParams(spec));
  });

  it.each(['seed_mlp', 'mnist_cnn', 'res_block'])('examples/%s.nn', async (name) => {
    const graph = lowerFile(`examples/${name}.nn`).graph;
    await expectMatches(materialize(graph, 7));
    // and with non-trivial batchnorm statistics
    await expectMatches(withRandomParams(graph, 9));
  });
});

describe('the ONNX file', () => {
  const graph = materialize(lowerFile('examples/res_block.nn').graph, 1);

  it('decodes back with protobufjs: opset 17, IR 8, weights and names', () => {
    const type = onnxModelType();
    const decoded = type.toObject(type.decode(exportOnnx(graph, { producerVersion: '9.9.9' })), { longs: Number, bytes: Array }) as {
      irVersion: number;
      opsetImport: { domain?: string; version: number }[];
      producerName: string;
      producerVersion: string;
      graph: {
        name: string;
        node: { opType: string; docString: string; input: string[]; output: string[] }[];
        initializer: { name: string; dims: number[]; dataType: number; rawData: number[] }[];
        input: { name: string; type: { tensorType: { elemType: number; shape: { dim: ({ dimParam: string } | { dimValue: number })[] } } } }[];
        output: { name: string }[];
      };
    };
    expect(decoded.irVersion).toBe(8);
    expect(decoded.opsetImport).toEqual([{ domain: '', version: 17 }]);
    expect(decoded.producerName).toBe('modelc');
    expect(decoded.producerVersion).toBe('9.9.9');
    const g = decoded.graph;
    expect(g.name).toBe('res_block');
    expect(g.input).toEqual([
      { name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 32 }, { dimValue: 32 }, { dimValue: 16 }] } } } },
    ]);
    expect(g.output.map((o) => o.name)).toEqual(['y']);
    // Conv kernels are [out, in, kh, kw], little-endian float32.
    const kernel = g.initializer.find((t) => t.name === 'conv2d/kernel')!;
    expect(kernel.dims).toEqual([16, 16, 3, 3]);
    expect(kernel.dataType).toBe(1);
    const value = graph.params.find((p) => p.name === 'conv2d/kernel')!.value!;
    const raw = new DataView(Uint8Array.from(kernel.rawData).buffer);
    // ONNX [o=5, i=7, y=1, x=2] is Keras [y=1, x=2, i=7, o=5]
    expect(raw.getFloat32((((5 * 16 + 7) * 3 + 1) * 3 + 2) * 4, true)).toBe(value[((1 * 3 + 2) * 16 + 7) * 16 + 5]);
    const ops = g.node.map((n) => n.opType);
    expect(ops.filter((o) => o === 'Conv')).toHaveLength(2);
    expect(ops.filter((o) => o === 'BatchNormalization')).toHaveLength(2);
    // x goes channels-first once (shared by conv and add), y comes back once
    expect(ops.filter((o) => o === 'Transpose')).toHaveLength(2);
    expect(g.node.find((n) => n.opType === 'Conv')!.docString).toBe('conv2d');
    // names are unique
    const outputs = g.node.flatMap((n) => n.output);
    expect(new Set(outputs).size).toBe(outputs.length);
  });

  it('expands fused epilogues into activation nodes', () => {
    const type = onnxModelType();
    const g = optimized(graph);
    expect(g.nodes.some((n) => n.attrs['epilogue'] !== undefined)).toBe(true);
    const decoded = type.toObject(type.decode(exportOnnx(g))) as { graph: { node: { opType: string }[] } };
    const ops = decoded.graph.node.map((n) => n.opType);
    expect(ops).toEqual(['Transpose', 'Conv', 'Relu', 'Conv', 'Add', 'Relu', 'Transpose']);
  });

  it('exports hostile names', async () => {
    const hostile = 'x "1"\n/%@{}\u0000 漢😀\ud800';
    const spec = {
      name: 't',
      inputs: [{ name: hostile, shape: [4, 4, 2] }],
      layers: [
        { ...conv({ padding: 'same' }), name: `${hostile}/conv`, inputs: [hostile] },
        { type: 'batchnorm', name: `${hostile}/conv/nchw` },
        { type: 'relu', name: `${hostile}\u0000` },
        { type: 'dropout', rate: 0.5, name: 'x "1"\n/%@{}\ufffd 漢😀\ufffd' }, // the input's name once made well-formed
        { type: 'flatten', name: 'modelc/const/1' },
        { type: 'dense', units: 2, activation: 'relu6', name: 'conv2d/kernel' },
      ],
    };
    const graph = { ...withParams(spec), name: 'bad "model"\u2028\ud800' };
    await expectMatches(graph);
    const type = onnxModelType();
    const decoded = type.toObject(type.decode(exportOnnx(graph))) as {
      graph: { name: string; node: { output: string[] }[]; initializer: { name: string }[]; input: { name: string }[] };
    };
    expect(decoded.graph.name).toBe('bad "model"\u2028\ufffd');
    expect(decoded.graph.input[0]!.name).toBe('x "1"\n/%@{}\ufffd 漢😀\ufffd');
    const names = [...decoded.graph.node.flatMap((n) => n.output), ...decoded.graph.initializer.map((t) => t.name), ...decoded.graph.input.map((i) => i.name)];
    expect(new Set(names).size).toBe(names.length);
  });

  it('refuses a graph without weights', () => {
    expect(() => exportOnnx(lowerJson(model([3], [{ type: 'dense', units: 2 }])).graph)).toThrow(/has no value/);
  });
});

describe('modelc export', () => {
  it('writes the file atomically and returns its path', async () => {
    const dir = tempDir();
    const out = join(dir, 'mnist.onnx');
    expect(await exportCommand('examples/mnist_cnn.nn', { output: out, optimize: true, seed: '3' })).toBe(out);
    const graph = materialize(lowerFile('examples/mnist_cnn.nn').graph, 3);
    const feeds = feedsOf(graph);
    const [got] = await runOnnx(readFileSync(out), graph, feeds);
    const d = compareTensors('dense_1', interpret(graph, feeds)['dense_1']!, got!);
    expect(d.maxRel).toBeLessThanOrEqual(TOLERANCE);
  });

  it('is a command: -O, --weights, printing the path', async () => {
    const dir = tempDir();
    const weights = join(dir, 'w.safetensors');
    const graph = withRandomParams(lowerFile('examples/seed_mlp.nn').graph, 4);
    writeFileSync(weights, writeSafetensors(new Map(graph.params.map((p) => [p.name, { shape: p.type.shape as number[], data: p.value! }]))));
    let stdout = '';
    const program = new Command('modelc').exitOverride();
    registerExport(program, { stdout: (t) => (stdout += t), stderr: () => {} });
    const out = join(dir, 'mlp.onnx');
    await program.parseAsync(['node', 'modelc', 'export', 'examples/seed_mlp.nn', '-O', '--weights', weights, '-o', out]);
    expect(stdout).toBe(`${out}\n`);
    expect(existsSync(out)).toBe(true);
    const feeds = feedsOf(graph);
    const [got] = await runOnnx(readFileSync(out), graph, feeds);
    const want = interpret(graph, feeds)[graph.outputs[0]!]!;
    expect(compareTensors('y', want, got!).maxRel).toBeLessThanOrEqual(TOLERANCE);
  });
});
