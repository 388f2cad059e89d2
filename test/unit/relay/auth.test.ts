import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { indexClients, RELAY_BASE_LOCKOUT_MS, RELAY_FREE_FAILURES, RELAY_MAX_LOCKOUT_MS, RelayLogin, relayThrottle } from '../../../src/relay/auth.js';
import { hashRelayPassword } from '../../../src/relay/passwords.js';
import type { RelayClient, RelayEvents } from '../../../src/relay/types.js';

const scanner: RelayClient = { name: 'scanner', username: 'scan', password: 'right', account: 'support', allowedFrom: ['support@example.com'] };

function rig() {
  let now = 0;
  const failures: [string, string | null][] = [];
  const events: RelayEvents = { loginFailed: (a, c) => failures.push([a, c]), relayed: () => undefined, refused: () => undefined };
  const login = new RelayLogin({ throttle: relayThrottle(() => now), logger: silentLogger(), events });
  return { login, failures, advance: (ms: number) => (now += ms) };
}
const creds = (password: string, username = 'scan', authzid = '') => ({ username, password, authzid });

describe('RelayLogin', () => {
  it('lets the right password in and names the client', async () => {
    const { login } = rig();
    expect(await login.attempt('10.0.0.1', indexClients([scanner]), creds('right'))).toEqual({ ok: true, client: scanner });
  });

  it('answers 535 for a wrong password and 530 for an unknown username, counting both', async () => {
    const { login, failures } = rig();
    const clients = indexClients([scanner]);
    expect(await login.attempt('10.0.0.1', clients, creds('wrong'))).toMatchObject({ ok: false, code: 535, delayMs: 0 });
    expect(await login.attempt('10.0.0.1', clients, creds('right', 'SCAN'))).toMatchObject({ ok: false, code: 530, delayMs: 0 });
    expect(failures).toEqual([
      ['10.0.0.1', 'scanner'],
      ['10.0.0.1', null],
    ]);
  });

  it('refuses an authorization identity other than the login (RFC 4616)', async () => {
    const { login } = rig();
    const clients = indexClients([scanner, { ...scanner, name: 'admin', username: 'admin' }]);
    expect(await login.attempt('10.0.0.1', clients, creds('right', 'scan', 'admin'))).toMatchObject({ ok: false, code: 535 });
    expect(await login.attempt('10.0.0.1', clients, creds('right', 'scan', 'scan'))).toMatchObject({ ok: true });
  });

  it('holds replies back for a growing lockout after the free failures, and answers 454 unchecked meanwhile', async () => {
    const { login, failures, advance } = rig();
    const clients = indexClients([scanner]);
    const delays: number[] = [];
    for (let i = 0; i < RELAY_FREE_FAILURES + 6; i++) {
      const r = await login.attempt('10.0.0.1', clients, creds(`guess-${i}`));
      if (r.ok) throw new Error('let in');
      delays.push(r.delayMs);
      if (r.delayMs > 0) {
        // During the lockout even the right password is not checked.
        expect(await login.attempt('10.0.0.1', clients, creds('right'))).toMatchObject({ ok: false, code: 454, message: /try again in \d+ s/ });
        advance(r.delayMs);
      }
    }
    expect(delays).toEqual([...Array<number>(RELAY_FREE_FAILURES).fill(0), ...[1, 2, 4, 8, 16].map((n) => n * RELAY_BASE_LOCKOUT_MS), RELAY_MAX_LOCKOUT_MS]);
    expect(failures).toHaveLength(RELAY_FREE_FAILURES + 6); // the 454s were not evaluated, so not counted
    expect(await login.attempt('10.0.0.1', clients, creds('right'))).toMatchObject({ ok: true });
    // Another address is not affected.
    expect(await login.attempt('10.0.0.2', clients, creds('right'))).toMatchObject({ ok: true });
    expect(failures.every(([a]) => a === '10.0.0.1')).toBe(true);
  });

  it('checks a client kept with a scrypt hash', async () => {
    const { login } = rig();
    const hashed: RelayClient = { name: 'db', username: 'db', passwordHash: await hashRelayPassword('s3cret'), account: 'support', allowedFrom: ['a@b.c'] };
    const clients = indexClients([hashed]);
    expect(await login.attempt('10.0.0.1', clients, creds('s3cret', 'db'))).toMatchObject({ ok: true });
    expect(await login.attempt('10.0.0.1', clients, creds('s3cret ', 'db'))).toMatchObject({ ok: false, code: 535 });
  });
});
