import { describe, expect, it } from 'vitest';
import { reconnectDelay } from '../../../src/incoming/connector-base.js';
import { classifyImapError } from '../../../src/incoming/imap/client.js';
import { Pop3Error } from '../../../src/incoming/pop3/client.js';
import { classifyPop3Error } from '../../../src/incoming/pop3/pop3-connector.js';

describe('IMAP failure classification', () => {
  it('reads refused logins, an unavailable auth backend and Microsoft throttling', () => {
    expect(classifyImapError({ authenticationFailed: true, responseText: 'AUTHENTICATE failed.' })).toMatchObject({
      kind: 'auth',
      message: 'the server refused the login: AUTHENTICATE failed.',
    });
    expect(classifyImapError({ serverResponseCode: 'UNAVAILABLE', responseText: 'Temporary authentication failure.' }).kind).toBe('auth-transient');
    // imapflow turns Exchange's "Suggested Backoff Time: 30000 milliseconds" into throttleReset.
    expect(classifyImapError({ throttleReset: 30_000, responseText: 'Request is throttled.' })).toEqual({
      kind: 'throttled',
      message: 'throttled by the server: Request is throttled.',
      retryAfterMs: 30_000,
    });
    expect(classifyImapError({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' })).toMatchObject({ kind: 'other', retryAfterMs: null });
    // Words for the admin, the code apart for scripts (not "NoConnection: Connection not available").
    expect(classifyImapError({ code: 'NoConnection', message: 'Connection not available' })).toEqual({ kind: 'other', message: 'Connection not available', retryAfterMs: null, code: 'NoConnection' });
  });
});

describe('POP3 failure classification', () => {
  it('a refused token is auth (with the OAuth2 status); SYS/TEMP and IN-USE are temporary', () => {
    const refused = new Pop3Error('auth', 'POP3 AUTH refused', {
      serverText: '[AUTH] Authentication failed.',
      responseCode: 'AUTH',
      oauth: { status: '401', schemes: 'bearer', scope: 'mail' },
    });
    expect(classifyPop3Error(refused)).toMatchObject({
      kind: 'auth',
      message: 'the server refused the login: [AUTH] Authentication failed. (OAuth2 status 401, scope mail)',
    });
    expect(classifyPop3Error(new Pop3Error('auth', 'busy', { responseCode: 'IN-USE', serverText: '[IN-USE] Mailbox locked' })).kind).toBe('transient');
    expect(classifyPop3Error(new Pop3Error('auth', 'later', { responseCode: 'SYS/TEMP' })).kind).toBe('transient');
    expect(classifyPop3Error(new Pop3Error('timeout', 'POP3 RETR: no answer within 30000 ms')).kind).toBe('transient');
  });
});

describe('reconnect delay', () => {
  it('backs off exponentially with a cap, and never reconnects before a throttling hint', () => {
    const mid = () => 0.5;
    const plain = { kind: 'transient' as const, message: 'x', retryAfterMs: null };
    expect(reconnectDelay(1, plain, mid)).toBe(750);
    expect(reconnectDelay(4, plain, mid)).toBe(6_000);
    expect(reconnectDelay(30, plain, mid)).toBe(225_000);
    expect(reconnectDelay(1, { ...plain, retryAfterMs: 30_000 }, mid)).toBe(30_000);
    // A hint beyond the cap waits the cap (5 minutes), not an hour.
    expect(reconnectDelay(1, { ...plain, retryAfterMs: 3_600_000 }, mid)).toBe(300_000);
  });
});

describe('IMAP failures in plain words under load', () => {
  it('a greeting timeout names a busy or throttling server, not TLS', () => {
    const c = classifyImapError({ code: 'GREETING_TIMEOUT', message: 'Failed to receive greeting from server in required time. Maybe should use TLS?' });
    expect(c).toEqual({ kind: 'other', message: 'the server did not greet within 16 s (it may be overloaded or throttling)', retryAfterMs: null });
    expect(c.message).not.toMatch(/TLS/);
    expect(classifyImapError({ code: 'CONNECT_TIMEOUT', message: 'Failed to establish connection in required time' }).message).toMatch(/^could not connect to the server within 30 s/);
  });

  it('"too many connections" answers are throttling, even when they come as a refused login', () => {
    expect(classifyImapError({ authenticationFailed: true, responseText: '[ALERT] Too many simultaneous connections. (Failure)' })).toEqual({
      kind: 'throttled',
      message: 'throttled by the server: [ALERT] Too many simultaneous connections. (Failure)',
      retryAfterMs: null,
    });
    expect(classifyImapError({ responseText: 'User is authenticated but not connected.' }).kind).toBe('throttled');
    expect(classifyImapError({ authenticationFailed: true, responseText: 'Invalid credentials (Failure)' }).kind).toBe('auth');
  });
});
