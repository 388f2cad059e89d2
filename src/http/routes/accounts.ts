import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/types.js';
import { MailgateError } from '../../errors.js';
import { SCHEMAS } from '../api-schemas.js';
import type { ConnectorStatus } from '../../incoming/source.js';
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
  token: (account: string) => Promise<TokenStatus>;
  testIncoming: (account: string) => Promise<SideResult>;
  testOutgoing: (account: string) => Promise<SideResult | null>;
}

const iso = (t: number | Date | null | undefined): string | null =>
  t === null || t === undefined ? null : new Date(t).toISOString();

export async function accountsView(deps: AccountRouteDeps) {
  const sides = await deps.sideStatus();
  const side = (account: string, s: 'incoming' | 'outgoing') => sides.find((r) => r.account === account && r.side === s);
  const accounts = [];
  for (const a of deps.config().accounts) {
    const live = deps.incoming(a.name);
    const inStored = side(a.name, 'incoming');
    const outStored = side(a.name, 'outgoing');
    accounts.push({
      name: a.name,
      email: a.email,
      incoming: {
        protocol: a.incoming.protocol,
        state: !a.enabled ? 'paused' : (live?.state ?? inStored?.state ?? 'stopped'),
        lastSuccessAt: iso(live?.lastSuccessAt ?? inStored?.lastSuccessAt ?? null),
        lastError: live ? live.lastError : (inStored?.lastError ?? null),
      },
      outgoing: {
        lastSuccessAt: iso(outStored?.lastSuccessAt ?? null),
        lastError: outStored?.lastError ?? null,
      },
      token: await deps.token(a.name),
    });
  }
  return { accounts };
}

export function registerAccountRoutes(app: FastifyInstance, deps: AccountRouteDeps): void {
  app.get('/accounts', { schema: SCHEMAS.accounts }, async () => accountsView(deps));

  app.post('/accounts/:name/test', { schema: SCHEMAS.testAccount }, async (req) => {
    const { name } = req.params as { name: string };
    if (!deps.config().accounts.some((a) => a.name === name)) throw new MailgateError('NOT_FOUND', `no account ${name}`);
    const [incoming, outgoing] = await Promise.all([deps.testIncoming(name), deps.testOutgoing(name)]);
    return { incoming, outgoing: outgoing ?? { ok: false, error: 'no outgoing server configured for this account', code: null } };
  });
}
