import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../harness/fault-proxy.js';
import { appendMessages, getHarness, makeMessage, oauthAdmin, tmpDataDir, uniqueUser, WebhookSink } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { ROOT, type Daemon } from '../daemon/run-daemon.js';
import { ADMIN, authorizeThroughDaemon, startDaemon, writeE2EConfig } from '../imap/e2e-helpers.js';

/**
 * The account page in Chromium against the daemon process, the harness
 * Dovecot (behind a fault proxy, to break the connection), the harness
 * OAuth2 server and a webhook receiver that refuses one message: the charts
 * show what was delivered, the history says what happened in plain words,
 * the page fits 800 px and the CSP is never violated.
 */

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, 'docs/screenshots') : tmpDataDir('mg-shots-');
const CLIENT = 'admin-account-page';
const REFUSAL = 'invalid payload: the ticket queue "SUP" is closed';

const h = getHarness();
let daemon: Daemon;
let sink: WebhookSink;
let proxy: FaultProxy;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** Console errors and CSP violations the pages caused. */
const problems: string[] = [];

const url = (path: string) => `${daemon.url}${path}`;
const messagesReceived = () => sink.requests.filter((r) => (r.json as { event?: string } | null)?.event === 'message.received');

async function incomingState(): Promise<string | undefined> {
  const r = await fetch(url('/v1/accounts'), { headers: { authorization: `Bearer ${ADMIN}` } });
  const body = (await r.json()) as { accounts: { incoming: { state: string } }[] };
  return body.accounts[0]?.incoming.state;
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  await oauthAdmin(h).registerClient(CLIENT, `secret-${CLIENT}`);
  sink = await WebhookSink.start();
  // One message is refused (a 4xx parks its delivery at once); the others are acknowledged.
  sink.setBehaviour(({ raw }) => (raw.includes('refuse-me@') ? { status: 422, body: REFUSAL } : { status: 200 }));
  proxy = await FaultProxy.start({ port: h.imapPort });
  const user = uniqueUser('acct');
  await appendMessages(h, user, [
    makeMessage(1, { subject: 'Printer on fire' }),
    makeMessage(2, { subject: 'VPN down' }),
    makeMessage(3, { subject: 'Refused one', messageId: '<refuse-me@example.com>' }),
  ]);
  const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url, imapPort: proxy.port });
  daemon = await startDaemon(cfg.path, cfg.port);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  context = await browser.newContext({ viewport: { width: 1360, height: 800 } });
  page = await context.newPage();
  page.on('console', (m) => {
    // Chromium asks for /favicon.ico on its own; mailgate has none (a 404 is the honest answer).
    if (m.location().url.endsWith('/favicon.ico')) return;
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(e.message));
});

afterAll(async () => {
  await browser?.close();
  await daemon?.stop('SIGKILL');
  await sink?.close();
  await proxy?.close();
});

