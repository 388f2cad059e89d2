import { describe, expect, it } from 'vitest';
import { accountProblem, duration } from '../../../src/http/admin/plain-words.js';
import type { TokenStatus } from '../../../src/oauth/token-service.js';

const token = (t: Partial<TokenStatus>): TokenStatus => ({
  state: 'ok',
  expiresAt: null,
  lastRefreshAt: null,
  refreshTokenIssuedAt: null,
  lastError: null,
  ...t,
});
const base = { usesOAuth: true, provider: 'microsoft', incomingError: null, outgoingError: null };

describe('account problems in plain words', () => {
  it('says who rejected the refresh token and what to do', () => {
    const p = accountProblem({ ...base, token: token({ state: 'reauth_required', lastError: 'invalid_grant: AADSTS70008: expired' }) });
    expect(p).toBe('Microsoft rejected the refresh token (invalid_grant: AADSTS70008: expired). Click Authorize.');
  });

  it('puts the token first, then incoming, outgoing, refresh trouble and cliff warnings', () => {
    expect(accountProblem({ ...base, token: token({ state: 'missing' }), incomingError: 'x' })).toBe('Not authorized yet. Click Authorize.');
    expect(accountProblem({ ...base, token: token({}), incomingError: 'connect ECONNREFUSED 127.0.0.1:993' })).toBe(
      'Incoming: The incoming server refused the connection (nothing accepts connections on that port). Check the host and port in the config, and that the server is running.',
    );
    expect(accountProblem({ ...base, token: token({}), outgoingError: 'The SMTP server x:587 did not answer in time. Check it.' })).toBe(
      'Outgoing: The SMTP server x:587 did not answer in time. Check it.',
    );
    expect(accountProblem({ ...base, token: token({ lastError: 'HTTP 503' }) })).toBe('The last token refresh failed (HTTP 503); mailgate keeps trying.');
    expect(accountProblem({ ...base, token: token({ warning: 'refresh token unused for 80 days' }) })).toBe('refresh token unused for 80 days');
    expect(accountProblem({ ...base, usesOAuth: false, token: token({ state: 'missing' }) })).toBeNull();
  });

  it('rounds durations down to the largest whole unit', () => {
    expect(duration(3 * 86_400_000 + 5_000)).toBe('3 days');
    expect(duration(3_600_000)).toBe('1 hour');
    expect(duration(500)).toBe('less than a second');
  });
});
