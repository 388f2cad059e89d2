import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

/** Issue 16's keys: per-webhook signature, secrets and issueKeyPattern; per-account enabled and initialSync. */
function write(text: string): string {
  const path = join(tmpDataDir('mg-cfg16-'), 'mailgate.yaml');
  writeFileSync(path, text);
  return path;
}

const account = (incoming: string, extra = '') => `accounts:
  - name: a
    email: a@example.com${extra}
    incoming: { ${incoming}, host: h, auth: { method: password, password: p } }
    webhook: h
`;

async function errors(yaml: string): Promise<string[]> {
  const r = await loadConfig(write(yaml), { env: {} });
  if (r.ok) throw new Error('expected errors');
  const out = r.errors.map((e) => `${e.line}:${e.col} ${e.message}`);
  if (process.env.SHOW) console.log(out);
  return out;
}

describe('webhook signature, secrets and issueKeyPattern', () => {
  it('reads secrets newest first, the signature mode and the default issue key pattern', async () => {
    const r = await loadConfig(
      write(`webhooks:
  - { name: h, url: https://h.example/x, signature: standard, secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, old-secret] }
  - { name: i, url: https://h.example/x, secret: s, issueKeyPattern: null }
  - { name: j, url: https://h.example/x, secret: s, issueKeyPattern: '\\[(?<key>T[0-9]+)\\]' }
`),
      { env: {} },
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const [h, i, j] = r.config.webhooks;
    expect(h).toMatchObject({ signature: 'standard', secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'old-secret'], secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
    expect(h?.issueKeyPattern).toBe('[A-Z][A-Z0-9_]+-[0-9]+');
    expect(i).toMatchObject({ signature: 'mailgate', secrets: ['s'], issueKeyPattern: null });
    expect(j?.issueKeyPattern).toBe('\\[(?<key>T[0-9]+)\\]');
  });

  it('refuses secrets: [], secret with secrets, bad whsec_ base64, and bad or catastrophic patterns, each at file:line:col', async () => {
    const out = await errors(`webhooks:
  - { name: a, url: https://h.example/x, secrets: [] }
  - { name: b, url: https://h.example/x, secret: s, secrets: [t] }
  - { name: c, url: https://h.example/x, signature: standard, secrets: [ok, whsec_not*base64] }
  - { name: d, url: https://h.example/x, secret: s, issueKeyPattern: '[A-Z' }
  - { name: e, url: https://h.example/x, secret: s, issueKeyPattern: '(A+)+B' }
  - { name: f, url: https://h.example/x, secret: s, issueKeyPattern: 'x*' }
`);
    expect(out[0]).toMatch(/^2:51 secrets is empty; list at least one secret/);
    expect(out[1]).toMatch(/^3:62 secrets set either secret or secrets, not both/);
    expect(out[2]).toMatch(/^4:77 secrets \(entry 2\) starts with whsec_ but what follows is not valid base64/);
    expect(out[3]).toMatch(/^5:70 issueKeyPattern is not a valid regular expression/);
    expect(out[4]).toMatch(/^6:70 issueKeyPattern repeats "\(A\+\)\+".*nested quantifiers.*\(at character 2 of the pattern\)$/);
    expect(out[5]).toMatch(/^7:70 issueKeyPattern can match an empty string/);
    expect(out).toHaveLength(6);
    // The secret itself is never quoted.
    expect(out.join('\n')).not.toContain('not*base64');
  });
});

describe('account enabled and initialSync', () => {
  it('defaults: enabled, imap unseen, pop3 all; both may be written', async () => {
    const r = await loadConfig(
      write(`${account('protocol: imap')}  - name: b
    email: b@example.com
    enabled: false
    incoming: { protocol: pop3, host: h, initialSync: new, auth: { method: password, password: p } }
    webhook: h
  - name: c
    email: c@example.com
    incoming: { protocol: imap, host: h, initialSync: all, auth: { method: password, password: p } }
    webhook: h
webhooks:
  - { name: h, url: https://h.example/x, secret: s }
`),
      { env: {} },
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const [a, b, c] = r.config.accounts;
    expect(a).toMatchObject({ enabled: true, incoming: { initialSync: 'unseen' } });
    expect(b).toMatchObject({ enabled: false, incoming: { initialSync: 'new' } });
    expect(c?.incoming.initialSync).toBe('all');
  });

  it('pop3 refuses initialSync: unseen', async () => {
    const out = await errors(`${account('protocol: pop3, initialSync: unseen')}webhooks:
  - { name: h, url: https://h.example/x, secret: s }
`);
    expect(out).toEqual(['4:46 pop3 has no seen flags: initialSync is all (every message on the server) or new (only what arrives later)']);
  });

  it('an unknown initialSync is named with the choices', async () => {
    const out = await errors(`${account('protocol: imap, initialSync: unread')}webhooks:
  - { name: h, url: https://h.example/x, secret: s }
`);
    expect(out).toEqual(['4:46 accounts.0.incoming.initialSync: must be one of unseen, all, new']);
  });

  it('enabled must be a boolean', async () => {
    const out = await errors(`${account('protocol: imap', '\n    enabled: "no"')}webhooks:
  - { name: h, url: https://h.example/x, secret: s }
`);
    expect(out[0]).toMatch(/^4:14 accounts\.0\.enabled: expected boolean, got string/);
  });
});
