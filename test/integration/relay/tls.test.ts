import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayConfigError } from '../../../src/relay/check.js';
import { RelayServer } from '../../../src/relay/server.js';
import { silentLogger } from '../../../src/log.js';
import { bareMessage, legacyApp, makeTestCertificate, RecordingOutbox, relayConfig, SENDER, SmtpTalk, startRig, type Rig } from './relay-rig.js';

/*
 * STARTTLS with a certificate made by openssl for this run, and the rule
 * that a password crosses the network only inside TLS: without `tls` the
 * relay listens on loopback only.
 */
let cert: { cert: string; key: string };

beforeAll(() => {
  cert = makeTestCertificate();
});

describe('relay STARTTLS', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig(relayConfig({ tls: cert }));
  });
  afterAll(async () => {
    await rig?.relay.stop();
  });

  it('offers STARTTLS with the configured certificate, and nodemailer sends through it', async () => {
    const t = legacyApp(rig.port, { user: rig.client.username, pass: rig.client.password }, { requireTLS: true, tls: { ca: cert.cert, servername: 'localhost' } });
    const info = await t.sendMail({ envelope: { from: SENDER, to: ['desk@example.org'] }, raw: bareMessage('over tls') });
    t.close();
    expect(info.response).toMatch(/^250 2\.0\.0 queued as /);
    expect(rig.outbox.messages).toHaveLength(1);
  });

  it('refuses a certificate the client does not trust (the handshake fails, nothing is sent)', async () => {
    const t = legacyApp(rig.port, { user: rig.client.username, pass: rig.client.password }, { requireTLS: true, tls: { servername: 'localhost' } });
    await expect(t.sendMail({ envelope: { from: SENDER, to: ['desk@example.org'] }, raw: bareMessage('untrusted') })).rejects.toThrow(/certificate/i);
    t.close();
  });
});

describe('relay on a non-loopback listener', () => {
  it('refuses to start without tls, naming relay.tls', async () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
      const relay = new RelayServer({ config: relayConfig({ listen: { host, port: 0 } }), outbox: new RecordingOutbox(), logger: silentLogger() });
      const err = await relay.start().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, host).toBeInstanceOf(RelayConfigError);
      expect((err as RelayConfigError).code).toBe('CONFIG_INVALID');
      expect((err as RelayConfigError).problems.map((p) => p.path)).toEqual([['relay', 'tls']]);
      expect((err as Error).message).toMatch(/^the relay configuration is invalid:\nrelay\.tls: relay\.listen is .* not loopback/);
      expect(relay.address()).toBeNull();
    }
  });

  it('takes AUTH only after STARTTLS', async () => {
    const rig = await startRig(relayConfig({ listen: { host: '0.0.0.0', port: 0 }, tls: cert }));
    try {
      const { talk } = await SmtpTalk.open(rig.port);
      const ehlo = await talk.command('EHLO app.example');
      expect(ehlo.lines.map((l) => l.slice(4))).toContain('STARTTLS');
      expect((await talk.login(rig.client.username, rig.client.password)).code).toBe(538);
      expect((await talk.command(`MAIL FROM:<${SENDER}>`)).code).toBe(530);
      expect((await talk.startTls(cert.cert)).code).toBe(220);
      expect((await talk.command('EHLO app.example')).lines.map((l) => l.slice(4))).not.toContain('STARTTLS');
      expect((await talk.login(rig.client.username, rig.client.password)).code).toBe(235);
      expect((await talk.command(`MAIL FROM:<${SENDER}>`)).code).toBe(250);
      talk.close();
    } finally {
      await rig.relay.stop();
    }
  });
});
