import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** dataDir holds raw mail, outbox bodies, the key and the admin token: only the daemon's user may read it. */
export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;

/**
 * Creates dataDir (0700) or tightens an existing one, and every regular file
 * directly in it (the database and its -wal/-shm, secret.key, admin.token,
 * backups) to 0600: a copied or restored volume often comes back with 0644.
 * Symlinks are left alone (never follow one out of dataDir). Returns what it
 * tightened, for the start-up log.
 */
export function prepareDataDir(dir: string): string[] {
  mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
  const tightened: string[] = [];
  const dirStat = lstatSync(dir);
  if (dirStat.isDirectory() && (dirStat.mode & 0o077) !== 0) {
    chmodSync(dir, DATA_DIR_MODE);
    tightened.push(dir);
  }
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(dir, entry.name);
    try {
      if ((lstatSync(path).mode & 0o077) !== 0) {
        chmodSync(path, DATA_FILE_MODE);
        tightened.push(path);
      }
    } catch {
      // removed meanwhile (a -shm of a closing connection): nothing to tighten
    }
  }
  return tightened;
}
