/**
 * The README's "Use it as a library" example runs as printed: its code block
 * is taken from README.md and run by node against the built package (dist/,
 * as a user's `import 'modelc'` resolves it), and what it prints is checked.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The first ```js block after `heading` in README.md. */
function exampleAfter(heading: string): string {
  const readme = readFileSync(`${root}/README.md`, 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  expect(at).toBeGreaterThan(0);
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(block).not.toBeNull();
  return block![1]!;
}

describe('README: Use it as a library', () => {
  it('the example compiles seed_mlp in memory, lists the files and folds, and runs the module', () => {
    const code = exampleAfter('### Use it as a library');
    expect(code.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('//')).length).toBeLessThanOrEqual(10);
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' }).split('\n');
    expect(out.slice(0, 5)).toEqual([
      "[ 'seed_mlp.train.js', 'seed_mlp.js' ]",
      'remove-dropout -> remove-identity -> cse -> fold-bn -> fuse-activation -> const-fold -> dce',
      'batch_normalization folded into dense',
      'batch_normalization_1 folded into dense_1',
      'batch_normalization_2 folded into dense_2',
    ]);
    // A softmax over two classes: two probabilities that sum to 1.
    const probabilities = /^Float32Array\(2\) \[ ([\d.e-]+), ([\d.e-]+) \]$/.exec(out[5]!);
    expect(probabilities).not.toBeNull();
    expect(Number(probabilities![1]) + Number(probabilities![2])).toBeCloseTo(1, 6);
  }, 60_000);
});
