import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { RelayServer } from '../../../src/relay/server.js';
import type { RelayMessage, RelayOutbox } from '../../../src/relay/types.js';
import { getHarness, oauthAdmin, relaySink, uniqueUser } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { legacyApp, relayConfig, scannerClient, type PlainClient } from './relay-rig.js';

/*
 * The path the lead wires, end to end with a stand-in for the outbox: the
 * legacy application → the relay → what the outbox worker will do with a
 * relayed row (nodemailer's `raw` + `envelope`, XOAUTH2 with the account's
 * token) → the harness's Dovecot submission → its SMTP sink. It shows that
 * the bytes arrive as the application wrote them and that Bcc recipients
 * travel only in the envelope. The real outbox adds durability and retries.
 */
const h = getHarness();
const admin = oauthAdmin(h);
const CLIENT = 'relay-e2e';
let user: string;
let accessToken: string;
let relay: RelayServer;
let port: number;
let scanner: PlainClient;
const sendErrors: unknown[] = [];

/** Sends each relayed message right away, as the outbox worker will for a relayed row. */
class SendingOutbox implements RelayOutbox {
  #n = 0;
  async enqueueRaw(input: RelayMessage): Promise<{ id: string }> {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: h.submissionPort,
      secure: false,
      ignoreTLS: true,
      auth: { type: 'OAuth2', user, accessToken },
      logger: false,
    });
    transport.sendMail({ envelope: input.envelope, raw: input.raw }).then(
      () => transport.close(),
      (err: unknown) => {
        sendErrors.push(err);
        transport.close();
      },
    );
    return { id: `out_e2e${++this.#n}` };
  }
}

beforeAll(async () => {
  await admin.registerClient(CLIENT, `secret-${CLIENT}`);
  user = uniqueUser('relay');
  accessToken = (await admin.issue(CLIENT, user)).access_token;
  scanner = scannerClient({ allowedFrom: [`${user}@example.com`] });
  relay = new RelayServer({
    config: relayConfig({ clients: [scanner] }),
    outbox: new SendingOutbox(),
    logger: silentLogger(),
  });
  await relay.start();
  port = relay.address()?.port ?? 0;
});
afterAll(async () => {
  await relay?.stop();
});

describe('relay → XOAUTH2 submission → SMTP sink', () => {
  it('delivers the application’s bytes with its envelope, Bcc only in the envelope', async () => {
    const marker = `relay-e2e-${randomBytes(4).toString('hex')}`;
    const sender = `${user}@example.com`;
    const raw = Buffer.from(
      `From: Scanner <${sender}>\r\nTo: desk@example.org\r\nSubject: ${marker}\r\nX-Scanner: Model 9000\r\n\r\nscan of page 1\r\n.dot line\r\n`,
    );
    const app = legacyApp(port, { user: scanner.username, pass: scanner.password });
    const info = await app.sendMail({ envelope: { from: sender, to: ['desk@example.org', 'archive@example.net'] }, raw });
    app.close();
    expect(info.response).toBe('250 2.0.0 queued as out_e2e1');

    const sink = relaySink(h);
    let found: { from: string; to: string[]; raw: string } | undefined;
    await until(async () => {
      found = (await sink.messages()).find((m) => m.raw.includes(marker));
      return found !== undefined || sendErrors.length > 0;
    }, 20_000, 'the relayed message at the sink');
    expect(sendErrors).toEqual([]);
    expect(found?.from).toBe(sender);
    expect(found?.to).toEqual(['desk@example.org', 'archive@example.net']);
    const got = found?.raw ?? '';
    expect(got).not.toContain('archive@example.net');
    // Dovecot may put trace headers in front; what the relay stored follows unchanged (Message-ID and Date it added, then the client's bytes).
    const stored = got.slice(got.indexOf('Message-ID: '));
    expect(stored).toMatch(new RegExp(`^Message-ID: <[0-9a-f-]{36}@example\\.com>\\r\\nDate: [^\\r]+\\r\\n`));
    expect(stored.endsWith(raw.toString())).toBe(true);
  });
});
