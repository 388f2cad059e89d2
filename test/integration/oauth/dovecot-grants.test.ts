import { connect } from 'node:net';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtBearerTokenRequest } from '../../../src/oauth/jwt-bearer.js';
import { parseServiceAccountKey } from '../../../src/oauth/service-account-key.js';
import { appendMessages, getHarness, makeMessage, OAuthAdmin, oauthAdmin, startDovecot, startOAuthServer, uniqueUser } from '../../harness/index.js';
import type { Dovecot } from '../../harness/dovecot.js';
import { makeServiceAccountKey, type OAuthServerProcess } from '../../harness/oauth-process.js';

/**
 * Real Dovecot logins with the tokens of issue 17's grants, using imapflow
 * directly: a service-account token per mailbox (through the shared
 * harness), and one app-only token opening every granted mailbox (through a
 * private Dovecot with the password-grant passdb that tells the OAuth2
 * server which mailbox is logging in; see dovecotAppOnlyPassdb).
 */
const h = getHarness();
const GMAIL = 'https://mail.google.com/';

function imap(port: number, user: string, accessToken: string): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: { user, accessToken }, logger: false });
}

async function subjects(client: ImapFlow): Promise<string[]> {
  await client.connect();
  const lock = await client.getMailboxLock('INBOX');
  try {
    const out: string[] = [];
    for await (const m of client.fetch('1:*', { envelope: true })) out.push(m.envelope?.subject ?? '');
    return out;
  } finally {
    lock.release();
    await client.logout();
  }
}

async function loginError(client: ImapFlow): Promise<{ authenticationFailed?: boolean; serverResponseCode?: string }> {
  const err = await client.connect().then(
    async () => {
      await client.logout();
      return null;
    },
    (e: unknown) => e,
  );
  expect(err, 'the login should have been refused').not.toBeNull();
  return err as { authenticationFailed?: boolean; serverResponseCode?: string };
}

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
        s.write('\r\n');
      } else {
        s.end('QUIT\r\n');
        resolve(line);
      }
    });
    s.on('error', reject);
  });
}

describe('Dovecot with a service-account token (shared harness)', () => {
  it('logs in to the mailbox named in sub, and only that one', async () => {
    const admin = oauthAdmin(h);
    const made = makeServiceAccountKey({ tokenUri: `${h.oauthUrl}/token` });
    const key = parseServiceAccountKey(made.json);
    await admin.registerServiceAccount({ clientEmail: key.clientEmail, clientId: key.clientId, publicKeyPem: made.publicKeyPem, privateKeyId: key.privateKeyId });
    const user = uniqueUser('sa-imap');
    await appendMessages(h, user, [makeMessage(1, { subject: 'for the service account' })]);
    const req = jwtBearerTokenRequest(key, { subject: user, scopes: [GMAIL] });
    const r = await fetch(req.url, { method: 'POST', body: new URLSearchParams(req.body) });
    expect(r.status).toBe(200);
    const { access_token } = (await r.json()) as { access_token: string };
    expect(await subjects(imap(h.imapPort, user, access_token))).toEqual(['for the service account']);
    expect((await loginError(imap(h.imapPort, uniqueUser('sa-other'), access_token))).authenticationFailed).toBe(true);
  });
});

describe('Dovecot with an app-only token (private Dovecot with the password-grant passdb)', () => {
  let oauth: OAuthServerProcess;
  let admin: OAuthAdmin;
  let dovecot: Dovecot;
  const app = 'exo-app';
  const [shared, second, notGranted] = [uniqueUser('shared'), uniqueUser('second'), uniqueUser('other')];
  let appToken: string;

  beforeAll(async () => {
    oauth = await startOAuthServer();
    admin = new OAuthAdmin(oauth.url);
    dovecot = await startDovecot({ introspectionUrl: `${oauth.url}/introspect`, relayPort: h.relaySinkPort, appOnlyOAuthUrl: oauth.url });
    await admin.registerApp(app, { secret: 'app-secret', mailboxes: [shared, second] });
    const r = await fetch(`${oauth.url}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: app, client_secret: 'app-secret', scope: 'https://outlook.office365.com/.default' }),
    });
    appToken = ((await r.json()) as { access_token: string }).access_token;
  });

  afterAll(async () => {
    await dovecot?.stop();
    await oauth?.stop();
  });

  it('opens each granted mailbox over IMAP with the one token, and refuses the others', async () => {
    const put = { ...h, imapPort: dovecot.imapPort };
    await appendMessages(put, shared, [makeMessage(1, { subject: 'shared mailbox mail' })]);
    await appendMessages(put, second, [makeMessage(2, { subject: 'second mailbox mail' })]);
    expect(await subjects(imap(dovecot.imapPort, shared, appToken))).toEqual(['shared mailbox mail']);
    expect(await subjects(imap(dovecot.imapPort, second, appToken))).toEqual(['second mailbox mail']);
    const refused = await loginError(imap(dovecot.imapPort, notGranted, appToken));
    expect(refused.authenticationFailed).toBe(true);
    expect(refused.serverResponseCode).toBe('AUTHENTICATIONFAILED');
    expect((await admin.stats()).passdbChecks).toBeGreaterThanOrEqual(3);
  });

  it('works for POP3 too, and user tokens keep working with the extra passdb', async () => {
    expect(await pop3XOAuth2(dovecot.pop3Port, shared, appToken)).toMatch(/^\+OK/);
    expect(await pop3XOAuth2(dovecot.pop3Port, notGranted, appToken)).toBe('-ERR [AUTH] Authentication failed.');
    await admin.registerClient('user-client', 'x');
    const user = uniqueUser('delegated');
    const { access_token } = await admin.issue('user-client', user);
    await appendMessages({ ...h, imapPort: dovecot.imapPort }, user, [makeMessage(3, { subject: 'delegated' })]);
    expect(await subjects(imap(dovecot.imapPort, user, access_token))).toEqual(['delegated']);
    // A user's token still opens only its user's mailbox, whichever passdb answers.
    expect((await loginError(imap(dovecot.imapPort, shared, access_token))).authenticationFailed).toBe(true);
  });

  it('a withdrawn grant locks the app out at once', async () => {
    await admin.grantMailboxes(app, [shared]);
    expect((await loginError(imap(dovecot.imapPort, second, appToken))).authenticationFailed).toBe(true);
    expect(await subjects(imap(dovecot.imapPort, shared, appToken))).toEqual(['shared mailbox mail']);
  });

  it('with the OAuth2 server unreachable the login is a temporary failure, not a refusal', async () => {
    await admin.introspectDown(true);
    try {
      const err = await loginError(imap(dovecot.imapPort, shared, appToken));
      expect(err.serverResponseCode).toBe('UNAVAILABLE');
    } finally {
      await admin.introspectDown(false);
    }
  });
});
