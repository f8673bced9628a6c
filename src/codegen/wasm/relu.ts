/**
 * WebAssembly SIMD kernels for the relu and relu6 activation ops and their
 * gradients in the Trainer (`--simd` training modules): elementwise over
 * n * size floats, 4 vectors per loop step when the size allows, else single
 * vectors and then single floats. Same signature as every kernel,
 * (n, a, b, unused, y), byte offsets:
 *
 *   relu       (x)      -> y = max(x, 0), and min(., 6) for relu6 (f32x4.max/min: Math.max/min, NaN stays)
 *   relu_grad  (dy, y)  -> dx = dy * (1 where 0 < y (< 6 for relu6), else 0)
 *
 * Both are the TypeScript kernels bit for bit: their relu helper is max(x, 0)
 * with -0 to +0, as f32x4.max gives; dy * 0 keeps the TypeScript kernel's -0
 * and NaN (dy infinite) where a mask alone would give +0.
 */
import type { ReluGradRequest, ReluRequest } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import { applyEpilogue, bump, checkPositive, loopUntil, params, weightlessLayout, type SimdKernel } from './kernel-common.js';

/** Emits one step at byte offset `offset` of every pointer: an f32x4 vector (`vector`) or a single f32. */
type Step = (ps: readonly Local[], offset: number, vector: boolean) => void;

/**
 * `step` over n * size floats: the pointers (operands, then y) advance
 * together, 4 vectors per iteration over the whole 16-float blocks, then
 * single vectors and single floats over what the size can leave.
 */
function elementwise(c: Code, n: Local, size: number, bases: readonly Local[], step: Step): void {
  const ps = bases.map(() => c.local('i32'));
  const end = c.local('i32');
  bases.forEach((b, i) => c.get(b).set(ps[i]!));
  const stage = (multiple: number, unroll: number, vector: boolean, guard: boolean) => {
    // end = the first operand's start + its whole `multiple`s of floats
    c.get(n).i32Const(size * 4).i32('mul');
    if (size % multiple !== 0) c.i32Const(-multiple * 4).i32('and');
    c.get(bases[0]!).i32('add').set(end);
    loopUntil(c, ps[0]!, end, guard, () => {
      for (let u = 0; u < unroll; u++) step(ps, u * (vector ? 16 : 4), vector);
      for (const p of ps) bump(c, p, unroll * (vector ? 16 : 4));
    });
  };
  stage(16, 4, true, true);
  if (size % 16 !== 0) stage(4, 1, true, true);
  if (size % 4 !== 0) stage(1, 1, false, true);
}

function checkSize(kind: string, size: number): void {
  checkPositive(kind, size);
}

export function reluKernel(req: ReluRequest): SimdKernel {
  checkSize(req.kind, req.size);
  const layout = weightlessLayout(req.name ?? `${req.fn}_${req.size}`, req, req.size, req.size, `${req.fn} as f32x4 max${req.fn === 'relu6' ? '/min' : ''}`);
  const build = (c: Code) => {
    const { n, x, y } = params(c);
    elementwise(c, n, req.size, [x, y], ([p, q], at, vector) => {
      c.get(q!).get(p!);
      if (vector) {
        c.load('v128', at);
        applyEpilogue(c, req.fn);
        c.store('v128', at);
      } else {
        c.load('f32', at).f32Const(0).f32('max');
        if (req.fn === 'relu6') c.f32Const(6).f32('min');
        c.store('f32', at);
      }
    });
  };
  return { layout, build };
}

export function reluGradKernel(req: ReluGradRequest): SimdKernel {
  checkSize(req.kind, req.size);
  const layout = weightlessLayout(req.name ?? `${req.fn}_grad_${req.size}`, req, req.size, req.size, `dy * ${req.fn}'(y), f32x4 compares`);
  const build = (c: Code) => {
    const { n, x: dyBase, w: yBase, y: dxBase } = params(c);
    const v = c.local('v128');
    const s = c.local('f32');
    elementwise(c, n, req.size, [dyBase, yBase, dxBase], ([dy, y, dx], at, vector) => {
      c.get(dx!).get(dy!);
      if (vector) {
        // dy * (1 where the mask is set, else 0)
        c.load('v128', at).get(y!).load('v128', at);
        if (req.fn === 'relu6') {
          c.tee(v).v128Const([0, 0, 0, 0]).f32x4('gt').get(v).v128Const([6, 6, 6, 6]).f32x4('lt').v128('and');
        } else {
          c.v128Const([0, 0, 0, 0]).f32x4('gt');
        }
        c.v128Const([1, 1, 1, 1]).v128('and').f32x4('mul').store('v128', at);
      } else {
        c.load('f32', at).get(y!).load('f32', at);
        if (req.fn === 'relu6') {
          c.tee(s).f32Const(0).f32('gt').get(s).f32Const(6).f32('lt').i32('and');
        } else {
          c.f32Const(0).f32('gt');
        }
        c.f32('convert_i32_u').f32('mul').store('f32', at);
      }
    });
  };
  return { layout, build };
}
