import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { appendMessages, getHarness, listMessages, makeMessage, startPostgres, uniqueUser, type Postgres } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { runCli } from '../daemon/run-daemon.js';
import { ADMIN, authorizeThroughDaemon, e2eLifecycle, startDaemon, writeE2EConfig } from '../imap/e2e-helpers.js';
import { adminQuery } from './pg-under-test.js';

/**
 * Moving from SQLite to PostgreSQL, and a PostgreSQL that is not there:
 * real Dovecot, the real OAuth2 server, the built daemon, a real PostgreSQL.
 */
const h = getHarness();
const CLIENT = 'e2e-store-copy';
const e2e = e2eLifecycle(CLIENT);
const KEY = randomBytes(32).toString('base64');
const ENV = { MAILGATE_SECRET_KEY: KEY };
let pg: Postgres;
/** Daemons these tests start with their own environment (the secret key), killed before the database stops. */
const e2eDaemons: { stop(signal?: NodeJS.Signals): Promise<unknown>; child: { exitCode: number | null } }[] = [];

beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  for (const d of e2eDaemons.splice(0)) if (d.child.exitCode === null) await d.stop('SIGKILL');
  await pg?.stop();
});

/** A failing test shows what the daemon said (the tail of its log). */
function onFailure(output: () => string): void {
  onTestFailed(() => {
    console.error(output().split('\n').slice(-40).join('\n'));
  });
}

function messageIdOf(json: unknown): string {
  return (json as { messageId: string }).messageId;
}

async function readyz(url: string): Promise<{ status: number; reason?: string }> {
  const r = await fetch(`${url}/readyz`);
  const body = (await r.json()) as { reason?: string };
  return { status: r.status, ...(body.reason ? { reason: body.reason } : {}) };
}

describe('mailgate store copy (SQLite dataDir → empty PostgreSQL), then the daemon on PostgreSQL', () => {
  it('refuses a running daemon and a non-empty target; after the copy nothing is announced again, the pending delivery goes out once, new mail comes in', async () => {
    const user = uniqueUser('copy');
    const sink = await e2e.sink();
    // The third message's webhook fails while the daemon runs on SQLite: its delivery is still pending at the copy.
    sink.setBehaviour(({ raw }) => ({ status: raw.includes('copy-pending@') ? 503 : 200 }));
    const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url, mode: 'poll', pollInterval: '1s' });
    // The webhook (the file's last item) keeps retrying: the failing delivery must still be pending at the copy, not parked.
    appendFileSync(cfg.path, '    maxAttempts: 1000\n');
    const target = await pg.createDatabase();

    const onSqlite = await startDaemon(cfg.path, cfg.port, ENV);
    e2eDaemons.push(onSqlite);
    onFailure(() => onSqlite.output());
    await authorizeThroughDaemon(onSqlite);
    await appendMessages(h, user, [
      makeMessage(1, { messageId: '<copy-1@example.com>' }),
      makeMessage(2, { messageId: '<copy-2@example.com>' }),
      makeMessage(3, { messageId: '<copy-pending@example.com>' }),
    ]);
    await sink.waitFor((s) => s.acknowledged.length >= 2 && s.requests.some((r) => r.answered === 503), 30_000);
    await until(async () => (await listMessages(h, user)).filter((m) => m.flags.includes('\\Seen')).length === 2, 20_000, 'the two acknowledged messages flagged');

    const whileRunning = await runCli(['store', 'copy', '--to', target, '--config', cfg.path], ENV);
    expect(whileRunning.code).toBe(1);
    expect(whileRunning.stderr).toMatch(/is open in process \d+.*stop the daemon first/);

    await onSqlite.stop();
    const pendingDelivery = sink.requests.find((r) => r.raw.includes('copy-pending@'))?.headers['x-mailgate-delivery'];
    expect(pendingDelivery).toMatch(/^dlv_/);

    const copied = await runCli(['store', 'copy', '--to', target, '--config', cfg.path], ENV);
    expect(copied.stderr).toBe('');
    expect(copied.code).toBe(0);
    expect(copied.stdout).toContain('messages: 3/3');
    expect(copied.stdout).toContain('deliveries: 3/3');
    expect(copied.stdout).toContain('tokens: 1/1');
    expect(copied.stdout).toMatch(/cursors: 1\/1/);
    // The connection history came along (waiting for authorization, then connected), ids and all.
    expect(copied.stdout).toMatch(/connection_history: ([2-9]|\d\d+)\/\d+/);
    const [copiedIds] = await adminQuery<{ max: number }>(target, 'SELECT max(id)::int AS max FROM connection_history');
    expect(copiedIds?.max).toBeGreaterThanOrEqual(2);
    expect(copied.stdout).toMatch(/^done: \d+ rows/m);
    expect(copied.stdout).not.toContain(new URL(target).password || 'no-password-in-this-url');

    const again = await runCli(['store', 'copy', '--to', target, '--config', cfg.path], ENV);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is not empty: it holds mailgate data in .*messages \(3\)/);

    // Same config, same key, now on PostgreSQL; the webhook accepts everything.
    appendFileSync(cfg.path, `store:\n  kind: postgres\n  url: ${target}\n`);
    sink.setBehaviour({ status: 200 });
    const before = sink.requests.length;
    const onPg = await startDaemon(cfg.path, cfg.port, ENV);
    e2eDaemons.push(onPg);
    onFailure(() => onPg.output());
    expect(onPg.output()).toContain('"store":"postgres"');
    await appendMessages(h, user, [makeMessage(4, { messageId: '<copy-4@example.com>' }), makeMessage(5, { messageId: '<copy-5@example.com>' })]);
    await sink.waitFor((s) => ['<copy-pending@example.com>', '<copy-4@example.com>', '<copy-5@example.com>'].every((id) => s.acknowledged.some((r) => messageIdOf(r.json) === id)), 30_000);
    await until(async () => (await listMessages(h, user)).every((m) => m.flags.includes('\\Seen')), 20_000, 'every message flagged after its ack');

    const afterCopy = sink.requests.slice(before).filter((r) => r.answered === 200);
    const ids = afterCopy.map((r) => messageIdOf(r.json)).sort();
    // Nothing announced again, nothing skipped: the pending one once (same delivery id) and the two new ones.
    expect(ids).toEqual(['<copy-4@example.com>', '<copy-5@example.com>', '<copy-pending@example.com>']);
    expect(afterCopy.find((r) => messageIdOf(r.json) === '<copy-pending@example.com>')?.headers['x-mailgate-delivery']).toBe(pendingDelivery);
    // The token came along: no second authorization was needed.
    const accounts = (await (await fetch(`${onPg.url}/v1/accounts`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as {
      accounts: { token: { state: string } }[];
    };
    expect(accounts.accounts[0]?.token.state).toBe('ok');
    await onPg.stop();
    // New history rows go on after the copied ids (the identity was moved on, no duplicate key).
    const [next] = await adminQuery<{ id: number }>(target, `INSERT INTO connection_history (account, side, at, state, error) VALUES ('probe', 'incoming', 1, 'connected', NULL) RETURNING id::int AS id`);
    expect(next?.id).toBeGreaterThan(copiedIds?.max ?? Infinity);
  }, 180_000);
});

