/**
 * One case per diagnostic category: the exact `path:line:col: error: message`,
 * the source line and caret, exit code 1, nothing on stdout, and no output
 * file left behind.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempDir } from '../helpers/cli.js';

const json = (layers: unknown[], extra: object = {}) =>
  JSON.stringify({ name: 'm', inputs: [{ name: 'x', shape: [16] }], layers, ...extra }, null, 2) + '\n';

/** A DSL model with input x: [4] and the given statements. */
const nn = (...lines: string[]) => ['model m {', '  input x: [4]', ...lines.map((l) => '  ' + l), '}', ''].join('\n');

interface Case {
  category: string;
  file: string;
  text: string;
  /** The first line of the diagnostic, `<file>:` prefix omitted. */
  error: string;
  /** The source line and caret lines (as rendered, two-space indented). */
  excerpt?: [string, string];
}

const cases: Case[] = [
  {
    category: 'invalid JSON',
    file: 'bad.json',
    text: '{\n  "name": "m",\n  "inputs": [}\n',
    error: '3:14: error: invalid JSON: expected a value',
    excerpt: ['  "inputs": [}', '             ^'],
  },
  {
    category: 'unknown layer (JSON)',
    file: 'm.json',
    text: json([{ type: 'dens', units: 4 }]),
    error: "13:15: error: unknown layer type 'dens'; did you mean 'dense'?",
    excerpt: ['"type": "dens",', '        ^~~~~~'],
  },
  {
    category: 'unknown attribute (JSON)',
    file: 'm.json',
    text: json([{ type: 'dense', units: 4, unit: 3 }]),
    error: "15:7: error: unknown attribute 'unit' for layer type 'dense'; did you mean 'units'?",
    excerpt: ['"unit": 3', '^~~~~~'],
  },
  {
    category: 'wrong attribute type (JSON)',
    file: 'm.json',
    text: json([{ type: 'dense', units: '64' }]),
    error: `14:16: error: dense attribute 'units': expected an integer >= 1, got "64"`,
    excerpt: ['"units": "64"', '         ^~~~'],
  },
  {
    category: 'shape mismatch (JSON)',
    file: 'm.json',
    text: json([{ type: 'conv2d', filters: 4, kernel_size: 3 }]),
    error:
      "12:5: error: layer 'conv2d': conv2d expects a rank-4 input (batch, height, width, channels), got shape [N, 16]",
  },
  {
    category: 'undefined name (JSON)',
    file: 'm.json',
    text: json([{ type: 'dense', units: 4, inputs: ['y'] }]),
    error: "16:9: error: 'y' is not a layer or input; did you mean 'x'?",
    excerpt: ['"y"', '^~~'],
  },
  {
    category: 'duplicate name (JSON)',
    file: 'm.json',
    text: json([
      { type: 'dense', units: 4, name: 'h' },
      { type: 'dense', units: 4, name: 'h' },
    ]),
    error: "20:15: error: duplicate name 'h'",
    excerpt: ['"name": "h"', '        ^~~'],
  },
  {
    category: 'cycle (JSON)',
    file: 'm.json',
    text: json([
      { type: 'dense', units: 4, name: 'a', inputs: ['b'] },
      { type: 'dense', units: 4, name: 'b', inputs: ['a'] },
    ]),
    error: "25:9: error: layers form a cycle: a -> b -> a",
    excerpt: ['"a"', '^~~'],
  },
  {
    category: 'empty model (JSON)',
    file: 'm.json',
    text: json([]),
    error: "11:13: error: model 'm' has no layers",
    excerpt: ['"layers": []', '          ^~'],
  },
  // The same categories in the DSL.
  {
    category: 'syntax error (DSL)',
    file: 'm.nn',
    text: nn('dense(4, activation: relu'),
    error: "4:1: error: expected ',' or ')' after argument, found '}'",
    excerpt: ['}', '^'],
  },
  {
    category: 'unknown layer (DSL)',
    file: 'm.nn',
    text: nn('dens(64)'),
    error: "3:3: error: unknown layer type 'dens'; did you mean 'dense'?",
    excerpt: ['dens(64)', '^~~~'],
  },
  {
    category: 'unknown attribute (DSL)',
    file: 'm.nn',
    text: nn('dense(4, unit: 3)'),
    error: "3:12: error: unknown attribute 'unit' for layer type 'dense'; did you mean 'units'?",
    excerpt: ['dense(4, unit: 3)', '^~~~'],
  },
  {
    category: 'wrong attribute type (DSL)',
    file: 'm.nn',
    text: nn('dense(units: "64")'),
    error: `3:16: error: dense attribute 'units': expected an integer >= 1, got "64"`,
    excerpt: ['dense(units: "64")', '^~~~'],
  },
  {
    category: 'shape mismatch (DSL)',
    file: 'm.nn',
    text: nn('conv2d(4, 3)'),
    error: "3:3: error: layer 'conv2d': conv2d expects a rank-4 input (batch, height, width, channels), got shape [N, 4]",
    excerpt: ['conv2d(4, 3)', '^' + '~'.repeat('conv2d(4, 3)'.length - 1)],
  },
  {
    category: 'undefined name (DSL)',
    file: 'm.nn',
    text: nn('dense(y, units: 4)'),
    error: "3:9: error: 'y' is not a layer or input; did you mean 'x'?",
    excerpt: ['dense(y, units: 4)', '^'],
  },
  {
    category: 'duplicate name (DSL)',
    file: 'm.nn',
    text: nn('h = dense(4)', 'h = dense(4)'),
    error: "4:3: error: duplicate name 'h'",
    excerpt: ['h = dense(4)', '^'],
  },
  {
    category: 'cycle (DSL)',
    file: 'm.nn',
    text: nn('a = dense(b, units: 4)', 'b = dense(a, units: 4)'),
    error: "4:13: error: layers form a cycle: a -> b -> a",
    excerpt: ['b = dense(a, units: 4)', '^'],
  },
  {
    category: 'empty model (DSL)',
    file: 'm.nn',
    text: nn(),
    error: "1:1: error: model 'm' has no layers",
  },
];

