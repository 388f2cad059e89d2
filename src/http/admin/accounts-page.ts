import type { FastifyInstance } from 'fastify';
import type { CallbackReturn } from '../routes/oauth.js';
import type { AccountConfig } from '../../config/types.js';
import { STATE_TTL_MS } from '../../oauth/flows.js';
import { MailgateError } from '../../errors.js';
import { ACCOUNT_STATES, accountsView, parseAccountsQuery, type AccountsQuery } from '../routes/accounts.js';
import { isSecure, redirectWith, sendPage, sessionOf, takeFlash, type AdminUiDeps } from './context.js';
import { html, raw, type SafeHtml } from './html.js';
import { page, postForm } from './layout.js';
import { accountProblem, duration, when } from './plain-words.js';
import { readCookie, setCookie, type Session } from './session.js';
import { accountNamed } from '../../config/lookup.js';

/** Set when Authorize is clicked here; sends the browser back here after /oauth2/callback. */
const RETURN_COOKIE = 'mailgate_authorize_return';
const CALLBACK_PATH = '/oauth2/callback';
/** Accounts per page of the Accounts page. */
export const ADMIN_PAGE_SIZE = 50;

type AccountView = Awaited<ReturnType<typeof accountsView>>['accounts'][number];

export async function providerOf(deps: AdminUiDeps, credential: string | null): Promise<string | null> {
  if (!credential) return null;
  try {
    return (await deps.tokens.resolveCredential(credential)).provider;
  } catch {
    return null; // an undefined credential shows up as the account's error
  }
}

export const TOKEN_CLASS: Record<string, string> = { ok: 'state-ok', expiring: 'state-warn', reauth_required: 'state-bad', missing: 'state-bad' };
export const INCOMING_CLASS: Record<string, string> = { idle: 'state-ok', polling: 'state-ok', error: 'state-bad', backoff: 'state-warn', paused: 'state-warn' };

/** The connector states in an admin's words (the API keeps the contract's names). */
export const INCOMING_WORDS: Record<string, string> = {
  connecting: 'connecting',
  idle: 'connected, waiting for mail',
  polling: 'checking for mail',
  backoff: 'not connected; trying again shortly',
  error: 'needs attention',
  stopped: 'stopped',
};

function tokenCell(a: AccountView, usesOAuth: boolean, now: number): SafeHtml {
  if (!usesOAuth) return html`password login`;
  const t = a.token;
  const state = t.state.replace('_', ' ');
  return html`<span class="${TOKEN_CLASS[t.state] ?? ''}">${state}</span>${t.expiresAt ? html`<br>expires ${when(t.expiresAt, now)}` : null}`;
}

function row(a: AccountView, cfg: AccountConfig, extra: { credential: string | null; provider: string | null; lastMessage: number | null }, session: Session, now: number): SafeHtml {
  const usesOAuth = extra.credential !== null;
  const problem = accountProblem({
    token: a.token,
    usesOAuth,
    provider: extra.provider,
    incomingError: a.incoming.lastError,
    outgoingError: a.outgoing.lastError,
  });
  const issued = a.token.refreshTokenIssuedAt;
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  const label = (verb: string) => html` aria-label="${verb} ${a.name}"`;
  return html`<tr>
<th scope="row"><a href="/admin/accounts/${encodeURIComponent(a.name)}">${a.name}</a><br><small>${a.email}</small></th>
<td>${a.incoming.protocol.toUpperCase()}: <span class="${INCOMING_CLASS[a.incoming.state] ?? ''}" title="${a.incoming.state}">${INCOMING_WORDS[a.incoming.state] ?? a.incoming.state}</span><br><small>last success ${when(a.incoming.lastSuccessAt, now)}</small></td>
<td>${cfg.outgoing ? html`${a.outgoing.lastError ? html`<span class="state-bad">error</span>` : 'configured'}<br><small>last success ${when(a.outgoing.lastSuccessAt, now)}</small>` : 'not configured'}</td>
<td>${tokenCell(a, usesOAuth, now)}</td>
<td>${usesOAuth && issued ? duration(now - Date.parse(issued)) : '—'}</td>
<td>${when(iso(extra.lastMessage), now)}</td>
<td>${problem ?? '—'}</td>
<td>${a.owner ?? html`<span class="state-warn">none</span>`}</td>
<td>${usesOAuth ? postForm(`/admin/accounts/${encodeURIComponent(a.name)}/authorize`, session, html`<button type="submit" class="primary"${label('Authorize')}>Authorize</button>`) : null}
${postForm(`/admin/accounts/${encodeURIComponent(a.name)}/test`, session, html`<button type="submit"${label('Test connection of')}>Test connection</button>`)}</td>
</tr>`;
}

