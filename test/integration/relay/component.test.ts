import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatIssue, loadConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';
import { silentLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { OutboxService } from '../../../src/outgoing/outbox.js';
import { messageIdKey } from '../../../src/parse/conversation.js';
import { RelayComponent } from '../../../src/relay/component.js';
import { readRelayStats } from '../../../src/relay/status.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import { freePort } from '../../harness/net.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { bareMessage, legacyApp, SmtpTalk } from './relay-rig.js';

/*
 * The relay component over the real outbox and SQLite store, without a
 * mail server: what is in the store when the 250 arrives, how the listener
 * follows reloads, and that the counts survive a restart.
 */
const PW = `pw-${randomBytes(6).toString('hex')}`;
let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function configAt(dir: string, relay: string): Promise<Config> {
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(
    path,
    `dataDir: ./data
accounts:
  - name: support
    email: support@example.com
    incoming: { protocol: imap, host: 127.0.0.1, auth: { method: password, password: pw } }
    outgoing: { host: 127.0.0.1, port: 9, tls: false, auth: { method: password, password: pw } }
    webhook: hook
webhooks:
  - { name: hook, url: http://127.0.0.1:9/x, secret: s }
${relay}`,
  );
  const r = await loadConfig(path, { env: {} });
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}

const relayYaml = (port: number) => `relay:
  listen: 127.0.0.1:${port}
  clients:
    - { name: scanner, username: scanner, password: ${PW}, account: support }
`;

async function rig(relay: string) {
  const dir = tmpDataDir('mg-relay-comp-');
  let config = await configAt(dir, relay);
  const store: Store = await openStore(config, { cipher: new SecretCipher(randomBytes(32)), logger: silentLogger() });
  let woken = 0;
  const outbox = new OutboxService({ store, config: () => config, onQueued: () => woken++ });
  const make = () => new RelayComponent({ config: () => config, outbox, meta: store.meta, logger: silentLogger(), metrics: createMetrics() });
  const component = make();
  cleanup.push(async () => {
    await component.stop();
    await store.close();
  });
  return {
    dir,
    store,
    component,
    make,
    woken: () => woken,
    setConfig: async (text: string) => {
      config = await configAt(dir, text);
      return config;
    },
  };
}

describe('relay component', () => {
  it('answers 250 with an outbox id whose row and bytes are already committed, envelope and Bcc included', async () => {
    const port = await freePort();
    const r = await rig(relayYaml(port));
    await r.component.start();
    const raw = bareMessage('committed before 250');
    const app = legacyApp(port, { user: 'scanner', pass: PW });
    const info = await app.sendMail({ envelope: { from: 'support@example.com', to: ['desk@example.org', 'bcc@example.net'] }, raw });
    app.close();
    const id = /queued as (out_[0-9a-f]{24})$/.exec(info.response)?.[1] ?? '';
    const row = await r.store.outbox.get(id);
    expect(row).toMatchObject({ account: 'support', status: 'queued', envelope: { from: 'support@example.com', to: ['desk@example.org', 'bcc@example.net'] } });
    expect(JSON.parse(row?.requestJson ?? '{}')).toEqual({ relay: { client: 'scanner' } });
    const bytes = (await r.store.outbox.getRaw(id))?.toString() ?? '';
    expect(bytes).toMatch(/^Message-ID: <[0-9a-f-]{36}@example\.com>\r\nDate: .+\r\n/);
    expect(bytes.endsWith(raw.toString())).toBe(true);
    expect(row?.messageId).toBe(/^Message-ID: (<[^>]+>)/.exec(bytes)?.[1]);
    expect(row?.rawBytes).toBe(Buffer.byteLength(bytes));
    expect(r.woken()).toBe(1);
  });

  it('a relayed answer joins the conversation of the message it answers, like an API reply', async () => {
    const port = await freePort();
    const r = await rig(relayYaml(port));
    await r.component.start();
    const send = async (raw: string) => {
      const app = legacyApp(port, { user: 'scanner', pass: PW });
      try {
        await app.sendMail({ envelope: { from: 'support@example.com', to: ['desk@example.org'] }, raw: Buffer.from(raw) });
      } finally {
        app.close();
      }
    };
    await send('Message-ID: <ticket-1@helpdesk.example>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\nSubject: Ticket 1\r\n\r\nopened\r\n');
    await send('Message-ID: <ticket-1-reply@helpdesk.example>\r\nIn-Reply-To: <ticket-1@helpdesk.example>\r\nReferences:\r\n <ticket-1@helpdesk.example>\r\nSubject: Re: Ticket 1\r\n\r\nanswered\r\n');
    await send('Message-ID: <other@helpdesk.example>\r\nSubject: Other\r\n\r\nunrelated\r\n');
    const of = (id: string) => r.store.messages.conversationOf(messageIdKey(id) ?? '');
    const first = await of('<ticket-1@helpdesk.example>');
    expect(first).toMatch(/\S/);
    expect(await of('<ticket-1-reply@helpdesk.example>')).toBe(first);
    expect(await of('<other@helpdesk.example>')).not.toBe(first);
  });

  it('follows reloads: a section removed stops the listener, added starts it, a new listen moves it', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const r = await rig(relayYaml(p1));
    await r.component.start();
    expect(r.component.address()?.port).toBe(p1);
    await r.component.reconfigure(await r.setConfig(''));
    expect(r.component.address()).toBeNull();
    expect(r.component.status()).toBeNull();
    const { greeting } = await SmtpTalk.open(p1).catch(() => ({ greeting: { code: 0 } }));
    expect(greeting.code).toBe(0);
    await r.component.reconfigure(await r.setConfig(relayYaml(p2)));
    expect(r.component.address()?.port).toBe(p2);
    const { talk, greeting: g2 } = await SmtpTalk.open(p2);
    expect(g2.code).toBe(220);
    talk.close();
  });

  it('refuses to start on a taken port, naming relay.listen', async () => {
    const port = await freePort();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(port, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => taken.close(() => r())));
    const r = await rig(relayYaml(port));
    await expect(r.component.start()).rejects.toThrow(new RegExp(`the SMTP relay cannot listen on 127\\.0\\.0\\.1:${port} \\(relay\\.listen\\): .*EADDRINUSE`));
  });

  it('keeps the counts in the store at stop and continues from them at the next start', async () => {
    const port = await freePort();
    const r = await rig(relayYaml(port));
    await r.component.start();
    const wrong = legacyApp(port, { user: 'scanner', pass: 'wrong' });
    await expect(wrong.sendMail({ from: 'support@example.com', to: 'a@example.org', text: 'x' })).rejects.toMatchObject({ responseCode: 535 });
    wrong.close();
    const app = legacyApp(port, { user: 'scanner', pass: PW });
    await app.sendMail({ from: 'support@example.com', to: 'a@example.org', text: 'x' });
    app.close();
    await r.component.stop();
    const stored = await readRelayStats(r.store.meta);
    expect(stored?.clients['scanner']).toMatchObject({ relayed: 1, loginFailures: 1 });

    const again = r.make();
    await again.start();
    cleanup.push(() => again.stop());
    const app2 = legacyApp(port, { user: 'scanner', pass: PW });
    await app2.sendMail({ from: 'support@example.com', to: 'a@example.org', text: 'y' });
    app2.close();
    expect(again.status()?.clients[0]).toMatchObject({ name: 'scanner', relayed: 2, loginFailures: 1, failures: 1 });
  });
});
