/**
 * Gradient ops of the convolution family; the rules that build them sit
 * beside the forward ops (`conv.ts`, `conv-transpose.ts`, `conv-depthwise.ts`),
 * and the window math is `conv/window.ts`. Their codegen templates are in `conv/`
 * (`direct-grad.ts`, `im2col.ts`), and `conv/path.ts` chooses between them
 * by the cost rule.
 *
 *   %conv2d/grad_x: f32[N,28,28,1] = conv2d_grad_input(%conv2d/grad, %conv2d/kernel)
 *       {strides=[1,1], padding="valid", dilation_rate=[1,1], groups=1, input_shape=[28,28,1]}
 *   %conv2d/kernel/grad: f32[3,3,1,32] = conv2d_grad_kernel(%x, %conv2d/grad)
 *       {strides=[1,1], padding="valid", dilation_rate=[1,1], groups=1, kernel_size=[3,3]}
 *
 * The attributes are those of the forward conv (`input_shape` or
 * `kernel_size` gives the size the gradient cannot be inferred from), so the
 * window (output size, padding before) is the forward's. A grouped conv
 * y[n,i,j,f] = sum_{u,v,c} x[n, i*s+u*d-p, j*s+v*d-p, g*C/G + c] k[u,v,c,f]
 * is a sum of product terms x[a] k[b] -> y[o]; for L = sum(dy * y), each term
 * sends dy[o] k[b] to dx[a] and x[a] dy[o] to dk[b]. The reference kernels
 * are exactly that, over the one loop nest `forEachTerm`.
 *
 * depthwise_conv2d is the grouped conv with G = C input channels and one input
 * channel per group: its kernel [kh, kw, C, M] has the memory layout of
 * [kh, kw, 1, C*M] and output channel c*M + m belongs to group c. Its gradient
 * ops are the conv2d ones seen that way.
 */
import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { exampleShape, tensor, type TensorType } from '../ir/types.js';
import { convOutputLength, forwardGeometry, Pair, Padding } from './conv/window.js';
import type { ConvSizes as GradConvShape } from './conv/geometry.js';
import { convGradInputKernel, convGradKernelKernel } from './conv/path.js';
import { convGradInputSimd, convGradKernelSimd } from './conv/simd.js';
import type { SimdUse } from './simd-def.js';
import { defineFamily, defineOp, dim, expectRank, formatShape, ShapeError, type NamedOpDef, type OpExample } from './op-def.js';
import { gradientOnly } from './onnx-def.js';

const Shape3 = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 3, maxItems: 3 });
const Window = { strides: Pair, padding: Padding, dilation_rate: Pair };
const Groups = Type.Integer({ minimum: 1 });

interface WindowAttrs {
  readonly strides: readonly number[];
  readonly padding: string;
  readonly dilation_rate: readonly number[];
}

/** The forward conv of an `input` [h, w, C] with a kernel [kh, kw, cg, F] in `groups` groups. */
function convShape(input: readonly number[], kernel: readonly number[], groups: number, a: WindowAttrs): GradConvShape {
  const [h, w, c] = input as [number, number, number];
  const [kh, kw, cg, filters] = kernel as [number, number, number, number];
  const out = (i: 0 | 1) => convOutputLength(input[i]!, kernel[i]!, a.strides[i]!, a.padding as Padding, a.dilation_rate[i]);
  return {
    input: [h, w, c],
    output: [out(0), out(1), filters],
    kernel: [kh, kw, cg, filters],
    groups,
    window: forwardGeometry(tensor(['N', h, w, c]), tensor([kh, kw, cg, filters]), a),
  };
}

/** dy must have the forward conv's output type. */
function checkDy(op: string, s: GradConvShape, dy: TensorType): void {
  const want = ['N', ...s.output];
  if (dy.shape.length !== 4 || want.some((d, i) => dy.shape[i] !== d)) {
    throw new ShapeError(`${op}: dy has shape ${formatShape(dy.shape)}, the conv of a ${formatShape(s.input)} input gives ${formatShape(want)}`);
  }
}

