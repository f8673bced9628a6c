/**
 * The ONNX layout math of the windowed ops, against hand-computed values:
 * explicit pads of forward windows (TF `same` puts the odd cell at the end),
 * ConvTranspose pads and output_padding, and the kernel permutation.
 * (test/formats/onnx.test.ts runs the exported convs and pools in onnxruntime.)
 */
import { describe, expect, it } from 'vitest';
import { forwardPads, permute, transposePads } from '../../src/ops/onnx-util.js';

const window = (input: number[], output: number[], kernel: number[], strides: number[], before: number[], dilations = [1, 1]) =>
  ({ input, output, kernel, strides, dilations, before });

describe('forwardPads', () => {
  it('same 3x3 stride 2: odd input pads both ends, even input only the end', () => {
    // rows: 7 -> 4, extent 3*2 + 3 = 9, 2 cells of padding, 1 before; cols: 8 -> 4, extent 9, 1 cell, 0 before
    expect(forwardPads(window([7, 8], [4, 4], [3, 3], [2, 2], [1, 0]))).toEqual([1, 0, 1, 1]);
  });

  it('valid with leftover cells: no end padding (ONNX floors the same way)', () => {
    // 8 -> 3 windows of 3 at stride 2 end at cell 7; cell 8 is left over
    expect(forwardPads(window([8, 8], [3, 3], [3, 3], [2, 2], [0, 0]))).toEqual([0, 0, 0, 0]);
  });

  it('dilation widens the window', () => {
    // 9 -> 9 with a 3-tap window dilated by 2 (extent 5): 4 cells of padding, 2 before and 2 after
    expect(forwardPads(window([9, 9], [9, 9], [3, 3], [1, 1], [2, 2], [2, 2]))).toEqual([2, 2, 2, 2]);
  });
});

describe('transposePads', () => {
  it('valid 2x2 stride 3: the output is one longer than the scatter (output_padding)', () => {
    // 4 inputs scatter over 3*3 + 2 = 11 cells; Keras' output is 4*3 = 12
    expect(transposePads(window([4, 4], [12, 12], [2, 2], [3, 3], [0, 0]))).toEqual({ pads: [0, 0, 0, 0], outputPadding: [1, 1] });
  });

  it('same, stride 2: the scatter cropped to the output (3x3 at the end, 4x4 on both sides)', () => {
    // rows: 4 -> 8 over 2*3 + 3 = 9 cells, 1 cropped at the end; cols: 2*3 + 4 = 10 cells, 1 before and 1 after
    expect(transposePads(window([4, 4], [8, 8], [3, 4], [2, 2], [0, 1]))).toEqual({ pads: [0, 1, 1, 1], outputPadding: [0, 0] });
  });
});

describe('permute', () => {
  it('moves axes: [2, 3] transposed', () => {
    expect(Array.from(permute(Float32Array.from([0, 1, 2, 3, 4, 5]), [2, 3], [1, 0]))).toEqual([0, 3, 1, 4, 2, 5]);
  });

  it('a Keras conv kernel [kh, kw, in, out] to ONNX [out, in, kh, kw]', () => {
    const shape = [2, 3, 4, 5];
    const data = Float32Array.from({ length: 120 }, (_, i) => i);
    const out = permute(data, shape, [3, 2, 0, 1]);
    // ONNX [o=4, i=1, y=1, x=2] is Keras [y=1, x=2, i=1, o=4]
    expect(out[((4 * 4 + 1) * 2 + 1) * 3 + 2]).toBe(data[((1 * 3 + 2) * 4 + 1) * 5 + 4]);
  });
});
