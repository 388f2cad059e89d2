import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatIssue, loadConfig } from '../../../src/config/load.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { ERROR_CASES, VALID_CASES, type ResolvedCase } from './resolved-cases.js';

/**
 * What loadConfig makes of each input, compared with a snapshot taken from
 * the code before the config shape moved into the schema: the resolved
 * Config must stay identical in shape and values (a key that is present but
 * undefined is kept apart from a missing one), and so must every warning and
 * error. Key order is not compared.
 */

const SHIPPED: ResolvedCase[] = [
  {
    name: 'example',
    yaml: readFileSync('config/example.yaml', 'utf8'),
    files: { 'secrets/m365-client-secret': 's\n', 'secrets/legacy-password': 'p\n' },
    env: { MAILGATE_ADMIN_TOKEN: 't'.repeat(24), GOOGLE_CLIENT_SECRET: 'g', M365_APP_SECRET: 'm', CORP_CLIENT_SECRET: 'c', WEBHOOK_SECRET: 'w' },
  },
  { name: 'mailgate', yaml: readFileSync('config/mailgate.yaml', 'utf8') },
  {
    // The same input as load.test.ts's first case.
    name: 'full',
    yaml: `server:
  listen: 0.0.0.0:9025
  publicUrl: https://mg.example.com/
dataDir: ./state
retention: { outbox: 7d }
credentials:
  - name: g
    provider: google
    clientId: cid
    clientSecretFile: ./secret.txt
accounts:
  - name: support
    email: support@example.com
    incoming:
      protocol: imap
      host: imap.example.com
      auth: { method: xoauth2, credential: g }
      afterDelivery: move
      moveTo: Done
    outgoing:
      host: smtp.example.com
      tls: false
      auth: { method: xoauth2, credential: g }
    webhook: hook
  - name: pop
    email: pop@example.com
    incoming:
      protocol: pop3
      host: pop.example.com
      tls: false
      auth: { method: password, password: "pw \${SUFFIX}" }
      afterDelivery: delete
    webhook: hook
webhooks:
  - name: hook
    url: https://\${HOOK_HOST}/x
    secret: s
    timeout: 10s
    maxInlineAttachmentBytes: 1MB
`,
    files: { 'secret.txt': 'from-file\n' },
    env: { HOOK_HOST: 'hooks.example.com', SUFFIX: 'x' },
  },
];

/** Sorted keys, undefined spelled out, the temp dir replaced by <dir>. */
function normalize(value: unknown, dir: string): unknown {
  if (value === undefined) return '<undefined>';
  if (typeof value === 'string') return value.split(dir).join('<dir>');
  if (Array.isArray(value)) return value.map((v) => normalize(v, dir));
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(obj).sort().map((k) => [k, normalize(obj[k], dir)]));
  }
  return value;
}

async function resolveCase(c: ResolvedCase): Promise<string> {
  const dir = tmpDataDir('mg-snap-');
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(path, c.yaml);
  for (const [name, text] of Object.entries(c.files ?? {})) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const known = c.databaseCredentials;
  const r = await loadConfig(path, { env: c.env ?? {}, ...(known ? { databaseCredentials: async () => new Set(known) } : {}) });
  const result = r.ok
    ? { ok: true, config: r.config, warnings: r.warnings.map(formatIssue) }
    : { ok: false, errors: r.errors.map(formatIssue) };
  return `${JSON.stringify(normalize(result, dir), null, 2)}\n`;
}

describe('resolved config snapshot', () => {
  it.each([...SHIPPED, ...VALID_CASES])('resolves $name', async (c) => {
    const text = await resolveCase(c);
    expect(JSON.parse(text)).toMatchObject({ ok: true });
    await expect(text).toMatchFileSnapshot(`./__snapshots__/resolved/${c.name}.json`);
  });

  it.each(ERROR_CASES)('reports $name', async (c) => {
    const text = await resolveCase(c);
    expect(JSON.parse(text)).toMatchObject({ ok: false });
    await expect(text).toMatchFileSnapshot(`./__snapshots__/resolved/${c.name}.json`);
  });
});
