/**
 * Dependencies in src/ point one way. Every import (static, type-only,
 * `export ... from`, dynamic `import()`) must go from a layer to one it may
 * use, and no file may reach itself through imports, type-only ones included:
 * a cycle is two files that cannot be read, tested or moved apart.
 *
 * The table reads bottom to top. A layer may import the layers it `uses` and
 * everything those may import. Where a layer sits, and why:
 *
 *   diagnostics, util   coded messages, file I/O, the PRNG: everything may report and read
 *   spec                the training block's schemas (imports nothing from src/)
 *   ir                  types, graph, print, parse, verify (given the op table as a parameter)
 *   ops                 the op records and their registry
 *   interp, formats, weights   use ir and ops only (the float64 interpreter, safetensors and
 *                       ONNX, attaching weights)
 *   frontend            spec -> IR; attaches a TF.js model's own weights, hence weights
 *   rewrite             the editor, patterns, pass manager
 *   passes              the built-in passes (`verify` and const-fold run the interpreter)
 *   autodiff            training graphs, which it optimizes with the passes
 *   codegen             modules from graphs and training programs (safetensors for external weights)
 *   export              specs to other tools' formats that need the spec, not only the graph
 *                       (Keras 3 `.keras`: layer configs, optimizer state, hence frontend and autodiff)
 *   data, report        training data (labels encoded for the spec's loss) and charts, for `modelc train`
 *   compile             the library pipeline: spec or graph -> passes -> files
 *   experiments         the batch-normalization experiments: generated Trainers on MNIST, charts
 *   cli, index          the command line and the public API, on top
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  importCycles,
  importsOf,
  layerOf,
  layeringViolations,
  resolveImport,
  sourceFiles,
  tableProblems,
  type Edge,
  type Layer,
} from './imports.js';

const layers: readonly Layer[] = [
  { name: 'diagnostics', uses: [] },
  { name: 'util', uses: ['diagnostics'] },
  { name: 'spec', uses: [] },
  { name: 'ir', uses: ['diagnostics', 'util'] },
  { name: 'ops', uses: ['ir', 'spec'] },
  { name: 'interp', uses: ['ops'] },
  { name: 'formats', uses: ['ops'] },
  { name: 'weights', uses: ['ops'] },
  { name: 'frontend', uses: ['weights', 'spec'] },
  { name: 'rewrite', uses: ['ops'] },
  { name: 'passes', uses: ['rewrite', 'interp'] },
  { name: 'autodiff', uses: ['passes', 'spec'] },
  { name: 'codegen', uses: ['autodiff', 'formats'] },
  { name: 'export', uses: ['autodiff', 'frontend', 'formats'] },
  { name: 'data', uses: ['util', 'spec'] },
  { name: 'report', uses: [] },
  { name: 'compile', uses: ['codegen', 'frontend', 'weights'] },
  { name: 'experiments', uses: ['compile', 'data', 'report'] },
  { name: 'cli', uses: ['compile', 'data', 'report', 'export', 'experiments'] },
  { name: 'index', uses: ['compile'] },
];

const root = fileURLToPath(new URL('../../src', import.meta.url));

/** Every import between files of src/, and what could not be followed. */
function scan(): { edges: Edge[]; problems: string[] } {
  const edges: Edge[] = [];
  const problems: string[] = [];
  for (const file of sourceFiles(root)) {
    const { imports, unresolvable } = importsOf(file, readFileSync(`${root}/${file}`, 'utf8'));
    for (const u of unresolvable) problems.push(`${file}:${u.line}: import(${u.text}) is computed; the test cannot follow it`);
    for (const i of imports) {
      const to = resolveImport(root, file, i.specifier);
      if (to === null) problems.push(`${file}:${i.line}: '${i.specifier}' names no file in src/`);
      else if (to !== undefined) edges.push({ from: file, to, kind: i.kind, line: i.line });
    }
  }
  return { edges, problems };
}

