/**
 * Code injection through spec names: a functional model whose input, layer
 * and output names are hostile (string and comment terminators, line
 * separators, template syntax, prototype keys, names that differ only by
 * punctuation, reserved words, the module's own top-level names), with two
 * inputs (so `run`'s feeds are hostile too) and with one (so `predict` does
 * real work). For the unoptimized and the `-O` graph, with embedded and
 * external weights, the generated module must
 *   (a) type-check under `tsc --strict --noUncheckedIndexedAccess
 *       --noUnusedLocals --noUnusedParameters` (the repository's tsc, with no
 *       libs beyond es2022 and no @types: the module imports nothing);
 *   (b) import and run without setting `globalThis.pwned` or throwing;
 *   (c) name its inputs, outputs and `run` results with exactly the spec's
 *       strings;
 *   (d) match the reference interpreter within 1e-4 relative;
 * and the hostile text (`pwned`, `throw 1`) may occur only inside string
 * literal tokens, inside comments, or (for `pwned`) inside an identifier made
 * of letters, digits and `_` (a sanitized name such as
 * `globalThis_pwned_1`), in both the TypeScript and the JavaScript. The last
 * check tokenizes with the TypeScript parser, so it fails when `str` or
 * `commentText` stop escaping (a first test shows it flags each way an
 * escape can fail).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ts } from 'ts-morph';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateInferenceModule, type GeneratedModule } from '../../src/codegen/index.js';
import type { Graph } from '../../src/ir/graph.js';
import { fromF32 } from '../../src/ir/tensor.js';
import { interpret } from '../../src/interp/interpret.js';
import { randomFeeds } from '../../src/passes/equivalence.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { importModule, type InferenceModule } from '../helpers/generated.js';
import { lowerJson } from '../helpers/graphs.js';
import { withRandomParams } from '../helpers/tensors.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tsc = join(root, 'node_modules/.bin/tsc');

/** The hostile names. Every one that carries code carries `globalThis.pwned = 1` (or `throw 1`). */
const H = {
  // string terminators, both quote styles (prettier picks the quote that needs fewer escapes)
  dq: '"); globalThis.pwned = 1; ("',
  sq: "'); globalThis.pwned = 1; //",
  mixed: `"'\\"); globalThis.pwned = 1; ('\\`,
  // comment terminators and line terminators
  comment: '*/ throw 1 /*',
  newline: 'a\nglobalThis.pwned = 1',
  cr: 'c\r globalThis.pwned = 1 //',
  ls: 'b\u2028globalThis.pwned = 1;',
  ps: 'd\u2029globalThis.pwned = 1;',
  // template syntax
  template: '${globalThis.pwned = 1}',
  backtick: '`+(globalThis.pwned = 1)+`',
  // odd code points: NUL, a lone surrogate, non-ASCII letters
  odd: '\u0000\ud800é漢 globalThis.pwned = 1',
} as const;

/** Names that differ only by punctuation: one identifier each, never a collision. */
const punct = ['a-b', 'a_b', 'a.b', 'a_b_2'] as const;

const IMG = H.dq;
const VEC = '__proto__';

/** Output names (the `run` result keys). */
const OUT = { probs: 'toString', image: H.template, side: 'constructor', raw: H.newline, sep: H.ls } as const;

/**
 * An image input and (with `twoInputs`) a vector input; convs, dense layers,
 * batchnorms, adds, a concatenate, a layer applied twice, dropout, chains of
 * activations, and five outputs, some of them intermediate layers with other
 * consumers. With one input, the vector branch starts from the image branch.
 */
