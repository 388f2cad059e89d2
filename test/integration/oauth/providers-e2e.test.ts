import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendMessages, getHarness, makeMessage, OAuthAdmin, SmtpSink, startDovecot, startOAuthServer, tmpDataDir, uniqueUser, WebhookSink } from '../../harness/index.js';
import type { Dovecot } from '../../harness/dovecot.js';
import { makeCertificate, makeServiceAccountKey, type OAuthServerProcess } from '../../harness/oauth-process.js';
import { freePort, runCli, startDaemon, type Daemon } from '../daemon/run-daemon.js';
import { base64url } from '../../../src/oauth/jwt-bearer.js';
import { loadCertificateCredential } from '../../../src/oauth/client-assertion.js';

/**
 * Issue 17 end to end, with the built daemon (dist/cli.js) as a process, a
 * private test OAuth2 server, and a private Dovecot whose passdb also takes
 * app-only tokens for the mailboxes an app was granted (appOnlyOAuthUrl):
 * - Microsoft app-only (`grant: client_credentials`) with a client secret:
 *   one account ingests over IMAP, another over POP3, and one sends over
 *   submission, all logging in as the account's user with the app token;
 * - the same with a certificate (`clientAssertion`);
 * - two accounts on one Google service-account credential (YAML) ingest and
 *   send; a third on a service account added with `mailgate credentials add
 *   --service-account-key-file` (stored encrypted) ingests too;
 * - `clientSecretExpiresAt` five days ahead: `credential.expiring` to the
 *   webhook and the gauge;
 * - no private key, key file or assertion in the database file or the log.
 */
const h = getHarness();
const ADMIN = 't0ken-providers-0123456789abcdef';
const GMAIL = 'https://mail.google.com/';

let oauth: OAuthServerProcess;
let admin: OAuthAdmin;
let dovecot: Dovecot;
let relay: SmtpSink;
let hook: WebhookSink;
let daemon: Daemon;
let dir: string;
let configPath: string;

const APP = randomUUID();
const CERT_APP = randomUUID();
const box = { appImap: `${uniqueUser('exo-imap')}@example.com`, appPop: `${uniqueUser('exo-pop')}@example.com`, cert: `${uniqueUser('exo-cert')}@example.com`, sa1: `${uniqueUser('sa1')}@example.com`, sa2: `${uniqueUser('sa2')}@example.com`, saDb: `${uniqueUser('sa3')}@example.com` };
const sa = { made: null as unknown as ReturnType<typeof makeServiceAccountKey> };
const cert = makeCertificate('mailgate-e2e-cert');
const secretExpires = new Date(Date.now() + 5 * 86_400_000);

function account(name: string, user: string, credential: string, protocol: 'imap' | 'pop3', send: boolean): string {
  return `  - name: ${name}
    email: ${user.includes('@') ? user : `${user}@example.com`}
    incoming:
      protocol: ${protocol}
      host: 127.0.0.1
      port: ${protocol === 'imap' ? dovecot.imapPort : dovecot.pop3Port}
      tls: false
      user: ${user}
      auth: { method: xoauth2, credential: ${credential} }
${protocol === 'imap' ? '      mode: poll\n' : ''}      pollInterval: 1s
      afterDelivery: none
${send ? `    outgoing: { host: 127.0.0.1, port: ${dovecot.submissionPort}, tls: false, user: ${user}, auth: { method: xoauth2, credential: ${credential} } }\n` : ''}    webhook: w
`;
}

