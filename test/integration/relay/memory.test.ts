import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthThrottle } from '../../../src/runtime/auth-throttle.js';
import { legacyApp, relayConfig, SENDER, startRig, type Rig } from './relay-rig.js';

/*
 * Ten applications streaming messages at once, at the size limit and far
 * over it: the relay's memory stays within about concurrent × limit (each
 * message is held once while it is within the limit, then handed over; an
 * oversize one is dropped as soon as it crosses the limit and the rest is
 * read and discarded). The messages are generated as they are sent and the
 * test outbox keeps only a hash, so what grows is the relay's share. Peak RSS
 * is sampled; no timing is asserted.
 */
const MiB = 1024 * 1024;
const LIMIT = 8 * MiB;
const CLIENTS = 10;
/** Per message: the chunks while it streams, then the one buffer they are copied into. */
const COPIES = 2;
/** The test process itself: nodemailer's buffers, sockets, the GC's slack. */
const CONSTANT = 96 * MiB;

let rig: Rig;

beforeAll(async () => {
  rig = await startRig(relayConfig({ maxMessageSizeBytes: LIMIT }), { throttle: new AuthThrottle({ freeFailures: 1_000 }) });
  rig.outbox.keepRaw = false;
});
afterAll(async () => {
  await rig?.relay.stop();
});

/** A message of `bytes` bytes (at least the headers + 2) made while it is read: headers, then 78-byte lines. */
function generated(bytes: number, tag: string): Readable {
  const head = Buffer.from(`From: ${SENDER}\r\nTo: desk@example.org\r\nSubject: ${tag}\r\nMessage-ID: <${tag}@example.com>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n\r\n`);
  const line = Buffer.from(`${'x'.repeat(76)}\r\n`);
  const chunk = Buffer.concat(Array.from({ length: 840 }, () => line)); // ~64 KiB
  let left = bytes - head.length;
  let first = true;
  return new Readable({
    read() {
      if (first) {
        first = false;
        this.push(head);
        return;
      }
      if (left <= 0) return void this.push(null);
      // Whole CRLF lines to the last byte: an unterminated last line would get a CRLF added by the client.
      const n = Math.min(left - (left % line.length), chunk.length);
      const piece = n > 0 ? chunk.subarray(0, n) : Buffer.from(`${'y'.repeat(Math.max(0, left - 2))}\r\n`);
      this.push(piece);
      left -= piece.length;
    },
  });
}

async function sendAll(bytes: number, tag: string): Promise<PromiseSettledResult<unknown>[]> {
  return Promise.allSettled(
    Array.from({ length: CLIENTS }, async (_, i) => {
      const t = legacyApp(rig.port, { user: rig.client.username, pass: rig.client.password });
      try {
        return await t.sendMail({ envelope: { from: SENDER, to: ['desk@example.org'] }, raw: generated(bytes, `${tag}-${i}`) });
      } finally {
        t.close();
      }
    }),
  );
}

describe('relay memory', () => {
  it(`stays within about ${CLIENTS} × maxMessageSize while ${CLIENTS} clients stream at the limit and 8 × over it`, async () => {
    await sendAll(64 * 1024, 'warm-up');
    rig.outbox.messages.length = 0;
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    try {
      const atLimit = await sendAll(LIMIT - 4096, 'at-limit');
      expect(atLimit.map((r) => r.status)).toEqual(Array(CLIENTS).fill('fulfilled'));
      expect(rig.outbox.messages).toHaveLength(CLIENTS);
      expect(rig.outbox.messages.map((m) => m.bytes)).toEqual(Array(CLIENTS).fill(LIMIT - 4096));

      const over = await sendAll(8 * LIMIT, 'over');
      expect(over.map((r) => (r.status === 'rejected' ? (r.reason as { responseCode?: number }).responseCode : 250))).toEqual(Array(CLIENTS).fill(552));
      expect(rig.outbox.messages).toHaveLength(CLIENTS);
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - baseline;
    const bound = CLIENTS * LIMIT * COPIES + CONSTANT;
    console.log(`relay memory: peak RSS growth ${(growth / MiB).toFixed(0)} MiB (bound ${(bound / MiB).toFixed(0)} MiB; unbounded would hold ${(CLIENTS * 8 * LIMIT) / MiB} MiB)`);
    expect(growth).toBeLessThan(bound);
    expect(rig.relay.activeMessages).toBe(0);
  });
});
