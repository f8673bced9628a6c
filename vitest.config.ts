import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Several tests compile and run whole generated modules or TF.js training steps: a second or two
// each on a quiet 2-core machine, several times that on a busy one. Timeouts are a hang guard only.
//
// Golden files (`toMatchFileSnapshot`, today test/golden/*.ir from test/cli/cli.test.ts): locally a
// missing one is written and the test passes (accept a change with `npx vitest run -u`). Under CI a
// missing one must fail instead, or a deleted golden file would pass unnoticed. Vitest 4.1 does this
// by itself: with no `update` option and no UPDATE_SNAPSHOT it resolves `snapshotOptions.updateSnapshot`
// to 'none' when std-env's `isCI` holds (CI set to anything, or a known CI provider's variable), and
// SnapshotState._reconcile then counts an absent file as unmatched ("Snapshot `...` mismatched")
// without writing it. Checked with vitest 4.1.12: delete test/golden/seed_mlp.ir, then
// `CI=true npx vitest run test/cli/cli.test.ts -t golden` fails and leaves the file absent (also with
// CI=1); without CI it passes and writes the file back byte-identical; `CI=true ... -u` writes it too.
// The line below restates that default for CI so that a vitest upgrade cannot quietly weaken it; `-u`
// on the command line still overrides it (checked the same way).
//
// Workers: vitest's default is one fewer than the cores, which is a single worker on CI's 2 cores.
// The slow files are CPU-bound and independent, so one worker per core is faster: the whole suite
// took 406 s with 2 workers against about 600 s with 1 on this 2-core machine.
export default defineConfig({
  test: {
    maxWorkers: Math.max(1, availableParallelism()),
    testTimeout: 60_000,
    hookTimeout: 60_000,
    ...(process.env['CI'] ? { update: 'none' as const } : {}),
  },
});
