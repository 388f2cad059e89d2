import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatIssue, loadConfig } from '../../../src/config/load.js';
import { makeCertificate } from '../../harness/oauth-process.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

/** The `relay:` section as product.md writes it, read by loadConfig (schema + buildConfig). */

const ACCOUNTS = `accounts:
  - name: support
    email: Support@Example.com
    incoming: { protocol: imap, host: 127.0.0.1, auth: { method: password, password: pw } }
    outgoing: { host: 127.0.0.1, tls: false, auth: { method: password, password: pw } }
    webhook: hook
  - name: inbound-only
    email: in@example.com
    incoming: { protocol: imap, host: 127.0.0.1, auth: { method: password, password: pw } }
    webhook: hook
webhooks:
  - { name: hook, url: http://127.0.0.1:9/x, secret: s }
`;

function dir(): string {
  const d = tmpDataDir('mg-relay-cfg-');
  mkdirSync(join(d, 'tls'));
  mkdirSync(join(d, 'secrets'));
  const pem = makeCertificate('localhost');
  writeFileSync(join(d, 'tls/relay.crt'), pem.certificatePem);
  writeFileSync(join(d, 'tls/relay.key'), pem.privateKeyPem);
  writeFileSync(join(d, 'secrets/scanner-relay-password'), 'scan-pw\n');
  return d;
}

async function load(relay: string, d = dir()) {
  const path = join(d, 'mailgate.yaml');
  writeFileSync(path, `${ACCOUNTS}${relay}`);
  return loadConfig(path, { env: {} });
}

const errors = (r: Awaited<ReturnType<typeof load>>) => (r.ok ? [] : r.errors.map(formatIssue));

describe('relay config', () => {
  it('reads the product.md example: files read, 25MB in bytes, passwords from passwordFile', async () => {
    const d = dir();
    const r = await load(
      `relay:
  listen: 127.0.0.1:2525
  tls: { certFile: ./tls/relay.crt, keyFile: ./tls/relay.key }
  maxMessageSize: 25MB
  clients:
    - name: scanner
      username: scanner
      passwordFile: ./secrets/scanner-relay-password
      account: support
      allowedFrom: [support@example.com]
`,
      d,
    );
    if (!r.ok) throw new Error(errors(r).join('\n'));
    const relay = r.config.relay;
    expect(relay?.listen).toEqual({ host: '127.0.0.1', port: 2525 });
    expect(relay?.maxMessageSizeBytes).toBe(25 * 1024 * 1024);
    expect(relay?.tls?.cert.toString()).toMatch(/BEGIN CERTIFICATE/);
    expect(relay?.tls?.key.toString()).toMatch(/PRIVATE KEY/);
    expect(relay?.clients).toEqual([{ name: 'scanner', username: 'scanner', password: 'scan-pw', account: 'support', allowedFrom: ['support@example.com'] }]);
  });

  it('defaults listen, size and allowedFrom (the account email, lower-cased); no section means no relay', async () => {
    const r = await load(`relay:
  clients:
    - { name: printer, username: printer, password: pw2, account: support }
`);
    if (!r.ok) throw new Error(errors(r).join('\n'));
    expect(r.config.relay).toMatchObject({ listen: { host: '127.0.0.1', port: 2525 }, maxMessageSizeBytes: 25 * 1024 * 1024 });
    expect(r.config.relay?.tls).toBeUndefined();
    expect(r.config.relay?.clients[0]?.allowedFrom).toEqual(['support@example.com']);
    const none = await load('');
    expect(none.ok && none.config.relay).toBeUndefined();
  });

  it('refuses a client whose account has no outgoing server, or no such account, at the account key', async () => {
    const r = await load(`relay:
  clients:
    - { name: a, username: a, password: pw, account: inbound-only }
    - { name: b, username: b, password: pw, account: nobody, allowedFrom: [x@example.com] }
`);
    const e = errors(r).join('\n');
    expect(e).toMatch(/relay\.clients\[0\]\.account: account inbound-only has no outgoing server/);
    expect(e).toMatch(/relay\.clients\[1\]\.account: no account named nobody/);
  });

  it('refuses to listen off loopback without tls, naming relay.tls', async () => {
    const r = await load(`relay:
  listen: 0.0.0.0:2525
  clients: [{ name: a, username: a, password: pw, account: support }]
`);
    expect(errors(r).join('\n')).toMatch(/relay\.tls: relay\.listen is 0\.0\.0\.0, which is not loopback/);
  });

  it('names the key of every other mistake', async () => {
    const r = await load(`relay:
  listen: nowhere
  tls: { certFile: ./tls/missing.crt, keyFile: ./tls/relay.key }
  maxMessageSize: huge
  clients:
    - { name: a, username: a, account: support }
    - { name: a, username: a, password: pw, account: support, allowedFrom: [not-an-address] }
    - { name: c, username: c, password: pw, account: support, passwrd: x }
`);
    const e = errors(r).join('\n');
    expect(e).toMatch(/relay\.listen must be host:port/);
    expect(e).toMatch(/maxMessageSize/);
    expect(e).toMatch(/allowedFrom/);
    expect(e).toMatch(/passwrd/);
    const second = await load(`relay:
  tls: { certFile: ./tls/missing.crt, keyFile: ./tls/relay.key }
  clients:
    - { name: a, username: a, account: support }
    - { name: a, username: a, password: pw, account: support }
`);
    const e2 = errors(second).join('\n');
    expect(e2).toMatch(/cannot read relay\.tls\.certFile .*missing\.crt: ENOENT/);
    expect(e2).toMatch(/missing required key "password" \(or passwordFile\)/);
    expect(e2).toMatch(/client a is also relay\.clients\[0\]/);
    expect(e2).toMatch(/username a is also used by relay\.clients\[0\]/);
  });
});
