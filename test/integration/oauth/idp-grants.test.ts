import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildClientAssertion, clientAssertionParams, loadCertificateCredential } from '../../../src/oauth/client-assertion.js';
import { jwtBearerTokenRequest, JWT_BEARER_GRANT_TYPE, signJwt } from '../../../src/oauth/jwt-bearer.js';
import { classifyTokenError } from '../../../src/oauth/provider-errors.js';
import { parseServiceAccountKey } from '../../../src/oauth/service-account-key.js';
import { getHarness, oauthAdmin, uniqueUser } from '../../harness/index.js';
import { makeCertificate, makeServiceAccountKey } from '../../harness/oauth-process.js';

/**
 * The test OAuth2 server process (test/harness/oauth-server.mjs) speaking
 * the grants of issue 17: Google's JWT-bearer grant for service accounts,
 * app-only tokens bound to granted mailboxes, and Entra certificate client
 * assertions — driven by mailgate's own building blocks.
 */
const h = getHarness();
const admin = oauthAdmin(h);
const TOKEN_URL = `${h.oauthUrl}/token`;
const GMAIL = 'https://mail.google.com/';

async function post(path: string, form: Record<string, string>) {
  const r = await fetch(`${h.oauthUrl}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

const introspect = (token: string, user?: string) => post(`/introspect${user ? `?user=${encodeURIComponent(user)}` : ''}`, { token });
/** What Dovecot's password-grant passdb sends: the login name and the bearer token. */
const passdb = (username: string, token: string) => post('/dovecot/passdb', { grant_type: 'password', username, password: token, client_id: 'dovecot', client_secret: 'dovecot' });

function classify(res: { status: number; json: Record<string, unknown> }, extra: { provider: string; grant: 'jwt_bearer' | 'client_credentials'; clientId?: string; scopes?: string[]; subject?: string }) {
  return classifyTokenError({ status: res.status, error: (res.json.error as string) ?? null, error_description: (res.json.error_description as string) ?? null, ...extra });
}

describe('JWT-bearer grant (Google service account, domain-wide delegation)', () => {
  const made = makeServiceAccountKey({ tokenUri: TOKEN_URL });
  const key = parseServiceAccountKey(made.json, 'sa.json');
  const userA = `${uniqueUser('sa-a')}@example.com`;
  const userB = `${uniqueUser('sa-b')}@example.com`;

  beforeAll(async () => {
    await admin.registerServiceAccount({ clientEmail: key.clientEmail, clientId: key.clientId, publicKeyPem: made.publicKeyPem, privateKeyId: key.privateKeyId, users: [userA, userB] });
  });

  it('issues a token per mailbox that introspection maps to that mailbox; no refresh token', async () => {
    const a = jwtBearerTokenRequest(key, { subject: userA, scopes: [GMAIL] });
    const b = jwtBearerTokenRequest(key, { subject: userB, scopes: [GMAIL] });
    const ra = await post('/token', a.body);
    const rb = await post('/token', b.body);
    expect(ra.status).toBe(200);
    expect(rb.status).toBe(200);
    expect(ra.json).toMatchObject({ token_type: 'Bearer', scope: GMAIL, expires_in: expect.any(Number) });
    expect(ra.json.refresh_token).toBeUndefined();
    expect((await introspect(ra.json.access_token as string)).json).toMatchObject({ active: true, username: userA, client_id: key.clientId });
    expect((await introspect(rb.json.access_token as string)).json).toMatchObject({ active: true, username: userB });
    // The password-grant check Dovecot can use agrees, and refuses the other mailbox.
    expect((await passdb(userA, ra.json.access_token as string)).json).toMatchObject({ username: userA, active: true });
    expect((await passdb(userB, ra.json.access_token as string)).status).toBe(400);
    const stats = await admin.stats();
    expect(stats.assertions).toContainEqual(expect.objectContaining({ kind: 'jwt-bearer', iss: key.clientEmail, sub: userA, aud: TOKEN_URL, kid: key.privateKeyId, alg: 'RS256', lifetime: 3600 }));
  });

  it('answers unauthorized_client when delegation is missing, which mailgate retries slowly with plain words', async () => {
    const sa = makeServiceAccountKey({ tokenUri: TOKEN_URL });
    const k = parseServiceAccountKey(sa.json);
    await admin.registerServiceAccount({ clientEmail: k.clientEmail, clientId: k.clientId, publicKeyPem: sa.publicKeyPem, delegation: false });
    const none = await post('/token', jwtBearerTokenRequest(k, { subject: userA, scopes: [GMAIL] }).body);
    expect(none).toMatchObject({ status: 401, json: { error: 'unauthorized_client', error_description: 'Unauthorized client or scope in request.' } });
    expect(classify(none, { provider: 'google', grant: 'jwt_bearer', clientId: k.clientId, scopes: [GMAIL], subject: userA })).toMatchObject({ action: 'retry_slowly', id: 'google.jwt.delegation_missing' });

    // Delegation for another scope only: Google's "missing the scope" answer.
    await admin.setDelegation(k.clientEmail, ['https://www.googleapis.com/auth/calendar']);
    const scope = await post('/token', jwtBearerTokenRequest(k, { subject: userA, scopes: [GMAIL] }).body);
    expect(scope.json.error).toBe('unauthorized_client');
    const c = classify(scope, { provider: 'google', grant: 'jwt_bearer', clientId: k.clientId, scopes: [GMAIL], subject: userA });
    expect(c.action).toBe('retry_slowly');
    expect(c.words).toMatch(new RegExp(`^Domain-wide delegation for client ${k.clientId} is missing the scope https://mail\\.google\\.com/`));

    // The admin fixes it: the same request now works.
    await admin.setDelegation(k.clientEmail, [GMAIL]);
    expect((await post('/token', jwtBearerTokenRequest(k, { subject: userA, scopes: [GMAIL] }).body)).status).toBe(200);
    await admin.setDelegation(k.clientEmail, null);
    expect((await post('/token', jwtBearerTokenRequest(k, { subject: userA, scopes: [GMAIL] }).body)).status).toBe(401);
  });

  it('checks the signature, iss, aud, exp and the user', async () => {
    const now = Date.now();
    const sec = Math.floor(now / 1000);
    const claims = { iss: key.clientEmail, sub: userA, scope: GMAIL, aud: TOKEN_URL, iat: sec, exp: sec + 3600 };
    const grant = (assertion: string) => post('/token', { grant_type: JWT_BEARER_GRANT_TYPE, assertion });
    const header = { typ: 'JWT', kid: key.privateKeyId };

    expect((await grant(signJwt(header, claims, key.privateKey))).status).toBe(200);
    const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect((await grant(signJwt(header, claims, otherKey))).json).toEqual({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    expect((await grant(signJwt(header, claims, key.privateKey, 'PS256'))).json.error_description).toBe('Invalid JWT Signature.');
    expect((await grant(signJwt({ ...header, kid: 'another-key' }, claims, key.privateKey))).json.error_description).toBe('Invalid JWT Signature.');
    expect((await grant(signJwt(header, { ...claims, iss: 'nobody@x.iam.gserviceaccount.com' }, key.privateKey))).json.error_description).toMatch(/No valid verifier found for issuer/);
    expect((await grant(signJwt(header, { ...claims, aud: 'https://oauth2.googleapis.com/token' }, key.privateKey))).json.error).toBe('invalid_grant');

    // Expired, or asking for more than an hour: Google's words, which mailgate reads as a clock problem.
    const expired = await grant(jwtBearerTokenRequest(key, { subject: userA, scopes: [GMAIL], now: now - 2 * 3_600_000 }).body.assertion!);
    expect(expired.json).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/^Invalid JWT: Token must be a short-lived token \(60 minutes\)/) });
    expect(classify(expired, { provider: 'google', grant: 'jwt_bearer' }).id).toBe('google.jwt.clock');
    expect((await grant(signJwt(header, { ...claims, exp: sec + 7200 }, key.privateKey))).json.error).toBe('invalid_grant');
    expect((await grant(signJwt(header, { ...claims, iat: sec + 3600, exp: sec + 4000 }, key.privateKey))).json.error).toBe('invalid_grant');

    const ghost = await grant(jwtBearerTokenRequest(key, { subject: 'ghost@example.com', scopes: [GMAIL] }).body.assertion!);
    expect(ghost.json).toEqual({ error: 'invalid_grant', error_description: 'Invalid email or User ID' });
    expect(classify(ghost, { provider: 'google', grant: 'jwt_bearer', subject: 'ghost@example.com' })).toMatchObject({ action: 'fix_config', id: 'google.jwt.unknown_user' });
    expect((await grant('not.a.jwt')).json.error).toBe('invalid_grant');
  });

  it('a revoked mailbox loses its service-account tokens like any other', async () => {
    const user = `${uniqueUser('sa-rev')}@example.com`;
    const sa = makeServiceAccountKey({ tokenUri: TOKEN_URL });
    const k = parseServiceAccountKey(sa.json);
    await admin.registerServiceAccount({ clientEmail: k.clientEmail, clientId: k.clientId, publicKeyPem: sa.publicKeyPem });
    const r = await post('/token', jwtBearerTokenRequest(k, { subject: user, scopes: [GMAIL] }).body);
    await admin.revokeAccess(user);
    expect((await introspect(r.json.access_token as string)).json).toEqual({ active: false });
  });
});

