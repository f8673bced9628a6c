/**
 * Every activation record against itself: the generated helper (compiled as a
 * module compiles it) computes the reference function, the derivative is the
 * float64 central difference of the reference (wherever the function is
 * smooth), the derivative's helper computes the derivative's reference, a
 * rows activation's in-place epilogue code is its reference along the last
 * axis, and the ONNX form writes the output from the input. Loops run over
 * `activationDefs` and each record's examples, so a new record is checked
 * here with no new test; the interop lookups are pinned by hand below.
 */
import { describe, expect, it } from 'vitest';
import type { Attrs } from '../../src/ir/types.js';
import { tensor } from '../../src/ir/types.js';
import { activationAttrs, activationFromKeras, activationToOnnx, lossReadsLogits, type ActivationName } from '../../src/ops/activation.js';
import type { Accuracy, ActivationDef, ElementwiseActivation } from '../../src/ops/activations/define.js';
import { activationDefs } from '../../src/ops/activations/records.js';
import type { OnnxAttr, OnnxEmitter } from '../../src/ops/onnx-def.js';
import { compileHelper, transpile } from '../helpers/kernel.js';

const defs = activationDefs as readonly ActivationDef[];



/** The record's examples with defaults filled in, as the IR stores them. */
function resolvedExamples(def: ActivationDef): Attrs[] {
  return def.examples.map((given) => activationAttrs(def.name as ActivationName, given as Attrs, tensor(['N', 8])));
}

const grid = [
  ...Array.from({ length: 321 }, (_, i) => -8 + i * 0.05),
  -40, -3, 3, 1e-8, -1e-8, 0, -0, 700, -700, Infinity, -Infinity, NaN,
];

/** Whether `got` is within `accuracy` of `want` (1e-15 relative without one); NaN and infinities exactly. */
function expectNear(got: number, want: number, accuracy: Accuracy | undefined, what: string): void {
  if (Number.isNaN(want)) return void expect(got, what).toBeNaN();
  if (!Number.isFinite(want)) return void expect(got, what).toBe(want);
  const scale = Math.max(1, Math.abs(want));
  const allowed = Math.max((accuracy?.absolute ?? 0) + (accuracy?.relative ?? 0) * Math.abs(want), 1e-15 * scale);
  expect(Math.abs(got - want), `${what}: ${got} vs ${want}`).toBeLessThanOrEqual(allowed);
}

/**
 * f'(x) by central differences in float64, or undefined within a step of a
 * kink (the one-sided slopes disagree there, and no derivative is asked).
 */
function centralDifference(f: (x: number) => number, x: number): number | undefined {
  const h = 1e-6 * Math.max(1, Math.abs(x));
  const left = (f(x) - f(x - h)) / h;
  const right = (f(x + h) - f(x)) / h;
  if (Math.abs(left - right) > 1e-3 * Math.max(1, Math.abs(left))) return undefined;
  return (f(x + h) - f(x - h)) / (2 * h);
}

