/**
 * The TypeScript seeded generator draws the same float32 bits as the Python
 * one (scripts/keras/seeded_weights.py) that filled the Keras models of the
 * committed fixtures: SHA-256 prefixes printed by the Python side, one per
 * range rule, and the ranges themselves.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fnv1a, seededInput, seededWeight } from './seeded-weights.js';

const sha = (a: Float32Array) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex').slice(0, 16);

describe('seeded weights', () => {
  it.each([
    ['conv1/kernel', [7, 7, 3, 64], '67b28f5c14008a79'],
    ['dw/depthwise_kernel', [3, 3, 32, 1], '68aac24f316dd2a6'],
    ['bn/moving_variance', [64], '1ed76690ed0c8a89'],
    ['x/bias', [10], '94e58adf38a747a8'],
  ])('%s %j matches the Python generator', (name, shape, digest) => {
    expect(sha(seededWeight(name, shape))).toBe(digest);
  });

  it('inputs match the Python generator', () => {
    expect(sha(seededInput('a', [1, 32, 32, 3], 0, 255))).toBe('bf779a26ee6a85d3');
  });

  it('hashes names with FNV-1a (the reference value of "a")', () => {
    expect(fnv1a('a')).toBe(0xe40c292c);
  });

  it('keeps each role in its range: kernels by fan-in, depthwise by window only', () => {
    const extent = (a: Float32Array) => Math.max(...a.map(Math.abs));
    expect(extent(seededWeight('c/kernel', [3, 3, 8, 16]))).toBeLessThanOrEqual(Math.sqrt(6 / 72));
    expect(extent(seededWeight('c/kernel', [3, 3, 8, 16]))).toBeGreaterThan(0.9 * Math.sqrt(6 / 72));
    expect(extent(seededWeight('d/depthwise_kernel', [3, 3, 8, 1]))).toBeGreaterThan(0.9 * Math.sqrt(6 / 9));
    const gamma = seededWeight('bn/gamma', [100]);
    expect(Math.min(...gamma)).toBeGreaterThanOrEqual(0.5);
    expect(Math.max(...gamma)).toBeLessThanOrEqual(1.5);
    expect(extent(seededWeight('bn/beta', [100]))).toBeLessThanOrEqual(0.01);
  });
});
