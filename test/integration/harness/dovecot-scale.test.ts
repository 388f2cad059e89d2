import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginPacer } from '../../../src/incoming/login-pacer.js';
import { createMaildirs, dovecotLoginStats, dovecotProcesses, scaleConfig, type Dovecot } from '../../harness/dovecot.js';
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

describe('300 accounts through the login pacer against the scale Dovecot', () => {
  const N = 300;
  const RATE = 30;
  let d: Dovecot;
  beforeAll(async () => {
    d = await startDovecot({
      introspectionUrl: `${h.oauthUrl}/introspect`,
      relayPort: h.relaySinkPort,
      scale: { processLimit: N + 200, clientLimit: 2 * N + 1000, imapHibernateTimeout: '2s' },
    });
  });
  afterAll(async () => {
    await d?.stop();
  });

  const logSince = (offset: number) => readFileSync(d.logPath).subarray(offset).toString('utf8');
  const logSize = () => readFileSync(d.logPath).length;

  it('log in at the paced rate with no connection closed before login, at start and after a Dovecot restart', { timeout: 120_000 }, async () => {
    const prefix = `paced-${uniqueUser('').slice(1)}-`;
    const users = Array.from({ length: N }, (_, i) => `${prefix}${i}`);
    await createMaildirs(d, users);
    const pacer = new LoginPacer({ loginsPerSecond: RATE, loginsInFlight: 20, perHostInFlight: 20, accounts: N });
    const sessions = new Map<string, ImapFlow>();
    let gate: Promise<void> = Promise.resolve();
    let stopping = false;

    // A connector's loop in miniature: log in through the pacer, IDLE, and
    // after the connection closes, back off 1 s and log in again.
    const keep = async (user: string, first: boolean): Promise<void> => {
      for (let attempt = 0; !stopping; attempt++) {
        await gate;
        try {
          const c = await pacer.run({ host: '127.0.0.1', account: user, first: first && attempt === 0 }, () => login(d, user));
          await c.mailboxOpen('INBOX');
          sessions.set(user, c);
          c.once('close', () => {
            sessions.delete(user);
            if (!stopping) setTimeout(() => void keep(user, false), 1_000 + Math.random() * 1_000);
          });
          void c.idle().catch(() => undefined);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 1_000 + Math.random() * 1_000));
        }
      }
    };

    try {
      const from = logSize();
      await Promise.all(users.map((u) => keep(u, true)));
      const start = dovecotLoginStats(logSince(from), prefix);
      expect(start.logins).toBe(N);
      expect(start.droppedBeforeLogin).toBe(0);
      // Dovecot logs a login when it completes, a little after the pacer let it
      // start, so one second of its log may hold a few more than the rate.
      expect(start.peakPerSecond).toBeLessThanOrEqual(RATE * 1.2);
      expect(start.spanS).toBeGreaterThanOrEqual(Math.floor(N / RATE) - 1);

      // The restart closes every session; the reconnects wait at the gate
      // until the harness's own port probes are in the log, then go paced.
      let open!: () => void;
      gate = new Promise<void>((r) => (open = r));
      await d.restart();
      await until(() => sessions.size === 0, 10_000, 'every session to notice the restart');
      await new Promise((r) => setTimeout(r, 1_000));
      const after = logSize();
      open();
      await until(() => sessions.size === N, 60_000, 'every account back after the restart');
      const back = dovecotLoginStats(logSince(after), prefix);
      expect(back.logins).toBe(N);
      expect(back.droppedBeforeLogin).toBe(0);
      expect(back.peakPerSecond).toBeLessThanOrEqual(RATE * 1.2);
      console.log(`paced logins: start peak ${start.peakPerSecond}/s mean ${start.meanPerSecond.toFixed(1)}/s over ${start.spanS} s; after the restart peak ${back.peakPerSecond}/s mean ${back.meanPerSecond.toFixed(1)}/s`);
    } finally {
      stopping = true;
      pacer.close();
      await Promise.all([...sessions.values()].map((c) => c.logout().catch(() => c.close())));
    }
  });
});