function hostileSpec(twoInputs: boolean) {
  return {
    name: 'hostile',
    inputs: [{ name: IMG, shape: [5, 5, 2] }, ...(twoInputs ? [{ name: VEC, shape: [4] }] : [])],
    layers: [
      // image branch
      { type: 'conv2d', name: H.comment, inputs: [IMG], filters: 3, kernel_size: 3, padding: 'same', activation: 'relu' },
      { type: 'batchnorm', name: H.newline },
      { type: 'relu', name: H.ls },
      { type: 'conv2d', name: H.sq, filters: 3, kernel_size: 1 },
      { type: 'batchnorm', name: H.ps },
      { type: 'add', name: H.template, inputs: [H.ls, H.ps] },
      { type: 'tanh', name: H.backtick },
      { type: 'dropout', name: 'hasOwnProperty', rate: 0.5 },
      { type: 'activation', name: H.cr, activation: 'elu' },
      { type: 'global_avg_pool2d', name: 'Model' },
      // vector branch
      ...(twoInputs
        ? [{ type: 'dense', name: 'predict', inputs: [VEC], units: 5, activation: 'relu' }]
        : [
            { type: 'dropout', name: VEC, rate: 0.1 },
            { type: 'dense', name: 'predict', units: 5, activation: 'relu' },
          ]),
      { type: 'batchnorm', name: 'inputs' },
      { type: 'tanh', name: 'SCRATCH' },
      { type: 'concatenate', name: 'relu', inputs: ['Model', 'SCRATCH'] },
      { type: 'dense', name: punct[0], units: 6 },
      { type: 'batchnorm', name: punct[1] },
      { type: 'relu', name: punct[2] },
      { type: 'dense', name: punct[3], units: 6, activation: 'tanh' },
      { reuse: punct[3], name: 'checkInput' },
      { type: 'dense', name: 'WEIGHTS', units: 3 },
      { type: 'batchnorm', name: 'class' },
      { type: 'relu', name: 'function' },
      { type: 'dense', name: 'n', units: 3, activation: 'tanh' },
      { type: 'add', name: 'y', inputs: ['n', 'class'] },
      { type: 'dense', name: 'p', units: 4 },
      { type: 'sigmoid', name: 's' },
      { type: 'dense', name: 'this', units: 4, use_bias: false },
      { type: 'batchnorm', name: H.mixed },
      { type: 'swish', name: H.odd },
      { type: 'elu', name: 'undefined' },
      { type: 'selu', name: 'arguments' },
      { type: 'softplus', name: 'globalThis' },
      { type: 'relu6', name: 'await' },
      { type: 'hard_sigmoid', name: 'let' },
      { type: 'gelu', name: 'Object' },
      { type: 'tanh', name: 'feed' },
      { type: 'leaky_relu', name: 'x', alpha: 0.1 },
      { type: 'dense', name: OUT.probs, units: 2, activation: 'softmax' },
      { type: 'dense', name: OUT.side, inputs: ['s'], units: 3 },
      { type: 'batchnorm', name: 'eval' },
    ],
    outputs: [OUT.probs, OUT.image, OUT.side, OUT.raw, OUT.sep],
  };
}

/** What a successful injection would set. */
const pwned = () => (globalThis as Record<string, unknown>)['pwned'];

afterEach(() => {
  delete (globalThis as Record<string, unknown>)['pwned'];
});

/** A module parsed by the TypeScript parser, and its leaf tokens in order. */
interface Tokens {
  readonly text: string;
  readonly file: ts.SourceFile;
  readonly leaves: readonly ts.Node[];
}

/**
 * Leaf tokens from the AST (so regular expressions and template pieces are
 * tokenized as the language does); everything between two tokens is trivia:
 * whitespace and comments.
 */
function tokenize(text: string): Tokens {
  const file = ts.createSourceFile('m.ts', text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const leaves: ts.Node[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isJSDoc(node)) return; // a comment: trivia
    const children = node.getChildren(file);
    if (children.length === 0) {
      if (node.kind !== ts.SyntaxKind.EndOfFileToken) leaves.push(node);
    } else children.forEach(visit);
  };
  visit(file);
  return { text, file, leaves };
}

/** Syntax errors as the TypeScript parser sees them. */
function syntaxErrors({ file }: Tokens): string[] {
  return (file as unknown as { parseDiagnostics: ts.Diagnostic[] }).parseDiagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

/**
 * Every occurrence of `needle` that is not inside a string literal token or
 * a comment, nor (when `inIdentifiers`) inside a plain identifier token other
 * than `needle` itself; each reported with its token and line.
 */
function codeOccurrences(source: string | Tokens, needle: string, inIdentifiers: boolean): string[] {
  const { text, file, leaves } = typeof source === 'string' ? tokenize(source) : source;
  const bad: string[] = [];
  let k = 0; // leaves are in text order, and so are the occurrences
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const end = at + needle.length;
    while (k < leaves.length && leaves[k]!.getEnd() <= at) k++;
    const leaf = leaves[k];
    const lineEnd = text.indexOf('\n', at);
    const line = text.slice(text.lastIndexOf('\n', at) + 1, lineEnd < 0 ? undefined : lineEnd);
    if (leaf === undefined || end <= leaf.getStart(file)) continue; // wholly in trivia: a comment
    if (at < leaf.getStart(file) || end > leaf.getEnd()) {
      bad.push(`straddles the token ${JSON.stringify(leaf.getText(file))} in: ${line}`);
      continue;
    }
    const token = leaf.getText(file);
    if (leaf.kind === ts.SyntaxKind.StringLiteral) continue;
    if (inIdentifiers && leaf.kind === ts.SyntaxKind.Identifier && /^[A-Za-z0-9_]+$/.test(token) && token !== needle) continue;
    bad.push(`${ts.SyntaxKind[leaf.kind]} ${JSON.stringify(token)} in: ${line}`);
  }
  return bad;
}

