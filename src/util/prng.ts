/**
 * The random numbers behind seeded initializers: PCG32 streams, one per
 * parameter, and Box–Muller normals.
 *
 * PCG32 is the XSH-RR 64/32 generator of M. E. O'Neill's pcg-basic
 * ("PCG: A Family of Simple Fast Space-Efficient Statistically Good Algorithms
 * for Random Number Generation", 2014): a 64-bit LCG whose odd increment picks
 * one of 2^63 independent streams, with a permuted 32-bit output.
 *
 *   step:    state = state * 6364136223846793005 + inc            (mod 2^64)
 *   output:  x = uint32(((old ^ (old >> 18)) >> 27)); rotr32(x, old >> 59)
 *   seeding: pcg32_srandom(initstate, initseq): state = 0; inc = (initseq << 1) | 1;
 *            step; state += initstate; step
 *
 * JavaScript has no fast 64-bit integers, so the state is kept as two 32-bit
 * halves and the multiply is done on halves (the low-by-low product through
 * 16-bit limbs so every partial product is exact in a double).
 *
 * A parameter's stream (`paramStream`) is pcg32_srandom(seed, fnv1a64(name)):
 * the seed as a 64-bit two's-complement integer and the FNV-1a 64 hash of the
 * parameter name's UTF-8 bytes select the state and the stream, so each
 * parameter's numbers depend only on the seed and its own name.
 */

const MUL_HI = 0x5851f42d; // 6364136223846793005 = 0x5851F42D_4C957F2D
const MUL_LO = 0x4c957f2d;
const TWO_POW_32 = 4294967296;

/** The high 32 bits of the 64-bit product of two unsigned 32-bit integers. */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

export class Pcg32 {
  private hi = 0;
  private lo = 0;
  private readonly incHi: number;
  private readonly incLo: number;
  /** The second normal of the last Box–Muller pair, not yet returned. */
  private spare: number | undefined;

  /** pcg32_srandom(initstate, initseq); both are taken modulo 2^64. */
  constructor(initstate: bigint, initseq: bigint) {
    const inc = BigInt.asUintN(64, (initseq << 1n) | 1n);
    this.incHi = Number(inc >> 32n);
    this.incLo = Number(inc & 0xffffffffn);
    this.step();
    const s = BigInt.asUintN(64, initstate);
    const lo = this.lo + Number(s & 0xffffffffn);
    this.lo = lo >>> 0;
    this.hi = (this.hi + Number(s >> 32n) + (lo >= TWO_POW_32 ? 1 : 0)) >>> 0;
    this.step();
  }

  private step(): void {
    const lo = Math.imul(this.lo, MUL_LO) >>> 0;
    const hi = (mulHi32(this.lo, MUL_LO) + Math.imul(this.hi, MUL_LO) + Math.imul(this.lo, MUL_HI)) >>> 0;
    const sumLo = lo + this.incLo;
    this.lo = sumLo >>> 0;
    this.hi = (hi + this.incHi + (sumLo >= TWO_POW_32 ? 1 : 0)) >>> 0;
  }

  /** The next 32-bit output, as an unsigned integer. */
  nextU32(): number {
    const oh = this.hi;
    const ol = this.lo;
    this.step();
    // old ^ (old >> 18), then >> 27, low 32 bits
    const xh = oh ^ (oh >>> 18);
    const xl = ol ^ ((ol >>> 18) | (oh << 14));
    const x = ((xl >>> 27) | (xh << 5)) >>> 0;
    const rot = oh >>> 27;
    return ((x >>> rot) | (x << ((32 - rot) & 31))) >>> 0;
  }

  /** A uniform double in the open interval (0, 1): (nextU32() + 0.5) / 2^32. Never 0, so log() is safe. */
  nextFloat(): number {
    return (this.nextU32() + 0.5) / TWO_POW_32;
  }

  /**
   * A standard normal by the basic (trigonometric) Box–Muller transform: from
   * u1 = nextFloat(), u2 = nextFloat(), r = sqrt(-2 ln u1), this returns
   * r cos(2π u2) and, on the next call, r sin(2π u2).
   */
  nextNormal(): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(this.nextFloat()));
    const theta = 2 * Math.PI * this.nextFloat();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}

/** FNV-1a, 64-bit: h = 0xcbf29ce484222325; per byte: h = (h ^ byte) * 0x100000001b3 mod 2^64. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h;
}

const utf8 = new TextEncoder();

/**
 * The stream of parameter `name` under `seed` (an integer; negative seeds are
 * taken as 64-bit two's complement): pcg32_srandom(seed, fnv1a64(utf8(name))).
 */
export function paramStream(seed: number, name: string): Pcg32 {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  return new Pcg32(BigInt(seed), fnv1a64(utf8.encode(name)));
}