describe.each(defs.filter((d): d is ElementwiseActivation => d.form === 'elementwise').map((d) => [d.name, d] as const))('%s', (_name, def) => {
  for (const attrs of resolvedExamples(def)) {
    const label = JSON.stringify(attrs);
    it(`the generated helper computes the reference ${label}`, () => {
      const reference = def.reference(attrs);
      const helper = compileHelper(def.helper(attrs));
      for (const x of grid) expectNear(helper(x), reference(x), def.helperAccuracy, `${def.name}(${x})`);
    });

    it(`the derivative is the central difference of the reference, from its ${def.derivative(attrs).from} ${label}`, () => {
      const f = def.reference(attrs);
      const d = def.derivative(attrs);
      let compared = 0;
      for (const x of grid.filter((v) => Number.isFinite(v) && Math.abs(v) <= 8)) {
        const want = centralDifference(f, x);
        if (want === undefined) continue;
        const got = d.ref(d.from === 'output' ? f(x) : x);
        expect(Math.abs(got - want), `${def.name}'(${x}) from its ${d.from}: ${got} vs ${want}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want)));
        compared++;
      }
      // Only a few grid points may sit at kinks.
      expect(compared).toBeGreaterThan(300);
    });

    it(`the derivative's helper computes the derivative's reference ${label}`, () => {
      const f = def.reference(attrs);
      const d = def.derivative(attrs);
      const helper = compileHelper(d.helper);
      for (const x of grid) {
        const v = d.from === 'output' ? f(x) : x;
        expectNear(helper(v), d.ref(v), d.accuracy, `${d.helper.name}(${v})`);
      }
    });
  }
});

describe('rows activations: the in-place epilogue code is the reference along the last axis', () => {
  for (const def of defs) {
    if (def.form !== 'rows') continue;
    it(def.name, () => {
      const [rows, len] = [3, 5];
      const data = Float64Array.from({ length: rows * len }, (_, i) => Math.sin(7 * i) * 6);
      const want = def.reference({ shape: [rows, len], data }, 1);
      const y = Float64Array.from(data);
      new Function('y', transpile(def.rowsCode(String(rows), len)))(y);
      for (let i = 0; i < y.length; i++) expect(Math.abs(y[i]! - want.data[i]!), `element ${i}`).toBeLessThanOrEqual(1e-15);
    });
  }
});

/** An emitter that records nodes and constants. */
function recorder() {
  const nodes: { op: string; inputs: readonly string[]; outputs: readonly string[]; attrs: OnnxAttr[] }[] = [];
  const constants: string[] = [];
  let n = 0;
  const e: OnnxEmitter = {
    emit: (op, inputs, outputs, attrs = []) => void nodes.push({ op, inputs, outputs, attrs }),
    temp: (op, inputs, attrs = []) => {
      const out = `t${n++}`;
      nodes.push({ op, inputs, outputs: [out], attrs });
      return out;
    },
    constant: (values) => {
      const name = `c[${[...values].join(',')}]`;
      constants.push(name);
      return name;
    },
  };
  return { e, nodes, constants };
}

describe('ONNX forms', () => {
  it('every record and example writes the output from the input, each node reading only earlier values', () => {
    for (const def of defs) {
      for (const attrs of resolvedExamples(def)) {
        const { e, nodes, constants } = recorder();
        activationToOnnx(e, def.name as ActivationName, attrs, 'x', 'y');
        const known = new Set(['x', ...constants]);
        for (const node of nodes) {
          for (const input of node.inputs) expect(known.has(input), `${def.name}: ${node.op} reads ${input}`).toBe(true);
          for (const output of node.outputs) known.add(output);
        }
        expect(nodes.at(-1)?.outputs, `${def.name} ${JSON.stringify(attrs)}`).toEqual(['y']);
      }
    }
  });

  it('writes the nodes the exporter wrote before the records (Clip bounds, gelu expansions, attributes)', () => {
    const ops = (name: ActivationName, attrs: Attrs) => {
      const { e, nodes } = recorder();
      activationToOnnx(e, name, attrs, 'x', 'y');
      return nodes.map((n) => `${n.op}(${n.inputs.join(', ')})${n.attrs.map((a) => ` ${a.name}=${a.f ?? a.i}`).join('')}`);
    };
    expect(ops('relu6', {})).toEqual(['Clip(x, c[0], c[6])']);
    expect(ops('leaky_relu', { alpha: 0.1 })).toEqual(['LeakyRelu(x) alpha=0.1']);
    expect(ops('hard_sigmoid', { alpha: 0.2 })).toEqual(['HardSigmoid(x) alpha=0.2 beta=0.5']);
    expect(ops('hard_sigmoid', { alpha: 1 / 6 })).toEqual([`HardSigmoid(x) alpha=${1 / 6} beta=0.5`]);
    expect(ops('hard_swish', {})).toEqual(['HardSwish(x)']);
    expect(ops('softmax', { axis: 1 })).toEqual(['Softmax(x) axis=1']);
    expect(ops('swish', {})).toEqual(['Sigmoid(x)', 'Mul(x, t0)']);
    expect(ops('gelu', { approximate: false })).toEqual([`Mul(x, c[${Math.SQRT1_2}])`, 'Erf(t0)', 'Mul(x, c[0.5])', 'Add(t1, c[1])', 'Mul(t2, t3)']);
    expect(ops('gelu', { approximate: true })).toEqual([
      'Mul(x, x)', 'Mul(t0, x)', 'Mul(t1, c[0.044715])', 'Add(x, t2)', `Mul(t3, c[${Math.sqrt(2 / Math.PI)}])`, 'Tanh(t4)',
      'Mul(x, c[0.5])', 'Add(t5, c[1])', 'Mul(t6, t7)',
    ]);
  });

  it('an attribute the record reads must be given', () => {
    expect(() => activationToOnnx(recorder().e, 'elu', {}, 'x', 'y')).toThrow(/elu needs its alpha attribute/);
  });
});

describe('Keras and TF.js activation names', () => {
  it('each record answers to its own name, its aliases and gelu_new', () => {
    expect(activationFromKeras('relu')).toEqual({ name: 'relu', attrs: {} });
    expect(activationFromKeras('hardSigmoid')).toEqual({ name: 'hard_sigmoid', attrs: {} });
    expect(activationFromKeras('hard_sigmoid')).toEqual({ name: 'hard_sigmoid', attrs: {} });
    expect(activationFromKeras('silu')).toEqual({ name: 'swish', attrs: {} });
    expect(activationFromKeras('gelu')).toEqual({ name: 'gelu', attrs: {} });
    expect(activationFromKeras('gelu_new')).toEqual({ name: 'gelu', attrs: { approximate: true } });
    expect(activationFromKeras('mish')).toEqual({ name: 'mish', attrs: {} });
    expect(activationFromKeras('hard_silu')).toEqual({ name: 'hard_swish', attrs: {} });
    expect(activationFromKeras('hard_swish')).toEqual({ name: 'hard_swish', attrs: {} });
  });

  it("Keras's leaky_relu string (slope 0.2, not the layer's 0.3) and unknown names import as nothing", () => {
    expect(activationFromKeras('leaky_relu')).toBeUndefined();
    expect(activationFromKeras('hard_tanh')).toBeUndefined();
    expect(activationFromKeras('Relu')).toBeUndefined();
  });

  it('every Keras name a record lists leads back to that record', () => {
    for (const def of defs) {
      for (const k of def.keras ?? [def.name]) {
        expect(activationFromKeras(typeof k === 'string' ? k : k.name)?.name).toBe(def.name);
      }
    }
  });
});

describe('losses that read the logits', () => {
  const node = (op: string, attrs: Attrs, shape: (number | 'N')[]) => ({ op, attrs, type: tensor(shape) });
  it('softmax over the last axis under categorical losses, sigmoid under binary crossentropy', () => {
    expect(lossReadsLogits(node('softmax', { axis: 1 }, ['N', 10]), 'categorical_crossentropy')).toBe(true);
    expect(lossReadsLogits(node('softmax', { axis: 1 }, ['N', 10]), 'sparse_categorical_crossentropy')).toBe(true);
    expect(lossReadsLogits(node('sigmoid', {}, ['N', 1]), 'binary_crossentropy')).toBe(true);
  });
  it('not softmax over another axis, not another loss, not another activation', () => {
    expect(lossReadsLogits(node('softmax', { axis: 1 }, ['N', 4, 10]), 'categorical_crossentropy')).toBe(false);
    expect(lossReadsLogits(node('softmax', { axis: 1 }, ['N', 10]), 'binary_crossentropy')).toBe(false);
    expect(lossReadsLogits(node('sigmoid', {}, ['N', 1]), 'categorical_crossentropy')).toBe(false);
    expect(lossReadsLogits(node('relu', {}, ['N', 1]), 'mse')).toBe(false);
    expect(lossReadsLogits(node('dense', {}, ['N', 1]), 'binary_crossentropy')).toBe(false);
  });
});
