import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bareMessage, legacyApp, relayConfig, SENDER, SmtpTalk, startRig, type Rig } from './relay-rig.js';
import { AuthThrottle } from '../../../src/runtime/auth-throttle.js';
import { until } from '../../harness/until.js';

/*
 * Each refusal with its code, and nothing stored for any of them. The
 * line-level client sends what nodemailer never would (MAIL before AUTH,
 * SIZE=, malformed paths); nodemailer shows what an application sees.
 */
const LIMIT = 64 * 1024;
let rig: Rig;
const open: SmtpTalk[] = [];

beforeAll(async () => {
  // The throttle has its own test file; here every refusal is answered at once.
  rig = await startRig(relayConfig({ maxMessageSizeBytes: LIMIT }), { maxConcurrentMessages: 2, throttle: new AuthThrottle({ freeFailures: 1_000 }) });
});
afterAll(async () => {
  await rig?.relay.stop();
});
afterEach(() => {
  for (const t of open.splice(0)) t.close();
  rig.outbox.messages.length = 0;
  rig.outbox.failWith = null;
  rig.outbox.hold = null;
  rig.events.refusals.length = 0;
  rig.events.loginFailures.length = 0;
});

async function session(login = true): Promise<SmtpTalk> {
  const { talk } = await SmtpTalk.open(rig.port);
  open.push(talk);
  expect((await talk.command('EHLO app.example')).code).toBe(250);
  if (login) expect((await talk.login(rig.client.username, rig.client.password)).code).toBe(235);
  return talk;
}

/** MAIL, RCPT, DATA and the message; resolves with the final reply. */
async function transaction(talk: SmtpTalk, raw: Buffer, from = SENDER): Promise<{ code: number; text: string }> {
  for (const line of [`MAIL FROM:<${from}>`, 'RCPT TO:<desk@example.org>']) {
    const r = await talk.command(line);
    if (r.code !== 250) return r;
  }
  const go = await talk.command('DATA');
  if (go.code !== 354) return go;
  talk.write(Buffer.concat([raw, Buffer.from('.\r\n')]));
  return talk.reply();
}

const app = (pass = rig.client.password, user = rig.client.username) => legacyApp(rig.port, { user, pass });
const send = async (t: ReturnType<typeof app>, mail: Parameters<ReturnType<typeof app>['sendMail']>[0]) => {
  try {
    return await t.sendMail(mail);
  } finally {
    t.close();
  }
};
const plain = { from: SENDER, to: 'desk@example.org', subject: 'x', text: 'x' };

