import { defineConfig } from 'vitest/config';

// Several tests compile and run whole generated modules or TF.js training steps: a second or two
// each on a quiet 2-core machine, several times that on a busy one. Timeouts are a hang guard only.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
