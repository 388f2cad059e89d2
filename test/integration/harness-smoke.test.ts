import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { beforeAll, describe, expect, it } from 'vitest';
import { appendMessages, getHarness, listMessages, makeMessage, oauthAdmin, relaySink, startOAuthServer, uniqueUser, OAuthAdmin, startDovecot } from '../harness/index.js';

const h = getHarness();
const admin = oauthAdmin(h);
const CLIENT = 'smoke-client';

beforeAll(async () => {
  await admin.registerClient(CLIENT, 'smoke-secret');
});

function imap(user: string, accessToken: string): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port: h.imapPort, secure: false, doSTARTTLS: false, auth: { user, accessToken }, logger: false });
}

/** Minimal POP3 exchange: greeting, AUTH XOAUTH2 with an initial response, answer to any challenge. */
async function pop3XOAuth2(port: number, user: string, token: string): Promise<string> {
  const ir = Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    let step = 0;
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (!buf.endsWith('\r\n')) return;
      const line = buf.trim();
      buf = '';
      if (step === 0) {
        step = 1;
        s.write(`AUTH XOAUTH2 ${ir}\r\n`);
      } else if (line.startsWith('+ ')) {
        s.write('\r\n'); // the error challenge must be answered with an empty line
      } else {
        s.end('QUIT\r\n');
        resolve(line);
      }
    });
    s.on('error', reject);
  });
}

describe('test harness against real servers', () => {
  it('imapflow logs in to Dovecot with a token from the OAuth2 server, and a wrong token is refused', async () => {
    const user = uniqueUser('smoke');
    await appendMessages(h, user, [makeMessage(1, { subject: 'hello harness' })]);
    const { access_token } = await admin.issue(CLIENT, user);
    const client = imap(user, access_token);
    await client.connect();
    const lock = await client.getMailboxLock('INBOX');
    try {
      const msg = await client.fetchOne('*', { envelope: true });
      expect(msg && msg.envelope?.subject).toBe('hello harness');
    } finally {
      lock.release();
      await client.logout();
    }
    const bad = imap(user, 'at_not-a-token');
    const err = (await bad.connect().catch((e: unknown) => e)) as { authenticationFailed?: boolean; serverResponseCode?: string };
    expect(err.authenticationFailed).toBe(true);
    expect(err.serverResponseCode).toBe('AUTHENTICATIONFAILED');
    // Dovecot compares the token's user with the login name.
    const other = imap(uniqueUser('other'), access_token);
    expect(((await other.connect().catch((e: unknown) => e)) as { authenticationFailed?: boolean }).authenticationFailed).toBe(true);
  });

  it('POP3 accepts AUTH XOAUTH2 with a good token and sends the JSON error challenge for a bad one', async () => {
    const user = uniqueUser('pop');
    const { access_token } = await admin.issue(CLIENT, user);
    expect(await pop3XOAuth2(h.pop3Port, user, access_token)).toMatch(/^\+OK/);
    expect(await pop3XOAuth2(h.pop3Port, user, 'at_bad')).toBe('-ERR [AUTH] Authentication failed.');
  });

  it('submission takes XOAUTH2 from nodemailer and relays to the SMTP sink', async () => {
    const user = uniqueUser('smtp');
    const { access_token } = await admin.issue(CLIENT, user);
    const subject = `relay ${randomBytes(4).toString('hex')}`;
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: h.submissionPort,
      secure: false,
      ignoreTLS: true,
      auth: { type: 'OAuth2', user, accessToken: access_token },
    });
    await transport.sendMail({ from: `${user}@example.com`, to: 'ann@example.net', subject, text: 'hi' });
    transport.close();
    const sink = relaySink(h);
    const deadline = Date.now() + 10_000;
    let found: { raw: string; to: string[] } | undefined;
    while (!found && Date.now() < deadline) {
      found = (await sink.messages()).find((m) => m.raw.includes(subject));
      if (!found) await new Promise((r) => setTimeout(r, 50));
    }
    expect(found?.to).toEqual(['ann@example.net']);
    const log = readFileSync(h.dovecotLog, 'utf8');
    expect(log).toMatch(new RegExp(`submission-login: Info: Login: user=<${user}>, method=XOAUTH2`));
  });

  it('a down introspection endpoint gives the transient UNAVAILABLE answer, not AUTHENTICATIONFAILED', async () => {
    // A private OAuth server and Dovecot: breaking the shared ones would fail other files' tests.
    const oauth = await startOAuthServer();
    const dovecot = await startDovecot({ introspectionUrl: `${oauth.url}/introspect`, relayPort: h.relaySinkPort });
    try {
      const privAdmin = new OAuthAdmin(oauth.url);
      await privAdmin.registerClient('c', 's');
      const user = uniqueUser('down');
      const { access_token } = await privAdmin.issue('c', user);
      await privAdmin.introspectDown(true);
      const client = new ImapFlow({ host: '127.0.0.1', port: dovecot.imapPort, secure: false, doSTARTTLS: false, auth: { user, accessToken: access_token }, logger: false });
      const err = (await client.connect().catch((e: unknown) => e)) as { serverResponseCode?: string; response?: string };
      expect(err.serverResponseCode).toBe('UNAVAILABLE');
      await privAdmin.introspectDown(false);
      const ok = new ImapFlow({ host: '127.0.0.1', port: dovecot.imapPort, secure: false, doSTARTTLS: false, auth: { user, accessToken: access_token }, logger: false });
      await ok.connect();
      await ok.logout();
    } finally {
      await dovecot.stop();
      await oauth.stop();
    }
  });

  it('runs an authorization_code round trip with PKCE and refuses a reused code', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const redirect = 'http://127.0.0.1:1/cb';
    const authUrl = new URL(`${h.oauthUrl}/authorize`);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: CLIENT, redirect_uri: redirect, scope: 'mail', state: 'st8', code_challenge: challenge, code_challenge_method: 'S256', login_hint: 'alice' })) {
      authUrl.searchParams.set(k, v);
    }
    const r = await fetch(authUrl, { redirect: 'manual' });
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.get('location') ?? '');
    expect(loc.searchParams.get('state')).toBe('st8');
    const code = loc.searchParams.get('code') ?? '';
    const exchange = (v: string) =>
      fetch(`${h.oauthUrl}/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Basic ${Buffer.from(`${CLIENT}:smoke-secret`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirect, code_verifier: v }),
      });
    const tokens = (await (await exchange(verifier)).json()) as { access_token?: string; refresh_token?: string };
    expect(tokens.access_token).toMatch(/^at_/);
    expect(tokens.refresh_token).toMatch(/^rt_/);
    const again = await exchange(verifier);
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: string }).error).toBe('invalid_grant');
    // Rotation: the refresh token works once.
    const refresh = (rt: string) =>
      fetch(`${h.oauthUrl}/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, client_id: CLIENT, client_secret: 'smoke-secret' }),
      });
    expect((await refresh(tokens.refresh_token ?? '')).status).toBe(200);
    expect((await refresh(tokens.refresh_token ?? '')).status).toBe(400);
    expect(await listMessages(h, uniqueUser('empty'))).toEqual([]);
  });
});