function checkGroups(op: string, channels: number, filters: number, groups: number): void {
  if (channels % groups !== 0 || filters % groups !== 0) {
    throw new ShapeError(`${op}: groups=${groups} must divide both the input channels (${channels}) and filters (${filters})`);
  }
}

function staticShape(t: TensorType, what: string): number[] {
  expectRank(t, 4, what);
  return t.shape.map((_, i) => dim(t, i));
}

function batchedShape(t: TensorType, what: string): number[] {
  expectRank(t, 4, what);
  if (t.shape[0] !== 'N') throw new ShapeError(`${what} expects a batch, got the static shape ${formatShape(t.shape)}`);
  return exampleShape(t);
}

/**
 * Calls visit(xIndex, kIndex, yIndex) for every product term x[a] k[b] that
 * adds to y[o] in the conv `s` over a batch: the loop nest of conv2d's
 * reference kernel, taps outside the image (padding) skipped.
 */
function forEachTerm(batch: number, s: GradConvShape, visit: (xi: number, ki: number, yi: number) => void): void {
  const [h, w, c] = s.input;
  const [oh, ow, filters] = s.output;
  const [kh, kw, cg] = s.kernel;
  const fg = filters / s.groups;
  const { strides, dilation_rate: dilation, before } = s.window;
  for (let n = 0; n < batch; n++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * strides[0]! + ky * dilation[0]! - before[0];
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * strides[1]! + kx * dilation[1]! - before[1];
            if (ix < 0 || ix >= w) continue;
            const xAt = ((n * h + iy) * w + ix) * c;
            const yAt = ((n * oh + oy) * ow + ox) * filters;
            const kAt = (ky * kw + kx) * cg * filters;
            for (let g = 0; g < s.groups; g++)
              for (let ci = 0; ci < cg; ci++)
                for (let fi = 0; fi < fg; fi++) visit(xAt + g * cg + ci, kAt + ci * filters + g * fg + fi, yAt + g * fg + fi);
          }
        }
}

/** What an op's operand types and attributes make of the conv, and its result type (checked). */
type Geometry<A> = (operands: readonly TensorType[], a: A) => { readonly conv: GradConvShape; readonly result: TensorType };

/**
 * A gradient op of the conv family: `input` ops take (dy, kernel) and give dx
 * (batched), `kernel` ops take (x, dy) and give dk (static, the kernel's shape).
 */
function convGradOp<const N extends string, P extends TProperties>(
  name: N,
  kind: 'input' | 'kernel',
  summary: string,
  attrs: P,
  geometry: Geometry<Static<TObject<P>>>,
  examples: readonly OpExample<Static<TObject<P>>>[],
  gemm = false,
): NamedOpDef<N> {
  const typesOf = ([a, b]: readonly Tensor[]): TensorType[] => [
    tensor(['N', ...a!.shape.slice(1)]),
    kind === 'input' ? tensor(b!.shape) : tensor(['N', ...b!.shape.slice(1)]),
  ];
  return defineOp({
    name,
    summary,
    traits: ['pure'],
    attrs,
    operands: () => (kind === 'input' ? ['dy', 'kernel'] : ['x', 'dy']),
    examples,
    infer: (operands, a) => geometry(operands, a).result,
    reference: (inputs, a) => {
      const { conv, result } = geometry(typesOf(inputs), a);
      const [first, second] = inputs as [Tensor, Tensor];
      const batch = first.shape[0]!;
      const shape = result.shape.map((d) => (d === 'N' ? batch : d));
      const out = new Float64Array(shape.reduce((p, d) => p * d, 1));
      if (kind === 'input') forEachTerm(batch, conv, (xi, ki, yi) => (out[xi] += first.data[yi]! * second.data[ki]!));
      else forEachTerm(batch, conv, (xi, ki, yi) => (out[ki] += first.data[xi]! * second.data[yi]!));
      return { shape, data: out };
    },
    emit: ({ operands, attrs: a }) => {
      const { conv } = geometry(operands, a);
      return kind === 'input' ? convGradInputKernel(name, conv) : convGradKernelKernel(name, conv);
    },
    // conv2d's: the Trainer's GEMMs over the windows (conv/simd.ts); inference modules have no gradients.
    ...(gemm
      ? {
          simd: ({ operands, attrs: a }: { operands: readonly TensorType[]; attrs: Static<TObject<P>> }, use: SimdUse) => {
            if (use !== 'training') return undefined;
            const { conv } = geometry(operands, a);
            return kind === 'input' ? convGradInputSimd(conv) : convGradKernelSimd(conv);
          },
        }
      : {}),
    onnx: gradientOnly,
    grad: 'none',
  }) as unknown as NamedOpDef<N>;
}

