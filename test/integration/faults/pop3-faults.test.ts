import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { appendMessages, listMessages, makeMessage } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { authorize, expectNothingLost, expectRecovers, faultLifecycle, largeMessage, received, waitDelivered, waitHealthy, type Rig } from './fault-rig.js';

/*
 * POP3 (afterDelivery: delete, pollInterval 1s) through a fault proxy in
 * front of Dovecot. The POP3 client gives each command
 * DEFAULT_COMMAND_TIMEOUT_MS (30 s, src/incoming/pop3/client.ts) for its
 * complete answer; sessions start at least MIN_SESSION_GAP_MS (5 s,
 * src/incoming/pop3/pop3-connector.ts) apart.
 */
const life = faultLifecycle('faults-pop3');
const h = life.h;
const BIG = 3 * 1024 * 1024;

async function appendTrio(rig: Rig, tag: string, bigBytes = BIG): Promise<{ ids: string[]; bigSize: number }> {
  const ids = [`<${tag}-1@example.com>`, `<${tag}-big@example.com>`, `<${tag}-3@example.com>`];
  const big = largeMessage(2, bigBytes, ids[1] as string);
  await appendMessages(h, rig.user, [makeMessage(1, { messageId: ids[0] }), big.raw, makeMessage(3, { messageId: ids[2] })]);
  return { ids, bigSize: big.size };
}

const onServer = async (rig: Rig) => (await listMessages(h, rig.user)).map((m) => m.messageId);

async function expectMaildropEmpty(rig: Rig): Promise<void> {
  await until(async () => (await listMessages(h, rig.user)).length === 0, 20_000, 'the maildrop to be empty');
}

/** How many webhook requests carried this Message-ID (any status). */
const attemptsFor = (rig: Rig, messageId: string) => rig.sink.requests.filter((r) => (r.json as { messageId?: string } | null)?.messageId === messageId).length;

describe('POP3 faults (daemon process, Dovecot behind a fault proxy)', () => {
  it('a connection cut inside the RETR of a 3 MB message loses nothing and deletes nothing early', async () => {
    const rig = await life.rig({ protocol: 'pop3' });
    const { ids, bigSize } = await appendTrio(rig, 'pop-cut');
    rig.proxies.incoming.inject({ kind: 'cut', after: { direction: 'toClient', pattern: `+OK ${bigSize} octets\r\n`, bytes: 1_000_000 } }, 'once');
    await authorize(rig);
    const cut = await rig.proxies.incoming.waitForFired('cut');
    expect(rig.proxies.incoming.connection(cut.connection)?.toClient).toBeLessThan(bigSize);
    // The cut session committed nothing: all three are still there.
    expect((await onServer(rig)).sort()).toEqual([...ids].sort());

    await waitDelivered(rig.sink, ids);
    expectNothingLost(rig.sink, ids);
    expect(received(rig.sink).find((p) => p.messageId === ids[1])?.size).toBe(bigSize);
    await expectMaildropEmpty(rig);
    expect(rig.watcher.acks.filter((a) => a.command === 'DELE')).toHaveLength(3);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'cut');
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
  });

  it('a 3 s stall inside the RETR (shorter than DEFAULT_COMMAND_TIMEOUT_MS) finishes in the same session', async () => {
    const rig = await life.rig({ protocol: 'pop3' });
    const { ids, bigSize } = await appendTrio(rig, 'pop-stall');
    rig.proxies.incoming.inject({ kind: 'stall', after: { direction: 'toClient', pattern: `+OK ${bigSize} octets\r\n`, bytes: 500_000 }, forMs: 3_000 }, 'once');
    await authorize(rig);
    const stall = await rig.proxies.incoming.waitForFired('stall');
    await sleep(2_000);
    expect(received(rig.sink)).toHaveLength(0);
    expect(await onServer(rig)).toHaveLength(3);

    await waitDelivered(rig.sink, ids);
    // The stalled session read the whole message: survived, not retried.
    const conn = rig.proxies.incoming.connection(stall.connection);
    expect(conn?.toClient).toBeGreaterThan(bigSize);
    expect(conn?.error).toBeNull();
    expectNothingLost(rig.sink, ids);
    await expectMaildropEmpty(rig);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'stall');
  });

  it('a RETR stalled past DEFAULT_COMMAND_TIMEOUT_MS (30 s) is abandoned and fetched again on a new connection', async () => {
    const rig = await life.rig({ protocol: 'pop3' });
    const { ids, bigSize } = await appendTrio(rig, 'pop-blackhole');
    // Until resume(): a black hole, as after a NAT drop.
    rig.proxies.incoming.inject({ kind: 'stall', after: { direction: 'toClient', pattern: `+OK ${bigSize} octets\r\n`, bytes: 500_000 } }, 'once');
    await authorize(rig);
    const stall = await rig.proxies.incoming.waitForFired('stall');
    await until(() => rig.proxies.incoming.connection(stall.connection)?.clientEndedAt != null, 40_000, 'mailgate to give up the stalled connection');
    const gaveUpAfter = (rig.proxies.incoming.connection(stall.connection)?.clientEndedAt ?? 0) - stall.at;
    expect(gaveUpAfter).toBeGreaterThanOrEqual(25_000);
    expect(await onServer(rig)).toHaveLength(3);
    await waitDelivered(rig.sink, ids, 20_000);
    expectNothingLost(rig.sink, ids);
    await expectMaildropEmpty(rig);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'black hole');
  }, 90_000);

  it('a TCP reset inside the RETR loses nothing', async () => {
    const rig = await life.rig({ protocol: 'pop3' });
    const { ids, bigSize } = await appendTrio(rig, 'pop-reset');
    rig.proxies.incoming.inject({ kind: 'reset', after: { direction: 'toClient', pattern: `+OK ${bigSize} octets\r\n`, bytes: 200_000 } }, 'once');
    await authorize(rig);
    await rig.proxies.incoming.waitForFired('reset');
    expect(await onServer(rig)).toHaveLength(3);
    await waitDelivered(rig.sink, ids);
    expectNothingLost(rig.sink, ids);
    await expectMaildropEmpty(rig);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'reset');
  });

  it('a TCP reset right after QUIT of a session with DELEs: the deletions happen once, nothing is delivered again', async () => {
    const rig = await life.rig({ protocol: 'pop3' });
    // Acknowledge slowly, so the first session has quit before any ack is due and the DELEs go in the next one.
    rig.sink.setBehaviour({ status: 200, delayMs: 400 });
    const ids = ['<pop-quit-1@example.com>', '<pop-quit-2@example.com>'];
    await appendMessages(h, rig.user, ids.map((messageId, i) => makeMessage(i, { messageId })));
    await authorize(rig);
    await waitDelivered(rig.sink, ids);
    expect(rig.watcher.acks).toHaveLength(0);
    rig.proxies.incoming.inject({ kind: 'reset', after: { direction: 'toServer', pattern: 'QUIT\r\n' } }, 'once');
    const reset = await rig.proxies.incoming.waitForFired('reset', 15_000);
    expect(rig.watcher.acks.filter((a) => a.connection === reset.connection && a.command === 'DELE')).toHaveLength(2);

    await expectMaildropEmpty(rig);
    await waitHealthy(rig);
    for (const m of ids) expect(attemptsFor(rig, m), `${m} posted once`).toBe(1);
    expectNothingLost(rig.sink, ids);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    rig.sink.setBehaviour({ status: 200 });
    await expectRecovers(rig, 'reset after QUIT');
  });

  it('a slow but steady link (32 KB/s) still downloads a 1.25 MB message', async () => {
    // 1.25 MB at 32 KB/s is ~40 s of steady progress: longer than
    // DEFAULT_COMMAND_TIMEOUT_MS (30 s), which bounds the whole RETR answer,
    // not the silence between bytes as imapflow's and nodemailer's socket timeouts do.
    const rig = await life.rig({ protocol: 'pop3' });
    const { ids } = await appendTrio(rig, 'pop-drip', 1_250_000);
    rig.proxies.incoming.inject({ kind: 'drip', direction: 'toClient', bytes: 8 * 1024, intervalMs: 250 }, 'all');
    await authorize(rig);
    try {
      await waitDelivered(rig.sink, ids, 60_000);
    } catch (err) {
      const timeouts = rig.daemon.output().match(/RETR: no complete answer within \d+ ms/g) ?? [];
      throw new Error(`the 1.25 MB message never arrived; the daemon logged ${timeouts.length} × "${timeouts[0] ?? ''}"`, { cause: err });
    }
    expectNothingLost(rig.sink, ids);
    await rig.proxies.incoming.clear();
    await expectMaildropEmpty(rig);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
  }, 100_000);
});

