/**
 * CLI start-up: `main` loads only the module of the command being run, so
 * `modelc --help` loads no compiler and `check` no code generator (seen by
 * logging every module the process resolves, test/helpers/import-log.mjs);
 * the help still lists every command as it is used. And `compile` takes
 * several specs in one run, all compiled before any file is written.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandTable } from '../../src/cli/commands.js';
import { run, tempDir } from '../helpers/cli.js';

const root = join(import.meta.dirname, '../..');

/** Runs bin/modelc.js (built) with the import log: its exit code, stdout, and the module URLs it resolved. */
function launch(...args: string[]): { status: number | null; stdout: string; modules: string[] } {
  const r = spawnSync(process.execPath, ['--import', join(root, 'test/helpers/import-log.mjs'), join(root, 'bin/modelc.js'), ...args], { encoding: 'utf8', cwd: root });
  const modules = r.stderr.split('\n').filter((l) => l.startsWith('import ')).map((l) => l.slice('import '.length));
  return { status: r.status, stdout: r.stdout, modules };
}

/** Modules no command should load unless it generates code, draws charts or reads HDF5. */
const heavy = [/node_modules\/(ts-morph|typescript|prettier|vega|vega-lite|@resvg|h5wasm)\//, /\/dist\/codegen\//];
/** Modules `--help` must not load: the op records and everything above them. */
const compiler = [/node_modules\/@sinclair\/typebox\//, /\/dist\/(ops|frontend|compile|passes|ir)\//];

describe('start-up loads what the command needs', () => {
  it('--help: every command listed with its arguments, no compiler module loaded', () => {
    const { status, stdout, modules } = launch('--help');
    expect(status).toBe(0);
    for (const c of commandTable) expect(stdout).toMatch(new RegExp(`\\n  ${c.name} \\[options\\]${c.args.map(([u]) => ` ${u.replace(/[[\].]/g, '\\$&')}`).join('')} `));
    // the log works: the command table was seen
    expect(modules.some((m) => m.endsWith('/dist/cli/commands.js'))).toBe(true);
    expect(modules.filter((m) => [...heavy, ...compiler].some((r) => r.test(m)))).toEqual([]);
  });

  it('check: the frontend and the op records, no code generator, charts or TypeScript', () => {
    const { status, stdout, modules } = launch('check', 'examples/seed_mlp.nn');
    expect(status).toBe(0);
    expect(stdout).toContain('Total params');
    expect(modules.some((m) => m.endsWith('/dist/frontend/load.js'))).toBe(true);
    expect(modules.filter((m) => heavy.some((r) => r.test(m)))).toEqual([]);
  });

  it('compile --help and help compile describe compile with its options', async () => {
    for (const args of [['compile', '--help'], ['help', 'compile']]) {
      const r = await run(...args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Usage: modelc compile [options] <specs...>');
      expect(r.stdout).toContain('--weights-mode <mode>');
    }
  });
});

describe('compile with several specs', () => {
  const spec = (name: string, units: number) => `model ${name} {\n  input x: [3]\n  dense(${units}, activation: relu)\n}\n`;

  it('writes every spec\'s modules into the folder, printed in order; each is what compiling it alone writes', async () => {
    const dir = tempDir({ 'a.nn': spec('alpha', 2), 'b.nn': spec('beta', 4) });
    const out = join(dir, 'out');
    const r = await run('compile', join(dir, 'a.nn'), join(dir, 'b.nn'), '-o', out, '--emit', 'both');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual(['alpha.ts', 'alpha.js', 'beta.ts', 'beta.js'].map((f) => join(out, f)));
    const alone = join(dir, 'alone');
    expect((await run('compile', join(dir, 'b.nn'), '-o', alone, '--emit', 'both')).code).toBe(0);
    expect(readFileSync(join(out, 'beta.ts'), 'utf8')).toBe(readFileSync(join(alone, 'beta.ts'), 'utf8'));
  });

  it('writes nothing when one spec fails, or two would write the same file; --name and --weights take one spec', async () => {
    const dir = tempDir({ 'a.nn': spec('alpha', 2), 'same.nn': spec('alpha', 3), 'bad.nn': 'model m {\n  input x: [3]\n  dens(2)\n}\n' });
    const out = join(dir, 'out');
    const bad = await run('compile', join(dir, 'a.nn'), join(dir, 'bad.nn'), '-o', out);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad\.nn:3:3: error: unknown layer type 'dens'/);
    expect(existsSync(out)).toBe(false);
    const clash = await run('compile', join(dir, 'a.nn'), join(dir, 'same.nn'), '-o', out);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/same\.nn: error: '.*a\.nn' and '.*same\.nn' would both write alpha\.ts/);
    expect(existsSync(out)).toBe(false);
    for (const flag of [['--name', 'x'], ['--weights', join(dir, 'w.safetensors')]]) {
      const usage = await run('compile', join(dir, 'a.nn'), join(dir, 'same.nn'), ...flag, '-o', out);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(new RegExp(`${flag[0]} .*one spec`));
    }
    expect(existsSync(out)).toBe(false);
    // the same spec twice is compiled once
    const twice = await run('compile', join(dir, 'a.nn'), join(dir, 'a.nn'), '-o', out);
    expect(twice.code, twice.stderr).toBe(0);
    expect(readdirSync(out)).toEqual(['alpha.ts']);
  });
});
