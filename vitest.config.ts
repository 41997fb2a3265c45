import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/build.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests start real servers and a real Prometheus; two workers match the two-core machines.
    maxWorkers: 2,
  },
});
