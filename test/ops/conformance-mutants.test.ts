/**
 * The conformance checks can fail: each runs on a real op record with one
 * planted fault (a kernel that skips the last example, writes past its result
 * or into an operand, drops its epilogue; a reference that drifts; an alias
 * that is not one; a wrong type rule, gradient rule, ONNX rule or Keras
 * import rule; a SIMD rule that asks for the wrong kernel or drops the
 * epilogue its kernel leaves) and must reject it, while the unchanged record passes. Faults
 * in what the checks look up through the registry (gradient, ONNX and import
 * rules) are planted in the registered record for the one call and removed
 * after it.
 */
import { describe, expect, it } from 'vitest';
import type { KernelCode } from '../../src/ops/emit.js';
import { isImportable, type KerasImport } from '../../src/ops/keras-def.js';
import type { OpDef } from '../../src/ops/op-def.js';
import { layers } from '../../src/ops/registry.js';
import type { Conv2dRequest } from '../../src/ops/simd-def.js';
import { kerasRoundTrips } from './keras-roundtrip.js';
import { checkGradient, checkKernel, checkOnnx, checkTypeRule } from './op-checks.js';
import { examplesOf, registeredOps, type Example } from './op-examples.js';
import { checkSimd } from './simd-check.js';

function op(name: string): OpDef {
  const def = registeredOps().find((d) => d.name === name);
  if (!def) throw new Error(`no op ${name}`);
  return def;
}

/** The op's first example whose note matches (or the first one). */
function example(def: OpDef, note?: RegExp): Example {
  const ex = examplesOf(def).find((e) => note === undefined || note.test(e.note ?? ''));
  if (!ex) throw new Error(`${def.name} has no example matching ${note}`);
  return ex;
}

/** The record with its kernel body rewritten. */
function withBody(def: OpDef, rewrite: (body: string, code: KernelCode) => string): OpDef {
  return {
    ...def,
    emit: (request) => {
      const code = def.emit(request);
      if (code.kind !== 'kernel') throw new Error(`${def.name} emits an alias`);
      return { ...code, body: rewrite(code.body, code) };
    },
  };
}

/** Runs `check` with `field` of a registered object replaced, then puts it back. */
async function planted<R extends object, K extends keyof R>(def: R, field: K, value: R[K], check: () => unknown): Promise<void> {
  const record = def as { -readonly [P in keyof R]: R[P] };
  const saved = record[field];
  record[field] = value;
  try {
    await check();
  } finally {
    record[field] = saved;
  }
}

describe('the kernel check', () => {
  const dense = op('dense');
  const bias = example(dense, /^bias$/);
  it('passes the unchanged record', () => expect(() => checkKernel(dense, bias, 0)).not.toThrow());
  it('rejects a kernel that leaves the last example unwritten (NaN-filled result)', () => {
    const skips = withBody(dense, (body) => `{ const n0 = n; { const n = n0 - 1; ${body} } }`);
    expect(() => checkKernel(skips, bias, 0)).toThrow(/kernel at batch 3/);
  });
  it('rejects a kernel that writes past its result', () => {
    const spills = withBody(dense, (body) => `${body}\ny[n * 7] = 0;`);
    expect(() => checkKernel(spills, bias, 0)).toThrow(/wrote past its result/);
  });
  it('rejects a kernel that writes into an operand', () => {
    const clobbers = withBody(dense, (body, code) => `${body}\n${code.params[0]}[0] = 0;`);
    expect(() => checkKernel(clobbers, bias, 0)).toThrow(/changed operand 0/);
  });
  it('rejects a kernel that drops its fused epilogue', () => {
    const plain: OpDef = { ...dense, emit: (request) => dense.emit({ ...request, attrs: {} }) };
    expect(() => checkKernel(plain, example(dense, /epilogue/), 2)).toThrow(/kernel at batch/);
  });
  it('rejects a reference that drifts by 1e-4', () => {
    const drifts: OpDef = { ...dense, reference: (inputs, attrs) => {
      const y = dense.reference(inputs, attrs);
      return { ...y, data: y.data.map((v) => v * (1 + 1e-4) + 1e-4) };
    } };
    expect(() => checkKernel(drifts, bias, 0)).toThrow(/values differ/);
  });
  it('rejects an alias that is not its first operand', () => {
    const reshape = op('reshape');
    const negates: OpDef = { ...reshape, reference: (inputs, attrs) => {
      const y = reshape.reference(inputs, attrs);
      return { ...y, data: y.data.map((v) => -v) };
    } };
    expect(() => checkKernel(negates, example(reshape), 0)).toThrow(/alias/);
  });
});

