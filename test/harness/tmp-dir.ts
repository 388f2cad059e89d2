import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, inject } from 'vitest';
import { removeTestTmp } from './tmp.js';

// Dirs made outside a run's root, removed after the test file that made them.
// Registered on import, while vitest collects the file (it imports this module
// afresh for each file: isolate, the default), so before the file's own hooks:
// it runs after them (sequence.hooks 'stack'), once its daemons are stopped.
const ownDirs: string[] = [];
afterAll(() => {
  for (const dir of ownDirs.splice(0)) removeTestTmp(dir);
});

/**
 * A fresh temporary dir. Under the global setup (integration, bench) it lives
 * in the run's root, which the global teardown removes; without it (unit,
 * daemon) it is made in os.tmpdir() and removed after the test file.
 */
export function tmpDataDir(prefix = 'mg-test-'): string {
  const root = inject('testTmpRoot');
  if (root) return mkdtempSync(join(root, prefix));
  const dir = mkdtempSync(join(tmpdir(), prefix));
  ownDirs.push(dir);
  return dir;
}
