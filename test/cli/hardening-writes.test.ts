/**
 * Issue 16, the write side: every output goes through util/write.ts.
 *
 * - An `-o` that is a symbolic link, a FIFO or a directory is refused and left
 *   untouched; a character device (`/dev/null`, one made with `mknod`) is
 *   written in place and stays a device.
 * - A failed write (a full disk, a read-only file system, an error part-way)
 *   leaves no temp file and the old file as it was; Ctrl-C or SIGTERM during
 *   `compile` leaves none either and exits 130 or 143.
 * - A closed pipe on stdout ends the process quietly with exit 0.
 * - `train` checks its output folder before training, and keeps the weights
 *   in a named fallback file when the save fails after training.
 * - Bad option values are usage errors: exit 2.
 *
 * The spawned cases run bin/modelc.js, which runs dist/ (`npm run build`).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs, { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile } from '../../src/frontend/load.js';
import { attachWeights } from '../../src/weights/attach.js';
import { run, tempDir } from '../helpers/cli.js';

const mlp = 'examples/seed_mlp.nn';
const isRoot = process.getuid?.() === 0;

/** Files whose name marks them as a write's temp file (`.<name>.<pid>.<random>.tmp`). */
const temps = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => /^\..*\.tmp$/.test(f)) : []);

/** A spec of `n` dense layers: its IR, summary and formatted text are each far above a pipe's 64 KiB buffer. */
function bigSpec(n = 2000): string {
  return ['model big {', '  input x: [4]', ...Array.from({ length: n }, () => '  dense(4, kernel_initializer: uniform)'), '}', ''].join('\n');
}

/** A spec whose inference module embeds about 40 MB of weights: writing it takes a noticeable moment. */
const wideSpec = 'model wide {\n  input x: [1000]\n  dense(4000)\n  dense(1000)\n}\n';

function errno(code: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected, ${syscall}`), { code, syscall });
}

/** Mounts a small tmpfs at `dir` when this process may (root with CAP_SYS_ADMIN); false otherwise. */
function mountTmpfs(dir: string, options: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' }).status === 0;
}

function unmount(dir: string): void {
  spawnSync('umount', [dir], { stdio: 'ignore' });
}

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs bin/modelc.js; `onStart` gets the child once it is running. */
function spawnCli(args: string[], onStart?: (child: ReturnType<typeof spawn>) => void): Promise<Spawned> {
  const child = spawn(process.execPath, ['bin/modelc.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  onStart?.(child);
  // 'close', not 'exit': the exit can come before the last output has been read.
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('targets that are not regular files', () => {
  it('-o that is a symbolic link to a file elsewhere: refused, the link and its target untouched', async () => {
    const elsewhere = tempDir({ 'precious.txt': 'keep me\n' });
    const dir = tempDir();
    symlinkSync(join(elsewhere, 'precious.txt'), join(dir, 'out.ir'));
    const r = await run('ir', mlp, '-o', join(dir, 'out.ir'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(dir, 'out.ir')}: error: cannot write file: it is a symbolic link to '${join(elsewhere, 'precious.txt')}' (a regular file)`);
    expect(r.stderr).toContain('left untouched');
    expect(lstatSync(join(dir, 'out.ir')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(elsewhere, 'precious.txt'), 'utf8')).toBe('keep me\n');
    expect(readdirSync(dir)).toEqual(['out.ir']);
  });

  it('-o that is a FIFO: refused at once (no open that waits for a reader), still a FIFO', async () => {
    const dir = tempDir();
    const fifo = join(dir, 'out.ir');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = await run('ir', mlp, '-o', fifo);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot write file: it is a FIFO (named pipe)');
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readdirSync(dir)).toEqual(['out.ir']);
  });

  it('-o that is a directory: refused, the directory and its contents untouched', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'out.onnx'));
    writeFileSync(join(dir, 'out.onnx', 'inside'), 'x');
    const r = await run('export', mlp, '-o', join(dir, 'out.onnx'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot write file: it is a directory');
    expect(readdirSync(join(dir, 'out.onnx'))).toEqual(['inside']);
  });

  it('a compile whose output folder holds a FIFO under one of its names writes none of its files', async () => {
    const dir = tempDir();
    expect(spawnSync('mkfifo', [join(dir, 'seed_mlp.js')]).status).toBe(0);
    const r = await run('compile', mlp, '-o', dir, '--emit', 'both');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('seed_mlp.js: error: cannot write file: it is a FIFO');
    expect(readdirSync(dir)).toEqual(['seed_mlp.js']);
    expect(lstatSync(join(dir, 'seed_mlp.js')).isFIFO()).toBe(true);
  });

  it('-o /dev/null is written in place and stays the character device it was', async () => {
    const before = statSync('/dev/null');
    const r = await run('ir', mlp, '-o', '/dev/null');
    expect(r.code, r.stderr).toBe(0);
    const after = lstatSync('/dev/null');
    expect(after.isCharacterDevice()).toBe(true);
    expect([after.rdev, after.ino]).toEqual([before.rdev, before.ino]);
    expect(readdirSync('/dev').filter((f) => f.startsWith('.null.'))).toEqual([]);
  });

  if (!isRoot) console.log(`skipping the mknod test: making a device node needs root, and this runs as uid ${process.getuid?.()}`);
  it.skipIf(!isRoot)('-o that is a character device made with mknod: written in place, still the same device', async () => {
    const dir = tempDir();
    // major 1, minor 3: the null device, so writing into it is harmless
    const device = join(dir, 'seed_mlp.js');
    const made = spawnSync('mknod', [device, 'c', '1', '3'], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const before = lstatSync(device);
    const ir = await run('ir', mlp, '-o', device);
    expect(ir.code, ir.stderr).toBe(0);
    // one of compile's outputs: the device written in place, the other file as usual
    const compiled = await run('compile', mlp, '-o', dir, '--emit', 'both');
    expect(compiled.code, compiled.stderr).toBe(0);
    const now = lstatSync(device);
    expect(now.isCharacterDevice()).toBe(true);
    expect([now.rdev, now.ino]).toEqual([before.rdev, before.ino]);
    expect(lstatSync(join(dir, 'seed_mlp.ts')).isFile()).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['seed_mlp.js', 'seed_mlp.ts']);
  });

  it('replacing a regular file keeps its permission bits', async () => {
    const dir = tempDir({ 'm.ir': 'old\n' });
    chmodSync(join(dir, 'm.ir'), 0o640);
    const r = await run('ir', mlp, '-o', join(dir, 'm.ir'));
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'm.ir'), 'utf8')).toMatch(/^graph seed_mlp/);
    expect(statSync(join(dir, 'm.ir')).mode & 0o777).toBe(0o640);
  });
});

