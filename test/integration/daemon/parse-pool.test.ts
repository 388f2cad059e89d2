import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, loadFixture, makeLargeMessage } from '../../fixtures/eml/index.js';
import type * as PoolSource from '../../../src/parse/parse-pool.js';
import type * as RenderSource from '../../../src/parse/parse-message.js';
import { assertBuilt, ROOT } from './run-daemon.js';

/*
 * The parse threads run the compiled worker (dist/parse/parse-worker.js), so
 * this test loads the built module, as the daemon does.
 */
type PoolModule = typeof PoolSource;
type RenderModule = typeof RenderSource;
let pool: InstanceType<PoolModule['ParsePool']>;
let inline: RenderModule['renderMessageReceived'];
const env = { id: 'msg_x', account: 'a', origin: { kind: 'imap', mailbox: 'INBOX', uid: 1, uidValidity: 1 } } as const;
const opts = { maxInlineAttachmentBytes: 10 * 1024 * 1024 };
const silent = { child: () => silent, debug: () => undefined, warn: () => undefined, error: () => undefined } as never;

beforeAll(async () => {
  assertBuilt();
  const { ParsePool } = (await import(`${ROOT}/dist/parse/parse-pool.js`)) as PoolModule;
  inline = ((await import(`${ROOT}/dist/parse/parse-message.js`)) as RenderModule).renderMessageReceived;
  pool = new ParsePool({ threads: 2, logger: silent });
  await pool.start();
});
afterAll(async () => {
  await pool.stop();
});

describe('parse threads', () => {
  it('render every fixture exactly as the main thread does, many at once', async () => {
    expect(pool.threads).toBe(2);
    const good = FIXTURES.filter((f) => f !== 'not-a-message');
    const raws = [...good, ...good, ...good].map(loadFixture);
    const bodies = await Promise.all(raws.map((raw) => pool.render(raw, env, opts)));
    const expected = await Promise.all(raws.map((raw) => inline(raw, env, opts)));
    expect(bodies).toEqual(expected);
    expect(JSON.parse(String(bodies[0] ?? '{}'))).toMatchObject({ event: 'message.received', id: 'msg_x' });
  });

  it('stop a thread that overruns the deadline, fail only that message (RENDER_FAILED), and keep working', async () => {
    const { ParsePool } = (await import(`${ROOT}/dist/parse/parse-pool.js`)) as PoolModule;
    const strict = new ParsePool({ threads: 1, logger: silent, deadlineMs: 150 });
    try {
      const slow = makeLargeMessage(30 * 1024 * 1024).raw;
      await expect(strict.render(slow, env, opts)).rejects.toMatchObject({
        code: 'RENDER_FAILED',
        details: { reason: 'malformed' },
        message: expect.stringContaining('deadline'),
      });
      const ok = await strict.render(loadFixture('plain'), env, opts);
      expect(JSON.parse(ok.toString())).toMatchObject({ event: 'message.received' });
    } finally {
      await strict.stop();
    }
  });

  it('fail a message whose parse runs the thread out of memory as too_large, and keep working', async () => {
    const { ParsePool } = (await import(`${ROOT}/dist/parse/parse-pool.js`)) as PoolModule;
    // A heap this small runs out gradually while 5,000 parts are described (one huge
    // allocation past a worker's limit can take the whole process down in V8, which is
    // why the real limit is far above what a message within maxMessageSize needs).
    const small = new ParsePool({ threads: 1, logger: silent, resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 8 } });
    try {
      const parts = Array.from({ length: 5_000 }, (_, i) => `--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="p${i}.txt"\r\n\r\n${'z'.repeat(200)}\r\n`);
      const raw = Buffer.from(`From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n${parts.join('')}--b--\r\n`);
      await expect(small.render(raw, env, opts)).rejects.toMatchObject({ code: 'RENDER_FAILED', details: { reason: 'too_large' } });
      const ok = await small.render(loadFixture('plain'), env, opts);
      expect(JSON.parse(ok.toString())).toMatchObject({ event: 'message.received' });
    } finally {
      await small.stop();
    }
  });

  it('report a message mailparser cannot take as PARSE_FAILED, and keep working', async () => {
    await expect(pool.render(loadFixture('not-a-message'), env, opts)).rejects.toMatchObject({ code: 'PARSE_FAILED' });
    await expect(pool.render(Buffer.alloc(0), env, opts)).rejects.toMatchObject({ code: 'PARSE_FAILED' });
    await expect(pool.render(loadFixture('plain'), env, opts)).resolves.toSatisfy((b: Buffer) => b.toString().includes('"event":"message.received"'));
  });
});
