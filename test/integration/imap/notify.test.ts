import { ImapFlow } from 'imapflow';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NotifyRefusedError, supportsNotify, watchMailboxes, type MailboxChange } from '../../../src/incoming/imap/notify.js';
import { createMaildirs, dovecotProcesses, type Dovecot } from '../../harness/dovecot.js';
import { getHarness, startDovecot, TEST_PASSWORD, uniqueUser } from '../../harness/index.js';
import { until } from '../../harness/until.js';

const h = getHarness();
const UNICODE_BOX = 'Kundenanfragen Ü';
/** The bound: new mail in a second mailbox is known within a second. */
const WITHIN_MS = 1_000;

const clients: ImapFlow[] = [];
async function login(port: number, user: string): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: { user, pass: TEST_PASSWORD }, logger: false, disableAutoIdle: true });
  c.on('error', () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.logout().catch(() => c.close());
});

/** An account whose mailboxes exist before the watcher logs in, as a real one's do. */
async function account(port = h.imapPort): Promise<string> {
  const user = uniqueUser('notify');
  const setup = await login(port, user);
  for (const box of ['Support', 'Sales', UNICODE_BOX]) await setup.mailboxCreate(box);
  await setup.logout();
  clients.splice(clients.indexOf(setup), 1);
  return user;
}

function recorder() {
  const changes: (MailboxChange & { at: number })[] = [];
  return { changes, onChange: (c: MailboxChange) => changes.push({ ...c, at: Date.now() }) };
}

describe('IMAP NOTIFY against Dovecot', () => {
  it('reports mail APPENDed to a second mailbox within a second, while IDLE runs on INBOX', async () => {
    const user = await account();
    const watcher = await login(h.imapPort, user);
    expect(supportsNotify(watcher)).toBe(true);
    await watcher.mailboxOpen('INBOX');
    const r = recorder();
    const watch = await watchMailboxes(watcher, ['INBOX', 'Support', UNICODE_BOX], r.onChange);
    expect(watch?.mailboxes).toEqual(['INBOX', 'Support', UNICODE_BOX]);
    void watcher.idle();

    const writer = await login(h.imapPort, user);
    await writer.append('Support', 'Subject: one\r\n\r\nx\r\n');
    const t = Date.now();
    await until(() => r.changes.length > 0, WITHIN_MS, 'a STATUS for Support within a second');
    expect(r.changes[0]?.path).toBe('Support');
    expect(r.changes[0]?.status.messages).toBe(1);
    expect(r.changes[0]?.status.uidNext).toBe(2);
    console.log(`NOTIFY: APPEND to Support → STATUS in ${(r.changes[0]?.at ?? 0) - t} ms`);

    // A mailbox name in modified UTF-7 on the wire comes back as configured
    // (asked for with the personal filter; Dovecot does not match it by name).
    await writer.append(UNICODE_BOX, 'Subject: two\r\n\r\nx\r\n');
    await until(() => r.changes.some((c) => c.path === UNICODE_BOX), WITHIN_MS, `a STATUS for ${UNICODE_BOX}`);
    // ...and mail in a mailbox it was not asked about is not reported.
    await writer.append('Sales', 'Subject: not watched\r\n\r\nx\r\n');
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(r.changes.some((c) => c.path === 'Sales')).toBe(false);

    // The selected mailbox is reported as IDLE would: EXISTS, no STATUS.
    const exists = new Promise<{ path: string; count: number }>((resolve) => watcher.once('exists', resolve));
    await writer.append('INBOX', 'Subject: three\r\n\r\nx\r\n');
    await expect(exists).resolves.toMatchObject({ path: 'INBOX', count: 1 });
    expect(r.changes.some((c) => c.path === 'INBOX')).toBe(false);
  });

  it('reports while no IDLE runs, not for mailboxes it was not asked about, and stops on stop()', async () => {
    const user = await account();
    const watcher = await login(h.imapPort, user);
    await watcher.mailboxOpen('INBOX');
    const r = recorder();
    const watch = await watchMailboxes(watcher, ['Support'], r.onChange);
    const writer = await login(h.imapPort, user);

    await writer.append('Sales', 'Subject: not watched\r\n\r\nx\r\n');
    await writer.append('Support', 'Subject: watched\r\n\r\nx\r\n');
    await until(() => r.changes.length > 0, WITHIN_MS, 'a STATUS without IDLE');
    await new Promise((resolve) => setTimeout(resolve, 700)); // past Dovecot's 500 ms bundling
    expect(r.changes.map((c) => c.path)).toEqual(['Support']);

    await watch?.stop();
    await writer.append('Support', 'Subject: after stop\r\n\r\nx\r\n');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await watcher.noop();
    expect(r.changes).toHaveLength(1);
  });

  it('keeps reporting when the connector selects another mailbox to sync it', async () => {
    const user = await account();
    const watcher = await login(h.imapPort, user);
    await watcher.mailboxOpen('INBOX');
    const r = recorder();
    await watchMailboxes(watcher, ['INBOX', 'Support'], r.onChange);
    await watcher.mailboxOpen('Support');
    const writer = await login(h.imapPort, user);
    await writer.append('INBOX', 'Subject: while Support is selected\r\n\r\nx\r\n');
    await until(() => r.changes.some((c) => c.path === 'INBOX'), WITHIN_MS, 'a STATUS for INBOX once Support is selected');
  });

  it('answers null where the server does not offer NOTIFY (the caller falls back), and names a refusal', async () => {
    const user = await account();
    const c = await login(h.imapPort, user);
    await c.mailboxOpen('INBOX');
    c.capabilities.delete('NOTIFY');
    await expect(watchMailboxes(c, ['Support'], () => undefined)).resolves.toBeNull();
    c.capabilities.set('NOTIFY', true);
    // A mailbox that does not exist: Dovecot refuses the whole command.
    const refused = await watchMailboxes(c, ['No such box'], () => undefined).catch((err: unknown) => err);
    if (refused instanceof NotifyRefusedError) expect(refused.message).toMatch(/^the server refused NOTIFY: /);
    // Either way the connection still works.
    await c.noop();
  });
});

describe('NOTIFY and imap_hibernate', () => {
  let d: Dovecot;
  beforeAll(async () => {
    d = await startDovecot({ introspectionUrl: `${h.oauthUrl}/introspect`, relayPort: h.relaySinkPort, scale: { imapHibernateTimeout: '1s' } });
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('Dovecot hibernates a plain IDLE session but not one with NOTIFY set', async () => {
    const plainUser = uniqueUser('hib-plain');
    const notifyUser = uniqueUser('hib-notify');
    await createMaildirs(d, [plainUser, notifyUser]);
    const plain = await login(d.imapPort, plainUser);
    const withNotify = await login(d.imapPort, notifyUser);
    await plain.mailboxOpen('INBOX');
    await withNotify.mailboxOpen('INBOX');
    await watchMailboxes(withNotify, ['INBOX'], () => undefined);
    expect(dovecotProcesses(d).imap).toBe(2);
    void plain.idle();
    void withNotify.idle();
    await until(() => dovecotProcesses(d).imap === 1, 10_000, 'the plain IDLE session to hibernate');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    // imap-state.c refuses to export a NOTIFY session: "NOTIFY not supported currently".
    expect(dovecotProcesses(d).imap).toBe(1);
  });
});
