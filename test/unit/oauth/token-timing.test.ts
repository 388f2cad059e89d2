import { describe, expect, it } from 'vitest';
import { EXPIRY_SKEW_MS, tokenTiming } from '../../../src/oauth/token-timing.js';

describe('token timing', () => {
  const now = 1_000_000_000_000;
  const refreshBefore = 10 * 60_000;
  const tok = (expiresIn: number | null, lifetime = 3_600_000) => ({
    accessExpiresAt: expiresIn === null ? null : now + expiresIn,
    lastRefreshAt: expiresIn === null ? now : now + expiresIn - lifetime,
  });

  it('one answer for hand out, refresh now and show as expiring', () => {
    expect(tokenTiming(tok(30 * 60_000), refreshBefore, now)).toBe('fresh');
    expect(tokenTiming(tok(10 * 60_000), refreshBefore, now)).toBe('due');
    expect(tokenTiming(tok(EXPIRY_SKEW_MS + 1), refreshBefore, now)).toBe('due');
    expect(tokenTiming(tok(EXPIRY_SKEW_MS), refreshBefore, now)).toBe('expired');
    expect(tokenTiming(tok(-5), refreshBefore, now)).toBe('expired');
    expect(tokenTiming(tok(null), refreshBefore, now)).toBe('unknown');
  });

  it('a token that lives shorter than refreshBefore is due from half its lifetime', () => {
    expect(tokenTiming(tok(6 * 60_000, 10 * 60_000), refreshBefore, now)).toBe('fresh');
    expect(tokenTiming(tok(5 * 60_000, 10 * 60_000), refreshBefore, now)).toBe('due');
  });
});