describe('src/ imports', () => {
  const { edges, problems } = scan();

  it('are found: every kind of import, and every relative one names a file', () => {
    expect(problems).toEqual([]);
    // The scan sees what it must (a floor, so that a parser that finds nothing fails).
    expect(edges.length).toBeGreaterThan(300);
    expect(edges.some((e) => e.kind === 'type')).toBe(true);
    expect(edges.some((e) => e.kind === 'dynamic' && e.to === 'codegen/index.ts')).toBe(true);
  });

  it('every file of src/ is in a layer of the table, and the table reads bottom to top', () => {
    expect(tableProblems(layers)).toEqual([]);
    const named = new Set(layers.map((l) => l.name));
    expect(sourceFiles(root).filter((f) => !named.has(layerOf(f)))).toEqual([]);
  });

  it('go down the layers only', () => {
    expect(layeringViolations(edges, layers)).toEqual([]);
  });

  it('form no cycle among files', () => {
    expect(importCycles(edges)).toEqual([]);
  });
});

describe('the checks themselves', () => {
  it('see static, type-only, re-export, dynamic and import-type imports, and refuse a computed relative one', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from './b.js';",
      "export { c } from './c.js';",
      "export type { D } from './d.js';",
      "const e = await import('./e.js');",
      "let f: import('./f.js').F;",
      'const g = await import(`./${name}.js`);',
      "const h = await import(`data:text/javascript;base64,${code}`);",
      "import { i } from 'node:fs';",
    ].join('\n');
    const { imports, unresolvable } = importsOf('x.ts', text);
    expect(imports.map((i) => `${i.line} ${i.kind} ${i.specifier}`)).toEqual([
      '1 static ./a.js',
      '2 type ./b.js',
      '3 static ./c.js',
      '4 type ./d.js',
      '5 dynamic ./e.js',
      '6 type ./f.js',
      '9 static node:fs',
    ]);
    expect(unresolvable).toEqual([{ text: '`./${name}.js`', line: 7 }]);
  });

  it('report an upward import with its file, line and layers, and allow what the uses reach', () => {
    const table: Layer[] = [{ name: 'ir', uses: [] }, { name: 'ops', uses: ['ir'] }, { name: 'passes', uses: ['ops'] }];
    const edges: Edge[] = [
      { from: 'passes/dce.ts', to: 'ir/graph.ts', kind: 'static', line: 3 },
      { from: 'ir/verify.ts', to: 'ops/registry.ts', kind: 'type', line: 17 },
      { from: 'codegen/x.ts', to: 'ir/graph.ts', kind: 'static', line: 1 },
    ];
    expect(layeringViolations(edges, table)).toEqual([
      "ir/verify.ts:17 -> ops/registry.ts (type import; 'ir' may not import 'ops')",
      "codegen/x.ts: its layer 'codegen' is not in the layer table",
    ]);
    expect(tableProblems([{ name: 'ops', uses: ['ir'] }, { name: 'ir', uses: [] }])).toEqual(['ops uses ir, which is not listed before it']);
  });

  it('print a cycle as the chain of files that closes it, and a self-import too', () => {
    const edge = (from: string, to: string): Edge => ({ from, to, kind: 'static', line: 1 });
    const edges = [edge('a.ts', 'b.ts'), edge('b.ts', 'c.ts'), edge('c.ts', 'a.ts'), edge('c.ts', 'd.ts'), edge('d.ts', 'e.ts'), edge('e.ts', 'e.ts')];
    expect(importCycles(edges)).toEqual(['e.ts -> e.ts', 'a.ts -> b.ts -> c.ts -> a.ts']);
    // Two cycles through one file: the shortest is printed, with every file involved.
    expect(importCycles([edge('i.ts', 'm.ts'), edge('m.ts', 'i.ts'), edge('i.ts', 'n.ts'), edge('n.ts', 'l.ts'), edge('l.ts', 'i.ts')])).toEqual([
      'i.ts -> m.ts -> i.ts (one of the cycles among i.ts, l.ts, m.ts, n.ts)',
    ]);
    expect(importCycles([edge('a.ts', 'b.ts'), edge('b.ts', 'c.ts')])).toEqual([]);
  });

  it('name a layer by its top folder, or a top-level file by its stem', () => {
    expect(['ir/verify.ts', 'codegen/wasm/kernels.ts', 'index.ts', 'compile.ts', 'frontend/dsl/parser.generated.d.ts'].map(layerOf)).toEqual([
      'ir',
      'codegen',
      'index',
      'compile',
      'frontend',
    ]);
  });
});
