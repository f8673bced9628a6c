/**
 * Embedded weights of big modules: base64 longer than one literal piece is
 * written as literals joined at load (V8 compiles one 200 MB literal in
 * superlinear time), and decodes to the same floats as the safetensors file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/index.js';
import { base64Length, dataExpression, dataText, fill, LITERAL_PIECE } from '../../src/codegen/format.js';
import { tempDir } from '../helpers/cli.js';

/** The value of the filled expression, and how many literals it has. */
function evaluate(data: string) {
  const text = fill(dataExpression('P', data.length), 'P', dataText(data));
  return { value: new Function(`return ${text};`)() as string, literals: text.split('",\n  "').length };
}

describe('embedded weights literal', () => {
  it('is one literal up to a piece, pieces joined beyond, always the same text', () => {
    const piece = 'AbCd'.repeat(LITERAL_PIECE / 4);
    expect(evaluate('QUJD')).toEqual({ value: 'QUJD', literals: 1 });
    expect(evaluate(piece).literals).toBe(1);
    const long = piece + 'xyz=' + piece;
    const { value, literals } = evaluate(long);
    expect(literals).toBe(3);
    expect(value === long).toBe(true);
  });

  it('base64Length is the length Buffer gives', () => {
    for (const n of [0, 1, 2, 3, 7, 1000]) expect(base64Length(n)).toBe(Buffer.alloc(4 * n).toString('base64').length);
  });

  it('a module over one piece predicts what its safetensors twin predicts', async () => {
    // 2048 x 2100 + 2100 floats: 22.9 MB of base64, two pieces.
    const source = 'model wide {\n  input x: [2048]\n  dense(2100)\n}\n';
    const dir = tempDir({ 'wide.nn': source });
    const path = join(dir, 'wide.nn');
    const embedded = await compile({ source, path }, { emit: 'js', seed: 5 });
    const external = await compile({ source, path }, { emit: 'js', seed: 5, weightsMode: 'external' });
    const js = embedded.files[0]!.contents as string;
    // Not toContain: a failure would print 23 MB.
    expect(js.includes('const WEIGHTS = ["')).toBe(true);
    expect(js.split('",\n  "').length).toBe(2);
    writeFileSync(join(dir, 'embedded.js'), js);
    writeFileSync(join(dir, 'external.js'), external.files[0]!.contents);
    const a = await import(pathToFileURL(join(dir, 'embedded.js')).href);
    const b = await import(pathToFileURL(join(dir, 'external.js')).href);
    const x = new Float32Array(2 * 2048).map((_, i) => Math.sin(i));
    const want = new b.Model(external.files[1]!.contents).predict(x, 2) as Float32Array;
    const got = a.predict(x, 2) as Float32Array;
    expect(got).toEqual(want);
    expect(new Set(got).size).toBeGreaterThan(4000);
  }, 60_000);
});
