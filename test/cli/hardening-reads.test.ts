/**
 * Hostile inputs for every file modelc reads (issue 16): a TF.js weight shard
 * named in model.json must stay, symbolic links resolved, inside the folder
 * of model.json, and one that does not is refused without being read (a
 * sentinel outside that would import cleanly if read); a FIFO, /dev/zero, a
 * directory or a symlink loop as a spec, shard, --weights file, CSV, .npy,
 * .keras or .h5 file ends within seconds with exit 1 and a message naming
 * the path and what the file is; a file above the size cap of its kind (a
 * sparse file, so nothing is written) is refused before it is read.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, ftruncateSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCap } from '../../src/util/fs.js';
import { run, tempDir, type Run } from '../helpers/cli.js';

const mlp = 'examples/seed_mlp.nn';
const fixture = 'test/fixtures/tfjs/sequential';
/** How a message would give a file's size away. */
const sizeSaid = /\d+ bytes|hold \d+/;

/**
 * Runs the CLI in-process, failing the test if it takes `seconds` or more.
 * Limits are generous (a busy 2-core machine; `train` compiles its training
 * module before it reads data): they tell "at once" from "blocked until a
 * FIFO's unblocker came" (`mkfifo`).
 */
async function quick(seconds: number, ...args: string[]): Promise<Run> {
  const start = Date.now();
  const r = await run(...args);
  expect(Date.now() - start, `modelc ${args.join(' ')} took too long`).toBeLessThan(seconds * 1000);
  return r;
}

/** Exit 1 with one clean diagnostic line naming `path`, matching `message`; no stack trace, no internal error. */
function refused(r: Run, path: string, message: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr.startsWith(`${path}:`), r.stderr).toBe(true);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
}

const unblockers: ChildProcess[] = [];
afterAll(() => unblockers.forEach((c) => c.kill()));

/** Seconds after which a FIFO's unblocker opens it: above every `quick` limit. */
const UNBLOCK_AFTER = 40;

/**
 * A FIFO at `path`, and a process that opens it for writing after
 * UNBLOCK_AFTER seconds and closes it: a reader blocked on it (the in-process
 * CLI blocks the test's own thread, so no timer here could end it) then sees
 * end of file, and the test fails on its time limit instead of hanging.
 */
function mkfifo(path: string): string {
  execFileSync('mkfifo', [path]);
  const child = spawn('sh', ['-c', `sleep ${UNBLOCK_AFTER}; exec 3<>"$0"; sleep 0.2`, path], { stdio: 'ignore' });
  child.unref();
  unblockers.push(child);
  return path;
}

/**
 * `root/model/model.json` (the fixture's small Sequential model) whose one
 * shard path is `shard`, and a sentinel `root/secret.bin` outside the model's
 * folder that is exactly the shard's size, so that reading it would succeed.
 */
function modelWithShard(shard: string | ((root: string) => string)): { root: string; dir: string; json: string } {
  const root = tempDir();
  const dir = join(root, 'model');
  mkdirSync(dir);
  copyFileSync(join(fixture, 'weights.bin'), join(root, 'secret.bin'));
  copyFileSync(join(fixture, 'weights.bin'), join(dir, 'weights.bin'));
  const model = JSON.parse(readFileSync(join(fixture, 'model.json'), 'utf8'));
  model.weightsManifest[0].paths = [typeof shard === 'string' ? shard : shard(root)];
  const json = join(dir, 'model.json');
  writeFileSync(json, JSON.stringify(model));
  return { root, dir, json };
}

/** A spec, shard or data file refused as not a regular file. */
const notRegular = /cannot read (file|weight shard '[^']*' of [^:]*): it is a (FIFO \(named pipe\)|character device), not a regular file/;

