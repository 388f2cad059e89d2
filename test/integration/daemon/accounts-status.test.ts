import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { until } from '../../harness/until.js';
import { freePort, runCli, startDaemon, type Daemon } from './run-daemon.js';

/**
 * GET /v1/accounts?state=…&limit=&offset= and `mailgate status --state` on
 * the built daemon: 4 password accounts whose server refuses connections
 * (backoff) and 3 OAuth2 accounts without a token (error, "needs
 * authorization").
 */

const TOKEN = 'accounts-status-admin-token-0123456789';
const BACKOFF = ['b1', 'b2', 'b3', 'b4'];
const ERROR = ['e1', 'e2', 'e3'];

function configYaml(port: number, closed: number): string {
  const imap = (name: string, auth: string) => `  - name: ${name}
    email: ${name}@example.com
    incoming: { protocol: imap, host: 127.0.0.1, port: ${closed}, tls: false, auth: ${auth}, mode: poll, pollInterval: 1h }
    webhook: hook
`;
  return `server:
  listen: 127.0.0.1:${port}
  adminToken: ${TOKEN}
dataDir: ./data
limits: { loginsPerSecond: 50 }
credentials:
  - name: idp
    provider: custom
    clientId: c
    clientSecret: s
    authorizationEndpoint: http://127.0.0.1:${closed}/authorize
    tokenEndpoint: http://127.0.0.1:${closed}/token
    scopes: [mail]
accounts:
${BACKOFF.map((n) => imap(n, '{ method: password, password: p }')).join('')}${ERROR.map((n) => imap(n, '{ method: xoauth2, credential: idp }')).join('')}webhooks:
  - name: hook
    url: http://127.0.0.1:${closed}/hook
    secret: s
`;
}

interface AccountsPage {
  accounts: { name: string; incoming: { state: string; lastError: string | null }; token: { state: string } }[];
  total: number;
  nextOffset: number | null;
}

describe('GET /v1/accounts filters and pages (daemon)', () => {
  let daemon: Daemon;
  let configPath: string;
  const get = async (query: string) => {
    const r = await fetch(`${daemon.url}/v1/accounts${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: r.status, body: (await r.json()) as AccountsPage & { error?: string } };
  };
  const names = (p: AccountsPage) => p.accounts.map((a) => a.name);

  beforeAll(async () => {
    const dir = tmpDataDir('mg-accounts-status-');
    const port = await freePort();
    configPath = join(dir, 'mailgate.yaml');
    writeFileSync(configPath, configYaml(port, await freePort()));
    daemon = await startDaemon(configPath, port);
    // Every account has tried its first (paced) login.
    await until(async () => (await get('?state=error,backoff')).body.total === 7, 30_000, 'every account in backoff or error');
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('answers every account without a query, as in v1, with total and nextOffset', async () => {
    const { status, body } = await get('');
    expect(status).toBe(200);
    expect(names(body)).toEqual([...BACKOFF, ...ERROR]);
    expect(body.total).toBe(7);
    expect(body.nextOffset).toBeNull();
  });

  // A connector retrying passes through `connecting` for a moment: each
  // filter is read until it shows its accounts (they are in that state
  // nearly all the time), and never shows another one.
  const settles = async (query: string, want: string[]) => {
    let seen: AccountsPage | null = null;
    await until(async () => {
      seen = (await get(query)).body;
      for (const n of names(seen)) expect(want).toContain(n);
      return names(seen).length === want.length;
    }, 20_000, `${query} to list ${want.join(', ')}`);
    return seen as unknown as AccountsPage;
  };

  it('?state=error finds the accounts in trouble, and only them', async () => {
    const errors = await settles('?state=error', ERROR);
    expect(names(errors)).toEqual(ERROR);
    for (const a of errors.accounts) {
      expect(a.incoming.state).toBe('error');
      expect(a.token.state).toBe('missing');
      expect(a.incoming.lastError).toMatch(/authoriz/);
    }
    expect(names(await settles('?state=backoff', BACKOFF))).toEqual(BACKOFF);
    expect((await get('?state=idle')).body).toEqual({ accounts: [], total: 0, nextOffset: null });
  });

  it('pages with limit and offset, with and without a filter', async () => {
    const first = await get('?limit=5');
    expect(names(first.body)).toEqual(['b1', 'b2', 'b3', 'b4', 'e1']);
    expect(first.body).toMatchObject({ total: 7, nextOffset: 5 });
    const second = await get(`?limit=5&offset=${first.body.nextOffset}`);
    expect(names(second.body)).toEqual(['e2', 'e3']);
    expect(second.body.nextOffset).toBeNull();
    await until(async () => {
      const page = (await get('?state=error,backoff&limit=2&offset=4')).body;
      return page.total === 7 && names(page).join() === 'e1,e2' && page.nextOffset === 6;
    }, 20_000, 'the second page of error,backoff');
  });

  it('refuses a state or page it does not know with a 400 in plain words', async () => {
    const bad = await get('?state=broken');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/state must be one or more of connecting, idle, polling, backoff, error, stopped.*not broken/);
    expect((await get('?limit=0')).status).toBe(400);
    expect((await get('?offset=-1')).status).toBe(400);
  });

  it('mailgate status --state error lists the same accounts', async () => {
    const r = await runCli(['status', '--config', configPath, '--json', '--state', 'error']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { accounts: { name: string; incoming: string }[] };
    expect(out.accounts.map((a) => a.name)).toEqual(ERROR);
    const bad = await runCli(['status', '--config', configPath, '--state', 'nope']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/state must be one or more of/);
  });
});
