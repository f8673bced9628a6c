/**
 * PCG32, FNV-1a 64 and the per-parameter streams against known answers.
 *
 * The PCG32 (42, 54) outputs are the ones O'Neill's pcg32-demo prints; the FNV
 * vectors are the published ones. The other expected values were computed
 * independently with a short Python script using arbitrary-precision integers:
 *
 *   M = 2**64 - 1
 *   srandom(initstate, initseq): state = 0; inc = ((initseq << 1) | 1) & M; step(); state = (state + initstate) & M; step()
 *   step(): state = (state * 6364136223846793005 + inc) & M
 *   u32(): old = state; step(); x = (((old >> 18) ^ old) >> 27) & 0xffffffff; r = old >> 59
 *          return ((x >> r) | (x << ((-r) & 31))) & 0xffffffff
 *   fnv(b): h = 0xcbf29ce484222325; for c in b: h = ((h ^ c) * 0x100000001b3) & M
 *   stream(seed, name) = srandom(seed & M, fnv(name.encode()))
 *   float() = (u32() + 0.5) / 2**32
 *   normal(): cached sine if any, else r = sqrt(-2 log float()); t = 2 pi float(); cache r sin t; return r cos t
 */
import { describe, expect, it } from 'vitest';
import { fnv1a64, paramStream, Pcg32 } from '../../src/util/prng.js';

const ascii = (s: string) => new TextEncoder().encode(s);
const draws = (n: number, f: () => number) => Array.from({ length: n }, f);

describe('PCG32', () => {
  it("matches pcg32-demo's outputs for pcg32_srandom(42, 54)", () => {
    const rng = new Pcg32(42n, 54n);
    expect(draws(6, () => rng.nextU32())).toEqual([0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]);
  });

  it('takes the seed and the stream modulo 2^64', () => {
    const a = new Pcg32(42n + (1n << 64n), 54n - (1n << 64n));
    expect(a.nextU32()).toBe(0xa15c02b7);
  });
});

describe('FNV-1a 64', () => {
  it.each([
    ['', 0xcbf29ce484222325n],
    ['a', 0xaf63dc4c8601ec8cn],
    ['foobar', 0x85944171f73967e8n],
    ['dense/kernel', 0x00e866201259ba30n],
  ])('hashes %j', (s, h) => {
    expect(fnv1a64(ascii(s))).toBe(h);
  });
});

describe('parameter streams', () => {
  it('are pcg32_srandom(seed, fnv1a64(name))', () => {
    const rng = paramStream(0, 'dense/kernel');
    expect(draws(4, () => rng.nextU32())).toEqual([0x91c98f03, 0xf77fb842, 0x26a7fd53, 0x399391c4]);
  });

  it('take negative seeds as 64-bit two\'s complement', () => {
    const rng = paramStream(-1, 'dense/kernel');
    expect(draws(3, () => rng.nextU32())).toEqual([0xbbd429c0, 0xa0afd8f0, 0xcb059cbc]);
  });

  it('give uniform doubles (u32 + 0.5) / 2^32', () => {
    const rng = paramStream(7, 'dense/kernel');
    expect(draws(3, () => rng.nextFloat())).toEqual([0.47468729701358825, 0.37040506408084184, 0.6801086122868583]);
  });

  it('give Box–Muller normals, cosine then sine of each pair', () => {
    const rng = paramStream(7, 'dense/kernel');
    const expected = [-0.8379138723470596, 0.8877490468341357, -0.7225586176386084, 0.49891340261277095];
    // Math.log/cos/sin may differ from libm in the last bit: compare to ~1e-15
    draws(4, () => rng.nextNormal()).forEach((z, i) => expect(z).toBeCloseTo(expected[i]!, 14));
  });

  it('differ between names and between seeds', () => {
    const first = (seed: number, name: string) => paramStream(seed, name).nextU32();
    expect(first(1, 'dense/kernel')).not.toBe(first(1, 'dense/bias'));
    expect(first(1, 'dense/kernel')).not.toBe(first(2, 'dense/kernel'));
  });

  it('reject seeds that are not safe integers', () => {
    expect(() => paramStream(1.5, 'x')).toThrow(RangeError);
  });
});