/** Type-checks a module on its own with the repository's tsc; returns tsc's output ('' when clean). */
function typecheck(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'modelc-tsc-'));
  const file = join(dir, 'model.ts');
  writeFileSync(file, source);
  try {
    execFileSync(tsc, [
      '--strict', '--noUncheckedIndexedAccess', '--noUnusedLocals', '--noUnusedParameters',
      '--noImplicitReturns', '--noImplicitOverride', '--noFallthroughCasesInSwitch',
      '--target', 'es2022', '--module', 'esnext', '--lib', 'es2022', '--types', '', '--noEmit', file,
    ], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message;
  }
}

const BATCH = 3;
const RTOL = 1e-4;

describe('the injection check', () => {
  // It must see through the shapes an escaping failure takes in the module.
  it('flags hostile text that escaped a string literal or a comment', () => {
    const escapedLiteral = 'const a = "\\"); globalThis.pwned = 1; (\\"";\n// ok: globalThis.pwned = 1\nconst globalThis_pwned_1 = a;\n';
    expect(codeOccurrences(escapedLiteral, 'pwned', true)).toEqual([]);
    expect(codeOccurrences(escapedLiteral, 'globalThis', true)).toEqual([]);
    const broken = [
      'const a = ""); globalThis.pwned = 1; ("";', // string terminator
      'const a = { name: `${globalThis.pwned = 1}` };', // template substitution
      '/** layer */ globalThis.pwned = 1 /* */', // comment terminator
      '// layer b\u2028globalThis.pwned = 1;', // U+2028 ends a line comment
      '// layer a\nglobalThis.pwned = 1', // newline ends a line comment
      'const re = /"/; globalThis.pwned = 1; const b = "/";', // regular expressions are not strings
    ];
    for (const text of broken) expect(codeOccurrences(text, 'pwned', true), text).not.toEqual([]);
    expect(codeOccurrences('/** */ throw 1 /* */', 'throw 1', false)).not.toEqual([]);
  });
});

