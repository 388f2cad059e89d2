import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { appendMessages, listMessages, makeMessage } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { authorize, expectNothingLost, expectRecovers, faultLifecycle, idsByMessageId, largeMessage, received, waitDelivered, waitHealthy, type Rig } from './fault-rig.js';

/*
 * IMAP (mode: idle, afterDelivery: seen) through a fault proxy in front of
 * Dovecot. imapflow's socket timeout is SOCKET_TIMEOUT_MS (5 min,
 * src/incoming/imap/client.ts), so a silent connection is only noticed after
 * 5 minutes: the stalls here are shorter than that, and the recovery path is
 * exercised with cuts and resets.
 */
const life = faultLifecycle('faults-imap');
const h = life.h;
const BIG = 3 * 1024 * 1024;

async function start(): Promise<Rig> {
  const rig = await life.rig({ protocol: 'imap' });
  return rig;
}

/** Appends small, large, small; returns their Message-IDs and the large one's size. */
async function appendTrio(rig: Rig, tag: string): Promise<{ ids: string[]; bigSize: number }> {
  const ids = [`<${tag}-1@example.com>`, `<${tag}-big@example.com>`, `<${tag}-3@example.com>`];
  const big = largeMessage(2, BIG, ids[1] as string);
  await appendMessages(h, rig.user, [makeMessage(1, { messageId: ids[0] }), big.raw, makeMessage(3, { messageId: ids[2] })]);
  return { ids, bigSize: big.size };
}

async function expectAllSeen(rig: Rig, messageIds: string[]): Promise<void> {
  await until(
    async () => {
      const list = await listMessages(h, rig.user);
      return messageIds.every((m) => list.find((x) => x.messageId === m)?.flags.includes('\\Seen'));
    },
    15_000,
    'every delivered message to be \\Seen',
  );
}