describe('weight shards stay inside the folder of model.json', () => {
  it('the fixture loads with its shard in place, through a symlink inside the folder and from a subfolder', async () => {
    // the guards below must not refuse what is legitimate
    const plain = modelWithShard('weights.bin');
    expect((await run('check', plain.json)).code).toBe(0);
    const linked = modelWithShard('link.bin');
    symlinkSync('weights.bin', join(linked.dir, 'link.bin'));
    expect((await run('check', linked.json)).code).toBe(0);
    const nested = modelWithShard('shards/./w.bin');
    mkdirSync(join(nested.dir, 'shards'));
    copyFileSync(join(fixture, 'weights.bin'), join(nested.dir, 'shards', 'w.bin'));
    expect((await run('check', nested.json)).code).toBe(0);
  });

  it.each([
    ['a path with ..', '../secret.bin', /weight shard '\.\.\/secret\.bin' is outside the folder of .*model\.json/],
    ['a path that goes down, then up and out', 'sub/../../secret.bin', /weight shard 'sub\/\.\.\/\.\.\/secret\.bin' is outside the folder/],
    ['an absolute path', (root: string) => join(root, 'secret.bin'), /weight shard '\/.*secret\.bin' is an absolute path/],
  ])('%s is refused without reading the file, located in model.json', async (_, shard, message) => {
    const { json } = modelWithShard(shard);
    const r = await quick(10, 'check', json);
    // located at the path in model.json (line 1, some column), not at the target
    refused(r, json, message);
    expect(r.stderr).toMatch(/model\.json:1:\d+: error: /);
    expect(r.stderr).toContain('must be inside its folder');
    // nothing about the target's size (a shard that is read and does not fit says how many bytes it holds)
    expect(r.stderr).not.toMatch(sizeSaid);
  });

  it('a shard listed twice, or one more than the weights need, is refused before it is read', async () => {
    // a manifest naming one big shard many times had been read again for each mention
    const twice = modelWithShard('weights.bin');
    const model = JSON.parse(readFileSync(twice.json, 'utf8'));
    model.weightsManifest[0].paths = ['weights.bin', 'weights.bin'];
    writeFileSync(twice.json, JSON.stringify(model));
    refused(await quick(10, 'check', twice.json), twice.json, /weight shard 'weights\.bin' is already one of the shards of this group/);
    // a second group naming the same file
    const [group] = model.weightsManifest;
    model.weightsManifest = [{ ...group, paths: ['weights.bin'] }, { paths: ['weights.bin'], weights: [] }];
    writeFileSync(twice.json, JSON.stringify(model));
    refused(await quick(10, 'check', twice.json), twice.json, /weight shard 'weights\.bin' is already one of the shards of weights group 1/);
    // a shard after the group's bytes are complete is not opened: a FIFO there would block a read
    const extra = modelWithShard('weights.bin');
    mkfifo(join(extra.dir, 'more.bin'));
    const m = JSON.parse(readFileSync(extra.json, 'utf8'));
    m.weightsManifest[0].paths = ['weights.bin', 'more.bin'];
    writeFileSync(extra.json, JSON.stringify(m));
    refused(await quick(10, 'check', extra.json), extra.json, /weights group 1 needs \d+ bytes, which its shards before 'more\.bin' already hold/);
  });

  it('a manifest weight above the tensor limit is refused in model.json, before any shard is read', async () => {
    const big = modelWithShard('huge.bin');
    mkfifo(join(big.dir, 'huge.bin'));
    const model = JSON.parse(readFileSync(big.json, 'utf8'));
    model.weightsManifest[0].weights[0].shape = [65536, 65536];
    writeFileSync(big.json, JSON.stringify(model));
    const r = await quick(10, 'check', big.json);
    refused(r, big.json, /weight 'd1\/kernel': shape \[65536,65536\] has 4\.3e9 elements; a tensor holds at most 2\^31 - 1/);
    expect(r.stderr).toMatch(/model\.json:1:\d+: error: /);
  });

  it('../../etc/passwd is refused without its size appearing', async () => {
    const { json } = modelWithShard('../../../../../../../../etc/passwd');
    const r = await quick(10, 'import', json, '-o', join(tempDir(), 'out'));
    refused(r, json, /weight shard '(\.\.\/)+etc\/passwd' is outside the folder/);
    expect(r.stderr).not.toMatch(sizeSaid);
  });

  it('a symlink in the folder that points outside it is refused, as a shard and as a folder on the way', async () => {
    const file = modelWithShard('escape.bin');
    symlinkSync(join(file.root, 'secret.bin'), join(file.dir, 'escape.bin'));
    const r = await quick(10, 'check', file.json);
    refused(r, file.json, /weight shard 'escape\.bin' is outside the folder of .*model\.json \(through a symbolic link\)/);
    expect(r.stderr).not.toMatch(sizeSaid);

    const folder = modelWithShard('up/secret.bin');
    symlinkSync(folder.root, join(folder.dir, 'up'));
    refused(await quick(10, 'check', folder.json), folder.json, /weight shard 'up\/secret\.bin' is outside the folder .*through a symbolic link/);
    // a missing file behind a symlinked folder is refused too, without saying whether it exists
    const missing = modelWithShard('up/nothing.bin');
    symlinkSync(missing.root, join(missing.dir, 'up'));
    refused(await quick(10, 'check', missing.json), missing.json, /weight shard 'up\/nothing\.bin' is outside the folder .*through a symbolic link/);
  });

  it('a FIFO as a shard inside the folder, and /dev/zero through a symlink, end at once', async () => {
    const fifo = modelWithShard('pipe.bin');
    mkfifo(join(fifo.dir, 'pipe.bin'));
    refused(await quick(10, 'check', fifo.json), join(fifo.dir, 'pipe.bin'), /cannot read weight shard 'pipe\.bin' of .*model\.json \(needed for weight 'd1\/kernel'\): it is a FIFO \(named pipe\), not a regular file/);
    const zero = modelWithShard('zero.bin');
    symlinkSync('/dev/zero', join(zero.dir, 'zero.bin'));
    refused(await quick(10, 'check', zero.json), zero.json, /weight shard 'zero\.bin' is outside the folder/);
    const absolute = modelWithShard('/dev/zero');
    refused(await quick(10, 'check', absolute.json), absolute.json, /weight shard '\/dev\/zero' is an absolute path/);
  });

  it('a character device inside the folder as a shard is refused (mknod, as root)', async (ctx) => {
    if (process.getuid?.() !== 0) {
      console.log('skipped: mknod of a character device needs root');
      return ctx.skip();
    }
    const dev = modelWithShard('zero.bin');
    execFileSync('mknod', [join(dev.dir, 'zero.bin'), 'c', '1', '5']);
    refused(await quick(10, 'check', dev.json), join(dev.dir, 'zero.bin'), notRegular);
  });
});

