import { describe, expect, it } from 'vitest';
import { makeCertificate } from '../../harness/oauth-process.js';
import { assertRelayConfig, dotted, RelayConfigError, relayConfigProblems } from '../../../src/relay/check.js';
import { hashRelayPassword, parseRelayPasswordHash, relayPasswordMatches } from '../../../src/relay/passwords.js';
import type { RelayClient, RelayConfig } from '../../../src/relay/types.js';

const client = (over: Partial<RelayClient> = {}): RelayClient =>
  ({ name: 'scanner', username: 'scanner', password: 'pw', account: 'support', allowedFrom: ['support@example.com'], ...over }) as RelayClient;
const config = (over: Partial<RelayConfig> = {}): RelayConfig => ({
  listen: { host: '127.0.0.1', port: 2525 },
  maxMessageSizeBytes: 25 * 1024 * 1024,
  clients: [client()],
  ...over,
});
const pem = makeCertificate('localhost');
const tls = { cert: pem.certificatePem, key: pem.privateKeyPem };
const paths = (c: RelayConfig, accounts?: { name: string; hasOutgoing: boolean }[]) => relayConfigProblems(c, accounts).map((p) => dotted(p.path));

describe('relay config check', () => {
  it('accepts loopback without tls, and anything with tls', () => {
    for (const host of ['127.0.0.1', '127.0.0.53', '::1', 'localhost']) expect(paths(config({ listen: { host, port: 2525 } })), host).toEqual([]);
    expect(paths(config({ listen: { host: '0.0.0.0', port: 587 }, tls }))).toEqual([]);
  });

  it('refuses a certificate that is not PEM, or a key that is not its own, at relay.tls', () => {
    const other = makeCertificate('other');
    for (const bad of [{ cert: 'not a certificate', key: tls.key }, { cert: tls.cert, key: other.privateKeyPem }]) {
      const problems = relayConfigProblems(config({ tls: bad }));
      expect(problems.map((p) => dotted(p.path))).toEqual(['relay.tls']);
      expect(problems[0]?.message).toMatch(/cannot be used together/);
    }
  });

  it('names relay.tls for a listener off loopback without a certificate', () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.1', 'relay.example.com']) expect(paths(config({ listen: { host, port: 25 } })), host).toEqual(['relay.tls']);
    const err = (() => {
      try {
        assertRelayConfig(config({ listen: { host: '0.0.0.0', port: 25 } }));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(RelayConfigError);
    expect(err).toMatchObject({ code: 'CONFIG_INVALID', permanent: true });
    expect((err as Error).message).toContain('relay.tls: relay.listen is 0.0.0.0, which is not loopback');
  });

  it('reports every client problem at once, at its key', () => {
    const c = config({
      maxMessageSizeBytes: 0,
      clients: [
        client(),
        client({ username: 'other' }),
        client({ name: 'b', username: 'scanner', password: '' }),
        client({ name: 'c', username: 'c', passwordHash: 'md5:abc', password: undefined }),
        client({ name: 'd', username: 'd', allowedFrom: [] }),
        client({ name: 'e', username: 'e', allowedFrom: ['not-an-address'] }),
        client({ name: 'f', username: 'f', password: 'x', passwordHash: '$scrypt$…' } as unknown as RelayClient),
      ],
    });
    expect(paths(c)).toEqual([
      'relay.maxMessageSize',
      'relay.clients[1].name',
      'relay.clients[2].username',
      'relay.clients[2].password',
      'relay.clients[3].passwordHash',
      'relay.clients[4].allowedFrom',
      'relay.clients[5].allowedFrom[0]',
      'relay.clients[6].password',
    ]);
  });

  it('with the accounts, refuses an unknown account and one without outgoing', () => {
    const c = config({ clients: [client(), client({ name: 'b', username: 'b', account: 'inbox-only' }), client({ name: 'c', username: 'c', account: 'nope' })] });
    const problems = relayConfigProblems(c, [
      { name: 'support', hasOutgoing: true },
      { name: 'inbox-only', hasOutgoing: false },
    ]);
    expect(problems.map((p) => [dotted(p.path), p.message])).toEqual([
      ['relay.clients[1].account', "account inbox-only has no outgoing server; the relay sends this client's mail through it"],
      ['relay.clients[2].account', 'no account named nope'],
    ]);
  });
});

describe('relay passwords', () => {
  it('compares a plain password exactly', async () => {
    const c = client({ password: 'Secret 1' });
    expect(await relayPasswordMatches(c, 'Secret 1')).toBe(true);
    for (const wrong of ['secret 1', 'Secret 1 ', 'Secret', '']) expect(await relayPasswordMatches(c, wrong)).toBe(false);
  });

  it('hashes with scrypt in the PHC format and checks against the hash', async () => {
    const hash = await hashRelayPassword('correct horse');
    expect(hash).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(await hashRelayPassword('correct horse')).not.toBe(hash); // salted
    const c = client({ password: undefined, passwordHash: hash } as Partial<RelayClient>);
    expect(await relayPasswordMatches(c, 'correct horse')).toBe(true);
    expect(await relayPasswordMatches(c, 'correct horse!')).toBe(false);
  });

  it('refuses hashes it did not make, or whose cost would take too much memory', () => {
    const salt = 'A'.repeat(22);
    const h = 'B'.repeat(43);
    expect(parseRelayPasswordHash(`$scrypt$ln=15,r=8,p=1$${salt}$${h}`)).not.toBeNull();
    for (const bad of [`$scrypt$ln=25,r=8,p=1$${salt}$${h}`, `$scrypt$ln=15,r=64,p=1$${salt}$${h}`, `$argon2id$v=19$${salt}$${h}`, 'plain', `$scrypt$ln=15,r=8,p=1$$${h}`]) {
      expect(parseRelayPasswordHash(bad), bad).toBeNull();
    }
  });
});
