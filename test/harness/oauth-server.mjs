// A real OAuth2 authorization server for tests, as a separate process on
// node:http only (spawned with `node`, no build). In-memory state, opaque
// random tokens. Implements what mailgate uses: authorization_code with PKCE
// S256 (RFC 7636), refresh_token with rotation, client_credentials, the device
// grant (RFC 8628), token introspection for Dovecot (RFC 7662), plus /admin/*
// endpoints that let tests inject faults and read counters.
//
//   node test/harness/oauth-server.mjs [--port N] [--exit-with-stdin]
// prints one JSON line {"listening":true,"port":N} when ready.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const args = process.argv.slice(2);
const portArg = args.indexOf('--port');
const PORT = portArg >= 0 ? Number(args[portArg + 1]) : 0;

const CODE_TTL_MS = 60_000;
const clients = new Map(); // client_id -> { secret, appUser }
const codes = new Map(); // code -> { clientId, redirectUri, challenge, method, username, scope, expiresAt }
const refreshTokens = new Map(); // token -> { clientId, username, scope }
const accessTokens = new Map(); // token -> { clientId, username, scope, expiresAt }
const devices = new Map(); // device_code -> { userCode, clientId, scope, interval, lastPoll, expiresAt, username, denied }
const settings = { accessTokenTtl: 3600, deviceInterval: 5, tokenDelayMs: 0 };
let faults = []; // queued {status, retryAfter, body}
let introspectDown = false;
const stats = { tokenRequests: 0, byGrant: {}, inFlight: 0, peakInFlight: 0, introspections: 0, authorizeRequests: [] };

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

/** Client authentication: HTTP Basic (RFC 6749 §2.3.1) or body parameters. */
function authClient(req, body) {
  let id = body.client_id;
  let secret = body.client_secret;
  const auth = req.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    const [u, p] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
    id = decodeURIComponent(u ?? '');
    secret = decodeURIComponent(p ?? '');
  }
  const client = clients.get(id);
  if (!client) return null;
  // Public clients (no secret registered) may omit it (device flow, PKCE).
  if (client.secret && client.secret !== secret) return null;
  return { id, ...client };
}

function issue(clientId, username, scope, withRefresh = true) {
  const access = token('at');
  accessTokens.set(access, { clientId, username, scope, expiresAt: Date.now() + settings.accessTokenTtl * 1000 });
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
    const client = authClient(req, body);
    if (!client) return oauthError(res, 401, 'invalid_client', 'unknown client or wrong secret');
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

async function handleIntrospect(req, res) {
  const body = await readBody(req);
  stats.introspections++;
  if (introspectDown) return send(res, 503, { error: 'temporarily_unavailable' });
  const t = accessTokens.get(body.token);
  if (!t || t.expiresAt < Date.now()) return send(res, 200, { active: false });
  return send(res, 200, {
    active: true,
    username: t.username,
    scope: t.scope,
    client_id: t.clientId,
    exp: Math.floor(t.expiresAt / 1000),
  });
}

async function handleAdmin(req, res, path) {
  const body = req.method === 'POST' ? await readBody(req) : {};
  switch (path) {
    case '/admin/clients':
      clients.set(body.client_id, { secret: body.client_secret ?? null, appUser: body.app_user ?? null });
      return send(res, 200, { ok: true });
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
      Object.assign(stats, { tokenRequests: 0, byGrant: {}, peakInFlight: stats.inFlight, introspections: 0, authorizeRequests: [] });
      return send(res, 200, stats);
    default:
      return send(res, 404, { error: 'not found' });
  }
}

async function handleDevice(req, res, path) {
  const body = await readBody(req);
  if (path === '/device_authorization') {
    const client = authClient(req, body);
    if (!client) return oauthError(res, 401, 'invalid_client');
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
  else if (path === '/introspect' && req.method === 'POST') p = handleIntrospect(req, res);
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
