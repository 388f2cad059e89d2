// A real OAuth2 authorization server for tests, as a separate process on
// node:http only (spawned with `node`, no build). In-memory state, opaque
// random tokens. Implements what mailgate uses: authorization_code with PKCE
// S256 (RFC 7636), refresh_token with rotation, client_credentials, the device
// grant (RFC 8628), the JWT-bearer grant of Google service accounts with
// domain-wide delegation (RFC 7523 §2.1), certificate client assertions as
// Entra takes them (RFC 7523 §2.2), app-only tokens bound to the mailboxes an
// admin granted (Exchange's Add-MailboxPermission), token introspection for
// Dovecot (RFC 7662) and a Dovecot password-grant check that also sees the
// login name (see /dovecot/passdb), plus /admin/* endpoints that let tests
// register clients, service accounts and grants, inject faults and read
// counters.
//
//   node test/harness/oauth-server.mjs [--port N] [--exit-with-stdin]
// prints one JSON line {"listening":true,"port":N} when ready.
import { constants, createHash, createPublicKey, randomBytes, verify, X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';

const args = process.argv.slice(2);
const portArg = args.indexOf('--port');
const PORT = portArg >= 0 ? Number(args[portArg + 1]) : 0;

const CODE_TTL_MS = 60_000;
const clients = new Map(); // client_id -> { secret, appUser, secretExpiresAt, certificate: {thumbprintSha256, thumbprintSha1, publicKey} | null, mailboxes: Set | null }
const serviceAccounts = new Map(); // client_email -> { clientId, keyId, publicKey, scopes: Set | null (null: no delegation), users: Set | null }
const usedJtis = new Map(); // client assertion jti -> exp (ms), to refuse replays
const codes = new Map(); // code -> { clientId, redirectUri, challenge, method, username, scope, expiresAt }
const refreshTokens = new Map(); // token -> { clientId, username, scope }
const accessTokens = new Map(); // token -> { clientId, username, scope, expiresAt }
const devices = new Map(); // device_code -> { userCode, clientId, scope, interval, lastPoll, expiresAt, username, denied }
const settings = { accessTokenTtl: 3600, deviceInterval: 5, tokenDelayMs: 0 };
let faults = []; // queued {status, retryAfter, body}
let introspectDown = false;
const stats = { tokenRequests: 0, byGrant: {}, inFlight: 0, peakInFlight: 0, introspections: 0, passdbChecks: 0, authorizeRequests: [], assertions: [] };

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Google refuses an assertion valid for longer than this (its "short-lived token (60 minutes)"). */
const MAX_JWT_LIFETIME_S = 3600;
/** Tolerated clock difference between test process and server. */
const CLOCK_SKEW_S = 60;
/** Entra: a client assertion's exp should be "5-10 minutes after nbf at most". */
const MAX_CLIENT_ASSERTION_LIFETIME_S = 600;
// Google's and Microsoft's own words, so mailgate's classification is exercised against them.
const GOOGLE_DWD_SCOPE = 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.';
const GOOGLE_DWD_MISSING = 'Unauthorized client or scope in request.';
const GOOGLE_JWT_TIME = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your 'iat' and 'exp' values in the JWT claim.";

const token = (prefix) => `${prefix}_${randomBytes(24).toString('base64url')}`;
const sha256b64url = (s) => createHash('sha256').update(s).digest('base64url');

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json',
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

const oauthError = (res, status, error, description) =>
  send(res, status, { error, ...(description ? { error_description: description } : {}) });

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) return text ? JSON.parse(text) : {};
  return Object.fromEntries(new URLSearchParams(text));
}

/**
 * Client authentication: HTTP Basic (RFC 6749 §2.3.1), body parameters, or a
 * signed client assertion (RFC 7523 §2.2, Entra's certificate credentials).
 * Returns the client, or { error, description } saying why not.
 */
function authClient(req, body) {
  let id = body.client_id;
  let secret = body.client_secret;
  const auth = req.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    const [u, p] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
    id = decodeURIComponent(u ?? '');
    secret = decodeURIComponent(p ?? '');
  }
  if (body.client_assertion_type !== undefined || body.client_assertion !== undefined) return assertedClient(req, body);
  const client = clients.get(id);
  if (!client) return { error: 'invalid_client', description: 'unknown client or wrong secret' };
  // A certificate-only app must prove itself with an assertion, as Entra insists.
  if (!client.secret && client.certificate) {
    return { error: 'invalid_client', description: "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'." };
  }
  // Public clients (no secret registered) may omit it (device flow, PKCE).
  if (client.secret && client.secret !== secret) return { error: 'invalid_client', description: 'unknown client or wrong secret' };
  if (client.secret && client.secretExpiresAt && Date.now() > client.secretExpiresAt) {
    return { error: 'invalid_client', description: `AADSTS7000222: The provided client secret keys for app '${id}' are expired.` };
  }
  return { id, ...client };
}

