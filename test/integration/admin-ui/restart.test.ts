import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../../src/store/migrations/index.js';
import { parseSetCookie } from '../../harness/http-headers.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { freePort, startDaemon, type Daemon } from '../daemon/run-daemon.js';

/**
 * Admin UI sessions live in the database: the daemon process is restarted on
 * the same dataDir and the browser's cookie (plain fetch here) still works,
 * until it signs out. No mail server is involved.
 */

const TOKEN = 'admin-token-for-restart-test';
const FLASH = '0 failed deliveries are queued again.';

let daemon: Daemon | null = null;
afterEach(async () => {
  await daemon?.stop('SIGKILL');
  daemon = null;
});

interface Setup {
  dir: string;
  cfg: string;
  port: number;
}

async function setup(): Promise<Setup> {
  const dir = tmpDataDir('mg-ui-restart-');
  const port = await freePort();
  const cfg = join(dir, 'mailgate.yaml');
  writeFileSync(cfg, `server:\n  listen: 127.0.0.1:${port}\n  adminToken: ${TOKEN}\ndataDir: ./data\n`);
  return { dir, cfg, port };
}

/** Stops the running daemon (if any) cleanly and starts it again on the same config and dataDir. */
async function restart(s: Setup): Promise<Daemon> {
  if (daemon) expect((await daemon.stop('SIGTERM')).code).toBe(0);
  daemon = await startDaemon(s.cfg, s.port);
  return daemon;
}

const firstCookie = (r: Response) => r.headers.getSetCookie()[0]?.split(';')[0] ?? '';
const formToken = (body: string) => /name="_csrf" value="([^"]+)"/.exec(body)?.[1] ?? '';

/** Signs in like the browser does; returns the `mailgate_session=…` cookie pair. */
async function signIn(d: Daemon): Promise<string> {
  const form = await fetch(`${d.url}/admin/login`);
  const loginCookie = firstCookie(form);
  const r = await post(d, '/admin/login', loginCookie, { _csrf: formToken(await form.text()), token: TOKEN });
  expect(r.status).toBe(303);
  const session = r.headers.getSetCookie().find((c) => c.startsWith('mailgate_session='));
  expect(parseSetCookie(session ?? '').attrs).toEqual({ path: '/admin', 'max-age': '43200', httponly: true, samesite: 'Strict' });
  return session?.split(';')[0] ?? '';
}

function post(d: Daemon, path: string, cookie: string, form: Record<string, string>): Promise<Response> {
  return fetch(`${d.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
}

const deliveriesPage = (d: Daemon, cookie: string) => fetch(`${d.url}/admin/deliveries`, { redirect: 'manual', headers: { cookie } });

describe('admin UI sessions across daemon restarts', () => {
  it('keeps an admin signed in across a restart (cookie, CSRF token and pending message), and a sign-out across the next', async () => {
    const s = await setup();
    let d = await restart(s);
    const cookie = await signIn(d);
    const before = await deliveriesPage(d, cookie);
    expect(before.status).toBe(200);
    const csrf = formToken(await before.text());
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // A form POST whose confirmation is shown on the next page, which comes after the restart.
    expect((await post(d, '/admin/deliveries/retry-failed', cookie, { _csrf: csrf })).headers.get('location')).toBe('/admin/deliveries');

    d = await restart(s);
    const after = await deliveriesPage(d, cookie);
    expect(after.status).toBe(200);
    const page = await after.text();
    expect(formToken(page)).toBe(csrf);
    expect(page).toContain(FLASH);
    expect(await (await deliveriesPage(d, cookie)).text()).not.toContain(FLASH);
    const forged = await post(d, '/admin/deliveries/retry-failed', cookie, { _csrf: 'x'.repeat(43) });
    expect(forged.status).toBe(403);
    const accepted = await post(d, '/admin/deliveries/retry-failed', cookie, { _csrf: csrf });
    expect(accepted.status).toBe(303);
    expect(accepted.headers.get('location')).toBe('/admin/deliveries');

    const out = await post(d, '/admin/logout', cookie, { _csrf: csrf });
    expect(out.headers.get('location')).toBe('/admin/login');
    const cleared = parseSetCookie(out.headers.getSetCookie()[0] ?? '');
    expect(cleared).toMatchObject({ name: 'mailgate_session', value: '', attrs: { path: '/admin', 'max-age': '0' } });
    expect((await deliveriesPage(d, cookie)).headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fdeliveries');

    d = await restart(s);
    const refused = await deliveriesPage(d, cookie);
    expect(refused.status).toBe(303);
    expect(refused.headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fdeliveries');
    expect((await post(d, '/admin/deliveries/retry-failed', cookie, { _csrf: csrf })).headers.get('location')).toBe('/admin/login');
  });

  it('upgrades a dataDir from schema version 3 (before sessions were stored) and signs in', async () => {
    const s = await setup();
    let d = await restart(s);
    expect((await fetch(`${d.url}/v1/deliveries`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await d.stop('SIGTERM')).code).toBe(0);
    daemon = null;
    // What the previous release left: its key check and tables, version 3, no sessions table.
    const dbPath = join(s.dir, 'data/mailgate.db');
    const v3 = new Database(dbPath);
    v3.exec('DROP TABLE admin_sessions');
    // And what migrations 5 to 9 added since (failed builds and oversize, outbox bytes, conversations, replicas, connection history).
    v3.exec('ALTER TABLE deliveries DROP COLUMN render_failures; ALTER TABLE messages DROP COLUMN not_downloaded;');
    v3.exec('DROP TABLE outbox_raw; ALTER TABLE outbox DROP COLUMN envelope_json; ALTER TABLE outbox DROP COLUMN raw_bytes;');
    v3.exec(
      'DROP INDEX messages_message_id_key; DROP INDEX outbox_message_id_key; ' +
        'ALTER TABLE messages DROP COLUMN conversation_id; ALTER TABLE messages DROP COLUMN message_id_key; ' +
        'ALTER TABLE outbox DROP COLUMN conversation_id; ALTER TABLE outbox DROP COLUMN message_id_key;',
    );
    v3.exec(
      'DROP TABLE leases; DROP TABLE nodes; DROP TABLE locks; ' +
        'ALTER TABLE deliveries DROP COLUMN claim_owner; ALTER TABLE deliveries DROP COLUMN claim_until; ' +
        'ALTER TABLE tokens DROP COLUMN refresh_owner; ALTER TABLE tokens DROP COLUMN refresh_until;',
    );
    // Migration 9: the account page's connection history and indexes.
    v3.exec('DROP TABLE connection_history; DROP INDEX messages_account_received; DROP INDEX deliveries_account_changed;');
    v3.pragma('user_version = 3');
    v3.close();

    d = await restart(s);
    const cookie = await signIn(d);
    expect((await deliveriesPage(d, cookie)).status).toBe(200);
    d = await restart(s);
    expect((await deliveriesPage(d, cookie)).status).toBe(200);
    expect((await d.stop('SIGTERM')).code).toBe(0);
    daemon = null;
    const db = new Database(dbPath, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.prepare('SELECT count(*) AS n FROM admin_sessions').get()).toEqual({ n: 1 });
    db.close();
  });
});
