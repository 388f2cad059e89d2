import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendMessages, getHarness, makeMessage, oauthAdmin, tmpDataDir, uniqueUser, WebhookSink } from '../../harness/index.js';
import { ROOT, type Daemon } from '../daemon/run-daemon.js';
import { makeServiceAccountKey } from '../../harness/oauth-process.js';
import { ADMIN, startDaemon, writeE2EConfig } from '../imap/e2e-helpers.js';

/**
 * The admin UI in a real browser (Debian's Chromium, driven by
 * playwright-core) against the daemon process and the real harness: the
 * consent runs through the harness OAuth2 server, "Test connection" logs in
 * to Dovecot, and failed deliveries come from a webhook receiver that
 * refuses and then recovers. Screenshots of each page go to docs/screenshots.
 */

const CHROMIUM = '/usr/bin/chromium';
// UPDATE_SCREENSHOTS=1 refreshes the README's pictures; otherwise they go to a
// temporary folder (still taken, so a page that fails to render fails here).
const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, 'docs/screenshots') : tmpDataDir('mg-shots-');
const CLIENT = 'admin-ui';
const REFUSAL = 'invalid payload: the ticket queue "SUP" is read-only';

const h = getHarness();
let daemon: Daemon;
let sink: WebhookSink;
let browser: Browser;
let context: BrowserContext;
let page: Page;

const url = (path: string) => `${daemon.url}${path}`;
const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const flash = () => page.locator('.flash');
const accountRow = () => page.getByRole('row', { name: /^support/ });
const focusedId = () => page.evaluate('document.activeElement && (document.activeElement.id || document.activeElement.textContent)');

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  await oauthAdmin(h).registerClient(CLIENT, `secret-${CLIENT}`);
  sink = await WebhookSink.start();
  // The receiver refuses every message (a 4xx parks the delivery at once) until the test lets it recover.
  sink.setBehaviour(() => ({ status: 422, body: REFUSAL }));
  const user = uniqueUser('ui');
  await appendMessages(h, user, [makeMessage(1, { subject: 'Printer on fire' }), makeMessage(2, { subject: 'VPN down' })]);
  const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url });
  daemon = await startDaemon(cfg.path, cfg.port);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  context = await browser.newContext({ viewport: { width: 1360, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: daemon.url });
  page = await context.newPage();
});

afterAll(async () => {
  await browser?.close();
  await daemon?.stop('SIGKILL');
  await sink?.close();
});