/** The token URL as the request reached us: what `aud` must name. */
function tokenUrl(req) {
  return `http://${req.headers.host}/token`;
}

function decodeJwt(jwt) {
  const parts = typeof jwt === 'string' ? jwt.split('.') : [];
  if (parts.length !== 3) return null;
  try {
    return {
      header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
      claims: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
      input: Buffer.from(`${parts[0]}.${parts[1]}`),
      signature: Buffer.from(parts[2], 'base64url'),
    };
  } catch {
    return null;
  }
}

function verifyJwtSignature(jwt, publicKey) {
  if (jwt.header.alg === 'RS256') return verify('sha256', jwt.input, publicKey, jwt.signature);
  if (jwt.header.alg === 'PS256') return verify('sha256', jwt.input, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, jwt.signature);
  return false;
}

function assertedClient(req, body) {
  const fail = (description) => ({ error: 'invalid_client', description });
  if (body.client_assertion_type !== CLIENT_ASSERTION_TYPE) return { error: 'invalid_request', description: `AADSTS50027: client_assertion_type must be ${CLIENT_ASSERTION_TYPE}` };
  const jwt = decodeJwt(body.client_assertion);
  if (!jwt) return fail('AADSTS50027: Invalid JWT token: the client assertion is not a JWT.');
  const { header, claims } = jwt;
  const id = claims.iss;
  const client = clients.get(id);
  if (!client) return { error: 'unauthorized_client', description: `AADSTS700016: Application with identifier '${id}' was not found in the directory.` };
  if (!client.certificate) return fail(`AADSTS700027: Client assertion failed signature validation: no certificate is registered for '${id}'.`);
  const thumbprintOk = header['x5t#S256'] ? header['x5t#S256'] === client.certificate.thumbprintSha256 : header.x5t === client.certificate.thumbprintSha1;
  if (!thumbprintOk) return fail('AADSTS700027: Client assertion failed signature validation: the certificate used to sign it is not registered on the application.');
  if (!verifyJwtSignature(jwt, client.certificate.publicKey)) return fail('AADSTS700027: Client assertion failed signature validation.');
  if (claims.sub !== id || (body.client_id !== undefined && body.client_id !== id)) return fail('AADSTS50048: Subject mismatches Issuer claim in the client assertion.');
  if (claims.aud !== tokenUrl(req)) return fail(`AADSTS50027: Invalid JWT token: unexpected audience '${claims.aud}'.`);
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || claims.exp <= now - CLOCK_SKEW_S) return fail('AADSTS700024: Client assertion is not within its valid time range (expired).');
  if (typeof claims.nbf === 'number' && claims.nbf > now + CLOCK_SKEW_S) return fail('AADSTS700024: Client assertion is not within its valid time range (not yet valid).');
  if (claims.exp - (claims.nbf ?? claims.iat ?? now) > MAX_CLIENT_ASSERTION_LIFETIME_S) return fail('AADSTS700024: Client assertion is valid for too long.');
  if (!claims.jti) return fail('AADSTS50027: Invalid JWT token: jti is missing.');
  for (const [j, exp] of usedJtis) if (exp < Date.now()) usedJtis.delete(j);
  if (usedJtis.has(`${id}:${claims.jti}`)) return fail('AADSTS50027: Invalid JWT token: the client assertion was already used (jti).');
  usedJtis.set(`${id}:${claims.jti}`, claims.exp * 1000);
  stats.assertions.push({ kind: 'client', alg: header.alg, iss: claims.iss, aud: claims.aud });
  if (stats.assertions.length > 50) stats.assertions.shift();
  return { id, ...client, viaAssertion: true };
}

/**
 * RFC 7523 §2.1 as Google runs it for domain-wide delegation: the service
 * account's signed statement "issue a token for sub". Checks signature,
 * iss, aud, exp (not expired, at most an hour), scope, and the delegation
 * the admin API set up.
 */
