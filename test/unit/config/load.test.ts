import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatIssue, loadConfig } from '../../../src/config/load.js';
import { parseDuration, parseSize, formatDuration } from '../../../src/config/units.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

function write(text: string, name = 'mailgate.yaml'): string {
  const dir = tmpDataDir('mg-cfg-');
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const FULL = `server:
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
`;

describe('loadConfig', () => {
  it('types, defaults, resolves paths and freezes a valid config', async () => {
    const path = write(FULL);
    writeFileSync(join(path, '../secret.txt'), 'from-file\n');
    const r = await loadConfig(path, { env: { HOOK_HOST: 'hooks.example.com', SUFFIX: 'x' } });
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    const c = r.config;
    expect(c.server).toEqual({ listen: { host: '0.0.0.0', port: 9025 }, publicUrl: 'https://mg.example.com', adminToken: undefined, metricsToken: undefined, allowedHosts: [], trustProxy: [] });
    expect(c.dataDir).toBe(resolve(path, '../state'));
    expect(c.credentials[0]).toMatchObject({ clientSecret: 'from-file', tenant: 'common', grant: 'authorization_code' });
    const [imap, pop] = c.accounts;
    expect(imap?.incoming).toMatchObject({ port: 993, tls: true, user: 'support@example.com', mailboxes: ['INBOX'], mode: 'idle', pollIntervalMs: 60_000, idleResyncMs: 300_000, afterDelivery: 'move', moveTo: 'Done' });
    expect(imap?.outgoing).toMatchObject({ port: 587, tls: false, from: 'support@example.com' });
    expect(pop?.incoming).toMatchObject({ port: 110, mode: 'poll', auth: { method: 'password', password: 'pw x' } });
    expect(pop?.outgoing).toBeUndefined();
    expect(c.webhooks[0]).toEqual({
      name: 'hook', url: 'https://hooks.example.com/x', secret: 's', maxAttempts: 15,
      backoff: { initialMs: 5_000, maxMs: 3_600_000 }, timeoutMs: 10_000, maxInlineAttachmentBytes: 1_048_576, maxBodyBytes: 25 * 1024 * 1024, concurrency: 8,
      signature: 'mailgate', secrets: ['s'], issueKeyPattern: '[A-Z][A-Z0-9_]+-[0-9]+',
    });
    expect(c.tokens).toEqual({ refreshBeforeMs: 600_000, refreshConcurrency: 8 });
    expect(c.retention).toEqual({ messagesMs: 30 * 86_400_000, outboxMs: 7 * 86_400_000 });
    expect(Object.isFrozen(c.accounts[0]?.incoming.mailboxes)).toBe(true);
  });

  it('reports a typo, a wrong type and an unset variable together, each at its position', async () => {
    const path = write(`server:
  listen: 127.0.0.1:8025
  adminToken: \${NOT_SET_ANYWHERE}
webhooks:
  - name: hook
    url: http://127.0.0.1/x
    secret: s
    maxAttempts: "15"
    timeoutt: 5s
`);
    const r = await loadConfig(path, { env: {} });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map(formatIssue)).toEqual([
      `${path}:3:15 environment variable NOT_SET_ANYWHERE is not set`,
      `${path}:8:18 webhooks.0.maxAttempts: expected number, got string`,
      `${path}:9:5 unknown key "timeoutt" (did you mean "timeout"?)`,
    ]);
  });

  it('checks names, references and combinations', async () => {
    const withEmail = (email: string) => `credentials:
  - { name: c, provider: custom, clientId: x }
  - { name: c, provider: google, clientId: y, tenant: t }
accounts:
  - name: a
    email: ${email}
    incoming:
      protocol: pop3
      host: h
      mode: idle
      auth: { method: xoauth2, credential: nope }
      afterDelivery: move
    webhook: missing
webhooks: []
`;
    const path = write(withEmail('not-an-email'));
    const r = await loadConfig(path, { env: {} });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.errors.map(formatIssue).join('\n');
    expect(text).toContain(':6:12 accounts.0.email: invalid email address');
    // Semantic checks run once the shape is right: fix the email and look again.
    const path2 = write(withEmail('a@example.com'));
    const r2 = await loadConfig(path2, { env: {} });
    if (r2.ok) throw new Error('expected errors');
    const msgs = r2.errors.map((e) => `${e.line}:${e.col} ${e.message}`);
    expect(msgs).toEqual(
      expect.arrayContaining([
        '2:5 credential "c": provider custom needs tokenEndpoint',
        '2:5 credential "c": provider custom needs authorizationEndpoint',
        '2:5 credential "c": provider custom needs scopes',
        '3:13 duplicate credential name "c"',
        '3:55 tenant only applies to microsoft providers',
        '13:14 webhook "missing" is not defined in webhooks',
        '10:13 mode applies to imap only (pop3 always polls)',
        '12:22 pop3 cannot move messages (use delete, seen or none)',
        '12:22 afterDelivery: move needs moveTo',
        '11:44 credential "nope" is not defined in credentials, nor in the database (mailgate credentials add)',
      ]),
    );
    expect(msgs).toHaveLength(10);
  });

  it('reads cluster (leaseTtl in ms) and refuses it without store.kind: postgres, at file:line:col', async () => {
    const path = write(`dataDir: ./state
cluster:
  nodeName: replica-1
  leaseTtl: 9s
`);
    const r = await loadConfig(path, { env: {} });
    if (r.ok) throw new Error('expected cluster without store.kind: postgres to be refused');
    expect(r.errors.map((e) => `${e.file}:${e.line}:${e.col} ${e.message}`)).toEqual([
      `${path}:2:1 cluster needs store.kind: postgres (several replicas share one PostgreSQL database; SQLite runs one replica and needs no cluster section)`,
    ]);
    const bad = await loadConfig(write('cluster:\n  leaseTtl: 100ms\n  nodeName: "no spaces"\n'), { env: {} });
    if (bad.ok) throw new Error('expected errors');
    expect(bad.errors.map((e) => `${e.line}:${e.col} ${e.message}`)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^2:13 .*leaseTtl must be between 1s and 10m/), expect.stringMatching(/^3:13 .*expected a name/)]),
    );
    const plain = await loadConfig(write('dataDir: ./state\n'), { env: {} });
    expect(plain.ok && plain.config.cluster).toBeUndefined();
  });

  it('accepts an account naming a credential kept in the database of its dataDir', async () => {
    const yaml = `dataDir: ./state
accounts:
  - name: a
    email: a@example.com
    incoming: { protocol: imap, host: imap.example.com, auth: { method: xoauth2, credential: from-db } }
    webhook: h
webhooks:
  - { name: h, url: http://x/y, secret: s }
`;
    const path = write(yaml);
    const asked: string[] = [];
    const databaseCredentials = async (dataDir: string) => {
      asked.push(dataDir);
      return new Set(['from-db']);
    };
    const r = await loadConfig(path, { env: {}, databaseCredentials });
    expect(r.ok).toBe(true);
    expect(asked).toEqual([join(dirname(path), 'state')]);
    const without = await loadConfig(path, { env: {}, databaseCredentials: async () => new Set() });
    expect(without.ok ? [] : without.errors.map((e) => e.message)).toEqual([
      'credential "from-db" is not defined in credentials, nor in the database (mailgate credentials add)',
    ]);
  });

  it('names an unreadable secret file and both-given secrets', async () => {
    const path = write(`webhooks:
  - name: h
    url: http://x/y
    secretFile: ./nope.txt
  - name: i
    url: http://x/y
    secret: a
    secretFile: ./nope.txt
`);
    const r = await loadConfig(path, { env: {} });
    if (r.ok) throw new Error('expected errors');
    expect(r.errors.map((e) => `${e.line}:${e.col} ${e.message}`)).toEqual([
      `4:17 cannot read secretFile: The file ${resolve(path, '../nope.txt')} does not exist. Check the path for typos (a relative path in the config file is relative to the folder of that file).`,
      '8:17 set either secret or secretFile, not both',
    ]);
  });

  it('reports YAML syntax errors with a position', async () => {
    const path = write('server:\n  listen: [1, 2\n');
    const r = await loadConfig(path, { env: {} });
    if (r.ok) throw new Error('expected errors');
    expect(r.errors[0]?.file).toBe(path);
    expect(r.errors[0]?.line).toBeGreaterThanOrEqual(2);
    expect(r.errors[0]?.message).toMatch(/^YAML: /);
  });

  it('reports a missing file and a missing required key', async () => {
    const r = await loadConfig('/nonexistent/mailgate.yaml', { env: {} });
    expect(r).toEqual({ ok: false, errors: [{ file: '/nonexistent/mailgate.yaml', line: 1, col: 1, message: 'cannot read config file: The file /nonexistent/mailgate.yaml does not exist. Check the path for typos (a relative path in the config file is relative to the folder of that file).' }] });
    const path = write('webhooks:\n  - name: h\n    secret: s\n');
    const r2 = await loadConfig(path, { env: {} });
    if (r2.ok) throw new Error('expected errors');
    expect(r2.errors.map(formatIssue)).toEqual([`${path}:2:5 missing required key "url" in webhooks.0`]);
  });

  it('accepts IPv6 listen, $${ escapes and the shipped configs', async () => {
    const path = write('server:\n  listen: "[::1]:8025"\n  adminToken: "a$${b}-0123456789abcdefghijkl"\n');
    const r = await loadConfig(path, { env: {} });
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    expect(r.config.server).toEqual({ listen: { host: '::1', port: 8025 }, publicUrl: 'http://[::1]:8025', adminToken: 'a${b}-0123456789abcdefghijkl', metricsToken: undefined, allowedHosts: [], trustProxy: [] });

    const def = await loadConfig('config/mailgate.yaml', { env: {} });
    expect(def.ok).toBe(true);
    const dir = tmpDataDir('mg-ex-');
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets/m365-client-secret'), 's\n');
    writeFileSync(join(dir, 'secrets/legacy-password'), 'p\n');
    const { readFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'example.yaml'), readFileSync('config/example.yaml'));
    const ex = await loadConfig(join(dir, 'example.yaml'), {
      env: { MAILGATE_ADMIN_TOKEN: 't'.repeat(24), GOOGLE_CLIENT_SECRET: 'g', M365_APP_SECRET: 'm', CORP_CLIENT_SECRET: 'c', WEBHOOK_SECRET: 'w' },
    });
    if (!ex.ok) throw new Error(ex.errors.map(formatIssue).join('\n'));
    expect(ex.config.accounts.map((a) => a.name)).toEqual(['support', 'helpdesk-m365', 'legacy']);
  });
});

