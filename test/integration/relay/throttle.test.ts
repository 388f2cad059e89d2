import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthThrottle } from '../../../src/runtime/auth-throttle.js';
import { createLogger } from '../../../src/log.js';
import { until } from '../../harness/until.js';
import { relayConfig, SmtpTalk, startRig, type Rig } from './relay-rig.js';

/*
 * Repeated failed logins from one address: a few are answered at once, then
 * each starts a lockout whose 535 is held back that long, and logins from
 * the same address during it are answered 454 without being checked. The
 * lockouts here are short (200 ms, 400 ms) so the test does not wait long;
 * nothing asserts durations, only order and codes.
 */
let rig: Rig;
const logLines: { level: number; msg: string; ip?: string; client?: string | null; password?: unknown }[] = [];

beforeAll(async () => {
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as (typeof logLines)[number]);
      cb();
    },
  });
  rig = await startRig(relayConfig(), {
    throttle: new AuthThrottle({ freeFailures: 2, baseLockoutMs: 200, maxLockoutMs: 400 }),
    logger: createLogger({ level: 'debug', destination }),
  });
});
afterAll(async () => {
  await rig?.relay.stop();
});

async function session(): Promise<SmtpTalk> {
  const { talk } = await SmtpTalk.open(rig.port);
  await talk.command('EHLO app.example');
  return talk;
}

describe('relay login throttle', () => {
  it('slows repeated failures down, checks nothing while locked out, logs once per lockout and counts every failure', async () => {
    const attacker = await session();
    const scanner = await session();
    const { username, password } = rig.client;
    // Two free failures, answered at once.
    expect((await attacker.login(username, 'guess-1')).code).toBe(535);
    expect((await attacker.login(username, 'guess-2')).code).toBe(535);
    // The third starts a lockout; its 535 is held back for it.
    attacker.write(`AUTH PLAIN ${Buffer.from(`\0${username}\0guess-3`).toString('base64')}\r\n`);
    await until(() => rig.events.loginFailures.length === 3, 5_000, 'the third failure to be counted');
    expect(attacker.hasReply).toBe(false);
    // Meanwhile the right password from the same address is not even checked.
    const locked = await scanner.login(username, password);
    expect(locked.code).toBe(454);
    expect(locked.text).toMatch(/too many failed logins/);
    expect((await attacker.reply()).code).toBe(535);
    // The lockout is over once the held reply came: the next login is checked again.
    expect((await scanner.login(username, password)).code).toBe(235);
    // A success cleared the address: two free failures again.
    expect((await attacker.login(username, 'guess-4')).code).toBe(535);
    attacker.close();
    scanner.close();

    expect(rig.events.loginFailures).toHaveLength(4);
    expect(rig.events.loginFailures.every((f) => f.address === '127.0.0.1' && f.client === 'scanner')).toBe(true);
    const warnings = logLines.filter((l) => l.level === 40);
    expect(warnings.map((w) => w.msg)).toEqual(['repeated failed relay logins from this address; it is locked out for a while']);
    const text = JSON.stringify(logLines);
    for (const secret of ['guess-1', 'guess-3', password]) expect(text).not.toContain(secret);
  });

  it('grows the lockout with each further failure', async () => {
    const t = await session();
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await t.login(rig.client.username, `again-${i}`)).code);
    t.close();
    // guess-4 above was the first free one: one more free, then lockouts of 200, 400, 400 ms (capped).
    expect(codes).toEqual([535, 535, 535, 535]);
    expect(logLines.filter((l) => l.level === 40)).toHaveLength(1 + 3);
  });
});