describe('the type-rule check', () => {
  it('rejects a type rule that the verifier disagrees with', () => {
    const dense = op('dense');
    const wider: OpDef = { ...dense, infer: (operands, attrs) => {
      const t = dense.infer(operands, attrs);
      return { ...t, shape: [...t.shape.slice(0, -1), (t.shape[t.shape.length - 1] as number) + 1] };
    } };
    expect(() => checkTypeRule(wider, example(dense))).toThrow(/declared type/);
  });
});

describe('the gradient check', () => {
  const multiply = op('multiply');
  const ex = example(multiply);
  it('passes the unchanged rule', () => expect(checkGradient(multiply, ex, 0)).toBe(true));
  it('rejects a wrong rule (dx = dz * x instead of dz * y)', async () => {
    const wrong: OpDef['grad'] = (g, { operands: [x, y] }, dz) => [() => g.op('multiply', [dz, x!], {}), () => g.op('multiply', [dz, y!], {})];
    await expect(planted(multiply, 'grad', wrong, () => checkGradient(multiply, ex, 0))).rejects.toThrow(/central difference/);
  });
});

describe('the ONNX check', () => {
  const sigmoid = op('sigmoid');
  const tanh = op('tanh');
  it('passes the unchanged rule', async () => {
    await expect(checkOnnx(sigmoid, example(sigmoid), 0)).resolves.toBeUndefined();
  });
  it("rejects a wrong rule (tanh's for sigmoid)", async () => {
    await expect(planted(sigmoid, 'onnx', tanh.onnx, () => checkOnnx(sigmoid, example(sigmoid), 0))).rejects.toThrow(/ONNX max/);
  });
});

describe('the Keras import round trip', () => {
  const dense = layers.find((l) => l.type === 'dense')!;
  const trip = () => kerasRoundTrips().find((r) => r.name === 'Dense -> dense #1')!;
  it('passes the unchanged rule', () => expect(() => trip().run()).not.toThrow());
  it('rejects a rule that reads units one too many', async () => {
    const rule = dense.kerasImport as KerasImport;
    expect(isImportable(rule)).toBe(true);
    const right = rule.fromConfig.bind(rule);
    const wrong: KerasImport['fromConfig'] = (c) => {
      right(c);
      c.set('units', c.int('units') + 1);
    };
    await expect(planted(rule, 'fromConfig', wrong, () => trip().run())).rejects.toThrow(/imported model's IR/);
  });
});

describe('the SIMD check', () => {
  const conv = op('conv2d');
  const strided = example(conv, /strides \[2, 1\]/);
  const dense = op('dense');
  const softmax = example(dense, /softmax/);
  it('passes the unchanged rules', () => {
    expect(checkSimd(conv, strided, 0, 'inference')).toBe(true);
    expect(checkSimd(dense, softmax, 0, 'inference')).toBe(true);
    expect(checkSimd(dense, example(dense, /Trainer/), 0, 'training')).toBe(true);
  });
  it('rejects a rule that gives the strides as [width, height]', () => {
    const swapped: OpDef = { ...conv, simd: (request, use) => {
      const chosen = conv.simd!(request, use)!;
      const [sh, sw] = (chosen.request as Conv2dRequest).strides!;
      return { ...chosen, request: { ...(chosen.request as Conv2dRequest), strides: [sw, sh] } };
    } };
    expect(() => checkSimd(swapped, strided, 0, 'inference')).toThrow(/SIMD kernel wrote outside its result/);
  });
  it('rejects a rule that drops the epilogue its kernel leaves (softmax after dense)', () => {
    const drops: OpDef = { ...dense, simd: (request, use) => ({ request: dense.simd!(request, use)!.request }) };
    expect(() => checkSimd(drops, softmax, 0, 'inference')).toThrow(/SIMD dense_5x10 \(inference\) at batch 3: \d+ of 30 values differ/);
  });
});
