import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS, MailgateError, type ErrorCode } from '../../src/errors.js';
import { Pop3Error } from '../../src/incoming/pop3/client.js';
import { Pop3ProtocolError, ResponseTooLargeError } from '../../src/incoming/pop3/errors.js';
import { TokenEndpointError } from '../../src/oauth/token-client.js';

const SRC = join(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [readFileSync(join(dir, e.name), 'utf8')] : [],
  );
}

describe('the error catalogue keeps its promises', () => {
  const code = Object.keys(ERRORS) as ErrorCode[];
  const text = sources(SRC).filter((s) => !s.includes('export const ERRORS = {'));

  it('every code is raised somewhere, not only compared against', () => {
    const raised = (c: ErrorCode) => text.some((s) => [...s.matchAll(new RegExp(`(.{0,4})'${c}'`, 'g'))].some((m) => !/[!=]==\s?$/.test(m[1] ?? '')));
    expect(code.filter((c) => !raised(c))).toEqual([]);
  });

  it('every code says what it means for the next try, in the shared vocabulary', () => {
    for (const c of code) expect(['auth', 'throttled', 'transient', 'permanent']).toContain(ERRORS[c].failure);
  });

  it('every code is documented in docs/architecture.md', () => {
    const doc = readFileSync(join(SRC, '../docs/architecture.md'), 'utf8');
    expect(code.filter((c) => !doc.includes(`\`${c}\``))).toEqual([]);
  });

  it('protocol errors are catalogue errors: POP3, its reader, token endpoints', () => {
    const refused = new Pop3Error('auth', 'POP3 AUTH failed', { responseCode: 'AUTH' });
    const busy = new Pop3Error('auth', 'POP3 AUTH failed', { responseCode: 'IN-USE' });
    expect([refused, busy, new Pop3Error('timeout', 't'), new Pop3Error('tls', 't'), new Pop3Error('too_large', 't')].map((e) => [e.code, e.failure])).toEqual([
      ['AUTH_FAILED', 'auth'],
      ['AUTH_UNAVAILABLE', 'transient'],
      ['TIMEOUT', 'transient'],
      ['TLS_FAILED', 'transient'],
      ['RESPONSE_TOO_LARGE', 'transient'],
    ]);
    expect(new Pop3ProtocolError('x')).toMatchObject({ code: 'PROTOCOL_ERROR', name: 'Pop3ProtocolError' });
    expect(new ResponseTooLargeError(10)).toMatchObject({ code: 'RESPONSE_TOO_LARGE', limitBytes: 10 });
    const rejected = new TokenEndpointError('OAUTH_GRANT_REJECTED', 'invalid_grant', 'expired', 400, null);
    const slow = new TokenEndpointError('OAUTH_TRANSIENT', null, null, 429, 5_000);
    expect([rejected.failure, rejected.message, slow.failure, slow.message]).toEqual(['auth', 'invalid_grant: expired', 'throttled', 'token endpoint failed with HTTP 429']);
    for (const e of [refused, rejected]) expect(e).toBeInstanceOf(MailgateError);
  });
});