describe.each([
  { label: 'two inputs', twoInputs: true },
  { label: 'one input', twoInputs: false },
])('hostile spec names, $label', ({ twoInputs }) => {
  const spec = hostileSpec(twoInputs);
  const inputNames = spec.inputs.map((i) => i.name);
  const outputNames = spec.outputs;
  let graph: Graph;
  let optimized: Graph;
  beforeAll(() => {
    graph = withRandomParams(lowerJson(spec).graph, 20240611);
    optimized = createPassManager().run(graph, [...defaultPipeline], {});
  });

  it('lower to the graph the test means (every name kept, -O changes the graph)', () => {
    expect(graph.inputs.map((i) => i.name)).toEqual(inputNames);
    expect(graph.outputs).toEqual(outputNames);
    for (const l of spec.layers) expect(graph.nodes.some((n) => n.layer === l.name), l.name).toBe(true);
    expect(optimized.nodes.map((n) => n.op)).not.toContain('dropout');
    expect(optimized.nodes.length).toBeLessThan(graph.nodes.length - 10);
  });

  const variants = [
    { label: 'unoptimized, embedded weights', optimize: false, weightsMode: 'embed' },
    { label: 'optimized, embedded weights', optimize: true, weightsMode: 'embed' },
    { label: 'unoptimized, external weights', optimize: false, weightsMode: 'external' },
    { label: 'optimized, external weights', optimize: true, weightsMode: 'external' },
  ] as const;

  describe.each(variants)('$label', ({ optimize, weightsMode }) => {
    let mod: GeneratedModule;
    beforeAll(async () => {
      mod = await generateInferenceModule(optimize ? optimized : graph, {
        name: '*/ globalThis.pwned = 1; /*\nglobalThis.pwned = 1',
        source: `examples/${H.comment}\u2028globalThis.pwned = 1.json`,
        passes: optimize ? defaultPipeline : [],
        weightsMode,
      });
    }, 30_000);

    it('hostile text occurs only in string literals, comments and sanitized identifiers', () => {
      for (const [lang, text] of [['ts', mod.ts], ['js', mod.js]] as const) {
        const tokens = tokenize(text);
        expect(syntaxErrors(tokens), `${lang}: syntax`).toEqual([]);
        // the module does carry the hostile text (so the checks below are not vacuous)
        for (const raw of ['globalThis.pwned = 1', 'throw 1', '__proto__', '${', '`']) expect(text, `${lang} mentions ${raw}`).toContain(raw);
        expect(codeOccurrences(tokens, 'pwned', true), `${lang}: pwned`).toEqual([]);
        expect(codeOccurrences(tokens, 'throw 1', false), `${lang}: throw 1`).toEqual([]);
        expect(codeOccurrences(tokens, 'globalThis', true), `${lang}: globalThis`).toEqual([]);
        // raw line and paragraph separators end `//` comments: never emitted, escaped in literals too
        expect(/[\u2028\u2029]/.test(text), `${lang}: raw U+2028/U+2029`).toBe(false);
      }
    });

    it('type-checks with strict, noUncheckedIndexedAccess, noUnusedLocals and noUnusedParameters', () => {
      expect(typecheck(mod.ts)).toBe('');
    }, 30_000);

    it('imports and runs without side effects, under the spec names, matching the interpreter', async () => {
      const m = await importModule<InferenceModule>(mod.js, 'hostile');
      expect(pwned()).toBeUndefined();
      expect(m.inputs.map((i) => i.name)).toEqual(inputNames);
      expect(m.inputs.map((i) => i.shape)).toEqual(spec.inputs.map((i) => i.shape));
      expect(m.outputs.map((o) => o.name)).toEqual(outputNames);
      expect(m.outputs.map((o) => o.shape)).toEqual([[2], [5, 5, 3], [3], [5, 5, 3], [5, 5, 3]]);
      expect(typeof m.predict).toBe(weightsMode === 'embed' ? 'function' : 'undefined');

      const model = weightsMode === 'embed' ? new m.Model() : new m.Model(mod.weights);
      // float32 inputs; the reference interpreter (float64) runs the unoptimized graph on the same values
      const f64 = randomFeeds(graph, BATCH, 11);
      const feeds = Object.fromEntries(inputNames.map((n) => [n, Float32Array.from(f64[n]!.data)]));
      expect(Object.keys(feeds)).toEqual(inputNames); // `__proto__` is an own key
      const want = interpret(graph, Object.fromEntries(inputNames.map((n) => [n, fromF32(f64[n]!.shape, feeds[n]!)])));

      const got = model.run(feeds, BATCH);
      expect(pwned()).toBeUndefined();
      expect(Object.keys(got)).toEqual(outputNames);
      expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
      for (const name of outputNames) {
        const ref = want[name]!.data;
        const out = Object.getOwnPropertyDescriptor(got, name)?.value as Float32Array;
        expect(out, name).toBeInstanceOf(Float32Array);
        expect(out.length, name).toBe(ref.length);
        let scale = 0;
        let worst = 0;
        for (let i = 0; i < ref.length; i++) {
          scale = Math.max(scale, Math.abs(ref[i]!));
          const d = Math.abs(out[i]! - ref[i]!);
          if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
        }
        expect(scale, `${JSON.stringify(name)}: output scale`).toBeGreaterThan(0);
        expect(worst, `${JSON.stringify(name)}: max |diff| vs the interpreter, scale ${scale}`).toBeLessThanOrEqual(RTOL * scale);
      }

      const first = Object.getOwnPropertyDescriptor(got, outputNames[0]!)?.value as Float32Array;
      if (twoInputs) {
        expect(() => model.predict(feeds[IMG]!, BATCH)).toThrow(/2 inputs: use run/);
      } else {
        expect(model.predict(feeds[IMG]!, BATCH)).toEqual(first);
        if (m.predict) expect(m.predict(feeds[IMG]!, BATCH)).toEqual(first);
      }
      // the argument checks quote hostile names as data
      expect(() => model.run({ [H.backtick]: feeds[IMG]!, ...feeds }, BATCH)).toThrow('run: unknown input "`+(globalThis.pwned = 1)+`"');
      if (twoInputs) expect(() => model.run({ [IMG]: feeds[IMG]! }, BATCH)).toThrow('run: no feed for input "__proto__"');
      expect(() => model.run({}, BATCH)).toThrow('run: no feed for input "\\"); globalThis.pwned = 1; (\\""');
      expect(() => model.run({ ...feeds, [IMG]: new Float32Array(7) }, BATCH)).toThrow(
        'input "\\"); globalThis.pwned = 1; (\\"" (shape [5, 5, 2] per example) needs batchSize * 50 = 150 floats',
      );
      expect(pwned()).toBeUndefined();
    });
  });
});