describe('non-regular files as every kind of input end within seconds with exit 1', () => {
  /** In a fresh folder: a FIFO named `name`, and `zero-<name>`, a symlink to /dev/zero. */
  function hostile(name: string): { fifo: string; zero: string; dir: string } {
    const dir = tempDir();
    const zero = join(dir, `zero-${name}`);
    symlinkSync('/dev/zero', zero);
    return { fifo: mkfifo(join(dir, name)), zero, dir };
  }

  it.each(['spec.nn', 'spec.json', 'model.keras', 'model.h5'])('%s as the spec of check, compile and train', async (name) => {
    const { fifo, zero, dir } = hostile(name);
    for (const path of [fifo, zero]) {
      refused(await quick(10, 'check', path), path, notRegular);
      refused(await quick(10, 'compile', path, '-o', join(dir, 'out')), path, notRegular);
      refused(await quick(30, 'train', path, '--data', 'mnist', '-o', join(dir, 'out')), path, notRegular);
    }
  });

  it('as --weights of compile and verify', async () => {
    const { fifo, zero, dir } = hostile('w.safetensors');
    for (const path of [fifo, zero]) {
      refused(await quick(10, 'compile', mlp, '--weights', path, '-o', join(dir, 'out')), path, notRegular);
      refused(await quick(10, 'verify', mlp, '--weights', path), path, notRegular);
    }
  });

  it('as CSV training data', async () => {
    const { fifo, zero, dir } = hostile('data.csv');
    for (const path of [fifo, zero]) {
      refused(await quick(30, 'train', mlp, '--data', path, '--label', 'y', '-o', join(dir, 'out')), path, notRegular);
    }
  });

  it('as .npy inputs and as .npy labels', async () => {
    const { fifo, zero, dir } = hostile('x.npy');
    for (const path of [fifo, zero]) {
      refused(await quick(30, 'train', mlp, '--data', path, '--labels', path, '-o', join(dir, 'out')), path, notRegular);
    }
    // a readable x.npy, so that the labels are read too
    const x = join(dir, 'real-x.npy');
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 16), }";
    const padded = header + ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
    writeFileSync(x, Buffer.concat([Buffer.from('\x93NUMPY\x01\x00', 'latin1'), Buffer.from([padded.length & 255, padded.length >> 8]), Buffer.from(padded), Buffer.alloc(2 * 16 * 4)]));
    refused(await quick(30, 'train', mlp, '--data', x, '--labels', fifo, '-o', join(dir, 'out')), fifo, notRegular);
  });

  it('a directory and a loop of symbolic links say so', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub.csv'));
    refused(await quick(30, 'train', mlp, '--data', join(dir, 'sub.csv'), '--label', 'y', '-o', join(dir, 'out')), join(dir, 'sub.csv'), /cannot read file: is a directory/);
    symlinkSync('loop.nn', join(dir, 'loop.nn'));
    refused(await quick(10, 'check', join(dir, 'loop.nn')), join(dir, 'loop.nn'), /cannot read file: too many levels of symbolic links/);
  });
});

