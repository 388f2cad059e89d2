import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutgoingConfig } from '../../../src/config/types.js';
import { classifySmtpError, SmtpSender } from '../../../src/outgoing/smtp.js';

/** A loopback SMTP server that refuses one recipient for good (550) and one for now (451). */
let server: SMTPServer;
let port = 0;
beforeAll(async () => {
  server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    onAuth: (_auth, _session, done) => done(null, { user: 'u' }),
    onRcptTo: (addr, _session, done) => {
      if (addr.address.startsWith('nobody@')) return done(Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }));
      if (addr.address.startsWith('later@')) return done(Object.assign(new Error('4.3.0 try later'), { responseCode: 451 }));
      done();
    },
    onData: (stream, _session, done) => {
      stream.resume();
      stream.on('end', () => done());
    },
    logger: false,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function sender(): SmtpSender {
  const out = { host: '127.0.0.1', port, tls: false, requireTLS: false, user: 'u', auth: { method: 'password', password: 'p' }, from: 'support@example.com' } as unknown as OutgoingConfig;
  return new SmtpSender('support', out, { getAccessToken: async () => ({ token: 'unused', expiresAt: null }) });
}

async function failure(to: string): Promise<unknown> {
  const s = sender();
  try {
    await s.send({ from: 'support@example.com', to, subject: 'x', text: 'x' });
    return null;
  } catch (err) {
    return err;
  } finally {
    s.close();
  }
}

describe('SMTP failures are catalogue errors', () => {
  it('a 5xx is SEND_REJECTED (permanent), a 4xx SEND_FAILED (transient), with the server words kept', async () => {
    const rejected = await failure('nobody@example.com');
    expect(rejected).toMatchObject({ name: 'MailgateError', code: 'SEND_REJECTED', failure: 'permanent' });
    expect((rejected as Error).message).toMatch(/550 5\.1\.1 no such user/);
    expect(classifySmtpError(rejected).kind).toBe('permanent');
    const later = await failure('later@example.com');
    expect(later).toMatchObject({ code: 'SEND_FAILED', failure: 'transient' });
    expect(classifySmtpError(later).kind).toBe('transient');
    expect(await failure('ann@example.com')).toBeNull();
  });
});