describe('relay refusals', () => {
  it('530 without AUTH, and for a username no client has', async () => {
    const talk = await session(false);
    expect((await talk.command(`MAIL FROM:<${SENDER}>`)).code).toBe(530);
    expect((await talk.login('nobody', 'whatever')).code).toBe(530);
    await expect(send(app('whatever', 'nobody'), plain)).rejects.toMatchObject({ code: 'EAUTH', responseCode: 530 });
    expect(rig.outbox.calls).toBe(0);
    expect(rig.events.loginFailures).toEqual([
      { address: '127.0.0.1', client: null },
      { address: '127.0.0.1', client: null },
    ]);
  });

  it('535 for a wrong password, and nothing stored', async () => {
    await expect(send(app('wrong'), plain)).rejects.toMatchObject({ code: 'EAUTH', responseCode: 535 });
    const talk = await session(false);
    expect((await talk.login(rig.client.username, `${rig.client.password}x`)).code).toBe(535);
    expect(rig.outbox.messages).toHaveLength(0);
    expect(rig.events.loginFailures.every((f) => f.client === 'scanner')).toBe(true);
  });

  it('550 for a sender outside allowedFrom, and for the null sender', async () => {
    await expect(send(app(), { ...plain, from: 'ceo@example.com' })).rejects.toMatchObject({ code: 'EENVELOPE', responseCode: 550 });
    const talk = await session();
    const r = await talk.command('MAIL FROM:<>');
    expect(r.code).toBe(550);
    expect(r.text).toContain('allowedFrom');
    // Case does not matter (the domain part is case-insensitive, and applications do shout).
    expect((await talk.command('MAIL FROM:<SUPPORT@Example.COM>')).code).toBe(250);
    expect(rig.outbox.messages).toHaveLength(0);
    expect(rig.events.refusals).toEqual([
      { client: 'scanner', code: 550 },
      { client: 'scanner', code: 550 },
    ]);
  });

  it('552 for a declared SIZE over the limit, before any data', async () => {
    const talk = await session();
    expect((await talk.command(`MAIL FROM:<${SENDER}> SIZE=${LIMIT + 1}`)).code).toBe(552);
    expect((await talk.command(`MAIL FROM:<${SENDER}> SIZE=${LIMIT}`)).code).toBe(250);
  });

  it('552 for a message that grows over the limit while it streams; the session goes on', async () => {
    const big = Buffer.concat([bareMessage('big'), Buffer.alloc(LIMIT, 'a')]);
    await expect(send(app(), { envelope: { from: SENDER, to: ['desk@example.org'] }, raw: big })).rejects.toMatchObject({ responseCode: 552 });
    const talk = await session();
    const r = await transaction(talk, Buffer.concat([bareMessage('big'), Buffer.alloc(LIMIT * 3, 'b'), Buffer.from('\r\n')]));
    expect(r.code).toBe(552);
    expect(r.text).toContain('relay.maxMessageSize');
    expect((await transaction(talk, bareMessage('small after big'))).code).toBe(250);
    expect(rig.outbox.messages.map((m) => m.bytes < LIMIT)).toEqual([true]);
    expect(rig.events.refusals).toEqual([
      { client: 'scanner', code: 552 },
      { client: 'scanner', code: 552 },
    ]);
  });

  it('501 for malformed addresses', async () => {
    const talk = await session();
    for (const bad of ['MAIL FROM:<not an address>', 'MAIL FROM:<a@@example.com>', 'MAIL FROM:support@example.com>', 'MAIL FROM:<.x@example.com>']) {
      expect((await talk.command(bad)).code, bad).toBe(501);
    }
    expect((await talk.command(`MAIL FROM:<${SENDER}>`)).code).toBe(250);
    for (const bad of ['RCPT TO:<desk@>', 'RCPT TO:<desk@exa mple.org>', 'RCPT TO:<>']) {
      expect((await talk.command(bad)).code, bad).toBe(501);
    }
  });

  it('452 for recipients beyond 300, and the message goes to the ones accepted', async () => {
    const talk = await session();
    expect((await talk.command(`MAIL FROM:<${SENDER}>`)).code).toBe(250);
    for (let i = 0; i < 300; i++) talk.write(`RCPT TO:<r${i}@example.org>\r\n`); // PIPELINING
    const replies = await Promise.all(Array.from({ length: 300 }, () => talk.reply()));
    expect(replies.every((r) => r.code === 250)).toBe(true);
    expect((await talk.command('RCPT TO:<one-too-many@example.org>')).code).toBe(452);
    expect((await talk.command('DATA')).code).toBe(354);
    talk.write(Buffer.concat([bareMessage('many'), Buffer.from('.\r\n')]));
    expect((await talk.reply()).code).toBe(250);
    expect(rig.outbox.messages[0]?.envelope.to).toHaveLength(300);
  });

  it('421 for a message beyond the ones streaming at once, before it sends any data', async () => {
    const [a, b, c] = [await session(), await session(), await session()];
    expect((await a.command(`MAIL FROM:<${SENDER}>`)).code).toBe(250);
    expect((await b.command(`MAIL FROM:<${SENDER}>`)).code).toBe(250);
    const refused = await c.command(`MAIL FROM:<${SENDER}>`);
    expect(refused.code).toBe(421);
    await c.closedPromise; // 421 closes the channel (RFC 5321 §3.8)
    expect(rig.events.refusals).toEqual([{ client: 'scanner', code: 421 }]);
    // A finished transaction gives its slot back.
    expect((await a.command('RCPT TO:<desk@example.org>')).code).toBe(250);
    expect((await a.command('DATA')).code).toBe(354);
    a.write(Buffer.concat([bareMessage('slot'), Buffer.from('.\r\n')]));
    expect((await a.reply()).code).toBe(250);
    expect(rig.relay.activeMessages).toBe(1);
    const d = await session();
    expect((await transaction(d, bareMessage('after'))).code).toBe(250);
    // A session that ends mid-transaction gives its slot back too.
    b.close();
    await until(() => rig.relay.activeMessages === 0, 5_000, 'the slot of a closed session to be free');
  });

  it('answers 250 only once the outbox has the message, and 451 when it fails', async () => {
    const talk = await session();
    let commit = () => undefined as void;
    rig.outbox.hold = new Promise<void>((r) => (commit = r));
    const reply = transaction(talk, bareMessage('held'));
    await until(() => rig.outbox.calls > 0, 5_000, 'enqueueRaw to be called');
    await new Promise((r) => setImmediate(r));
    expect(talk.hasReply).toBe(false);
    commit();
    expect(await reply).toMatchObject({ code: 250, text: expect.stringMatching(/^2\.0\.0 queued as out_test\d{4}$/) });

    rig.outbox.hold = null;
    rig.outbox.failWith = new Error('SQLITE_BUSY');
    const failed = await transaction(talk, bareMessage('fails'));
    expect(failed.code).toBe(451);
    expect(failed.text).not.toContain('SQLITE'); // internals stay in the log
    rig.outbox.failWith = null;
    expect((await transaction(talk, bareMessage('retried'))).code).toBe(250);
    expect(rig.events.refusals).toEqual([{ client: 'scanner', code: 451 }]);
  });
});