describe('the account page in Chromium', () => {
  it('records what happens to the account: not authorized, connected, mail delivered and refused, a lost connection', async () => {
    // Not authorized yet: the connector waits for a token.
    await until(async () => (await incomingState()) === 'error', 30_000, 'the account waiting for authorization');
    await authorizeThroughDaemon(daemon);
    await sink.waitFor(() => messagesReceived().filter((r) => r.answered === 200).length === 2 && messagesReceived().some((r) => r.answered === 422), 30_000);
    await until(async () => (await incomingState()) === 'idle', 30_000, 'the account connected');

    // The server goes away: live connections are reset and nothing listens until clear().
    proxy.inject({ kind: 'refuse', how: 'unlisten' });
    proxy.inject({ kind: 'reset' }, 'all');
    await until(async () => (await incomingState()) === 'backoff', 30_000, 'the account in backoff');
    await proxy.clear();
    await until(async () => (await incomingState()) === 'idle', 60_000, 'the account connected again');
  }, 150_000);

  it('signs in and opens the account from the Accounts page', async () => {
    await page.goto(url('/admin/accounts'));
    await page.getByLabel('Admin token').fill(ADMIN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(url('/admin/accounts'));
    await page.getByRole('link', { name: 'support', exact: true }).click();
    await page.waitForURL(url('/admin/accounts/support'));
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Account support');
  });

  it('charts the last 24 hours with the figures that were delivered, in the accessible names and the table', async () => {
    expect(await page.locator('[data-figure="received"]').textContent()).toBe('3');
    expect(await page.locator('[data-figure="acknowledged"]').textContent()).toBe('2');
    expect(await page.locator('[data-figure="failed"]').textContent()).toBe('1');
    const name = (id: string) => page.locator(`#chart-${id} svg`).getAttribute('aria-label');
    expect(await name('received')).toMatch(/^Messages received in the last 24 hours: 3 in total; most in one hour: [1-3] \(\d\d:00–\d\d:00 UTC\)\.$/);
    expect(await name('acknowledged')).toMatch(/^Deliveries acknowledged in the last 24 hours: 2 in total/);
    expect(await name('failed')).toMatch(/^Deliveries failed in the last 24 hours: 1 in total/);
    expect(await name('latency')).toMatch(/hourly medians from \d+(\.\d)? (ms|s) to \d+(\.\d)? (ms|s); longest \d+(\.\d)? (ms|s)/);
    // Each chart draws a bar per hour, with the figure in its tooltip.
    expect(await page.locator('#chart-received svg g').count()).toBe(24);
    expect(await page.locator('#chart-received svg rect.bar').count()).toBeGreaterThanOrEqual(1);
    // The table alternative: 24 hours whose columns add up to the same figures.
    const rows = page.locator('details.figures tbody tr');
    expect(await rows.count()).toBe(24);
    const cells = (await rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')))) as string[][];
    const col = (i: number) => cells.reduce((a, r) => a + Number(r[i]), 0);
    expect([col(0), col(1), col(2)]).toEqual([3, 2, 1]);
    expect(cells.filter((r) => r[3] !== '—').length).toBeGreaterThanOrEqual(1);
  });

  it('tells the connection history and the recent errors in plain words', async () => {
    const history = page.locator('table.history tbody');
    const text = (await history.textContent()) ?? '';
    const server = `the IMAP server 127.0.0.1:${proxy.port}`;
    expect(text).toContain(`Connected to ${server}: logged in and receiving mail.`);
    expect(text).toMatch(/Needs attention\. Account support has no token yet; authorize it first\./);
    expect(text).toContain(`Not connected to ${server}. `);
    expect(text).toMatch(/Not connected to .+\. [A-Z].+\. mailgate tries again shortly\./);
    // Codes are for scripts, not for this page.
    expect(text).not.toMatch(/ECONN|ENOTFOUND|EPIPE|CONNECTION_FAILED/);
    // Newest first: the last change is the reconnect, after the lost connection.
    const order = (await history.locator('tr').allTextContents()).map((t) => (t.includes('Not connected') ? 'lost' : t.includes('Connected to') ? 'up' : t.includes('Needs attention') ? 'auth' : 'other'));
    // (The reset and the refused reconnects may each leave a row: runs of one kind count once.)
    expect(order.filter((o, i) => o !== 'other' && o !== order[i - 1])).toEqual(['up', 'lost', 'up', 'auth']);
    const errors = (await page.locator('ul.errors-list').textContent()) ?? '';
    expect(errors).toContain(`Webhook pipeline refused the message with HTTP 422 after 1 attempt. It answered: “${REFUSAL}”`);
    expect(errors).toContain(`Not connected to ${server}.`);
    await page.locator('ul.errors-list').getByRole('link', { name: /^Delivery dlv_/ }).click();
    await page.waitForURL(/\/admin\/deliveries\/dlv_/);
    expect(await page.locator('dl.delivery').textContent()).toContain('Refused one');
    await page.goBack();
  });

  it('fits 800 px without horizontal scrolling, and no page broke the CSP', async () => {
    await page.setViewportSize({ width: 800, height: 900 });
    await page.goto(url('/admin/accounts/support'));
    await page.locator('details.figures summary').click();
    expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(800);
    await page.setViewportSize({ width: 1360, height: 800 });
    await page.reload();
    await page.screenshot({ path: join(SHOTS, 'account.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it('an unknown or hostile account name goes back to the Accounts page with a message, shown as text', async () => {
    await page.goto(url(`/admin/accounts/${encodeURIComponent('nobody<img src=x>')}`));
    await page.waitForURL(url('/admin/accounts'));
    expect(await page.locator('.flash').textContent()).toBe('There is no account nobody<img src=x>.');
    expect(await page.locator('.flash img').count()).toBe(0);
  });

  it('is served with the strict CSP (no inline style allowed) and uses no style attribute', async () => {
    const r = await page.request.get(url('/admin/accounts/support'), { maxRedirects: 0 });
    expect(r.status()).toBe(200);
    const csp = r.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const body = await r.text();
    expect(body).not.toMatch(/\sstyle=/);
    expect(body).not.toMatch(/<script|https?:\/\/(?!127\.0\.0\.1)/);
  });
});