describe('diagnostics', () => {
  it.each(cases)('$category', async ({ file, text, error, excerpt }) => {
    const dir = tempDir({ [file]: text });
    const path = join(dir, file);
    const out = join(dir, 'out.ir');
    const r = await run('ir', path, '-o', out);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe(`${path}:${error}`);
    if (excerpt) {
      // The excerpt is the offending line, and a caret under the reported column.
      const [, col] = error.split(':').map(Number);
      expect(lines[1]!.trim()).toBe(excerpt[0].trim());
      expect(lines[2]).toBe('  ' + ' '.repeat(col! - 1) + excerpt[1].trim());
    }
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(existsSync(out)).toBe(false);
  });

  it('a missing file names the path, exit 1', async () => {
    const dir = tempDir();
    const r = await run('check', join(dir, 'nope.nn'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${join(dir, 'nope.nn')}: error: cannot read file: no such file or directory\n`);
  });

  it('an unreadable file (a directory) names the path, exit 1', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub.nn'));
    const r = await run('check', join(dir, 'sub.nn'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${join(dir, 'sub.nn')}: error: cannot read file: is a directory\n`);
  });

  it('usage errors exit 2', async () => {
    expect((await run('frobnicate')).code).toBe(2);
    expect((await run('check')).code).toBe(2);
    expect((await run('convert', 'examples/seed_mlp.nn')).code).toBe(2);
    expect((await run('convert', 'examples/seed_mlp.nn', '-o', 'x.txt')).code).toBe(2);
    expect((await run('check', '--bogus', 'examples/seed_mlp.nn')).code).toBe(2);
  });
});