describe('POP3: a message that keeps breaking the session (daemon process, Dovecot behind a fault proxy)', () => {
  it('keeps what came before it, backs off harder each time, and after 3 tries reports it and goes on', async () => {
    const rig = await life.rig({ protocol: 'pop3' });
    const { ids, bigSize } = await appendTrio(rig, 'pop-skip');
    // Every session dies inside the RETR of the big message.
    rig.proxies.incoming.inject({ kind: 'cut', after: { direction: 'toClient', pattern: `+OK ${bigSize} octets\r\n`, bytes: 100_000 } }, 'all');
    await authorize(rig);
    // The message before it is stored and delivered although its session died afterwards.
    await waitDelivered(rig.sink, [ids[0] as string], 20_000);
    await until(() => rig.sink.acknowledged.some((r) => r.headers['x-mailgate-event'] === 'message.failed'), 80_000, 'the big message reported');
    const failed = rig.sink.acknowledged.find((r) => r.headers['x-mailgate-event'] === 'message.failed')?.json as { reason: string; error: string; messageId: string; size: number };
    expect(failed).toMatchObject({ reason: 'too_large', messageId: ids[1], size: bigSize });
    expect(failed.error).toMatch(/its download failed 3 times/);
    await waitDelivered(rig.sink, [ids[2] as string], 20_000);
    // Three cut sessions, then one that skipped it: the waits between them grew (10 s, then 20 s).
    const cuts = rig.proxies.incoming.stats.fired.filter((f) => f.kind === 'cut');
    expect(cuts.length).toBe(3);
    const gaps = cuts.slice(1).map((c, i) => c.at - (cuts[i]?.at ?? 0));
    expect(gaps[1] ?? 0).toBeGreaterThan(gaps[0] ?? 0);
    rig.proxies.incoming.clear();
    // Delivered ones are deleted; the skipped one stays on the server, untouched.
    await until(async () => (await onServer(rig)).length === 1, 20_000, 'the two delivered messages deleted');
    expect(await onServer(rig)).toEqual([ids[1]]);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
  }, 120_000);
});
