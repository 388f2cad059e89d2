import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export const ADMIN_TOKEN_FILE = 'admin.token';

/**
 * The admin token from the config, or, when the config sets none, a random
 * one kept in dataDir/admin.token (mode 0600) so the daemon starts with no
 * setup and the token survives restarts. Admins read it from that file.
 */
export function resolveAdminToken(
  configured: string | undefined,
  dataDir: string,
): { token: string; source: 'config' | 'file' | 'generated'; path: string | null } {
  if (configured) return { token: configured, source: 'config', path: null };
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token) return { token, source: 'file', path };
  }
  mkdirSync(dataDir, { recursive: true });
  const token = randomBytes(24).toString('base64url');
  writeFileSync(path, token + '\n', { mode: 0o600 });
  return { token, source: 'generated', path };
}