/**
 * dx of conv2d: dx[n,iy,ix,c] = sum of dy[n,oy,ox,f] k[ky,kx,c mod cg,f] over the
 * taps reading (iy, ix) and the filters f of c's group (a transposed conv of dy).
 */
const conv2dGradInputOp = convGradOp(
  'conv2d_grad_input',
  'input',
  'the gradient of conv2d with respect to its input: the transposed conv of dy',
  { ...Window, groups: Groups, input_shape: Shape3 },
  ([dy, k], a) => {
    const op = 'conv2d_grad_input';
    const [h, w, c] = a.input_shape as [number, number, number];
    const kernel = staticShape(k!, `${op} kernel`);
    checkGroups(op, c, kernel[3]!, a.groups);
    if (kernel[2] !== c / a.groups) throw new ShapeError(`${op}: the kernel expects ${kernel[2]! * a.groups} input channels, input_shape has ${c}`);
    const conv = convShape([h, w, c], kernel, a.groups, a);
    checkDy(op, conv, dy!);
    return { conv, result: tensor(['N', h, w, c]) };
  },
  [
    {
      note: '2 groups, stride 2, same padding',
      attrs: { strides: [2, 2], padding: 'same', dilation_rate: [1, 1], groups: 2, input_shape: [5, 5, 4] },
      operands: [tensor(['N', 3, 3, 6]), tensor([3, 3, 2, 6])],
    },
    {
      note: 'GEMM path: valid 3x3, 4 input channels',
      attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1], groups: 1, input_shape: [4, 4, 4] },
      operands: [tensor(['N', 2, 2, 4]), tensor([3, 3, 4, 4])],
    },
    {
      note: 'dilation 2',
      attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [2, 2], groups: 1, input_shape: [6, 5, 3] },
      operands: [tensor(['N', 4, 3, 4]), tensor([2, 2, 3, 4])],
    },
  ],
  true,
);

/**
 * dk of conv2d: dk[ky,kx,ci,f] = sum over the batch and output cells of
 * x[n, oy*s+ky*d-p, ox*s+kx*d-p, g*cg + ci] dy[n,oy,ox,f], g = f's group.
 */
const conv2dGradKernelOp = convGradOp(
  'conv2d_grad_kernel',
  'kernel',
  'the gradient of conv2d with respect to its kernel: x correlated with dy over the batch',
  { ...Window, groups: Groups, kernel_size: Pair },
  ([x, dy], a) => {
    const op = 'conv2d_grad_kernel';
    const input = batchedShape(x!, op);
    const filters = batchedShape(dy!, `${op} dy`)[2]!;
    checkGroups(op, input[2]!, filters, a.groups);
    const kernel = [a.kernel_size[0]!, a.kernel_size[1]!, input[2]! / a.groups, filters];
    const conv = convShape(input, kernel, a.groups, a);
    checkDy(op, conv, dy!);
    return { conv, result: tensor(kernel) };
  },
  [
    {
      note: '2 groups, stride 2, same padding',
      attrs: { strides: [2, 2], padding: 'same', dilation_rate: [1, 1], groups: 2, kernel_size: [3, 3] },
      operands: [tensor(['N', 5, 5, 4]), tensor(['N', 3, 3, 6])],
    },
    {
      note: 'GEMM path: valid 3x3, 5 filters',
      attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1], groups: 1, kernel_size: [3, 3] },
      operands: [tensor(['N', 4, 4, 4]), tensor(['N', 2, 2, 5])],
    },
    {
      note: 'direct path: dilation 2, 4 filters',
      attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [2, 2], groups: 1, kernel_size: [2, 2] },
      operands: [tensor(['N', 6, 5, 3]), tensor(['N', 4, 3, 4])],
    },
  ],
  true,
);

