/**
 * Keras's Permute: reorders the axes of each example.
 *
 *   %permute: f32[N,3,5,4] = transpose(%x) {perm=[0,3,1,2]}
 *
 * The layer's `dims` are Keras's: a permutation of 1..rank-1 (the batch is
 * axis 0 and stays). The op's `perm` is the full permutation, batch included
 * (perm[0] = 0), as ONNX Transpose takes it: result axis i is input axis
 * perm[i]. Gradient: the inverse transpose. Identity when perm is 0, 1, 2, ...
 */
import { Type } from '@sinclair/typebox';
import { strides, type Tensor } from '../ir/tensor.js';
import { exampleShape, formatType, tensor, type TensorType } from '../ir/types.js';
import { kernel, shapeTag } from './emit.js';
import { show } from './keras-def.js';
import { onnxInts } from './onnx-def.js';
import { defineFamily, defineLayer, defineOp, formatShape, ShapeError } from './op-def.js';

const isPermutation = (perm: readonly number[]) => perm.length > 0 && [...perm].sort((a, b) => a - b).every((d, i) => d === i);
const inverse = (perm: readonly number[]) => perm.map((_, i) => perm.indexOf(i));

function transposeReference(x: Tensor, perm: readonly number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]!);
  const xs = strides(x.shape);
  const ys = strides(shape);
  const y = new Float64Array(x.data.length);
  for (let i = 0; i < y.length; i++) {
    let at = 0;
    for (let a = 0; a < shape.length; a++) at += (Math.floor(i / ys[a]!) % shape[a]!) * xs[perm[a]!]!;
    y[i] = x.data[at]!;
  }
  return { shape, data: y };
}

/** Loops over the result in row-major order, reading x at its strides for the permuted axes. */
function transposeCode(x: TensorType, perm: readonly number[]): string {
  const sizes = x.shape.map((d) => (d === 'N' ? 1 : d));
  const xs = strides(sizes);
  const count = (a: number) => (x.shape[perm[a]!] === 'N' ? 'n' : String(sizes[perm[a]!]));
  const index = perm.map((p, a) => (xs[p] === 1 ? `i${a}` : `i${a} * ${xs[p]}`)).join(' + ');
  let code = `y[at++] = x[${index}]!;`;
  for (let a = perm.length - 1; a >= 0; a--) code = `for (let i${a} = 0; i${a} < ${count(a)}; i${a}++) {\n${code}\n}`;
  return `let at = 0;\n${code}`;
}

export const transposeOp = defineOp({
  name: 'transpose',
  summary: 'reorders the axes of each example (the batch stays first)',
  traits: ['pure', 'shape-only'],
  attrs: { perm: Type.Array(Type.Integer({ minimum: 0 }), { minItems: 2 }) },
  operands: () => ['x'],
  identity: ({ attrs: a }) => a.perm.every((p, i) => p === i),
  examples: [
    { note: 'channels first', attrs: { perm: [0, 3, 1, 2] }, operands: [tensor(['N', 2, 3, 4])] },
    { note: 'swap', attrs: { perm: [0, 2, 1] }, operands: [tensor(['N', 3, 5])] },
    { note: 'the identity', attrs: { perm: [0, 1, 2] }, operands: [tensor(['N', 2, 3])] },
  ],
  infer: ([x], a) => {
    if (a.perm.length !== x!.shape.length || !isPermutation(a.perm) || a.perm[0] !== 0) {
      throw new ShapeError(`transpose perm ${formatShape(a.perm)} is not a permutation of the axes of ${formatType(x!)} keeping the batch first`);
    }
    return tensor(a.perm.map((p) => x!.shape[p]!));
  },
  reference: ([x], a) => transposeReference(x!, a.perm),
  emit: ({ operands: [x], attrs: a }) =>
    kernel(`transpose_${shapeTag(x!)}_${a.perm.join('')}`, ['x'], `axes reordered as [${a.perm.join(', ')}]`, transposeCode(x!, a.perm)),
  onnx: (b, n) => b.produce(n, 'nhwc', (out) => b.emit('Transpose', [b.nhwc(n.operands[0]!)], [out], [onnxInts('perm', n.attrs.perm)])),
  grad: (g, { attrs: a }, dy) => [() => g.op('transpose', [dy], { perm: inverse(a.perm) })],
});

export const permuteLayer = defineLayer({
  type: 'permute',
  keras: 'Permute',
  kerasImport: {
    classes: ['Permute'],
    fromConfig: (c) => {
      const dims = c.get('dims');
      if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && (d as number) >= 1)) {
        c.fail('dims', `dims must be a list of axes numbered from 1, got ${show(dims)}`);
      }
      c.set('dims', dims);
    },
  },
  kerasExport: (a) => ({ className: 'Permute', config: { dims: a.dims } }),
  examples: [{ attrs: { dims: [2, 1] }, inputs: [[3, 4]] }],
  namePrefix: 'permute',
  summary: 'reorders the axes of each example',
  attrs: {
    dims: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, description: 'the new order of the axes, numbered from 1 (the batch is 0 and stays)' }),
  },
  positional: ['dims'],
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const shape = exampleShape(ctx.typeOf(x!));
    const perm = a.dims.map((d) => d - 1);
    if (perm.length !== shape.length || !isPermutation(perm)) {
      throw new ShapeError(`permute dims ${formatShape(a.dims)} must order the axes 1..${shape.length} of an input ${formatShape(shape)}`);
    }
    return ctx.op('transpose', [x!], { perm: [0, ...a.dims] });
  },
});

/** Permute: the transpose op and the layer. */
export const permuteFamily = defineFamily({ ops: [transposeOp], layers: [permuteLayer] });
