import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHarness, oauthAdmin, tmpDataDir, TEST_PASSWORD, uniqueUser, WebhookSink } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { freePort, type Daemon } from '../daemon/run-daemon.js';
import { ADMIN, startDaemon } from '../imap/e2e-helpers.js';

/**
 * The accounts page with more accounts than one page holds (issue 18), in
 * Chromium against the daemon process: 58 password accounts logged in to
 * the harness Dovecot (idle) and 3 OAuth2 accounts that were never
 * authorized (error). The state filter finds the 3, the pages of 50 walk
 * all 61, and a filter that is not understood says so and shows everything.
 */

const CHROMIUM = '/usr/bin/chromium';
const CLIENT = 'admin-ui-filter';
const IDLE = 58;
const UNAUTHORIZED = ['needs-auth-1', 'needs-auth-2', 'needs-auth-3'];
const TOTAL = IDLE + UNAUTHORIZED.length;

const h = getHarness();
let daemon: Daemon;
let sink: WebhookSink;
let browser: Browser;
let page: Page;

const url = (path: string) => `${daemon.url}${path}`;
/** The account names of the rows shown (the first cell also holds the address, after the name). */
const rowNames = async (): Promise<string[]> =>
  ((await page.locator('table').first().locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.querySelector('td, th')?.textContent?.trim() ?? ''))) as string[]).map(
    (cell) => /^(desk-\d\d|needs-auth-\d)/.exec(cell)?.[1] ?? cell,
  );
const summary = () => page.locator('main p', { hasText: /^(Accounts \d|No account matches)/ }).first().textContent();

beforeAll(async () => {
  await oauthAdmin(h).registerClient(CLIENT, `secret-${CLIENT}`);
  sink = await WebhookSink.start();
  const dir = tmpDataDir('mg-ui-filter-');
  const port = await freePort();
  const tag = uniqueUser('f').slice(1, 7);
  const accountYaml = (name: string, auth: string) => `  - name: ${name}
    email: ${name}@example.com
    incoming:
      protocol: imap
      host: 127.0.0.1
      port: ${h.imapPort}
      tls: false
      user: ${tag}-${name}
      auth: ${auth}
      mode: idle
    webhook: sink
`;
  const passwordAccounts = Array.from({ length: IDLE }, (_, i) => accountYaml(`desk-${String(i).padStart(2, '0')}`, `{ method: password, password: ${TEST_PASSWORD} }`)).join('');
  const oauthAccounts = UNAUTHORIZED.map((name) => accountYaml(name, '{ method: xoauth2, credential: test-idp }')).join('');
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(
    path,
    `server:
  listen: 127.0.0.1:${port}
  adminToken: ${ADMIN}
dataDir: ./data
logLevel: warn
limits:
  loginsPerSecond: 30
credentials:
  - name: test-idp
    provider: custom
    clientId: ${CLIENT}
    clientSecret: secret-${CLIENT}
    authorizationEndpoint: ${h.oauthUrl}/authorize
    tokenEndpoint: ${h.oauthUrl}/token
    scopes: [mail]
accounts:
${passwordAccounts}${oauthAccounts}webhooks:
  - name: sink
    url: ${sink.url}
    secret: whsec-filter
`,
  );
  daemon = await startDaemon(path, port);
  // Every account has left its first state: 58 idle, 3 waiting for authorization.
  await until(
    async () => {
      const r = await fetch(url('/v1/accounts?state=idle&limit=1'), { headers: { authorization: `Bearer ${ADMIN}` } });
      return ((await r.json()) as { total: number }).total === IDLE;
    },
    90_000,
    `${IDLE} accounts idle`,
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  const context = await browser.newContext({ viewport: { width: 1360, height: 800 } });
  page = await context.newPage();
  await page.goto(url('/admin/login'));
  await page.getByLabel('Admin token').fill(ADMIN);
  await page.keyboard.press('Enter');
  await page.waitForURL(url('/admin/accounts'));
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await daemon?.stop('SIGKILL');
  await sink?.close();
});

describe('accounts page with 61 accounts', () => {
  it('shows pages of 50 and walks to the rest with Next and Previous', async () => {
    await page.goto(url('/admin/accounts'));
    expect(await summary()).toContain(`Accounts 1–50 of ${TOTAL}.`);
    expect(await summary()).toContain('(page 1 of 2)');
    const first = await rowNames();
    expect(first).toHaveLength(50);
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.waitForURL(/page=2/);
    expect(await summary()).toContain(`Accounts 51–${TOTAL} of ${TOTAL}.`);
    const second = await rowNames();
    expect(second).toHaveLength(TOTAL - 50);
    // Together the two pages are every account once.
    expect(new Set([...first, ...second]).size).toBe(TOTAL);
    expect(await page.getByRole('link', { name: 'Next page' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Previous page' }).click();
    await page.waitForURL(/page=1/);
    expect(await rowNames()).toEqual(first);
  });

  it('the state filter shows the counts and finds the 3 accounts in trouble', async () => {
    await page.goto(url('/admin/accounts'));
    const select = page.getByLabel('Show');
    expect(await select.locator('option[value="error"]').textContent()).toBe(`error (${UNAUTHORIZED.length})`);
    expect(await select.locator('option[value="idle"]').textContent()).toBe(`idle (${IDLE})`);
    await select.selectOption('error');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/state=error/);
    expect(await summary()).toContain(`Accounts 1–3 of 3 in state error.`);
    expect((await rowNames()).sort()).toEqual(UNAUTHORIZED);
    // The filter stays chosen on the page it produced.
    expect(await page.getByLabel('Show').inputValue()).toBe('error');
  });

  it('a filter that is not understood says so and shows every account', async () => {
    await page.goto(url('/admin/accounts?state=on-fire'));
    expect(await page.locator('.flash').textContent()).toContain('The filter was not understood');
    expect(await summary()).toContain(`of ${TOTAL}.`);
  });

  it('at 800 px wide no page scrolls sideways: wide tables scroll inside their own box', async () => {
    await page.setViewportSize({ width: 800, height: 900 });
    try {
      for (const path of ['/admin/accounts', '/admin/accounts?page=2', '/admin/credentials', '/admin/deliveries', '/admin/relay', `/admin/accounts/${UNAUTHORIZED[0]}`]) {
        await page.goto(url(path));
        expect(await page.locator('h1').count(), path).toBe(1);
        expect(await page.evaluate<number>('document.documentElement.scrollWidth'), path).toBeLessThanOrEqual(800);
      }
    } finally {
      await page.setViewportSize({ width: 1360, height: 800 });
    }
  });
});