async function api(method: string, path: string, body?: unknown) {
  const r = await fetch(`${daemon.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

const events = (event: string) => hook.requests.map((r) => r.json as Record<string, unknown>).filter((j) => j.event === event);
const subjectsOf = (acc: string) => events('message.received').filter((j) => j.account === acc).map((j) => j.subject);

beforeAll(async () => {
  oauth = await startOAuthServer();
  admin = new OAuthAdmin(oauth.url);
  relay = await SmtpSink.start();
  dovecot = await startDovecot({ introspectionUrl: `${oauth.url}/introspect`, relayPort: relay.port, appOnlyOAuthUrl: oauth.url });
  hook = await WebhookSink.start();
  dir = tmpDataDir('mg-providers-');

  await admin.registerApp(APP, { secret: 'exo-app-secret', mailboxes: [box.appImap, box.appPop] });
  await admin.registerApp(CERT_APP, { certificatePem: cert.certificatePem, mailboxes: [box.cert] });
  sa.made = makeServiceAccountKey({ tokenUri: `${oauth.url}/token` });
  await admin.registerServiceAccount({ clientEmail: sa.made.fields.client_email, clientId: sa.made.fields.client_id, publicKeyPem: sa.made.publicKeyPem, privateKeyId: sa.made.fields.private_key_id });
  writeFileSync(join(dir, 'sa.json'), sa.made.json);
  writeFileSync(join(dir, 'cert.pem'), cert.certificatePem);
  writeFileSync(join(dir, 'cert.key'), cert.privateKeyPem);

  const put = { ...h, imapPort: dovecot.imapPort };
  await appendMessages(put, box.appImap, [makeMessage(1, { subject: 'app-only over IMAP' })]);
  await appendMessages(put, box.appPop, [makeMessage(2, { subject: 'app-only over POP3' })]);
  await appendMessages(put, box.cert, [makeMessage(3, { subject: 'certificate app-only' })]);
  await appendMessages(put, box.sa1, [makeMessage(4, { subject: 'service account one' })]);
  await appendMessages(put, box.sa2, [makeMessage(5, { subject: 'service account two' })]);
  await appendMessages(put, box.saDb, [makeMessage(6, { subject: 'service account from the database' })]);

  const port = await freePort();
  configPath = join(dir, 'mailgate.yaml');
  writeFileSync(
    configPath,
    `server: { listen: "127.0.0.1:${port}", adminToken: ${ADMIN} }
dataDir: ./data
logLevel: debug
credentials:
  - name: exo
    provider: microsoft
    tenant: contoso.onmicrosoft.com
    grant: client_credentials
    clientId: ${APP}
    clientSecret: exo-app-secret
    clientSecretExpiresAt: ${secretExpires.toISOString().slice(0, 10)}
    tokenEndpoint: ${oauth.url}/token
  - name: exo-cert
    provider: microsoft
    tenant: contoso.onmicrosoft.com
    grant: client_credentials
    clientId: ${CERT_APP}
    clientAssertion: { certificateFile: ./cert.pem, privateKeyFile: ./cert.key }
    tokenEndpoint: ${oauth.url}/token
  - name: gsa
    provider: google
    grant: service_account
    serviceAccountKeyFile: ./sa.json
accounts:
${account('app-imap', box.appImap, 'exo', 'imap', true)}${account('app-pop', box.appPop, 'exo', 'pop3', false)}${account('cert-imap', box.cert, 'exo-cert', 'imap', true)}${account('sa-one', box.sa1, 'gsa', 'imap', true)}${account('sa-two', box.sa2, 'gsa', 'imap', true)}${account('sa-db', box.saDb, 'gsa-db', 'imap', false)}webhooks:
  - { name: w, url: "${hook.url}", secret: whsec-providers, backoff: { initial: 100ms, max: 1s } }
`,
  );
  // The database credential: the same key, imported (stored sealed like a client secret).
  const add = await runCli(['credentials', 'add', '--name', 'gsa-db', '--provider', 'google', '--service-account-key-file', join(dir, 'sa.json'), '--config', configPath]);
  expect(add.stderr).toBe('');
  expect(add.stdout).toContain(`credential gsa-db saved (service-account key encrypted; client ID ${sa.made.fields.client_id})`);
  daemon = await startDaemon(configPath, port);
}, 120_000);

afterAll(async () => {
  await daemon?.stop('SIGTERM');
  await dovecot?.stop();
  await oauth?.stop();
  await relay?.close();
  await hook?.close();
});

describe('Microsoft app-only and Google service accounts, end to end', () => {
  it('app-only accounts ingest over IMAP and POP3 as their own user with the one app token; the certificate app too', async () => {
    await hook.waitFor(() => subjectsOf('app-imap').length > 0 && subjectsOf('app-pop').length > 0 && subjectsOf('cert-imap').length > 0, 45_000);
    expect(subjectsOf('app-imap')).toEqual(['app-only over IMAP']);
    expect(subjectsOf('app-pop')).toEqual(['app-only over POP3']);
    expect(subjectsOf('cert-imap')).toEqual(['certificate app-only']);
    const stats = await admin.stats();
    expect(stats.byGrant.client_credentials).toBeGreaterThanOrEqual(2);
    // The certificate app proved itself with signed assertions, never a secret.
    expect(stats.assertions.some((a) => a.kind === 'client' && a.iss === CERT_APP && a.alg === 'PS256')).toBe(true);
    // Dovecot's password-grant passdb saw the login names (the app token alone names no mailbox).
    expect(stats.passdbChecks).toBeGreaterThanOrEqual(3);
  });

  it('two accounts on one service-account credential, and one on an imported key, ingest their own mailbox', async () => {
    await hook.waitFor(() => ['sa-one', 'sa-two', 'sa-db'].every((a) => subjectsOf(a).length > 0), 45_000);
    expect(subjectsOf('sa-one')).toEqual(['service account one']);
    expect(subjectsOf('sa-two')).toEqual(['service account two']);
    expect(subjectsOf('sa-db')).toEqual(['service account from the database']);
    const subs = (await admin.stats()).assertions.filter((a) => a.kind === 'jwt-bearer').map((a) => a.sub);
    expect(new Set(subs)).toEqual(new Set([box.sa1, box.sa2, box.saDb]));
  });

  it('app-only and service-account accounts send over submission', async () => {
    const ids: Record<string, string> = {};
    for (const [acc, user] of [['app-imap', box.appImap], ['cert-imap', box.cert], ['sa-one', box.sa1], ['sa-two', box.sa2]] as const) {
      const r = await api('POST', `/v1/accounts/${acc}/send`, { to: ['someone@example.net'], subject: `sent by ${acc}`, text: `hello from ${user}` });
      expect(r.status, JSON.stringify(r.json)).toBe(202);
      ids[acc] = String(r.json.id);
    }
    await relay.waitFor((s) => Object.keys(ids).every((acc) => s.messages.some((m) => m.raw.includes(`sent by ${acc}`))), 45_000);
    for (const acc of Object.keys(ids)) {
      const r = await api('GET', `/v1/outbox/${ids[acc]}`);
      expect(r.json.status).toBe('sent');
    }
  });

  it('warns of the expiring client secret: credential.expiring to the webhook, the gauge, the log', async () => {
    await hook.waitFor(() => events('credential.expiring').length >= 2, 30_000);
    const exo = events('credential.expiring').find((e) => e.credential === 'exo');
    expect(exo).toMatchObject({ account: 'app-imap', credential: 'exo', what: 'clientSecret', accounts: ['app-imap', 'app-pop'], daysLeft: 4, expiresAt: `${secretExpires.toISOString().slice(0, 10)}T00:00:00.000Z` });
    expect(String(exo?.message)).toMatch(/client secret of credential exo expires on/);
    // The certificate (2 days, as made) warns from its own notAfter.
    const certEvent = events('credential.expiring').find((e) => e.credential === 'exo-cert');
    expect(certEvent).toMatchObject({ what: 'certificate', accounts: ['cert-imap'] });
    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    const at = Math.floor(Date.parse(`${secretExpires.toISOString().slice(0, 10)}T00:00:00Z`) / 1000);
    expect(metrics).toContain(`mailgate_client_secret_expires_timestamp_seconds{credential="exo"} ${at}`);
    const notAfter = Math.floor(loadCertificateCredential(cert).notAfter.getTime() / 1000);
    expect(metrics).toContain(`mailgate_client_secret_expires_timestamp_seconds{credential="exo-cert"} ${notAfter}`);
    expect(daemon.output()).toContain('client secret of credential exo expires on');
  });

  it('keeps the private keys, the key file and every assertion out of the database file and the log', async () => {
    // Both kinds of assertion were made by now (the tests above waited for their logins).
    const jwtHeader = base64url(JSON.stringify({ typ: 'JWT', kid: sa.made.fields.private_key_id, alg: 'RS256' }));
    const c = loadCertificateCredential(cert);
    const clientHeader = base64url(JSON.stringify({ typ: 'JWT', 'x5t#S256': c.thumbprintSha256, x5t: c.thumbprintSha1, alg: 'PS256' }));
    const pemBody = (pem: string) => pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const secrets: string[] = [];
    for (const pem of [sa.made.fields.private_key, cert.privateKeyPem]) {
      const body = pemBody(pem);
      const der = Buffer.from(body, 'base64');
      secrets.push(body.slice(0, 64), body.slice(-64), der.subarray(0, 48).toString('hex'), Buffer.from(pem).toString('base64').slice(0, 64), der.subarray(64, 112).toString('base64url'));
    }
    secrets.push(Buffer.from(sa.made.json).toString('base64').slice(0, 64), jwtHeader, clientHeader, 'exo-app-secret');
    const dataDir = join(dir, 'data');
    const files = readdirSync(dataDir).filter((f) => f.startsWith('mailgate.db'));
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(dataDir, f))));
    expect(bytes.length).toBeGreaterThan(0);
    const log = daemon.output();
    expect(log).toContain('access token refreshed');
    for (const s of secrets) {
      expect(bytes.includes(Buffer.from(s)), `database holds ${s.slice(0, 12)}…`).toBe(false);
      expect(log.includes(s), `log holds ${s.slice(0, 12)}…`).toBe(false);
    }
    // The raw DER of the keys is not there either.
    for (const pem of [sa.made.fields.private_key, cert.privateKeyPem]) {
      const der = Buffer.from(pemBody(pem), 'base64');
      expect(bytes.includes(der.subarray(100, 164))).toBe(false);
    }
  });

  it('mailgate setup prints the PowerShell for the app and mailbox, and the delegation for the service account, then logs in', async () => {
    const ms = await runCli(['setup', 'microsoft-app-only', '--credential', 'exo', '--account', 'app-imap', '--config', configPath], {}, 60_000);
    expect(ms.stderr).toBe('');
    expect(ms.stdout).toContain(`New-ServicePrincipal -AppId '${APP}'`);
    expect(ms.stdout).toContain(`Add-MailboxPermission -Identity '${box.appImap}' -User $sp.Identity -AccessRights FullAccess`);
    expect(ms.stdout).toContain("Connect-ExchangeOnline -Organization 'contoso.onmicrosoft.com'");
    expect(ms.stdout).toMatch(/incoming \(imap 127\.0\.0\.1:\d+\): ok/);
    expect(ms.stdout).toMatch(/outgoing \(smtp 127\.0\.0\.1:\d+\): ok/);
    expect(ms.code).toBe(0);
    const g = await runCli(['setup', 'google-service-account', '--credential', 'gsa', '--account', 'sa-one', '--config', configPath], {}, 60_000);
    expect(g.stdout).toContain(`Client ID: ${sa.made.fields.client_id}`);
    expect(g.stdout).toContain(`OAuth scopes (comma-delimited): ${GMAIL}`);
    expect(g.stdout).toMatch(/incoming \(imap 127\.0\.0\.1:\d+\): ok/);
    expect(g.code).toBe(0);
  });
});

describe('bad service-account key files', () => {
  it('are config errors naming the file and the field, at the key in the YAML', async () => {
    const d = tmpDataDir('mg-badkey-');
    const { private_key: _omit, ...noKey } = makeServiceAccountKey({ tokenUri: 'https://oauth2.googleapis.com/token' }).fields;
    writeFileSync(join(d, 'nokey.json'), JSON.stringify(noKey));
    writeFileSync(join(d, 'broken.json'), JSON.stringify({ ...noKey, private_key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }));
    writeFileSync(join(d, 'client.json'), JSON.stringify({ installed: { client_id: 'x' } }));
    writeFileSync(
      join(d, 'mailgate.yaml'),
      `dataDir: ./data
credentials:
  - name: a
    provider: google
    grant: service_account
    serviceAccountKeyFile: ./nokey.json
  - name: b
    provider: google
    grant: service_account
    serviceAccountKeyFile: ./broken.json
  - name: c
    provider: google
    grant: service_account
    serviceAccountKeyFile: ./client.json
`,
    );
    const r = await runCli(['config', 'check', '--config', join(d, 'mailgate.yaml')]);
    expect(r.code).toBe(2);
    const path = join(d, 'mailgate.yaml');
    expect(r.stderr).toContain(`${path}:6:5 serviceAccountKeyFile ./nokey.json: private_key is missing`);
    expect(r.stderr).toMatch(new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:10:5 serviceAccountKeyFile \\./broken\\.json: private_key does not parse as a private key`));
    expect(r.stderr).toContain(`${path}:14:5 serviceAccountKeyFile ./client.json: is an OAuth client file`);
    expect(r.stderr).not.toContain('AAAA');
  });

  it('a clientSecretExpiresAt in the past is a warning at start, not a refusal', async () => {
    const d = tmpDataDir('mg-pastsecret-');
    const path = join(d, 'mailgate.yaml');
    writeFileSync(path, `dataDir: ./data
credentials:
  - name: e
    provider: microsoft
    clientId: x
    clientSecret: y
    clientSecretExpiresAt: 2020-01-31
`);
    const r = await runCli(['config', 'check', '--config', path]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${path}:7:28 warning: clientSecretExpiresAt 2020-01-31 is in the past`);
  });
});
