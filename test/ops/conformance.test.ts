/**
 * One conformance suite over every registered op: an op added to the
 * registry is tested here with no new test file, and an op missing a fact
 * fails here. For each example the op provides (`OpDef.examples`) it checks
 * the type rule, the emitted kernel against the reference kernel, the
 * gradient rule by central differences (unless the op has none), the textual
 * IR round trip, the ONNX export in onnxruntime (unless the op says why it
 * has no ONNX form), the Keras import round trip of every layer example
 * that lowers to the op (`keras-roundtrip.ts`; ops no importable layer
 * produces, such as gradient ops, have none), and, for ops with a `simd`
 * rule, the WebAssembly kernel the rule selects for each example, for
 * inference modules and for the Trainer (`simd-check.ts`). One `describe`
 * per op, one `it` per check; the last test asserts that every op ran an
 * example through every check that applies to it (for SIMD: at least one
 * example the rule selects a kernel for, in either use).
 */
import { describe, expect, it } from 'vitest';
import type { OpDef } from '../../src/ops/op-def.js';
import { checkGradient, checkKernel, checkOnnx, checkPrintParse, checkTypeRule } from './op-checks.js';
import { kerasRoundTrips } from './keras-roundtrip.js';
import { checkSimd } from './simd-check.js';
import { examplesOf, forEachExample, registeredOps } from './op-examples.js';

type Check = 'type rule' | 'kernel' | 'gradient' | 'print/parse' | 'onnx' | 'keras import' | 'simd';

/** Which checks each op ran at least one example through (none without examples). */
const exercised = new Map<string, Set<Check>>();
function ran(def: OpDef, check: Check): void {
  if (examplesOf(def).length > 0) exercised.get(def.name)!.add(check);
}

/** The ONNX fact of an op: a rule, a reason why not, or missing. */
function onnxFact(def: OpDef): 'rule' | 'not exportable' | 'missing' {
  if (def.onnx === undefined) return 'missing';
  return typeof def.onnx === 'function' ? 'rule' : 'not exportable';
}

const roundTrips = kerasRoundTrips();
const roundTripsOf = (def: OpDef) => roundTrips.filter((r) => r.ops.has(def.name));

function applicableChecks(def: OpDef): Check[] {
  return [
    'type rule',
    'kernel',
    ...(def.grad === 'none' ? [] : (['gradient'] as const)),
    'print/parse',
    ...(onnxFact(def) === 'not exportable' ? [] : (['onnx'] as const)),
    ...(roundTripsOf(def).length === 0 ? [] : (['keras import'] as const)),
    ...(def.simd === undefined ? [] : (['simd'] as const)),
  ];
}

const ops = registeredOps();

for (const def of ops) {
  exercised.set(def.name, new Set());
  describe(def.name, () => {
    it('provides examples', () => {
      expect(examplesOf(def).length, `${def.name} has no examples: add OpDef.examples`).toBeGreaterThan(0);
    });

    it('type rule: infer gives a type the verifier accepts', async () => {
      await forEachExample(def, (ex) => checkTypeRule(def, ex));
      ran(def, 'type rule');
    });

    it('kernel: the emitted kernel matches the reference at batch 3 and 1', async () => {
      await forEachExample(def, (ex, i) => checkKernel(def, ex, i));
      ran(def, 'kernel');
    });

    if (def.grad !== 'none') {
      it('gradient: the rule matches float64 central differences', async () => {
        let differentiated = 0;
        await forEachExample(def, (ex, i) => void (differentiated += checkGradient(def, ex, i) ? 1 : 0));
        expect(differentiated, 'examples without a fused epilogue (gradient rules see unfused graphs)').toBeGreaterThan(0);
        ran(def, 'gradient');
      });
    }

    it('IR: print(parse(print(g))) is print(g)', async () => {
      await forEachExample(def, (ex) => checkPrintParse(def, ex));
      ran(def, 'print/parse');
    });

    const onnx = onnxFact(def);
    if (onnx === 'not exportable') {
      it('ONNX: says why it has no ONNX form', () => {
        expect((def.onnx as { notExportable: string }).notExportable.trim()).not.toBe('');
      });
    } else {
      it('ONNX: the exported model runs in onnxruntime and matches the reference', async () => {
        expect(onnx, `${def.name} has no ONNX fact: add OpDef.onnx (a rule or { notExportable: reason })`).toBe('rule');
        await forEachExample(def, (ex, i) => checkOnnx(def, ex, i));
        ran(def, 'onnx');
      });
    }

    const trips = roundTripsOf(def);
    if (trips.length > 0) {
      it(`Keras import: ${trips.map((r) => r.name).join(', ')} lower to the same IR imported as written`, () => {
        for (const trip of trips) trip.run();
        ran(def, 'keras import');
      });
    }

    if (def.simd !== undefined) {
      for (const use of ['inference', 'training'] as const) {
        it(`SIMD (${use}): every kernel the rule selects matches the reference at batch 3 and 1`, async () => {
          let selected = 0;
          await forEachExample(def, (ex, i) => void (selected += checkSimd(def, ex, i, use) ? 1 : 0));
          if (selected > 0) ran(def, 'simd');
        });
      }
    }
  });
}

describe('coverage', () => {
  it('every registered op ran an example through every check that applies to it', () => {
    const missing = ops.flatMap((def) => {
      const done = exercised.get(def.name)!;
      const left = applicableChecks(def).filter((c) => !done.has(c));
      return left.length === 0 ? [] : [`${def.name}: ${left.join(', ')}`];
    });
    expect(missing).toEqual([]);
    expect(ops.length).toBeGreaterThan(0);
  });
});
