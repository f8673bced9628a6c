/**
 * The op records are the only place op facts live: the registry derives op
 * names and attribute types, passes ask the records, and no file outside
 * src/ops keeps a list of op names.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getOp, ops, opsByName } from '../../src/ops/registry.js';
import type { OpAttrs, OpName } from '../../src/rewrite/ops.js';

const root = join(import.meta.dirname, '../..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

describe('op names and attribute types come from the records', () => {
  it('OpName rejects a name no record has, and OpAttrs types a record attribute', () => {
    // @ts-expect-error: 'conv3d' is not an op (this line fails to type-check if OpName were string)
    const unknown: OpName = 'conv3d';
    const strides: OpAttrs['conv2d']['strides'] = [2, 2];
    // @ts-expect-error: conv2d has no attribute 'units'
    const units: OpAttrs['conv2d']['units'] = 3;
    expect([unknown, strides, units]).toHaveLength(3);
  });

  it('keys every record by its own name, once', () => {
    expect(Object.keys(opsByName)).toEqual(ops.map((o) => o.name));
    for (const o of ops) expect(getOp(o.name)).toBe(o);
    expect(getOp('toString')).toBeUndefined();
    expect(getOp('conv3d')).toBeUndefined();
  });
});

describe('facts agree with traits and attributes', () => {
  it('an op is linear-in-weights exactly when its record has folding facts', () => {
    const mismatched = ops.filter((o) => o.traits.includes('linear-in-weights') !== (o.linear !== undefined)).map((o) => o.name);
    expect(mismatched).toEqual([]);
    expect(ops.filter((o) => o.linear).map((o) => o.name).length).toBeGreaterThanOrEqual(4);
  });

  it('an op fuses activations exactly when it has an epilogue attribute', () => {
    const mismatched = ops.filter((o) => ('epilogue' in o.attrs) !== (o.epilogue !== undefined)).map((o) => o.name);
    expect(mismatched).toEqual([]);
  });

  it('an op that says a node is the identity computes the identity there, in one of its examples at least', () => {
    const identities = ops.filter((o) => o.identity).map((o) => o.name);
    expect(identities).toEqual(expect.arrayContaining(['dropout', 'reshape', 'linear', 'rescale']));
    const withoutIdentityExample: string[] = [];
    for (const name of identities) {
      const def = getOp(name)!;
      let checked = 0;
      for (const example of def.examples) {
        const node = { op: name, attrs: example.attrs, type: def.infer(example.operands, example.attrs as never) };
        if (!def.identity!(node as never, example.operands)) continue;
        const shape = example.operands[0]!.shape.map((d) => (d === 'N' ? 2 : d));
        const x = { shape, data: Float64Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => Math.sin(i + 1)) };
        const rest = example.operands.slice(1).map((t) => ({ shape: t.shape as number[], data: new Float64Array(t.shape.reduce<number>((p, d) => p * (d as number), 1)) }));
        const y = def.reference([x, ...rest], example.attrs as never);
        expect(y.shape, `${name}: the identity keeps the shape`).toEqual(x.shape);
        expect([...y.data], `${name}: the identity keeps the values`).toEqual([...x.data]);
        checked++;
      }
      if (checked === 0) withoutIdentityExample.push(name);
    }
    expect(withoutIdentityExample).toEqual([]);
  });
});

/** Op names in `case` labels, in `op === '...'` tests, or two or more in one `[...]` literal: facts about ops kept outside their records. */
function opNameLists(source: string): string[] {
  const names = new Set(ops.map((o) => o.name));
  // Comments may show examples (`[{ kind: 'dense', epilogue: 'relu' }]`); only code counts.
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const found: string[] = [];
  for (const m of text.matchAll(/case '([a-z0-9_]+)':/g)) if (names.has(m[1]!)) found.push(`case '${m[1]}'`);
  // A test of a node's op against a name is a fact kept outside its record (`node.op === 'dense'`).
  for (const m of text.matchAll(/\bop\s*[!=]==?\s*'([a-z0-9_]+)'/g)) if (names.has(m[1]!)) found.push(m[0]);
  // An array literal's `[` follows an operator or punctuation, not a value (`m['linear']` is an index).
  for (const m of text.matchAll(/(?<![\w\])!?])\[([^\][]*)\]/g)) {
    const quoted = [...m[1]!.matchAll(/'([a-z0-9_]+)'/g)].map((q) => q[1]!).filter((q) => names.has(q));
    if (quoted.length >= 2) found.push(`[${quoted.join(', ')}]`);
  }
  return found;
}

describe('no list of op names outside src/ops', () => {
  it('finds a planted list (the check can fail)', () => {
    const planted = "const linearOps = ['dense', 'conv2d'];\nswitch (op) { case 'relu': }\nif (node.op === 'tanh') {}";
    expect(opNameLists(planted)).toEqual(["case 'relu'", "op === 'tanh'", '[dense, conv2d]']);
  });

  it('src/ (but src/ops) has no case label or array literal of op names', () => {
    const offenders = sourceFiles(join(root, 'src'))
      .filter((f) => !relative(root, f).startsWith(join('src', 'ops')))
      .flatMap((f) => opNameLists(readFileSync(f, 'utf8')).map((hit) => `${relative(root, f)}: ${hit}`));
    expect(offenders).toEqual([]);
  });
});