describe('client credentials bound to granted mailboxes (Exchange app-only)', () => {
  it('one app token opens every granted mailbox and no other', async () => {
    const app = uniqueUser('app');
    const [a, b, c] = [uniqueUser('shared-a'), uniqueUser('shared-b'), uniqueUser('not-granted')];
    await admin.registerApp(app, { secret: 'app-secret', mailboxes: [a, b] });
    const tok = await post('/token', { grant_type: 'client_credentials', client_id: app, client_secret: 'app-secret', scope: 'https://outlook.office365.com/.default' });
    expect(tok.status).toBe(200);
    expect(tok.json.refresh_token).toBeUndefined();
    const at = tok.json.access_token as string;
    // Introspection alone (all Dovecot 2.3 sends) cannot tell which mailbox: inactive.
    expect((await introspect(at)).json).toEqual({ active: false });
    expect((await introspect(at, a)).json).toMatchObject({ active: true, username: a, client_id: app });
    expect((await introspect(at, c)).json).toEqual({ active: false });
    expect((await passdb(a, at)).json).toMatchObject({ active: true, username: a, token_type: 'Bearer', access_token: at });
    expect((await passdb(b.toUpperCase(), at)).json).toMatchObject({ username: b.toUpperCase() });
    expect((await passdb(c, at))).toMatchObject({ status: 400, json: { error: 'invalid_grant' } });
    // Remove-MailboxPermission takes effect at once: the same token no longer opens b.
    await admin.grantMailboxes(app, [a]);
    expect((await passdb(b, at)).status).toBe(400);
    expect((await passdb(a, at)).status).toBe(200);
    expect((await passdb(a, 'at_unknown')).status).toBe(400);
  });

  it('an expired client secret is refused with AADSTS7000222, which mailgate says needs a new secret', async () => {
    const app = uniqueUser('app-exp');
    await admin.registerApp(app, { secret: 's', mailboxes: ['x'], secretExpiresAt: new Date(Date.now() - 60_000) });
    const r = await post('/token', { grant_type: 'client_credentials', client_id: app, client_secret: 's', scope: 'https://outlook.office365.com/.default' });
    expect(r.status).toBe(401);
    expect(r.json).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/^AADSTS7000222: /) });
    expect(classify(r, { provider: 'microsoft', grant: 'client_credentials' })).toMatchObject({ action: 'fix_config', id: 'AADSTS7000222', words: expect.stringMatching(/client secret has expired/) });
  });
});

