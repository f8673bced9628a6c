/** The pass manager: custom passes, verification between passes, and its errors. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { renderDiagnostics } from '../../src/diagnostics/render.js';
import { parseGraph } from '../../src/ir/parse.js';
import { createPassManager } from '../../src/passes/pipeline.js';
import { editorPass } from '../../src/rewrite/pass.js';
import { ir } from './helpers.js';

const graph = parseGraph(ir('graph g(%x: f32[N,4]) {', '  %a: f32[N,4] = relu(%x)', '  %b: f32[N,4] = tanh(%a)', '  return %b', '}'));

function errorOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    if (err instanceof ModelcError) return renderDiagnostics(err.diagnostics);
    throw err;
  }
  throw new Error('expected a ModelcError');
}

describe('PassManager', () => {
  it('names a custom pass that breaks the IR (a deliberately wrong rewrite)', () => {
    // Claims tanh produces f32[N,5]: the verifier after the pass catches it.
    const broken = editorPass('widen-tanh', 'a wrong pass', (ed) => {
      const t = ed.nodes.find((n) => n.op === 'tanh')!;
      ed.updateNode(t, { type: { dtype: 'f32', shape: ['N', 5] } });
      return true;
    });
    const message = errorOf(() => createPassManager([broken]).run(graph, ['dce', 'widen-tanh']));
    expect(message).toBe(
      "modelc: error: pass 'widen-tanh' produced invalid IR: invalid IR in graph g: %b = tanh: declared type f32[N,5] but the op gives f32[N,4]",
    );
  });

  it('names a pass that uses a value it removed', () => {
    const dangling = editorPass('drop-relu', 'another wrong pass', (ed) => {
      ed.removeNode(ed.nodes[0]!, true);
      return true;
    });
    expect(errorOf(() => createPassManager([dangling]).run(graph, ['drop-relu']))).toContain(
      "pass 'drop-relu' produced invalid IR: invalid IR in graph g: %b = tanh: operand %a is not defined before this node",
    );
  });

  it('rejects unknown pass names before running anything, with a suggestion', () => {
    let ran = false;
    const spy = editorPass('spy', 'records that it ran', () => ((ran = true), false));
    const message = errorOf(() => createPassManager([spy]).run(graph, ['spy', 'cse', 'dcee']));
    expect(message).toMatch(/^modelc: error: unknown pass 'dcee'; did you mean 'dce'\?/);
    expect(ran).toBe(false);
  });

  it('rejects a second pass with the same id and malformed ids', () => {
    const again = editorPass('dce', 'shadows dce', () => false);
    expect(errorOf(() => createPassManager([again]))).toBe("modelc: error: a pass named 'dce' is already registered");
    expect(errorOf(() => createPassManager([editorPass('Fold BN', '', () => false)]))).toContain("invalid pass id 'Fold BN'");
  });
});

describe('examples/rewrite-api.mjs', () => {
  it('runs: finds the conv -> batchnorm -> relu chains, runs custom passes, prints folded IR', () => {
    const out = execFileSync(process.execPath, ['examples/rewrite-api.mjs'], { encoding: 'utf8' });
    expect(out).toContain('match: conv2d -> batch_normalization -> activation (kernel 3,3,1,32)');
    expect(out).toContain('%scaled: f32[N,28,28,1] = affine(%image, %pixel/scale, %pixel/shift) {axis=3} @scale-pixels');
    expect(out).not.toMatch(/= batchnorm\(/);
    expect(out).toMatch(/output dense_1: max relative difference \d\.\de-\d+/);
  }, 60_000);
});