describe('units', () => {
  it('parses durations and sizes', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('60s')).toBe(60_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration(30)).toBe(30_000);
    expect(parseDuration('5 minutes')).toMatch(/invalid duration/);
    expect(parseSize('10MB')).toBe(10 * 1_048_576);
    expect(parseSize('512KB')).toBe(524_288);
    expect(parseSize('1GB')).toBe(1_073_741_824);
    expect(parseSize(100)).toBe(100);
    expect(parseSize('ten')).toMatch(/invalid size/);
    expect(formatDuration(300_000)).toBe('5m');
    expect(formatDuration(1_500)).toBe('1500ms');
  });
});

describe('config check reports every problem in one run', () => {
  it('schema problems, unreadable files and undefined names together', async () => {
    const path = write(`server:
  listen: 127.0.0.1:99999
credentials:
  - name: g
    provider: google
    clientId: cid
    clientSecretFile: ./no-secret.txt
accounts:
  - name: support
    email: support@example.com
    incoming:
      protocol: imap
      host: imap.example.com
      auth: { method: xoauth2, credential: nope }
      bogus: 1
    webhook: missing-hook
webhooks:
  - name: hook
    url: http://127.0.0.1/x
    secretFile: ./no-hook-secret.txt
`);
    const r = await loadConfig(path, { env: {}, databaseCredentials: async () => new Set() });
    if (r.ok) throw new Error('expected errors');
    const messages = r.errors.map((e) => `${e.line}: ${e.message}`);
    expect(messages).toEqual([
      expect.stringMatching(/^2: server\.listen must be host:port/),
      `7: cannot read clientSecretFile: The file ${resolve(path, '../no-secret.txt')} does not exist. Check the path for typos (a relative path in the config file is relative to the folder of that file).`,
      '14: credential "nope" is not defined in credentials, nor in the database (mailgate credentials add)',
      '15: unknown key "bogus"',
      '16: webhook "missing-hook" is not defined in webhooks',
      `20: cannot read secretFile: The file ${resolve(path, '../no-hook-secret.txt')} does not exist. Check the path for typos (a relative path in the config file is relative to the folder of that file).`,
    ]);
  });
});
