import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Temporary files of a test run. Runs that have the global setup
 * (integration, bench) put everything under one root that the global
 * teardown removes; without it, tmpDataDir() removes each dir itself.
 * MAILGATE_KEEP_TEST_TMP=1 keeps them all, to debug a failure.
 */
export const KEEP_TEST_TMP = process.env.MAILGATE_KEEP_TEST_TMP === '1';

/** Left in a dir kept on purpose, so the next run's sweep (sweep.ts) leaves it for the developer. */
export const KEPT_MARKER = '.mailgate-kept';

/** Prefix of the per-run roots in os.tmpdir(); the pid after it is the run's. */
export const RUN_ROOT_PREFIX = 'mailgate-test-';

/** The per-run root, made by the global setup: /tmp/mailgate-test-<pid>-<random>. */
export function createTestTmpRoot(): string {
  const root = mkdtempSync(join(tmpdir(), `${RUN_ROOT_PREFIX}${process.pid}-`));
  chmodSync(root, 0o755); // Dovecot's mail processes (uid dovecot) must reach its base dir in here
  return root;
}

/** Removes a temporary dir of the tests, or says where it is kept. */
export function removeTestTmp(dir: string): void {
  if (KEEP_TEST_TMP) {
    console.log(`MAILGATE_KEEP_TEST_TMP=1: kept ${dir}`);
    try {
      writeFileSync(join(dir, KEPT_MARKER), '');
    } catch {
      // the dir is gone already: nothing to keep
    }
    return;
  }
  // Retries: a process still on its way out (Dovecot, the daemon) may write one last file meanwhile (ENOTEMPTY).
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}
