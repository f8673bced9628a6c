/**
 * The activation helpers that generated modules carry are source text written
 * beside the reference functions (a module imports nothing). This pins them
 * together: each helper, compiled as a module would compile it, computes what
 * the reference `activationFn` computes.
 */
import { ts } from 'ts-morph';
import { describe, expect, it } from 'vitest';
import { activationFn, activationHelper, epilogueNames, type ScalarActivationAttrs } from '../../src/ops/activation.js';
import type { RuntimeHelper } from '../../src/ops/emit.js';

/** The helper and the helpers it calls, as one JavaScript function. */
function compile(helper: RuntimeHelper): (x: number) => number {
  const sources = new Map<string, string>();
  const visit = (h: RuntimeHelper) => {
    sources.set(h.name, h.source);
    for (const u of h.uses ?? []) visit(u);
  };
  visit(helper);
  const js = ts.transpileModule([...sources.values()].join('\n'), { compilerOptions: { target: ts.ScriptTarget.ES2022 } }).outputText;
  return new Function(`${js}\nreturn ${helper.name};`)() as (x: number) => number;
}

const points = [
  ...Array.from({ length: 401 }, (_, i) => -10 + i * 0.05),
  -40, -3, -2.999999, 3, 2.999999, 40, 1e-8, -1e-8, 0, -0, 700, -700, Infinity, -Infinity, NaN,
];

const attrsOf: Partial<Record<string, ScalarActivationAttrs[]>> = {
  leaky_relu: [{ alpha: 0.3 }, { alpha: 0.01 }],
  elu: [{ alpha: 1 }, { alpha: 0.5 }],
  gelu: [{ approximate: false }, { approximate: true }],
};

describe('generated activation helpers equal the reference functions', () => {
  for (const name of epilogueNames) {
    for (const attrs of attrsOf[name] ?? [{}]) {
      it(`${name} ${JSON.stringify(attrs)}`, () => {
        const helper = compile(activationHelper(name as Parameters<typeof activationHelper>[0], attrs));
        const reference = activationFn(name as Parameters<typeof activationFn>[0], attrs);
        for (const x of points) {
          const want = reference(x);
          const got = helper(x);
          if (Number.isNaN(want)) expect(got, `${name}(${x})`).toBeNaN();
          else if (!Number.isFinite(want)) expect(got, `${name}(${x})`).toBe(want);
          else expect(Math.abs(got - want), `${name}(${x}): ${got} vs ${want}`).toBeLessThanOrEqual(1e-15 * Math.max(1, Math.abs(want)));
        }
      });
    }
  }
});
