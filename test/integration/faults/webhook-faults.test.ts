import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { appendMessages, listMessages, makeMessage } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { authorize, expectNothingLost, expectRecovers, faultLifecycle, received, waitDelivered, type Payload, type Rig } from './fault-rig.js';

/*
 * The webhook behind a fault proxy (IMAP account, afterDelivery: seen,
 * webhook timeout 2 s, backoff 100 ms .. 1 s). A 2xx that never reached
 * mailgate is no acknowledgement: the message is posted again with the same
 * id, and \Seen follows only the acknowledgement mailgate received.
 */
const life = faultLifecycle('faults-webhook');
const h = life.h;
const TIMEOUT_MS = 2_000;

const withBody = (i: number, messageId: string) => makeMessage(i, { messageId, body: `Body ${i}\r\n${'lorem ipsum dolor sit amet '.repeat(200)}` });

const seen = async (rig: Rig) => (await listMessages(h, rig.user)).filter((m) => m.flags.includes('\\Seen')).map((m) => m.messageId);

/** The sink's requests for one Message-ID, in order. */
const requestsFor = (rig: Rig, messageId: string) => rig.sink.requests.filter((r) => (r.json as Payload | null)?.messageId === messageId);

/** The message's server acks (UID STORE \Seen) all came after its `n`-th webhook request was answered. */
function expectSeenOnlyAfterRequest(rig: Rig, messageId: string, n: number): void {
  const reqs = requestsFor(rig, messageId);
  const uid = (reqs[0]?.json as Payload).uid as number;
  const acks = rig.watcher.acks.filter((a) => a.keys.includes(uid));
  expect(acks.length, `a STORE for ${messageId}`).toBeGreaterThan(0);
  for (const a of acks) expect(a.at).toBeGreaterThanOrEqual(reqs[n - 1]?.receivedAt ?? Infinity);
}

async function start(timeoutMs = TIMEOUT_MS): Promise<Rig> {
  return life.rig({ protocol: 'imap', webhookTimeout: `${timeoutMs / 1000}s` });
}

/**
 * The stall test's webhook timeout: its short stall (1 s) must stay well
 * inside it even when a full test run loads the machine and the sink (in
 * the test process) answers late; with 2 s it once did not.
 */
const STALL_TIMEOUT_MS = 5_000;

describe('webhook faults (daemon process, webhook sink behind a fault proxy)', () => {
  it('every POST cut after 1,000 bytes of its body: nothing is flagged, and all arrive once the link heals', async () => {
    const rig = await start();
    const ids = ['<wh-cut-1@example.com>', '<wh-cut-2@example.com>', '<wh-cut-3@example.com>'];
    await appendMessages(h, rig.user, ids.map((m, i) => withBody(i, m)));
    rig.proxies.webhook.inject({ kind: 'cut', after: { direction: 'toServer', pattern: '\r\n\r\n', bytes: 1_000 } }, 'all');
    await authorize(rig);
    await rig.proxies.webhook.waitForFired('cut', 20_000, 6);
    // No request ever arrived whole, so nothing was acknowledged and nothing flagged.
    expect(rig.sink.requests).toHaveLength(0);
    expect(await seen(rig)).toEqual([]);
    expect(rig.watcher.acks).toHaveLength(0);
    for (const f of rig.proxies.webhook.fired('cut')) expect(f.toServer).toBeGreaterThan(1_000);

    await rig.proxies.webhook.clear();
    await waitDelivered(rig.sink, ids);
    expectNothingLost(rig.sink, ids);
    await until(async () => (await seen(rig)).length === 3, 15_000, 'all three \\Seen');
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'cut');
  });

  it('a stall shorter than the timeout costs nothing; a response stalled past it is posted again with the same id', async () => {
    const rig = await start(STALL_TIMEOUT_MS);
    const quick = '<wh-stall-short@example.com>';
    await appendMessages(h, rig.user, [withBody(1, quick)]);
    rig.proxies.webhook.inject({ kind: 'stall', direction: 'toServer', forMs: 1_000 }, 'once');
    await authorize(rig);
    await waitDelivered(rig.sink, [quick]);
    // Its acknowledgement applied before the next fault is armed: the next stall must catch the second message, not a repost of this one.
    await until(async () => (await seen(rig)).includes(quick), 15_000, 'the quick message to be \\Seen');
    expect(rig.proxies.webhook.fired('stall')).toHaveLength(1);
    expect(requestsFor(rig, quick)).toHaveLength(1);

    // The sink answers 200, but the answer sits in the proxy past the timeout.
    const lost = '<wh-stall-lost@example.com>';
    rig.proxies.webhook.inject({ kind: 'stall', direction: 'toClient', after: { direction: 'toClient', pattern: 'HTTP/1.1 200' }, forMs: STALL_TIMEOUT_MS * 2 }, 'once');
    await appendMessages(h, rig.user, [withBody(2, lost)]);
    await rig.proxies.webhook.waitForFired('stall', 15_000, 2);
    await sleep(STALL_TIMEOUT_MS / 2);
    expect(requestsFor(rig, lost)).toHaveLength(1);
    expect(await seen(rig)).toEqual([quick]);
    await rig.sink.waitFor(() => requestsFor(rig, lost).length >= 2, 15_000);
    const [first, second] = requestsFor(rig, lost);
    expect(first?.answered).toBe(200);
    expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(STALL_TIMEOUT_MS - 100);
    expect((second?.json as Payload).id).toBe((first?.json as Payload).id);
    expect(second?.headers['x-mailgate-delivery']).toBe(first?.headers['x-mailgate-delivery']);
    await until(async () => (await seen(rig)).includes(lost), 15_000, 'the re-posted message to be \\Seen');
    expectSeenOnlyAfterRequest(rig, lost, 2);
    expectNothingLost(rig.sink, [quick, lost]);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'stall');
  });

  it('a TCP reset inside the request, and one right after the 200: both messages arrive, the second twice with one id', async () => {
    const rig = await start();
    const early = '<wh-reset-request@example.com>';
    await appendMessages(h, rig.user, [withBody(1, early)]);
    rig.proxies.webhook.inject({ kind: 'reset', after: { direction: 'toServer', pattern: '\r\n\r\n', bytes: 300 } }, 'once');
    await authorize(rig);
    await waitDelivered(rig.sink, [early]);
    expect(rig.proxies.webhook.fired('reset')).toHaveLength(1);
    // The reset request never reached the sink whole.
    expect(requestsFor(rig, early)).toHaveLength(1);

    const late = '<wh-reset-response@example.com>';
    rig.proxies.webhook.inject({ kind: 'reset', after: { direction: 'toClient', pattern: 'HTTP/1.1 200' } }, 'once');
    await appendMessages(h, rig.user, [withBody(2, late)]);
    await rig.sink.waitFor(() => requestsFor(rig, late).length >= 2, 15_000);
    const [first, second] = requestsFor(rig, late);
    expect(first?.answered).toBe(200);
    expect((second?.json as Payload).id).toBe((first?.json as Payload).id);
    await until(async () => (await seen(rig)).includes(late), 15_000, 'the re-posted message to be \\Seen');
    expectSeenOnlyAfterRequest(rig, late, 2);
    expectNothingLost(rig.sink, [early, late]);
    expect(received(rig.sink).filter((p) => p.messageId === late)).toHaveLength(2);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'reset');
  });
});