/** dx of depthwise_conv2d: dx[n,iy,ix,c] = sum of dy[n,oy,ox,c*M+m] k[ky,kx,c,m] over taps and m. */
const depthwiseGradInputOp = convGradOp(
  'depthwise_conv2d_grad_input',
  'input',
  'the gradient of depthwise_conv2d with respect to its input',
  { ...Window, input_shape: Shape3 },
  ([dy, k], a) => {
    const op = 'depthwise_conv2d_grad_input';
    const [h, w, c] = a.input_shape as [number, number, number];
    const [kh, kw, kc, m] = staticShape(k!, `${op} kernel`) as [number, number, number, number];
    if (kc !== c) throw new ShapeError(`${op}: the kernel expects ${kc} input channels, input_shape has ${c}`);
    const conv = convShape([h, w, c], [kh, kw, 1, c * m], c, a);
    checkDy(op, conv, dy!);
    return { conv, result: tensor(['N', h, w, c]) };
  },
  [
    {
      note: 'depth multiplier 2, stride 2, same padding',
      attrs: { strides: [2, 2], padding: 'same', dilation_rate: [1, 1], input_shape: [5, 5, 3] },
      operands: [tensor(['N', 3, 3, 6]), tensor([3, 3, 3, 2])],
    },
    {
      note: 'valid 3x2 window',
      attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1], input_shape: [4, 5, 2] },
      operands: [tensor(['N', 2, 4, 2]), tensor([3, 2, 2, 1])],
    },
  ],
);

/** dk of depthwise_conv2d: dk[ky,kx,c,m] = sum over the batch and output cells of x[n,iy,ix,c] dy[n,oy,ox,c*M+m]. */
const depthwiseGradKernelOp = convGradOp(
  'depthwise_conv2d_grad_kernel',
  'kernel',
  'the gradient of depthwise_conv2d with respect to its kernel',
  { ...Window, kernel_size: Pair },
  ([x, dy], a) => {
    const op = 'depthwise_conv2d_grad_kernel';
    const input = batchedShape(x!, op);
    const c = input[2]!;
    const out = batchedShape(dy!, `${op} dy`)[2]!;
    if (out % c !== 0) throw new ShapeError(`${op}: dy has ${out} channels, not a multiple of the ${c} input channels`);
    const [kh, kw] = a.kernel_size as [number, number];
    const conv = convShape(input, [kh, kw, 1, out], c, a);
    checkDy(op, conv, dy!);
    return { conv, result: tensor([kh, kw, c, out / c]) };
  },
  [
    {
      note: 'depth multiplier 2, stride 2, same padding',
      attrs: { strides: [2, 2], padding: 'same', dilation_rate: [1, 1], kernel_size: [3, 3] },
      operands: [tensor(['N', 5, 5, 3]), tensor(['N', 3, 3, 6])],
    },
    {
      note: 'valid 3x2 window',
      attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1], kernel_size: [3, 2] },
      operands: [tensor(['N', 4, 5, 2]), tensor(['N', 2, 4, 2])],
    },
    {
      note: 'dilation 2, same padding',
      attrs: { strides: [1, 1], padding: 'same', dilation_rate: [2, 2], kernel_size: [3, 3] },
      operands: [tensor(['N', 5, 5, 2]), tensor(['N', 5, 5, 2])],
    },
  ],
);

export const convGradOps = [conv2dGradInputOp, conv2dGradKernelOp, depthwiseGradInputOp, depthwiseGradKernelOp] as const;

/** The convolutions' gradient ops (no layers). */
export const convGradFamily = defineFamily({ ops: convGradOps });
