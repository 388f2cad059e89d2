import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // A hang guard, not a speed check: CPU-heavy unit tests (scrypt, 10 MB
          // inputs) take several seconds when the 2 shared cores are busy.
          testTimeout: 30_000,
        },
      },
      {
        // The built daemon as a real process (dist/cli.js); needs no mail server.
        test: {
          name: 'daemon',
          include: ['test/integration/daemon/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: ['test/integration/daemon/**', '**/node_modules/**'],
          environment: 'node',
          // One Dovecot + OAuth2 server + sinks for the whole run; every test
          // file uses its own mailbox users and data dirs.
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // Benchmarks against the same real servers; run by `npm run bench:*`,
        // never by `npm test` (no timing is asserted anywhere).
        test: {
          name: 'bench',
          include: ['bench/**/*.bench.ts'],
          environment: 'node',
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 20 * 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
