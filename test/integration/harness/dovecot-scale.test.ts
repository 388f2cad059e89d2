import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMaildirs, dovecotProcesses, scaleConfig, type Dovecot } from '../../harness/dovecot.js';
import { getHarness, startDovecot, TEST_PASSWORD, uniqueUser } from '../../harness/index.js';
import { until } from '../../harness/until.js';

const run = promisify(execFile);
const DOVECONF_BIN = '/usr/bin/doveconf';
const h = getHarness();

function login(d: Dovecot, user: string): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port: d.imapPort, secure: false, doSTARTTLS: false, auth: { user, pass: TEST_PASSWORD }, logger: false, disableAutoIdle: true });
  c.on('error', () => undefined); // a restart closes the socket under it
  return c.connect().then(() => c);
}

describe('the harness Dovecot without scale options', () => {
  it('writes none of the scale settings, so Dovecot keeps its defaults', () => {
    expect(scaleConfig(undefined)).toBe('');
    const conf = readFileSync(h.dovecotConfig, 'utf8');
    for (const key of ['default_client_limit', 'default_process_limit', 'imap_hibernate_timeout', 'mail_max_userip_connections', 'service_count', 'process_min_avail']) {
      expect(conf).not.toContain(key);
    }
  });
});

describe('the harness Dovecot with scale options', () => {
  let d: Dovecot;
  beforeAll(async () => {
    d = await startDovecot({
      introspectionUrl: `${h.oauthUrl}/introspect`,
      relayPort: h.relaySinkPort,
      scale: { clientLimit: 3000, processLimit: 600, login: { serviceCount: 0, processMinAvail: 1 }, imapHibernateTimeout: '1s', maxUserIpConnections: 25 },
    });
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('runs with the raised limits', async () => {
    const get = async (key: string) => (await run(DOVECONF_BIN, ['-c', d.configPath, '-h', key])).stdout.trim();
    expect(await get('default_client_limit')).toBe('3000');
    expect(await get('default_process_limit')).toBe('600');
    expect(await get('mail_max_userip_connections')).toBe('25');
    expect(await get('imap_hibernate_timeout')).toBe('1 secs');
    expect(await get('service/imap-login/service_count')).toBe('0');
    expect(await get('service/imap-login/process_min_avail')).toBe('1');
  });

  it('hibernates sessions in IDLE and wakes them for new mail', async () => {
    const users = [uniqueUser('hib'), uniqueUser('hib'), uniqueUser('hib')];
    await createMaildirs(d, users);
    const before = dovecotProcesses(d).imap;
    const clients = await Promise.all(users.map((u) => login(d, u)));
    try {
      for (const c of clients) await c.mailboxOpen('INBOX');
      expect(dovecotProcesses(d).imap).toBeGreaterThanOrEqual(before + users.length);
      for (const c of clients) void c.idle();
      // imap_hibernate_timeout 1s: their imap processes hand the sessions over and end.
      await until(() => dovecotProcesses(d).imap <= before, 10_000, 'the IDLE sessions to hibernate');
      expect(dovecotProcesses(d).hibernate).toBe(1);

      const first = clients[0] as ImapFlow;
      const seen = new Promise<number>((r) => first.once('exists', () => r(Date.now())));
      const writer = await login(d, users[0] as string);
      const t = Date.now();
      await writer.append('INBOX', 'Subject: wake\r\n\r\nx\r\n');
      await writer.logout();
      expect((await seen) - t).toBeLessThan(5_000);
    } finally {
      for (const c of clients) await c.logout().catch(() => c.close());
    }
  });
});
