import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { lookup } from 'node:dns/promises';
import { describe, expect, it } from 'vitest';
import { explainSystemError, fileTarget, MailgateError, plainFailure, SYSTEM_ERROR_CODES, systemCodeOf } from '../../src/errors.js';
import { plainError } from '../../src/http/admin/plain-words.js';

/** A port on loopback that nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function socketError(port: number): Promise<Error> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('error', resolve);
    s.once('connect', () => resolve(new Error('connected?')));
  });
}

describe('system failures in plain words (src/errors.ts)', () => {
  it('a refused connection says what happened, to what and what to check, and keeps the code apart', async () => {
    const port = await closedPort();
    const err = await socketError(port);
    const plain = explainSystemError(err, `the IMAP server 127.0.0.1:${port}`);
    expect(plain).toEqual({
      code: 'ECONNREFUSED',
      message: `The IMAP server 127.0.0.1:${port} refused the connection (nothing accepts connections on that port). Check the host and port in the config, and that the server is running.`,
    });
    expect(plain?.message).not.toContain('ECONNREFUSED');
  });

  it('finds the code under fetch\'s "fetch failed" (cause, AggregateError members)', async () => {
    const port = await closedPort();
    const err = await fetch(`http://127.0.0.1:${port}/token`).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe('fetch failed');
    expect(systemCodeOf(err)).toBe('ECONNREFUSED');
    expect(explainSystemError(err, 'the token endpoint at 127.0.0.1')?.message).toMatch(/^The token endpoint at 127\.0\.0\.1 refused the connection/);
  });

  it('an unknown host name is a DNS problem with the host to check', async () => {
    const err = await lookup('no-such-host.invalid').then(
      () => null,
      (e: unknown) => e,
    );
    const plain = explainSystemError(err, 'the SMTP server no-such-host.invalid:587');
    expect(['ENOTFOUND', 'EAI_AGAIN']).toContain(plain?.code);
    expect(plain?.message).toMatch(/^The host name of the SMTP server no-such-host\.invalid:587 could not be (found|looked up)/);
    expect(plain?.message).toMatch(/Check the (host name|DNS)/);
  });

  it('a missing file names the file and the path rule', () => {
    let err: unknown;
    try {
      readFileSync('/nonexistent/refresh-token.txt');
    } catch (e) {
      err = e;
    }
    expect(plainFailure(err, fileTarget(err))).toEqual({
      code: 'ENOENT',
      message: 'The file /nonexistent/refresh-token.txt does not exist. Check the path for typos (a relative path in the config file is relative to the folder of that file).',
    });
  });

  it('certificate, TLS and permission codes, named in the text only (nodemailer keeps ESOCKET), and timeouts', () => {
    const expired = explainSystemError(Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }), 'the IMAP server imap.example.com:993');
    expect(expired?.message).toBe('The certificate of the IMAP server imap.example.com:993 has expired. Check the certificate on the server (and the clock of this machine).');
    const selfSigned = explainSystemError({ code: 'ESOCKET', message: 'self-signed certificate; DEPTH_ZERO_SELF_SIGNED_CERT' }, 'the SMTP server x:465');
    expect(selfSigned?.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(explainSystemError({ code: 'ESOCKET', message: 'connect ECONNREFUSED 127.0.0.1:1' }, 'x')?.code).toBe('ECONNREFUSED');
    expect(explainSystemError({ code: 'EACCES', path: '/data' }, 'the data directory /data')?.message).toMatch(/^mailgate is not allowed to open the data directory \/data \(permission denied\)/);
    expect(explainSystemError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 'the webhook at h')?.code).toBe('ETIMEDOUT');
    expect(explainSystemError(new Error('ERR_SSL_WRONG_VERSION_NUMBER'), 'the POP3 server p:110')?.message).toContain('tls: true is for implicit-TLS ports');
  });

  it('anything else keeps its own words and catalogue code; every message of the table ends as a sentence', () => {
    expect(plainFailure(new MailgateError('OAUTH_MISSING_TOKEN'), 'x')).toEqual({ code: 'OAUTH_MISSING_TOKEN', message: 'the account has no token; authorize it first' });
    expect(explainSystemError(new Error('the server said no'), 'x')).toBeNull();
    for (const code of SYSTEM_ERROR_CODES) {
      const m = explainSystemError({ code }, 'the thing')?.message ?? '';
      expect(m, code).toMatch(/the thing.*\. Check .+\.$/i);
      expect(m, code).not.toContain(code);
    }
  });

  it('the admin UI reads an error recorded by an older mailgate with the same table', () => {
    expect(plainError('connect ECONNREFUSED 127.0.0.1:993', 'the incoming server')).toMatch(/^The incoming server refused the connection/);
    expect(plainError('the server refused the login: bad token')).toBe('the server refused the login: bad token');
  });
});