describe('certificate client assertions (Entra)', () => {
  const pair = makeCertificate('mailgate-idp-test');
  const cred = loadCertificateCredential({ certificatePem: pair.certificatePem, privateKeyPem: pair.privateKeyPem });
  const app = uniqueUser('cert-app');
  const mailbox = uniqueUser('cert-box');

  beforeAll(async () => {
    await admin.registerApp(app, { certificatePem: pair.certificatePem, mailboxes: [mailbox] });
  });

  const cc = (params: Record<string, string>) => post('/token', { grant_type: 'client_credentials', scope: 'https://outlook.office365.com/.default', ...params });

  it('accepts a PS256 or RS256 assertion signed by the registered certificate, once', async () => {
    const ps = await cc(clientAssertionParams(cred, { clientId: app, tokenEndpoint: TOKEN_URL }));
    expect(ps.status).toBe(200);
    expect((await passdb(mailbox, ps.json.access_token as string)).status).toBe(200);
    const rs = await cc(clientAssertionParams(cred, { clientId: app, tokenEndpoint: TOKEN_URL, alg: 'RS256' }));
    expect(rs.status).toBe(200);
    const stats = await admin.stats();
    expect(stats.assertions.filter((x) => x.kind === 'client' && x.iss === app).map((x) => x.alg)).toEqual(['PS256', 'RS256']);

    // Replaying an assertion (same jti) is refused.
    const once = clientAssertionParams(cred, { clientId: app, tokenEndpoint: TOKEN_URL });
    expect((await cc(once)).status).toBe(200);
    expect((await cc(once)).json).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/already used/) });
  });

  it('refuses no credential, an unregistered certificate, another audience, or an expired assertion', async () => {
    const other = loadCertificateCredential(makeCertificate('other'));
    const bare = await cc({ client_id: app });
    expect(bare.json).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/^AADSTS7000218: /) });
    expect(classify(bare, { provider: 'microsoft', grant: 'client_credentials' }).id).toBe('AADSTS7000218');
    const wrongCert = await cc(clientAssertionParams(other, { clientId: app, tokenEndpoint: TOKEN_URL }));
    expect(wrongCert).toMatchObject({ status: 401, json: { error: 'invalid_client', error_description: expect.stringMatching(/^AADSTS700027: /) } });
    expect(classify(wrongCert, { provider: 'microsoft', grant: 'client_credentials' })).toMatchObject({ action: 'fix_config', id: 'AADSTS700027' });
    expect((await cc(clientAssertionParams(cred, { clientId: app, tokenEndpoint: 'https://login.microsoftonline.com/x/oauth2/v2.0/token' }))).json.error).toBe('invalid_client');
    const expired = { client_id: app, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: buildClientAssertion(cred, { clientId: app, tokenEndpoint: TOKEN_URL, now: Date.now() - 3_600_000 }) };
    expect((await cc(expired)).json).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/valid time range/) });
    expect((await cc({ client_id: uniqueUser('nobody'), client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: buildClientAssertion(cred, { clientId: 'nobody-app', tokenEndpoint: TOKEN_URL }) })).json).toMatchObject({ error: 'unauthorized_client', error_description: expect.stringMatching(/^AADSTS700016/) });
  });
});
