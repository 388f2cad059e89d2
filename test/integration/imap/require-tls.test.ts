import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { getHarness, TEST_PASSWORD, tmpDataDir, uniqueUser } from '../../harness/index.js';
import { freePort, startDaemon, type Daemon } from '../daemon/run-daemon.js';

/**
 * requireTLS: with `tls: false`, mailgate must not send a password or token
 * over a connection that stayed plain. The harness Dovecot runs with
 * `ssl = no`, so it offers no STARTTLS on IMAP, POP3 or submission: exactly
 * the downgrade an attacker in the path would produce.
 */

const h = getHarness();
const TOKEN = 'require-tls-admin-token-0123456789';
const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop('SIGKILL');
});

async function daemonFor(user: string, protocol: 'imap' | 'pop3', requireTLS: boolean): Promise<Daemon> {
  const dir = tmpDataDir('mg-rtls-');
  const port = await freePort();
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(
    path,
    `server:
  listen: 127.0.0.1:${port}
  adminToken: ${TOKEN}
dataDir: ./data
accounts:
  - name: support
    email: ${user}@example.com
    incoming:
      protocol: ${protocol}
      host: 127.0.0.1
      port: ${protocol === 'imap' ? h.imapPort : h.pop3Port}
      tls: false
      requireTLS: ${requireTLS}
      user: ${user}
      auth: { method: password, password: ${TEST_PASSWORD} }
${protocol === 'imap' ? '      mode: poll\n' : ''}      pollInterval: 1h
    outgoing:
      host: 127.0.0.1
      port: ${h.submissionPort}
      tls: false
      requireTLS: ${requireTLS}
      user: ${user}
      auth: { method: password, password: ${TEST_PASSWORD} }
    webhook: w
webhooks:
  - { name: w, url: 'http://127.0.0.1:9/hook', secret: s }
`,
  );
  const d = await startDaemon(path, port);
  daemons.push(d);
  return d;
}

async function testAccount(d: Daemon): Promise<{ incoming: { ok: boolean; error: string | null }; outgoing: { ok: boolean; error: string | null } }> {
  const r = await fetch(`${d.url}/v1/accounts/support/test`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(r.status).toBe(200);
  return (await r.json()) as never;
}

const loginsOf = (user: string) => (readFileSync(h.dovecotLog, 'utf8').match(new RegExp(`Login: user=<${user}>`, 'g')) ?? []).length;

describe('requireTLS against a server that offers no STARTTLS (real Dovecot)', () => {
  for (const protocol of ['imap', 'pop3'] as const) {
    it(`${protocol}: refuses to log in in clear, on both sides, and the server never sees the login`, async () => {
      const user = uniqueUser(`rtls-${protocol}`);
      const d = await daemonFor(user, protocol, true);
      const r = await testAccount(d);
      expect(r.incoming.ok).toBe(false);
      expect(r.incoming.error).toMatch(/refused to log in without TLS \(requireTLS\)/);
      expect(r.outgoing.ok).toBe(false);
      expect(r.outgoing.error).toMatch(/refused to send without TLS \(requireTLS\)/);
      expect(loginsOf(user)).toBe(0);
      expect(d.output()).not.toContain(TEST_PASSWORD);
    });
  }

  it('with requireTLS: false (the loopback default) the same account logs in', async () => {
    const user = uniqueUser('rtls-off');
    const d = await daemonFor(user, 'imap', false);
    const r = await testAccount(d);
    expect(r.incoming).toEqual({ ok: true, error: null, code: null });
    expect(r.outgoing).toEqual({ ok: true, error: null, code: null });
    expect(loginsOf(user)).toBeGreaterThanOrEqual(1);
  });
});
