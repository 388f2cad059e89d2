import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DataSlots, HEADROOM_BYTES, readBounded } from '../../../src/relay/data.js';

describe('readBounded', () => {
  it('returns the whole message when it is within the limit', async () => {
    const s = new PassThrough();
    const p = readBounded(s, 10);
    s.write('01234');
    s.end('56789');
    const out = await p;
    expect(out.kind).toBe('complete');
    if (out.kind === 'complete') expect(out.message.body.toString()).toBe('0123456789');
  });

  it('drops the message once it crosses the limit, reads the rest and reports how much came', async () => {
    const s = new PassThrough();
    const p = readBounded(s, 10);
    s.write('0123456789');
    s.write('x');
    s.end(Buffer.alloc(1000));
    expect(await p).toEqual({ kind: 'oversize', bytes: 1011 });
    expect(s.readableEnded).toBe(true);
  });

  it('takes smtp-server’s own count (sizeExceeded) as oversize too', async () => {
    const s = Object.assign(new PassThrough(), { sizeExceeded: true });
    const p = readBounded(s, 10);
    s.end('short');
    expect((await p).kind).toBe('oversize');
  });

  it('reports a stream that is destroyed before its end, with or without an error', async () => {
    const a = new PassThrough();
    const pa = readBounded(a, 10);
    a.write('abc');
    a.destroy(new Error('Connection closed before the message was received in full'));
    expect(await pa).toMatchObject({ kind: 'aborted', error: { message: /Connection closed/ } });
    const b = new PassThrough();
    const pb = readBounded(b, 10);
    b.destroy();
    expect(await pb).toEqual({ kind: 'aborted', error: null });
  });

  it('writes added header lines into the room in front, without copying the message', async () => {
    const s = new PassThrough();
    const p = readBounded(s, 100);
    s.end('Subject: x\r\n\r\nbody');
    const out = await p;
    if (out.kind !== 'complete') throw new Error(out.kind);
    const body = out.message.body;
    const withDate = out.message.withPrefix(Buffer.from('Date: now\r\n'));
    expect(withDate.toString()).toBe('Date: now\r\nSubject: x\r\n\r\nbody');
    expect(withDate.buffer).toBe(body.buffer);
    expect(out.message.withPrefix(Buffer.alloc(0))).toEqual(body);
    const long = out.message.withPrefix(Buffer.alloc(HEADROOM_BYTES + 1, 'h'));
    expect(long.length).toBe(HEADROOM_BYTES + 1 + body.length);
    expect(long.subarray(HEADROOM_BYTES + 1).toString()).toBe('Subject: x\r\n\r\nbody');
  });
});

describe('DataSlots', () => {
  it('hands out at most max and takes them back', () => {
    const slots = new DataSlots(2);
    expect([slots.tryTake(), slots.tryTake(), slots.tryTake()]).toEqual([true, true, false]);
    slots.release();
    expect(slots.tryTake()).toBe(true);
    slots.release();
    slots.release();
    slots.release();
    expect(slots.used).toBe(0);
  });
});