/** The replicas and what each works (one row on a single node). */
async function clusterTable(deps: AdminUiDeps, now: number): Promise<SafeHtml | null> {
  if (!deps.cluster) return null;
  const { nodes } = await deps.cluster();
  if (nodes.length === 0) return null;
  const iso = (t: number) => new Date(t).toISOString();
  const rows = nodes.map(
    (n) => html`<tr><th scope="row">${n.name}</th><td>${when(iso(n.startedAt), now)}</td><td>${when(iso(n.lastSeenAt), now)}</td><td>${n.accounts.length ? [...n.accounts].sort().join(', ') : '—'}</td></tr>`,
  );
  return html`<table>
<caption>Replicas</caption>
<thead><tr><th scope="col">Replica</th><th scope="col">Started</th><th scope="col">Last heartbeat</th><th scope="col">Accounts</th></tr></thead>
<tbody>${rows}</tbody>
</table>`;
}

export function registerAccountPages(admin: FastifyInstance, deps: AdminUiDeps): void {
  admin.get('/accounts', async (req, reply) => {
    const session = sessionOf(req);
    const now = Date.now();
    const q = req.query as Record<string, unknown>;
    // The UI's filter and pages: the same ?state= as the API, ?page= of ADMIN_PAGE_SIZE.
    let query: AccountsQuery;
    let pageNo: number;
    let filterError: string | null = null;
    try {
      query = parseAccountsQuery(q.state === undefined || q.state === '' ? {} : { state: q.state });
      pageNo = q.page === undefined ? 1 : Number(q.page);
      if (!Number.isInteger(pageNo) || pageNo < 1) throw new MailgateError('BAD_REQUEST', 'page must be a whole number of 1 or more');
    } catch (err) {
      filterError = (err as Error).message;
      query = {};
      pageNo = 1;
    }
    query = { ...query, limit: ADMIN_PAGE_SIZE, offset: (pageNo - 1) * ADMIN_PAGE_SIZE };
    const { accounts, total, nextOffset, counts } = await accountsView(deps.accounts, query);
    const byName = new Map(deps.config().accounts.map((c) => [c.name, c]));
    // One credential lookup per credential, and the last message only for the rows shown.
    const providers = new Map<string, Promise<string | null>>();
    const provider = (credential: string | null) => {
      if (!credential) return Promise.resolve(null);
      let p = providers.get(credential);
      if (!p) providers.set(credential, (p = providerOf(deps, credential)));
      return p;
    };
    const rows = await Promise.all(
      accounts.map(async (a) => {
        const cfg = byName.get(a.name);
        if (!cfg) return null;
        const credential = deps.tokens.credentialNameOf(cfg);
        const extra = { credential, provider: await provider(credential), lastMessage: await deps.store.messages.lastReceivedAt(a.name) };
        return row(a, cfg, extra, session, now);
      }),
    );
    // Arriving from /oauth2/callback (see returnToAccounts).
    const authorizedQ = q.authorized;
    const authorized = typeof authorizedQ === 'string' ? authorizedQ : undefined;
    const flash =
      takeFlash(req) ??
      (filterError ? { kind: 'error' as const, text: `The filter was not understood (${filterError}); showing every account.` } : null) ??
      (authorized && byName.has(authorized) ? { kind: 'ok' as const, text: `Account ${authorized} is authorized; its tokens are stored.` } : null);
    const configured = deps.config().accounts.length;
    const stateParam = query.states ? query.states.join(',') : '';
    const link = (p: number) => `/admin/accounts?${new URLSearchParams({ ...(stateParam ? { state: stateParam } : {}), page: String(p) }).toString()}`;
    const pages = Math.max(1, Math.ceil(total / ADMIN_PAGE_SIZE));
    const filter = html`<form method="get" action="/admin/accounts" class="filter">
<label for="state">Show</label>
<select id="state" name="state">
<option value=""${stateParam === '' ? raw(' selected') : ''}>all ${configured} accounts</option>
${ACCOUNT_STATES.map((st) => html`<option value="${st}"${stateParam === st ? raw(' selected') : ''}>${st} (${counts[st] ?? 0})</option>`)}
</select>
<button type="submit">Filter</button>
</form>
<p>${total === 0 ? 'No account matches.' : `Accounts ${(pageNo - 1) * ADMIN_PAGE_SIZE + 1}–${(pageNo - 1) * ADMIN_PAGE_SIZE + accounts.length} of ${total}${stateParam ? ` in state ${stateParam}` : ''}.`}
${pageNo > 1 ? html` <a href="${link(pageNo - 1)}" rel="prev">Previous page</a>` : null}${nextOffset !== null ? html` <a href="${link(pageNo + 1)}" rel="next">Next page</a>` : null}${pages > 1 ? ` (page ${pageNo} of ${pages})` : ''}</p>`;
    const body = configured
      ? html`<p>Accounts come from the config file. Authorize runs the provider's consent screen and returns here.</p>
${filter}
<table>
<caption>Accounts and their connections</caption>
<thead><tr><th scope="col">Account</th><th scope="col">Incoming</th><th scope="col">Outgoing</th><th scope="col">Token</th><th scope="col">Refresh token age</th><th scope="col">Last message</th><th scope="col">Problem</th><th scope="col">Replica</th><th scope="col">Actions</th></tr></thead>
<tbody>${rows.filter((r): r is SafeHtml => r !== null)}</tbody>
</table>
${await clusterTable(deps, now)}`
      : html`<p>No accounts yet. Add them to the config file and reload.</p>`;
    return sendPage(reply, page({ title: 'Accounts', section: 'accounts', session, flash, body }));
  });

  // The `authorizeUrl` of account.reauth_required: why, and the one button that starts the consent.
  admin.get('/accounts/:name/authorize', async (req, reply) => {
    const session = sessionOf(req);
    const { name } = req.params as { name: string };
    const cfg = accountNamed(deps.config(), name);
    if (!cfg) return redirectWith(req, reply, '/admin/accounts', { kind: 'error', text: `There is no account ${name}.` });
    const status = await deps.tokens.status(name);
    const why = status.state === 'reauth_required' ? (status.lastError ?? 'the provider no longer accepts its refresh token') : null;
    const body = html`<p>${why ? html`Account <strong>${name}</strong> must be authorized again: ${why}` : html`Account <strong>${name}</strong> (${cfg.email}): token ${status.state.replace('_', ' ')}.`}</p>
<p>Authorize opens the provider's consent screen; sign in as the mailbox owner (${cfg.incoming.user}). You come back to the Accounts page.</p>
${postForm(`/admin/accounts/${encodeURIComponent(name)}/authorize`, session, html`<button type="submit" class="primary" aria-label="Authorize ${name}">Authorize</button>`)}`;
    return sendPage(reply, page({ title: `Authorize ${name}`, section: 'accounts', session, flash: takeFlash(req), body }));
  });

  admin.post('/accounts/:name/authorize', async (req, reply) => {
    const { name } = req.params as { name: string };
    let url: string;
    try {
      url = (await deps.flows.startAuthorization(name)).authorizationUrl;
    } catch (err) {
      return redirectWith(req, reply, '/admin/accounts', { kind: 'error', text: `Cannot authorize ${name}: ${(err as Error).message}` });
    }
    // Lax, not Strict: the provider's redirect to the callback is a cross-site navigation.
    setCookie(reply, RETURN_COOKIE, name, { path: CALLBACK_PATH, maxAge: STATE_TTL_MS / 1000, sameSite: 'lax', secure: isSecure(deps) });
    return reply.code(303).header('location', url).send();
  });

  admin.post('/accounts/:name/test', async (req, reply) => {
    const { name } = req.params as { name: string };
    const cfg = accountNamed(deps.config(), name);
    if (!cfg) return redirectWith(req, reply, '/admin/accounts', { kind: 'error', text: `There is no account ${name}.` });
    const [incoming, outgoing] = await Promise.all([deps.accounts.testIncoming(name), cfg.outgoing ? deps.accounts.testOutgoing(name) : null]);
    const side = (label: string, r: { ok: boolean; error: string | null } | null) =>
      r === null ? `${label}: not configured` : r.ok ? `${label}: login ok` : `${label}: failed — ${r.error ?? 'unknown error'}`;
    const ok = incoming.ok && (outgoing === null || outgoing.ok);
    return redirectWith(req, reply, '/admin/accounts', { kind: ok ? 'ok' : 'error', text: `Test of ${name}. ${side('Incoming', incoming)}. ${side('Outgoing', outgoing)}.` });
  });
}

/**
 * After a consent started from the Accounts page, the browser comes back to
 * it instead of stopping at the callback's "you can close this window"; a
 * failed callback keeps its error page. The callback route asks this (see
 * CallbackReturn), so it stays the one place that completes flows.
 */
export function returnToAccounts(deps: AdminUiDeps): CallbackReturn {
  return (req, reply, account) => {
    if (!readCookie(req, RETURN_COOKIE)) return false;
    setCookie(reply, RETURN_COOKIE, '', { path: CALLBACK_PATH, maxAge: 0, sameSite: 'lax', secure: isSecure(deps) });
    if (account === null) return false;
    void reply.code(303).header('location', `/admin/accounts?authorized=${encodeURIComponent(account)}`).send();
    return true;
  };
}