function jwtBearerGrant(req, res, body) {
  const jwt = decodeJwt(body.assertion);
  if (!jwt) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: the assertion is not a JWT.');
  const { header, claims } = jwt;
  const sa = serviceAccounts.get(claims.iss);
  if (!sa) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: No valid verifier found for issuer.');
  if (header.alg !== 'RS256' || (sa.keyId && header.kid !== sa.keyId) || !verifyJwtSignature(jwt, sa.publicKey)) {
    return oauthError(res, 400, 'invalid_grant', 'Invalid JWT Signature.');
  }
  if (claims.aud !== tokenUrl(req)) return oauthError(res, 400, 'invalid_grant', `Invalid JWT: audience must be ${tokenUrl(req)}`);
  const now = Math.floor(Date.now() / 1000);
  const expOk =
    typeof claims.exp === 'number' && typeof claims.iat === 'number' &&
    claims.exp > now - CLOCK_SKEW_S && claims.exp <= now + MAX_JWT_LIFETIME_S + CLOCK_SKEW_S &&
    claims.iat <= now + CLOCK_SKEW_S && claims.exp - claims.iat <= MAX_JWT_LIFETIME_S && claims.exp > claims.iat;
  if (!expOk) return oauthError(res, 400, 'invalid_grant', GOOGLE_JWT_TIME);
  const scopes = String(claims.scope ?? '').split(' ').filter(Boolean);
  if (scopes.length === 0) return oauthError(res, 400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
  if (!claims.sub) return oauthError(res, 400, 'invalid_request', 'this test server only does domain-wide delegation: sub is required');
  if (sa.scopes === null) return oauthError(res, 401, 'unauthorized_client', GOOGLE_DWD_MISSING);
  if (!scopes.every((x) => sa.scopes.has(x))) return oauthError(res, 401, 'unauthorized_client', GOOGLE_DWD_SCOPE);
  if (sa.users && !sa.users.has(claims.sub)) return oauthError(res, 400, 'invalid_grant', 'Invalid email or User ID');
  stats.assertions.push({ kind: 'jwt-bearer', alg: header.alg, kid: header.kid, iss: claims.iss, sub: claims.sub, scope: claims.scope, aud: claims.aud, lifetime: claims.exp - claims.iat });
  if (stats.assertions.length > 50) stats.assertions.shift();
  return send(res, 200, issue(sa.clientId, claims.sub, scopes.join(' '), false, { kind: 'service_account', serviceAccount: claims.iss }));
}

function issue(clientId, username, scope, withRefresh = true, extra = {}) {
  const access = token('at');
  accessTokens.set(access, { clientId, username, scope, expiresAt: Date.now() + settings.accessTokenTtl * 1000, kind: 'user', ...extra });
  const out = { access_token: access, token_type: 'Bearer', expires_in: settings.accessTokenTtl, scope };
  if (withRefresh) {
    const refresh = token('rt');
    refreshTokens.set(refresh, { clientId, username, scope });
    out.refresh_token = refresh;
  }
  return out;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function redirectWith(res, redirectUri, params) {
  const u = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, v);
  res.writeHead(302, { Location: u.toString() });
  res.end();
}

function approve(res, q, username) {
  const code = token('code');
  codes.set(code, {
    clientId: q.client_id,
    redirectUri: q.redirect_uri,
    challenge: q.code_challenge,
    method: q.code_challenge_method,
    username,
    scope: q.scope ?? '',
    expiresAt: Date.now() + CODE_TTL_MS,
  });
  redirectWith(res, q.redirect_uri, { code, state: q.state });
}

function authorizePage(q) {
  const hidden = Object.entries(q)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test OAuth2 server: sign in</title></head>
<body><main><h1>Sign in to the test provider</h1><p>Client <code>${escapeHtml(q.client_id)}</code> asks for <code>${escapeHtml(q.scope ?? '')}</code>.</p>
<form method="post" action="/authorize">${hidden}
<label for="username">Username</label> <input id="username" name="username" autocomplete="username" required>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form></main></body></html>`;
}

async function handleAuthorize(req, res, url) {
  const q = req.method === 'POST' ? await readBody(req) : Object.fromEntries(url.searchParams);
  if (req.method === 'GET') {
    stats.authorizeRequests.push(Object.fromEntries(url.searchParams));
    if (stats.authorizeRequests.length > 50) stats.authorizeRequests.shift();
  }
  const client = clients.get(q.client_id);
  if (!client || !q.redirect_uri) return send(res, 400, '<p>unknown client or missing redirect_uri</p>');
  if (q.response_type !== 'code') return redirectWith(res, q.redirect_uri, { error: 'unsupported_response_type', state: q.state });
  if (req.method === 'POST') {
    if (q.decision === 'deny') {
      return redirectWith(res, q.redirect_uri, { error: 'access_denied', error_description: 'The user denied the request', state: q.state });
    }
    return approve(res, q, q.username);
  }
  if (q.login_hint) return approve(res, q, q.login_hint);
  return send(res, 200, authorizePage(q));
}

async function handleToken(req, res) {
  const body = await readBody(req);
  stats.tokenRequests++;
  stats.byGrant[body.grant_type] = (stats.byGrant[body.grant_type] ?? 0) + 1;
  stats.inFlight++;
  stats.peakInFlight = Math.max(stats.peakInFlight, stats.inFlight);
  try {
    if (settings.tokenDelayMs > 0) await new Promise((r) => setTimeout(r, settings.tokenDelayMs));
    const fault = faults.shift();
    if (fault) {
      const headers = fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
      return send(res, fault.status, fault.body ?? { error: 'temporarily_unavailable' }, headers);
    }
    // The assertion is the credential: no client authentication (RFC 7523 §2.1).
    if (body.grant_type === JWT_BEARER) return jwtBearerGrant(req, res, body);
    const client = authClient(req, body);
    if (client.error) return oauthError(res, client.error === 'invalid_client' ? 401 : 400, client.error, client.description);
    switch (body.grant_type) {
      case 'authorization_code': {
        const c = codes.get(body.code);
        codes.delete(body.code); // single use, even when the exchange fails
        if (!c || c.expiresAt < Date.now() || c.clientId !== client.id) return oauthError(res, 400, 'invalid_grant', 'unknown, used or expired code');
        if (c.redirectUri !== body.redirect_uri) return oauthError(res, 400, 'invalid_grant', 'redirect_uri does not match');
        if (c.challenge) {
          if (!body.code_verifier) return oauthError(res, 400, 'invalid_grant', 'code_verifier required (PKCE)');
          const ok = c.method === 'S256' ? sha256b64url(body.code_verifier) === c.challenge : body.code_verifier === c.challenge;
          if (!ok) return oauthError(res, 400, 'invalid_grant', 'PKCE verification failed');
        }
        return send(res, 200, issue(client.id, c.username, c.scope));
      }
      case 'refresh_token': {
        const r = refreshTokens.get(body.refresh_token);
        if (!r || r.clientId !== client.id) return oauthError(res, 400, 'invalid_grant', 'AADSTS70008: The refresh token has expired or is invalid');
        refreshTokens.delete(body.refresh_token); // rotation: the old one is dead
        return send(res, 200, issue(client.id, r.username, body.scope ?? r.scope));
      }
      case 'client_credentials': {
        // An app granted mailboxes (Exchange: Add-MailboxPermission for its
        // service principal) gets one token good for each of them.
        if (client.mailboxes) return send(res, 200, issue(client.id, null, body.scope ?? '', false, { kind: 'app' }));
        if (!client.appUser) return oauthError(res, 400, 'unauthorized_client', 'client has no app user');
        return send(res, 200, issue(client.id, client.appUser, body.scope ?? '', false));
      }
      case 'urn:ietf:params:oauth:grant-type:device_code': {
        const d = devices.get(body.device_code);
        if (!d || d.clientId !== client.id) return oauthError(res, 400, 'invalid_grant', 'unknown device code');
        if (d.expiresAt < Date.now()) return oauthError(res, 400, 'expired_token');
        if (d.denied) return oauthError(res, 400, 'access_denied');
        const now = Date.now();
        if (d.lastPoll && now - d.lastPoll < d.interval * 1000) {
          d.interval += 5; // RFC 8628 §3.5: slow_down adds 5 seconds
          d.lastPoll = now;
          return oauthError(res, 400, 'slow_down');
        }
        d.lastPoll = now;
        if (!d.username) return oauthError(res, 400, 'authorization_pending');
        devices.delete(body.device_code);
        return send(res, 200, issue(client.id, d.username, d.scope));
      }
      default:
        return oauthError(res, 400, 'unsupported_grant_type');
    }
  } finally {
    stats.inFlight--;
  }
}

/**
 * Which mailbox a live token may log in to, or null. A user's or service
 * account's token is its user's; an app token is good for any mailbox the
 * app was granted, so it needs the login name to answer (`login`).
 */
function tokenMailbox(t, login) {
  if (!t || t.expiresAt < Date.now()) return null;
  if (t.kind !== 'app') return t.username;
  const granted = clients.get(t.clientId)?.mailboxes;
  if (!login || !granted) return null;
  const wanted = login.toLowerCase();
  return [...granted].some((m) => m.toLowerCase() === wanted) ? login : null;
}

async function handleIntrospect(req, res, url) {
  const body = await readBody(req);
  stats.introspections++;
  if (introspectDown) return send(res, 503, { error: 'temporarily_unavailable' });
  const t = accessTokens.get(body.token);
  // Dovecot 2.3's POST mode sends only the token, so an app token (no user
  // of its own) is inactive here; /dovecot/passdb, which gets the login
  // name too, answers for it. A `user` hint (query or body) is honoured for
  // callers that have one.
  const username = tokenMailbox(t, url.searchParams.get('user') ?? body.username ?? null);
  if (username === null) return send(res, 200, { active: false });
  return send(res, 200, {
    active: true,
    username,
    scope: t.scope,
    client_id: t.clientId,
    exp: Math.floor(t.expiresAt / 1000),
  });
}

/**
 * Dovecot's oauth2 passdb in password-grant mode (use_grant_password = yes,
 * grant_url = …/dovecot/passdb) POSTs `grant_type=password&username=<SASL
 * user>&password=<the bearer token>`: unlike introspection it tells us which
 * mailbox is logging in, which an app-only token needs. 200 with `username`
 * = the login when the token may open that mailbox, else 400 invalid_grant
 * (Dovecot: password mismatch; 5xx would be a temporary failure).
 */
async function handleDovecotPassdb(req, res) {
  const body = await readBody(req);
  stats.passdbChecks++;
  if (introspectDown) return send(res, 503, { error: 'temporarily_unavailable' });
  const t = accessTokens.get(body.password);
  const username = tokenMailbox(t, body.username);
  if (username === null || username.toLowerCase() !== String(body.username ?? '').toLowerCase()) return oauthError(res, 400, 'invalid_grant', 'token not valid for this mailbox');
  return send(res, 200, { access_token: body.password, token_type: 'Bearer', expires_in: Math.max(1, Math.floor((t.expiresAt - Date.now()) / 1000)), username: body.username, active: true });
}

async function handleAdmin(req, res, path) {
  const body = req.method === 'POST' ? await readBody(req) : {};
  switch (path) {
    case '/admin/clients': {
      let certificate = null;
      if (body.certificate) {
        const cert = new X509Certificate(body.certificate);
        certificate = {
          thumbprintSha256: createHash('sha256').update(cert.raw).digest('base64url'),
          thumbprintSha1: createHash('sha1').update(cert.raw).digest('base64url'),
          publicKey: cert.publicKey,
        };
      }
      clients.set(body.client_id, {
        secret: body.client_secret ?? null,
        appUser: body.app_user ?? null,
        secretExpiresAt: body.secret_expires_at ? Number(body.secret_expires_at) * 1000 : null,
        certificate,
        mailboxes: Array.isArray(body.mailboxes) ? new Set(body.mailboxes) : null,
      });
      return send(res, 200, { ok: true });
    }
    case '/admin/app-grants': {
      // {client_id, mailboxes: [...]}: the mailboxes the app's token may open (replaces the list).
      const c = clients.get(body.client_id);
      if (!c) return send(res, 400, { error: 'unknown client' });
      c.mailboxes = new Set(body.mailboxes ?? []);
      return send(res, 200, { client_id: body.client_id, mailboxes: [...c.mailboxes] });
    }
    case '/admin/service-accounts':
      // {client_email, client_id, public_key (PEM), private_key_id?, scopes? (delegated; default the Gmail scope), users? (known subjects)}
      serviceAccounts.set(body.client_email, {
        clientId: body.client_id,
        keyId: body.private_key_id ?? null,
        publicKey: createPublicKey(body.public_key),
        scopes: body.delegation === false ? null : new Set(body.scopes ?? ['https://mail.google.com/']),
        users: Array.isArray(body.users) ? new Set(body.users) : null,
      });
      return send(res, 200, { ok: true });
    case '/admin/service-accounts/delegation': {
      // {client_email, scopes: [...]} grants exactly those scopes; {client_email, missing: true} removes the delegation.
      const sa = serviceAccounts.get(body.client_email);
      if (!sa) return send(res, 400, { error: 'unknown service account' });
      sa.scopes = body.missing ? null : new Set(body.scopes ?? []);
      return send(res, 200, { client_email: body.client_email, scopes: sa.scopes ? [...sa.scopes] : null });
    }
    case '/admin/config':
      for (const k of Object.keys(settings)) if (body[k] !== undefined) settings[k] = Number(body[k]);
      return send(res, 200, settings);
    case '/admin/issue':
      if (!clients.has(body.client_id)) return send(res, 400, { error: 'unknown client' });
      return send(res, 200, issue(body.client_id, body.username, body.scope ?? 'mail'));
    case '/admin/revoke': {
      let n = 0;
      for (const m of [refreshTokens, accessTokens]) {
        for (const [k, v] of m) {
          if (v.username === body.username) {
            m.delete(k);
            n++;
          }
        }
      }
      return send(res, 200, { revoked: n });
    }
    case '/admin/revoke-access': {
      let n = 0;
      for (const [k, v] of accessTokens) {
        if (v.username === body.username) {
          accessTokens.delete(k);
          n++;
        }
      }
      return send(res, 200, { revoked: n });
    }
    case '/admin/faults':
      for (let i = 0; i < Number(body.count ?? 1); i++) faults.push({ status: body.status, retryAfter: body.retryAfter, body: body.body });
      return send(res, 200, { queued: faults.length });
    case '/admin/faults/clear':
      faults = [];
      return send(res, 200, { ok: true });
    case '/admin/introspect-down':
      introspectDown = Boolean(body.down);
      return send(res, 200, { down: introspectDown });
    case '/admin/stats':
      return send(res, 200, stats);
    case '/admin/stats/reset':
      Object.assign(stats, { tokenRequests: 0, byGrant: {}, peakInFlight: stats.inFlight, introspections: 0, passdbChecks: 0, authorizeRequests: [], assertions: [] });
      return send(res, 200, stats);
    default:
      return send(res, 404, { error: 'not found' });
  }
}

async function handleDevice(req, res, path) {
  const body = await readBody(req);
  if (path === '/device_authorization') {
    const client = authClient(req, body);
    if (client.error) return oauthError(res, 401, client.error, client.description);
    const deviceCode = token('dc');
    const userCode = randomBytes(4).toString('hex').toUpperCase();
    const interval = settings.deviceInterval;
    devices.set(deviceCode, { userCode, clientId: client.id, scope: body.scope ?? '', interval, lastPoll: 0, expiresAt: Date.now() + 600_000 });
    const verification = `http://127.0.0.1:${server.address().port}/device`;
    return send(res, 200, {
      device_code: deviceCode,
      user_code: userCode,
      verification_uri: verification,
      verification_uri_complete: `${verification}?user_code=${userCode}`,
      expires_in: 600,
      interval,
    });
  }
  // POST /device/approve {user_code, username} or {user_code, deny: true}
  for (const d of devices.values()) {
    if (d.userCode === body.user_code) {
      if (body.deny) d.denied = true;
      else d.username = body.username;
      return send(res, 200, { ok: true });
    }
  }
  return send(res, 404, { error: 'unknown user_code' });
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  let p;
  if (path === '/authorize') p = handleAuthorize(req, res, url);
  else if (path === '/token' && req.method === 'POST') p = handleToken(req, res);
  else if (path === '/introspect' && req.method === 'POST') p = handleIntrospect(req, res, url);
  else if (path === '/dovecot/passdb' && req.method === 'POST') p = handleDovecotPassdb(req, res);
  else if (path === '/device_authorization' || path === '/device/approve') p = handleDevice(req, res, path);
  else if (path.startsWith('/admin/')) p = handleAdmin(req, res, path);
  else p = Promise.resolve(send(res, 404, { error: 'not found' }));
  p.catch((err) => {
    if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: String(err?.message ?? err) });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ listening: true, port: server.address().port }) + '\n');
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// --exit-with-stdin: our stdin is a pipe from the process that started us,
// which never writes to it. However that process ends (SIGKILL, a CI
// timeout, a closed terminal, or just exiting without stop()), the kernel
// closes its end and we read EOF: then no test can reach us any more, so we
// exit instead of holding a port forever. Event-driven, so nothing polls,
// and unlike watching process.ppid it does not rely on Linux reparenting,
// nor on a pid that may be reused by then.
if (args.includes('--exit-with-stdin')) {
  const orphaned = () => process.exit(0);
  process.stdin.once('end', orphaned);
  process.stdin.once('error', orphaned);
  process.stdin.resume(); // read (and drop) until EOF
}