describe('failed writes leave no temp file', () => {
  it('a full disk: "no space left on device", the old file intact, no temp file', async () => {
    const dir = tempDir();
    const full = join(dir, 'fs');
    mkdirSync(full);
    const mounted = mountTmpfs(full, 'size=64k');
    console.log(mounted ? 'full disk: a 64 KiB tmpfs' : 'full disk: cannot mount a tmpfs here; injecting ENOSPC into the write instead');
    try {
      writeFileSync(join(full, 'big.ir'), 'old\n');
      writeFileSync(join(dir, 'big.nn'), bigSpec()); // its IR is far above 64 KiB
      if (!mounted) {
        const write = fs.writeSync;
        vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, ...rest: unknown[]) => {
          if (fd > 2) throw errno('ENOSPC', 'write');
          return (write as (...a: unknown[]) => number)(fd, ...rest);
        }) as typeof fs.writeSync);
      }
      const r = await run('ir', join(dir, 'big.nn'), '-o', join(full, 'big.ir'));
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`${join(full, 'big.ir')}: error: cannot write file: no space left on device\n`);
      expect(readFileSync(join(full, 'big.ir'), 'utf8')).toBe('old\n');
      expect(readdirSync(full)).toEqual(['big.ir']);
    } finally {
      if (mounted) unmount(full);
    }
  });

  it('-o /dev/full (a device that is always full): exit 1, "no space left on device", still a device', async () => {
    const r = await run('ir', mlp, '-o', '/dev/full');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('/dev/full: error: cannot write file: no space left on device\n');
    expect(lstatSync('/dev/full').isCharacterDevice()).toBe(true);
  });

  it('a read-only file system is reported as such, not as "no such file or directory"', async () => {
    const dir = tempDir();
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    const mounted = mountTmpfs(ro, 'size=64k,ro');
    console.log(mounted ? 'read-only: a read-only tmpfs' : 'read-only: cannot mount a tmpfs here; injecting EROFS into mkdir and open instead');
    try {
      if (!mounted) {
        vi.spyOn(fs, 'mkdirSync').mockImplementation(() => {
          throw errno('EROFS', 'mkdir');
        });
        const open = fs.openSync;
        vi.spyOn(fs, 'openSync').mockImplementation(((path: fs.PathLike, ...rest: unknown[]) => {
          if (String(path).startsWith(ro + sep)) throw errno('EROFS', 'open');
          return (open as (...a: unknown[]) => number)(path, ...rest);
        }) as typeof fs.openSync);
      }
      const c = await run('compile', mlp, '-o', join(ro, 'a', 'b'));
      expect(c.code).toBe(1);
      expect(c.stderr).toBe(`${join(ro, 'a', 'b')}: error: cannot create the output directory: read-only file system\n`);
      const w = await run('ir', mlp, '-o', join(ro, 'm.ir'));
      expect(w.code).toBe(1);
      expect(w.stderr).toBe(`${join(ro, 'm.ir')}: error: cannot write file: read-only file system\n`);
    } finally {
      if (mounted) unmount(ro);
    }
  });

  it('a write error part-way through compile: none of the files, no temp file, no output folder', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const write = fs.writeSync;
    let calls = 0;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, ...rest: unknown[]) => {
      // the first file is written whole; the second fails
      if (fd > 2 && ++calls > 1) throw errno('EIO', 'write');
      return (write as (...a: unknown[]) => number)(fd, ...rest);
    }) as typeof fs.writeSync);
    const r = await run('compile', mlp, '-o', out, '--emit', 'both');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${join(out, 'seed_mlp.js')}: error: cannot write file: input/output error\n`);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('SIGINT while compile writes its files: exit 130 and no temp file', async () => {
    const dir = tempDir({ 'wide.nn': wideSpec });
    const out = join(dir, 'out');
    mkdirSync(out);
    let sawTemp = '';
    const watcher = watch(out);
    const r = await spawnCli(['compile', join(dir, 'wide.nn'), '-o', out], (child) => {
      watcher.on('change', (_event, file) => {
        if (!sawTemp && String(file).endsWith('.tmp')) {
          sawTemp = String(file);
          child.kill('SIGINT');
        }
      });
    });
    watcher.close();
    expect(sawTemp, r.stderr).toMatch(/^\.wide\.ts\.\d+\.[0-9a-f]+\.tmp$/);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(temps(out)).toEqual([]);
    // what is there is whole: the write finished (synchronously) before the signal was handled, or never began
    expect(readdirSync(out).filter((f) => f !== 'wide.ts')).toEqual([]);
    if (existsSync(join(out, 'wide.ts'))) expect(readFileSync(join(out, 'wide.ts'), 'utf8')).toMatch(/\n$/);
  }, 120_000);

  it('SIGTERM during compile: exit 143 and no temp file', async () => {
    const dir = tempDir({ 'wide.nn': wideSpec });
    const out = join(dir, 'out');
    let sent = false;
    const r = await spawnCli(['compile', join(dir, 'wide.nn'), '-o', out, '--print-after-all'], (child) => {
      // the IR after the first pass: the run is under way, its handlers installed
      child.stderr!.on('data', () => {
        if (!sent) {
          sent = true;
          child.kill('SIGTERM');
        }
      });
    });
    expect(sent).toBe(true);
    expect(r.code, r.stderr).toBe(143);
    expect(temps(out)).toEqual([]);
  }, 120_000);
});

describe('a closed pipe on stdout', () => {
  // The reader takes the first chunk and closes its end, as `head -1` does.
  it.each([
    ['ir', []],
    ['check', []],
    ['fmt', []],
    ['convert', ['--to', 'json']],
  ])('modelc %s big.nn | head -1: exit 0, nothing on stderr', async (command, extra) => {
    const dir = tempDir({ 'big.nn': bigSpec() });
    let chunks = 0;
    const r = await spawnCli([command, join(dir, 'big.nn'), ...extra], (child) => {
      child.stdout!.once('data', () => {
        chunks++;
        child.stdout!.destroy();
      });
    });
    expect(chunks).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.signal).toBe(null);
    expect(r.code).toBe(0);
  }, 60_000);
});

/** `rows` examples of 16 features in [-1, 1) and a label, for seed_mlp. */
function csv(rows: number): string {
  const header = [...Array.from({ length: 16 }, (_, i) => `f${i}`), 'y'].join(',');
  const lines = Array.from({ length: rows }, (_, r) => {
    const f = Array.from({ length: 16 }, (_, i) => (((r * 17 + i * 5) % 23) / 11.5 - 1).toFixed(3));
    return [...f, Number(f[0]) + Number(f[1]) > 0 ? 1 : 0].join(',');
  });
  return [header, ...lines].join('\n') + '\n';
}

describe('modelc train keeps its work', () => {
  it('an -o that is an existing file fails before training starts', async () => {
    const dir = tempDir({ out: 'not a folder\n' });
    const started = Date.now();
    // MNIST for the spec's 50 epochs: minutes if training began
    const r = await run('train', mlp, '-o', join(dir, 'out'));
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${join(dir, 'out')}: error: cannot create the output directory: it is a regular file\n`);
    expect(r.stdout).toBe('');
    expect(readFileSync(join(dir, 'out'), 'utf8')).toBe('not a folder\n');
  });

  it('an output name taken by a FIFO, or an -o under a file, fails before training starts', async () => {
    const dir = tempDir({ file: 'x' });
    mkdirSync(join(dir, 'out'));
    expect(spawnSync('mkfifo', [join(dir, 'out', 'history.json')]).status).toBe(0);
    const fifo = await run('train', mlp, '-o', join(dir, 'out'));
    expect(fifo.code).toBe(1);
    expect(fifo.stderr).toContain('history.json: error: cannot write file: it is a FIFO');
    expect(fifo.stderr).not.toContain('training');
    const under = await run('train', mlp, '-o', join(dir, 'file', 'out'));
    expect(under.code).toBe(1);
    expect(under.stderr).toContain(`cannot create the output directory: '${join(dir, 'file')}' is a regular file, not a directory`);
    expect(under.stderr).not.toContain('training');
  });

  it('a save that fails after training keeps the weights in a fallback file it names, and exits 1', async () => {
    const dir = tempDir({ 'data.csv': csv(40) });
    const out = join(dir, 'out');
    const rename = fs.renameSync;
    vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      if (String(to).startsWith(out + sep)) throw errno('ENOSPC', 'rename');
      rename(from, to);
    });
    const r = await run('train', mlp, '--data', join(dir, 'data.csv'), '--label', 'y', '--epochs', '1', '-o', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('training seed_mlp on 40 examples');
    expect(r.stderr).toContain(`${join(out, 'seed_mlp.safetensors')}: error: cannot write file: no space left on device`);
    const kept = /error: the outputs were not written; the trained weights were saved to (\S+\.safetensors) instead\n$/.exec(r.stderr)?.[1];
    expect(kept, r.stderr).toBeDefined();
    try {
      expect(kept!.startsWith(tmpdir() + sep)).toBe(true);
      const weights = readSafetensors(readFileSync(kept!));
      expect(weights.metadata['modelc.model']).toBe('seed_mlp');
      expect(weights.metadata['modelc.epochs']).toBe('1');
      attachWeights(lowerFile(mlp).graph, weights.tensors); // they fit the model
    } finally {
      if (kept) rmSync(kept, { force: true });
    }
    // the output folder made for the save is gone again, with no temp file
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual(['data.csv']);
  });
});