describe('admin UI in Chromium', () => {
  it('signs in with the admin token; the session cookie is HttpOnly and SameSite=Strict', async () => {
    await page.goto(url('/admin/accounts'));
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await shot('login');

    // Focus order: skip link, token, Sign in.
    await page.keyboard.press('Tab');
    expect(await focusedId()).toBe('Skip to content');
    await page.keyboard.press('Tab');
    expect(await focusedId()).toBe('f-token');

    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('.field-error').textContent()).toBe('That is not the admin token.');

    await page.getByLabel('Admin token').fill(ADMIN);
    await page.keyboard.press('Enter');
    await page.waitForURL(url('/admin/accounts'));
    const session = (await context.cookies()).find((c) => c.name === 'mailgate_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', secure: false, path: '/admin' });
  });

  it('refuses a POST without the CSRF token and changes nothing', async () => {
    const r = await page.request.post(url('/admin/deliveries/retry-failed'), { form: { _csrf: 'forged' }, maxRedirects: 0 });
    expect(r.status()).toBe(403);
    expect(await r.text()).toContain('nothing was changed');
  });

  it('adds a custom credential: bad input comes back with the errors, then it is saved and shows the callback URL', async () => {
    await page.getByRole('link', { name: 'Credentials' }).click();
    const yamlRow = page.getByRole('row', { name: /^test-idp/ });
    await expect.poll(() => yamlRow.textContent()).toContain('config file (read-only)');
    expect(await yamlRow.getByRole('link').count()).toBe(0);

    await page.getByRole('link', { name: 'Add credential' }).click();
    await page.getByLabel('Name').fill('helpdesk-idp');
    await page.getByLabel('Service Provider').selectOption('custom');
    await page.getByLabel('Client ID').fill('<b>helpdesk</b>');
    await page.getByLabel('Client Secret').fill('s3cret');
    await page.getByRole('button', { name: 'Save' }).click();

    // Re-rendered with every problem; nothing saved; the secret is not echoed back.
    await expect.poll(() => page.locator('#errors').textContent()).toContain('Nothing was saved');
    expect(await page.locator('#f-tokenEndpoint-error').textContent()).toBe('a custom provider needs a token endpoint');
    expect(await page.getByLabel('Token Endpoint').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('Name').inputValue()).toBe('helpdesk-idp');
    expect(await page.getByLabel('Client Secret').inputValue()).toBe('');

    await page.getByLabel('Client Secret').fill('s3cret');
    await page.getByLabel('Authorization Endpoint').fill(`${h.oauthUrl}/authorize`);
    await page.getByLabel('Token Endpoint').fill(`${h.oauthUrl}/token`);
    await page.getByLabel('Scopes').fill('mail offline');
    // Enter saves (not "Fill in provider defaults", which comes first on the page).
    await page.getByLabel('Scopes').press('Enter');
    await page.waitForURL(url('/admin/credentials'));
    expect(await flash().textContent()).toBe('Credential helpdesk-idp saved.');
    // Markup in data is shown as text.
    expect(await page.getByRole('row', { name: /^helpdesk-idp/ }).textContent()).toContain('<b>helpdesk</b>');

    // The callback URL to register, read-only, with a working copy button.
    const callback = page.getByLabel('Callback URL');
    expect(await callback.inputValue()).toBe(url('/oauth2/callback'));
    expect(await callback.getAttribute('readonly')).not.toBeNull();
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.locator('#f-callback-status').textContent()).toBe('Copied to the clipboard.');
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(url('/oauth2/callback'));
    await shot('credentials');
  });

  it('edits a credential: the secret is write-only and kept when left blank; the provider select fills in defaults', async () => {
    await page.getByRole('link', { name: 'Edit helpdesk-idp' }).click();
    expect(await page.getByLabel('Client Secret').inputValue()).toBe('');
    expect(await page.locator('#f-clientSecret-hint').textContent()).toBe('Write-only: the stored secret is never shown. Leave blank to keep it.');
    expect(await page.getByLabel('Name').getAttribute('readonly')).not.toBeNull();
    await shot('credential-form');

    await page.getByLabel('Client ID').fill('helpdesk-2');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(url('/admin/credentials'));
    expect(await page.getByRole('row', { name: /^helpdesk-idp/ }).textContent()).toContain('helpdesk-2');

    await page.getByRole('link', { name: 'Edit helpdesk-idp' }).click();
    expect(await page.locator('#f-clientSecret-hint').textContent()).not.toContain('none is stored');
    await page.getByLabel('Service Provider').selectOption('google');
    await page.getByRole('button', { name: 'Fill in provider defaults' }).click();
    await expect.poll(() => page.getByLabel('Authorization Endpoint').inputValue()).toBe('https://accounts.google.com/o/oauth2/auth');
    expect(await page.getByLabel('Token Endpoint').inputValue()).toBe('https://oauth2.googleapis.com/token');
    expect(await page.getByLabel('Scopes').inputValue()).toBe('https://mail.google.com/');
    expect(await flash().textContent()).toContain('Nothing is saved yet');
    await page.getByRole('link', { name: 'Cancel' }).click();
    expect(await page.getByRole('row', { name: /^helpdesk-idp/ }).textContent()).toContain('Custom');
  });

  it('adds a Google service account by pasting its JSON key (write-only, kept on edit) and shows a client secret expiry', async () => {
    const made = makeServiceAccountKey({ tokenUri: `${h.oauthUrl}/token` });
    await page.getByRole('link', { name: 'Credentials' }).click();
    await page.getByRole('link', { name: 'Add credential' }).click();
    await page.getByLabel('Name').fill('google-sa');
    await page.getByLabel('Service Provider').selectOption('google');
    await page.getByLabel('Service-account key (JSON)').fill('{"type":"authorized_user"}');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.locator('#f-serviceAccountKeyJson-error').textContent()).toContain('type is "authorized_user"');
    expect(await page.getByLabel('Service-account key (JSON)').inputValue()).toBe('');
    await page.getByLabel('Service-account key (JSON)').fill(made.json);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(url('/admin/credentials'));
    expect(await page.getByRole('row', { name: /^google-sa/ }).textContent()).toContain(made.fields.client_id);
    // The key is write-only: the edit form does not show it, and saving without it keeps it.
    await page.getByRole('link', { name: 'Edit google-sa' }).click();
    expect(await page.getByLabel('Service-account key (JSON)').inputValue()).toBe('');
    expect(await page.locator('#f-serviceAccountKeyJson-hint').textContent()).toContain('Leave blank to keep the stored key.');
    expect(await page.content()).not.toContain(made.fields.private_key_id);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(url('/admin/credentials'));
    expect(await flash().textContent()).toBe('Credential google-sa saved.');

    // An expiry 10 days ahead: the Credentials page says so.
    await page.getByRole('link', { name: 'Edit helpdesk-idp' }).click();
    const soon = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
    await page.getByLabel('Secret expires on').fill(soon);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(url('/admin/credentials'));
    const row = page.getByRole('row', { name: /^helpdesk-idp/ });
    expect(await row.textContent()).toContain(`${soon}the client secret of credential helpdesk-idp expires on ${soon}`);
  });

  it('authorizes an account through the harness OAuth2 server and returns to the Accounts page with the token ok', async () => {
    await page.getByRole('link', { name: 'Accounts' }).click();
    expect(await accountRow().textContent()).toContain('Not authorized yet. Click Authorize.');

    await page.getByRole('button', { name: 'Authorize support' }).click();
    await page.waitForURL(url('/admin/accounts?authorized=support'));
    expect(await flash().textContent()).toBe('Account support is authorized; its tokens are stored.');
    const token = accountRow().getByRole('cell').nth(2);
    expect(await token.textContent()).toMatch(/^ok\s*expires in \d+ (minute|hour)s?$/);
    expect(await accountRow().textContent()).not.toContain('Click Authorize');
  });

  it('tests the connection against Dovecot', async () => {
    await page.getByRole('button', { name: 'Test connection of support' }).click();
    await page.waitForURL(url('/admin/accounts'));
    expect(await flash().textContent()).toBe('Test of support. Incoming: login ok. Outgoing: not configured.');
  });

  it('lists failed deliveries with the response and retries them once the webhook recovers', async () => {
    await sink.waitFor((s) => s.requests.length >= 2);
    await page.reload();
    expect(await accountRow().textContent()).toMatch(/IMAP: connected, waiting for mail/);
    expect(await accountRow().getByRole('cell').nth(4).textContent()).toMatch(/ago$/); // last message
    await shot('accounts');

    await page.getByRole('link', { name: 'Deliveries' }).click();
    const rows = page.getByRole('row', { name: /^dlv_/ });
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.first().textContent()).toContain('422');
    expect(await rows.first().textContent()).toContain(REFUSAL);
    await shot('deliveries');

    // One delivery: what the pipeline gets, issue 16's fields included.
    await rows.first().getByRole('link').click();
    await page.waitForURL(/\/admin\/deliveries\/dlv_/);
    const view = page.locator('dl.delivery');
    expect(await view.textContent()).toMatch(/Conversation\s*cnv_[0-9a-f]{32}/);
    expect(await view.textContent()).toMatch(/Issue keys\s*none/);
    expect(await view.textContent()).toMatch(/Automatic\s*no \(a person wrote it\)/);
    expect(await page.locator('pre.reply-text').textContent()).toMatch(/^Body of message [12]\.$/);
    expect(await view.textContent()).toMatch(/Subject\s*(Printer on fire|VPN down)/);
    await shot('delivery');
    await page.getByRole('link', { name: '← Failed deliveries' }).click();
    await page.waitForURL(url('/admin/deliveries'));

    sink.setBehaviour({ status: 200 });
    await page.getByRole('button', { name: /^Retry dlv_/ }).first().click();
    await page.waitForURL(url('/admin/deliveries'));
    expect(await flash().textContent()).toMatch(/^Delivery dlv_\S+ is queued again\.$/);
    await sink.waitFor((s) => s.acknowledged.length === 1);

    await page.getByRole('button', { name: 'Retry all failed' }).click();
    await page.waitForURL(url('/admin/deliveries'));
    expect(await flash().textContent()).toBe('1 failed delivery is queued again.');
    await sink.waitFor((s) => s.acknowledged.length === 2);
    const subjects = sink.acknowledged.map((r) => (r.json as { subject: string }).subject).sort();
    expect(subjects).toEqual(['Printer on fire', 'VPN down']);
    await page.reload();
    expect(await page.getByText('No failed deliveries.').count()).toBe(1);
  });

  it('removes a database credential only after confirmation', async () => {
    await page.getByRole('link', { name: 'Credentials' }).click();
    await page.getByRole('link', { name: 'Remove helpdesk-idp' }).click();
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Remove credential helpdesk-idp?');
    await page.getByRole('link', { name: 'Cancel' }).click();
    expect(await page.getByRole('row', { name: /^helpdesk-idp/ }).count()).toBe(1);

    await page.getByRole('link', { name: 'Remove helpdesk-idp' }).click();
    await page.getByRole('button', { name: 'Remove helpdesk-idp' }).click();
    await page.waitForURL(url('/admin/credentials'));
    expect(await flash().textContent()).toBe('Credential helpdesk-idp removed.');
    expect(await page.getByRole('row', { name: /^helpdesk-idp/ }).count()).toBe(0);
  });

  it('works without JavaScript (only the copy button needs it)', async () => {
    const noJs = await browser.newContext({ javaScriptEnabled: false });
    try {
      const p = await noJs.newPage();
      await p.goto(url('/admin/credentials/new'));
      await p.getByLabel('Admin token').fill(ADMIN);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.waitForURL(url('/admin/credentials/new'));
      expect(await p.getByRole('button', { name: 'Copy' }).isVisible()).toBe(false);
      await p.getByLabel('Service Provider').selectOption('microsoft');
      await p.getByRole('button', { name: 'Fill in provider defaults' }).click();
      await expect.poll(() => p.getByLabel('Token Endpoint').inputValue()).toBe('https://login.microsoftonline.com/common/oauth2/v2.0/token');

      await p.getByRole('link', { name: 'Accounts' }).click();
      await p.getByRole('button', { name: 'Sign out' }).click();
      await p.waitForURL(url('/admin/login'));
      await p.goto(url('/admin/accounts'));
      expect(new URL(p.url()).pathname).toBe('/admin/login');
    } finally {
      await noJs.close();
    }
  });
});
