import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/types.js';
import { MailgateError } from '../../errors.js';
import { SCHEMAS } from '../api-schemas.js';
import type { ConnectorState, ConnectorStatus } from '../../incoming/source.js';
import type { TokenStatus } from '../../oauth/token-service.js';
import type { AccountStatusRecord } from '../../store/meta.js';

export interface SideResult {
  ok: boolean;
  /** What went wrong, in plain words (what happened, to what, what to check). */
  error: string | null;
  /** The code behind it for scripts: a system code (ECONNREFUSED, ENOTFOUND, …) or a catalogue code; null when ok. */
  code: string | null;
}

export interface AccountRouteDeps {
  config: () => Config;
  incoming: (account: string) => ConnectorStatus | null;
  /** Persisted side status (outgoing last success/error is written by the send worker). */
  sideStatus: () => Promise<AccountStatusRecord[]>;
  /** Every account's token status from one store read (TokenService.statusAll). */
  tokens: () => Promise<Map<string, TokenStatus>>;
  testIncoming: (account: string) => Promise<SideResult>;
  testOutgoing: (account: string) => Promise<SideResult | null>;
  /** Account → the node holding its lease (absent: none holds it). */
  owners?: () => Promise<ReadonlyMap<string, string>>;
}

const iso = (t: number | Date | null | undefined): string | null =>
  t === null || t === undefined ? null : new Date(t).toISOString();

/** An account's `incoming.state`: its connector's, or `paused` (`enabled: false`). */
export type AccountState = ConnectorState | 'paused';
/** The incoming states `?state=` takes (several, comma-separated). */
export const ACCOUNT_STATES: readonly AccountState[] = ['connecting', 'idle', 'polling', 'backoff', 'error', 'stopped', 'paused'];
/** Most accounts one page holds (`?limit=`). */
export const MAX_ACCOUNTS_PAGE = 1000;

export interface AccountsQuery {
  /** Only accounts whose incoming state is one of these. */
  states?: readonly AccountState[];
  /** Skip this many matching accounts (config order). */
  offset?: number;
  /** At most this many; all when absent. */
  limit?: number;
}

/** Reads `?state=error,backoff&limit=50&offset=100`, or says in plain words what is wrong with it. */
export function parseAccountsQuery(q: Record<string, unknown>): AccountsQuery {
  const out: AccountsQuery = {};
  if (q.state !== undefined) {
    const states = String(q.state).split(',').map((x) => x.trim()).filter((x) => x !== '');
    const bad = states.filter((x) => !ACCOUNT_STATES.includes(x as AccountState));
    if (states.length === 0 || bad.length > 0) {
      throw new MailgateError('BAD_REQUEST', `state must be one or more of ${ACCOUNT_STATES.join(', ')} (comma-separated), not ${bad.length > 0 ? bad.join(', ') : 'empty'}`);
    }
    out.states = states as AccountState[];
  }
  if (q.limit !== undefined) {
    const limit = Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ACCOUNTS_PAGE) throw new MailgateError('BAD_REQUEST', `limit must be an integer from 1 to ${MAX_ACCOUNTS_PAGE}`);
    out.limit = limit;
  }
  if (q.offset !== undefined) {
    const offset = Number(q.offset);
    if (!Number.isInteger(offset) || offset < 0) throw new MailgateError('BAD_REQUEST', 'offset must be an integer of 0 or more');
    out.offset = offset;
  }
  return out;
}

/**
 * GET /v1/accounts: O(accounts) with three reads of the store (the status
 * rows, the token rows and the leases, together), however many accounts there are; no
 * store query per account. `total` counts the accounts that match the
 * filter, before paging; `nextOffset` is where the next page starts, or
 * null on the last one.
 */
export async function accountsView(deps: AccountRouteDeps, query: AccountsQuery = {}) {
  const [sides, tokens, owners] = await Promise.all([deps.sideStatus(), deps.tokens(), deps.owners?.() ?? new Map<string, string>()]);
  const stored = new Map<string, AccountStatusRecord>();
  for (const r of sides) stored.set(`${r.side}\0${r.account}`, r);
  const wanted = query.states ? new Set(query.states) : null;
  const offset = query.offset ?? 0;
  const limit = query.limit ?? Infinity;
  const accounts = [];
  let total = 0;
  /** Accounts per incoming state, over all of them (the admin UI's filter shows these). */
  const counts: Partial<Record<AccountState, number>> = {};
  for (const a of deps.config().accounts) {
    const live = deps.incoming(a.name);
    const inStored = stored.get(`incoming\0${a.name}`);
    const state: AccountState = !a.enabled ? 'paused' : ((live?.state ?? inStored?.state ?? 'stopped') as ConnectorState);
    counts[state] = (counts[state] ?? 0) + 1;
    if (wanted && !wanted.has(state)) continue;
    total++;
    if (total <= offset || accounts.length >= limit) continue;
    const outStored = stored.get(`outgoing\0${a.name}`);
    accounts.push({
      name: a.name,
      email: a.email,
      incoming: {
        protocol: a.incoming.protocol,
        state,
        lastSuccessAt: iso(live?.lastSuccessAt ?? inStored?.lastSuccessAt ?? null),
        lastError: live ? live.lastError : (inStored?.lastError ?? null),
      },
      outgoing: {
        lastSuccessAt: iso(outStored?.lastSuccessAt ?? null),
        lastError: outStored?.lastError ?? null,
      },
      token: tokens.get(a.name) ?? MISSING_TOKEN,
      owner: owners.get(a.name) ?? null,
    });
  }
  const nextOffset = offset + accounts.length < total ? offset + accounts.length : null;
  return { accounts, total, nextOffset, counts };
}

const MISSING_TOKEN: TokenStatus = { state: 'missing', expiresAt: null, lastRefreshAt: null, refreshTokenIssuedAt: null, lastError: null };

export function registerAccountRoutes(app: FastifyInstance, deps: AccountRouteDeps): void {
  app.get('/accounts', { schema: SCHEMAS.accounts }, async (req) => {
    const { accounts, total, nextOffset } = await accountsView(deps, parseAccountsQuery(req.query as Record<string, unknown>));
    return { accounts, total, nextOffset };
  });

  app.post('/accounts/:name/test', { schema: SCHEMAS.testAccount }, async (req) => {
    const { name } = req.params as { name: string };
    if (!deps.config().accounts.some((a) => a.name === name)) throw new MailgateError('NOT_FOUND', `no account ${name}`);
    const [incoming, outgoing] = await Promise.all([deps.testIncoming(name), deps.testOutgoing(name)]);
    return { incoming, outgoing: outgoing ?? { ok: false, error: 'no outgoing server configured for this account', code: null } };
  });
}