describe('bad option values are usage errors (exit 2)', () => {
  const out = () => join(tempDir(), 'out');
  it.each([
    ['ir --seed abc', ['ir', mlp, '--seed', 'abc'], "option '--seed <n>' argument 'abc' is invalid"],
    ['ir --seed 1e30', ['ir', mlp, '--seed', '1e30'], "argument '1e30' is invalid. expected an integer"],
    ['ir --seed 1.5', ['ir', mlp, '--seed', '1.5'], "argument '1.5' is invalid"],
    ['ir --passes fold-bn,nope', ['ir', mlp, '--passes', 'fold-bn,nope'], "argument 'fold-bn,nope' is invalid. unknown pass 'nope'"],
    ['ir --print-after nope', ['ir', mlp, '-O', '--print-after', 'nope'], "option '--print-after <pass...>' argument 'nope' is invalid. unknown pass 'nope'"],
    ['ir --print-after without passes', ['ir', mlp, '--print-after', 'fold-nb'], "unknown pass 'fold-nb'; did you mean 'fold-bn'?"],
    ['verify --passes nope', ['verify', mlp, '--passes', 'nope'], "unknown pass 'nope'"],
    ['verify --batch 0', ['verify', mlp, '--batch', '0'], '--batch must be a positive integer'],
    ['compile --seed abc', ['compile', mlp, '-o', '<out>', '--seed', 'abc'], "argument 'abc' is invalid"],
    ['compile --name a/b', ['compile', mlp, '-o', '<out>', '--name', 'a/b'], "option '--name <id>' argument 'a/b' is invalid. expected a plain file name"],
    ['export --seed 9007199254740992', ['export', mlp, '-o', '<out>', '--seed', '9007199254740992'], 'is invalid. expected an integer'],
    ['init --seed x', ['init', mlp, '-o', '<out>', '--seed', 'x'], "argument 'x' is invalid"],
    ['train --seed abc', ['train', mlp, '-o', '<out>', '--seed', 'abc'], "argument 'abc' is invalid"],
    ['train --data x.parquet', ['train', mlp, '-o', '<out>', '--data', 'x.parquet'], "unknown data source 'x.parquet'"],
    ['train --data x.csv without --label', ['train', mlp, '-o', '<out>', '--data', 'x.csv'], 'a CSV file needs --label'],
    ['train --name ../x', ['train', mlp, '-o', '<out>', '--name', '../x'], 'expected a plain file name'],
    ['import --name a/b', ['import', mlp, '-o', '<out>', '--name', 'a/b'], 'expected a plain file name'],
  ])('%s', async (_name, args, message) => {
    const o = out();
    const r = await run(...args.map((a) => (a === '<out>' ? o : a)));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
    expect(existsSync(o)).toBe(false);
  });
});