describe('size caps', () => {
  /** A sparse file of `bytes` (nothing written, so nothing to read if the cap did not hold). */
  function sparse(path: string, bytes: number): string {
    const fd = openSync(path, 'w');
    ftruncateSync(fd, bytes);
    closeSync(fd);
    return path;
  }

  it('a spec one byte above the cap is refused at once with its size and the cap; one at the cap is read', async () => {
    const dir = tempDir();
    const cap = readCap('spec');
    const big = sparse(join(dir, 'big.nn'), cap + 1);
    const r = await quick(10, 'check', big);
    refused(r, big, new RegExp(`cannot read file: it is 256 MiB \\(${cap + 1} bytes\\), more than the 256 MiB \\(${cap} bytes\\) modelc reads as a spec`));
    // under the cap the file is read, and its NUL bytes are a syntax error, not a size error
    const small = sparse(join(dir, 'small.nn'), 1024);
    const s = await quick(10, 'check', small);
    expect(s.code).toBe(1);
    expect(s.stderr).not.toMatch(/more than the/);
  });

  it('a .keras archive whose config.json would inflate past the cap (a zip bomb) is refused before inflating', async () => {
    const dir = tempDir();
    const bytes = new Uint8Array(readFileSync('test/fixtures/keras/format/conv.keras'));
    // declare config.json's uncompressed size as the cap + 1 in the zip's central directory
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let patched = 0;
    for (let at = 0; at + 46 <= bytes.length; at++) {
      if (view.getUint32(at, true) !== 0x02014b50) continue;
      const nameLength = view.getUint16(at + 28, true);
      if (new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength)) !== 'config.json') continue;
      view.setUint32(at + 24, readCap('spec') + 1, true);
      patched++;
    }
    expect(patched).toBe(1);
    const bomb = join(dir, 'bomb.keras');
    writeFileSync(bomb, bytes);
    const r = await quick(10, 'check', bomb);
    refused(r, bomb, new RegExp(`its config.json inflates to ${readCap('spec') + 1} bytes, more than the ${readCap('spec')} bytes modelc reads as a spec`));
    // the same archive unpatched is read
    expect((await run('check', 'test/fixtures/keras/format/conv.keras')).code).toBe(0);
  });

  it('.npy data and --weights above their caps are refused without being read', async () => {
    const dir = tempDir();
    const npy = sparse(join(dir, 'x.npy'), readCap('npy') + 1);
    refused(await quick(30, 'train', mlp, '--data', npy, '--labels', npy, '-o', join(dir, 'out')), npy, /more than the .* modelc reads as a \.npy file/);
    const weights = sparse(join(dir, 'w.safetensors'), readCap('safetensors') + 1);
    refused(await quick(10, 'compile', mlp, '--weights', weights, '-o', join(dir, 'out')), weights, /more than the .* modelc reads as a safetensors file/);
  });
});