describe('IMAP faults (daemon process, Dovecot behind a fault proxy)', () => {
  it('a connection cut inside the FETCH literal of a 3 MB message loses nothing and flags nothing early', async () => {
    const rig = await start();
    const { ids, bigSize } = await appendTrio(rig, 'imap-cut');
    // Dovecot answers BODY.PEEK[] with "BODY[] {<size>}": cut 1 MB into the large literal.
    rig.proxies.incoming.inject({ kind: 'cut', after: { direction: 'toClient', pattern: `BODY[] {${bigSize}}\r\n`, bytes: 1_000_000 } }, 'once');
    await authorize(rig);

    await waitDelivered(rig.sink, ids);
    const [cut] = rig.proxies.incoming.fired('cut');
    expect(cut, 'the cut fired').toBeDefined();
    // The cut connection carried the start of the literal, not the whole message.
    const conn = rig.proxies.incoming.connection(cut?.connection ?? 0);
    expect(conn?.toClient).toBeGreaterThan(1_000_000);
    expect(conn?.toClient).toBeLessThan(bigSize);
    expect(rig.proxies.incoming.stats.accepted).toBeGreaterThanOrEqual(2);

    expectNothingLost(rig.sink, ids);
    const big = received(rig.sink).find((p) => p.messageId === ids[1]);
    expect(big?.size).toBe(bigSize);
    await expectAllSeen(rig, ids);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    expect(rig.watcher.acks.length).toBeGreaterThan(0);
    await expectRecovers(rig, 'cut');
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
  });

  it('a 3 s stall inside the literal (shorter than SOCKET_TIMEOUT_MS) finishes on the same connection', async () => {
    const rig = await start();
    const { ids, bigSize } = await appendTrio(rig, 'imap-stall');
    rig.proxies.incoming.inject({ kind: 'stall', after: { direction: 'toClient', pattern: `BODY[] {${bigSize}}\r\n`, bytes: 500_000 }, forMs: 3_000 }, 'once');
    await authorize(rig);
    const stall = await rig.proxies.incoming.waitForFired('stall');
    await sleep(2_000);
    // Stalled: nothing of the three was delivered (they come in one FETCH, ingested as one batch).
    expect(received(rig.sink)).toHaveLength(0);
    expect((await listMessages(h, rig.user)).filter((m) => m.flags.includes('\\Seen'))).toEqual([]);

    await waitDelivered(rig.sink, ids);
    expect(Date.now() - stall.at).toBeGreaterThanOrEqual(2_900);
    // One connection did it all: the stall was survived, not recovered from.
    expect(rig.proxies.incoming.stats.accepted).toBe(1);
    expect(rig.proxies.incoming.connection(stall.connection)?.error).toBeNull();
    expectNothingLost(rig.sink, ids);
    await expectAllSeen(rig, ids);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'stall');
  });

  it('a stalled IDLE connection delays new mail until it flows again, then delivers it', async () => {
    const rig = await start();
    await authorize(rig);
    await waitHealthy(rig);
    await until(async () => (await waitHealthy(rig)).incoming.state === 'idle', 10_000, 'IDLE');
    rig.proxies.incoming.inject({ kind: 'stall', forMs: 4_000 }, 'all');
    const messageId = '<imap-idle-stall@example.com>';
    await appendMessages(h, rig.user, [makeMessage(1, { messageId })]);
    await sleep(3_000);
    expect(received(rig.sink)).toHaveLength(0);
    await rig.proxies.incoming.clear();
    await waitDelivered(rig.sink, [messageId], 10_000);
    expect(rig.proxies.incoming.stats.accepted).toBe(1);
    expectNothingLost(rig.sink, [messageId]);
    await expectRecovers(rig, 'idle-stall');
  });

  it('a dripping link (64 KB per 100 ms) delivers the 3 MB message without a reconnect', async () => {
    const rig = await start();
    const { ids, bigSize } = await appendTrio(rig, 'imap-drip');
    rig.proxies.incoming.inject({ kind: 'drip', direction: 'toClient', bytes: 64 * 1024, intervalMs: 100 }, 'all');
    const t0 = Date.now();
    await authorize(rig);
    await waitDelivered(rig.sink, ids, 40_000);
    // 3 MB at 640 KB/s: at least about 5 s.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(Math.floor(bigSize / (64 * 1024)) * 100 - 500);
    expect(rig.proxies.incoming.fired('drip')).toHaveLength(1);
    expect(rig.proxies.incoming.stats.accepted).toBe(1);
    expectNothingLost(rig.sink, ids);
    await expectAllSeen(rig, ids);
    await rig.proxies.incoming.clear();
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'drip');
  });

  it('a TCP reset inside the literal, and later of the IDLE connection, loses nothing; the account reconnects', async () => {
    const rig = await start();
    const { ids, bigSize } = await appendTrio(rig, 'imap-reset');
    rig.proxies.incoming.inject({ kind: 'reset', after: { direction: 'toClient', pattern: `BODY[] {${bigSize}}\r\n`, bytes: 200_000 } }, 'once');
    await authorize(rig);
    await waitDelivered(rig.sink, ids);
    expect(rig.proxies.incoming.fired('reset')).toHaveLength(1);
    expectNothingLost(rig.sink, ids);
    await expectAllSeen(rig, ids);

    // Now the idle connection: RST while IDLE, then new mail.
    await until(async () => (await waitHealthy(rig)).incoming.state === 'idle', 10_000, 'IDLE');
    const before = rig.proxies.incoming.stats.accepted;
    rig.proxies.incoming.inject({ kind: 'reset' }, 'once');
    await rig.proxies.incoming.waitForFired('reset', 5_000, 2);
    const later = '<imap-reset-later@example.com>';
    await appendMessages(h, rig.user, [makeMessage(4, { messageId: later })]);
    await waitDelivered(rig.sink, [later], 15_000);
    expect(rig.proxies.incoming.stats.accepted).toBeGreaterThan(before);
    expectNothingLost(rig.sink, [...ids, later]);
    expect(idsByMessageId(rig.sink).size).toBe(4);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'reset');
  });

  it('a connection cut inside the UID STORE \\Seen: the flag is set after a reconnect (within ACK_RETRY_DELAY_MS)', async () => {
    // idleResync 5s wakes the idle loop often, so a retry that is due after ACK_RETRY_DELAY_MS (30 s) is not left to the 5 min default.
    const rig = await life.rig({ protocol: 'imap', idleResync: '5s' });
    const messageId = '<imap-store-cut@example.com>';
    await appendMessages(h, rig.user, [makeMessage(1, { messageId })]);
    // The command line is cut after "UID STORE": Dovecot never gets the whole command, so it never runs.
    rig.proxies.incoming.inject({ kind: 'cut', after: { direction: 'toServer', pattern: 'UID STORE' } }, 'once');
    await authorize(rig);
    await waitDelivered(rig.sink, [messageId]);
    await rig.proxies.incoming.waitForFired('cut', 10_000);
    await until(() => rig.proxies.incoming.stats.accepted >= 2, 10_000, 'a reconnect after the cut');
    expect((await listMessages(h, rig.user)).find((m) => m.messageId === messageId)?.flags).not.toContain('\\Seen');

    await until(
      async () => (await listMessages(h, rig.user)).find((m) => m.messageId === messageId)?.flags.includes('\\Seen') === true,
      45_000,
      `\\Seen on ${messageId} after the cut STORE (UID STORE commands seen: ${rig.watcher.acks.length})`,
    );
    // The cut command never reached Dovecot whole; the one that set the flag came on a later connection.
    const stores = rig.watcher.acks.filter((a) => a.command === 'UID STORE');
    expect(stores.length).toBeGreaterThanOrEqual(1);
    expect(Math.min(...stores.map((a) => a.connection))).toBeGreaterThan(Math.min(...rig.proxies.incoming.stats.connections.map((c) => c.id)));
    expectNothingLost(rig.sink, [messageId]);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'store cut');
  }, 90_000);
});
