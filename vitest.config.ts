import { defineConfig } from 'vitest/config';

export default defineConfig({
  // One graphql module for every importer: Pothos and yoga load its CommonJS build, Vite would
  // otherwise hand the tests its .mjs twin, and graphql refuses types from "another realm".
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    // The files of a worker run one after another in its process, sharing its module cache: the app's
    // modules (schema, Prisma client, Agenda) load once per worker instead of once per file, about 2.5 s
    // of CPU each. Every file still runs its own app on its own database; test/support/file-setup.ts
    // resets what the process shares and fails a file that leaves its app running.
    isolate: false,
    setupFiles: ['test/support/file-setup.ts'],
    restoreMocks: true,
    // Bounds for a test that hangs, not speed targets: a busy machine stretches every test, and
    // waits end as soon as their state is reached (test/support/wait.ts).
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Each file runs its own gateway on its own database; two at a time suit a 2-core machine.
    maxWorkers: 2,
  },
});
