import { describe, expect, it } from 'vitest';
import { RelayConfigError } from '../../../src/relay/check.js';
import { canConnect, freePort } from '../../harness/net.js';
import { until } from '../../harness/until.js';
import { silentLogger } from '../../../src/log.js';
import { RelayServer } from '../../../src/relay/server.js';
import { bareMessage, RecordingOutbox, relayConfig, scannerClient, SENDER, SmtpTalk, startRig } from './relay-rig.js';

/*
 * start/stop/reconfigure as the daemon calls them: a stop lets DATA in
 * progress finish and answers 421 to everything else; a reload applies new
 * clients to new sessions.
 */
async function session(port: number, login?: { username: string; password: string }): Promise<SmtpTalk> {
  const { talk } = await SmtpTalk.open(port);
  await talk.command('EHLO app.example');
  if (login) expect((await talk.login(login.username, login.password)).code).toBe(235);
  return talk;
}

async function toData(talk: SmtpTalk): Promise<void> {
  expect((await talk.command(`MAIL FROM:<${SENDER}>`)).code).toBe(250);
  expect((await talk.command('RCPT TO:<desk@example.org>')).code).toBe(250);
  expect((await talk.command('DATA')).code).toBe(354);
}

describe('relay stop', () => {
  it('lets DATA in progress finish with its 250, and answers 421 to idle sessions and new commands', async () => {
    const rig = await startRig(relayConfig(), { stopGraceMs: 10_000 });
    const streaming = await session(rig.port, rig.client);
    const idle = await session(rig.port, rig.client);
    const between = await session(rig.port, rig.client);
    await toData(streaming);
    expect((await between.command(`MAIL FROM:<${SENDER}>`)).code).toBe(250);
    const raw = bareMessage('in flight');
    streaming.write(raw.subarray(0, 40));
    await until(() => rig.relay.activeMessages === 2, 5_000, 'both transactions to hold a slot');

    const stopped = rig.relay.stop();
    expect((await idle.reply()).code).toBe(421);
    expect((await between.reply()).code).toBe(421);
    await idle.closedPromise;
    expect(await canConnect(rig.port)).toBe(false);

    streaming.write(Buffer.concat([raw.subarray(40), Buffer.from('.\r\n')]));
    const done = await streaming.reply();
    expect(done.code).toBe(250);
    expect(done.text).toMatch(/^2\.0\.0 queued as out_test\d{4}$/);
    await stopped;
    expect(streaming.closed || (await streaming.command('QUIT')).code === 421).toBe(true);
    expect(rig.outbox.messages).toHaveLength(1);
    expect(rig.relay.address()).toBeNull();
  });

  it('answers 421 to DATA still arriving after the grace period, and stores nothing of it', async () => {
    const rig = await startRig(relayConfig(), { stopGraceMs: 200 });
    const slow = await session(rig.port, rig.client);
    await toData(slow);
    slow.write(bareMessage('never finished'));
    await until(() => rig.relay.activeMessages === 1, 5_000, 'the transaction to hold a slot');
    await rig.relay.stop();
    expect((await slow.reply()).code).toBe(421);
    await slow.closedPromise;
    expect(rig.outbox.calls).toBe(0);
  });
});

describe('relay start', () => {
  it('rejects when the port is taken, and can be started again once it is free', async () => {
    const a = await startRig();
    const b = new RelayServer({ config: relayConfig({ listen: { host: '127.0.0.1', port: a.port } }), outbox: new RecordingOutbox(), logger: silentLogger() });
    await expect(b.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(b.address()).toBeNull();
    await a.relay.stop();
    await b.start();
    expect(b.address()?.port).toBe(a.port);
    await b.stop();
  });
});

describe('relay DATA deadline', () => {
  it('cuts off a message that takes longer than the DATA deadline with 421, stores nothing and frees the slot', async () => {
    const rig = await startRig(relayConfig(), { dataTimeoutMs: 300 });
    try {
      const trickle = await session(rig.port, rig.client);
      await toData(trickle);
      trickle.write(bareMessage('slow').subarray(0, 20));
      const r = await trickle.reply();
      expect(r.code).toBe(421);
      expect(r.text).toMatch(/took too long/);
      await trickle.closedPromise;
      await until(() => rig.relay.activeMessages === 0, 5_000, 'the slot to be free');
      expect(rig.outbox.calls).toBe(0);
    } finally {
      await rig.relay.stop();
    }
  });
});

describe('relay reconfigure', () => {
  it('applies new clients and passwords to sessions that connect afterwards', async () => {
    const first = scannerClient();
    const rig = await startRig(relayConfig({ clients: [first] }));
    try {
      const before = await session(rig.port);
      const printer = scannerClient({ name: 'printer', username: 'printer' });
      const renewed = { ...first, password: `${first.password}-new` };
      await rig.relay.reconfigure(relayConfig({ clients: [renewed, printer] }));

      // Connected before the reload: the clients it connected under.
      expect((await before.login(first.username, first.password)).code).toBe(235);
      before.close();
      const after = await session(rig.port);
      expect((await after.login(first.username, first.password)).code).toBe(535);
      expect((await after.login(first.username, renewed.password)).code).toBe(235);
      after.close();
      const p = await session(rig.port, { username: 'printer', password: printer.password });
      p.close();
    } finally {
      await rig.relay.stop();
    }
  });

  it('refuses an invalid config and keeps running with the old one', async () => {
    const rig = await startRig();
    try {
      await expect(rig.relay.reconfigure(relayConfig({ listen: { host: '0.0.0.0', port: 0 }, clients: rig.config.clients }))).rejects.toBeInstanceOf(RelayConfigError);
      const t = await session(rig.port, rig.client);
      t.close();
    } finally {
      await rig.relay.stop();
    }
  });

  it('moves to a new listen address, and takes a new size limit at the next MAIL FROM', async () => {
    const rig = await startRig();
    try {
      const newPort = await freePort();
      await rig.relay.reconfigure({ ...rig.config, listen: { host: '127.0.0.1', port: newPort }, maxMessageSizeBytes: 1000 });
      expect(rig.relay.address()?.port).toBe(newPort);
      expect(await canConnect(rig.port)).toBe(false);
      const t = await session(newPort, rig.client);
      expect((await t.command(`MAIL FROM:<${SENDER}> SIZE=1001`)).code).toBe(552);
      await rig.relay.reconfigure({ ...rig.config, listen: { host: '127.0.0.1', port: newPort }, maxMessageSizeBytes: 2000 });
      expect(rig.relay.address()?.port).toBe(newPort);
      expect((await t.command(`MAIL FROM:<${SENDER}> SIZE=1001`)).code).toBe(250);
      t.close();
    } finally {
      await rig.relay.stop();
    }
  });
});