describe('the daemon on a PostgreSQL that is not there', () => {
  it('starts anyway with /readyz 503 and the reason, becomes ready when the database comes up, pauses when it goes away, and loses nothing', async () => {
    const user = uniqueUser('pgdown');
    const sink = await e2e.sink();
    const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url, mode: 'poll', pollInterval: '1s' });
    const url = new URL(await pg.createDatabase());
    appendFileSync(cfg.path, `store:\n  kind: postgres\n  url: ${url.toString()}\n`);

    await pg.halt();
    const d = await startDaemon(cfg.path, cfg.port, ENV, [], 'listening');
    e2eDaemons.push(d);
    onFailure(() => d.output());
    const down = await readyz(d.url);
    expect(down.status).toBe(503);
    expect(down.reason).toMatch(new RegExp(`PostgreSQL database at 127\\.0\\.0\\.1:${url.port}/\\w+ cannot be reached`));
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);

    await pg.resume();
    await until(async () => (await readyz(d.url)).status === 200, 60_000, '/readyz to be ready once the database is up');
    await authorizeThroughDaemon(d);
    await appendMessages(h, user, [makeMessage(1, { messageId: '<pg-up-1@example.com>' })]);
    await sink.waitFor((s) => s.acknowledged.length >= 1, 30_000);
    // Its acknowledgement committed and applied (a 2xx whose commit the halt cut off may be posted again: the contract allows that).
    await until(async () => (await listMessages(h, user)).every((m) => m.flags.includes('\\Seen')), 30_000, 'the first message flagged');

    // Lost while running: not ready, with the reason; mail that arrives meanwhile waits on the server.
    await pg.halt();
    await until(async () => (await readyz(d.url)).status === 503, 30_000, '/readyz to notice the lost database');
    expect((await readyz(d.url)).reason).toMatch(/cannot be reached/);
    await appendMessages(h, user, [makeMessage(2, { messageId: '<pg-up-2@example.com>' })]);
    await pg.resume();
    await until(async () => (await readyz(d.url)).status === 200, 90_000, '/readyz to be ready again');
    await sink.waitFor((s) => s.acknowledged.some((r) => messageIdOf(r.json) === '<pg-up-2@example.com>'), 60_000);
    await until(async () => (await listMessages(h, user)).every((m) => m.flags.includes('\\Seen')), 30_000, 'both flagged after their acks');
    expect(sink.acknowledged.map((r) => messageIdOf(r.json)).sort()).toEqual(['<pg-up-1@example.com>', '<pg-up-2@example.com>']);
    expect(d.output()).toContain('"event":"store.unreachable"');
    expect(d.output()).not.toContain(KEY);
    await d.stop();
  }, 240_000);
});
