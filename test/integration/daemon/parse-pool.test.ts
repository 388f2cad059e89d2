import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, loadFixture } from '../../fixtures/eml/index.js';
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
const env = { id: 'msg_x', account: 'a', mailbox: 'INBOX', uid: 1, uidValidity: 1, uidl: null };
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
    expect(JSON.parse(bodies[0] ?? '{}')).toMatchObject({ event: 'message.received', id: 'msg_x' });
  });

  it('report a message mailparser cannot take as PARSE_FAILED, and keep working', async () => {
    await expect(pool.render(loadFixture('not-a-message'), env, opts)).rejects.toMatchObject({ code: 'PARSE_FAILED' });
    await expect(pool.render(Buffer.alloc(0), env, opts)).rejects.toMatchObject({ code: 'PARSE_FAILED' });
    await expect(pool.render(loadFixture('plain'), env, opts)).resolves.toContain('"event":"message.received"');
  });
});
