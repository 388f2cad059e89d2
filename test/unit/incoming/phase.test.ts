import { describe, expect, it } from 'vitest';
import { delayToPhaseMs, hash32, nextPhaseAt, phaseOffsetMs } from '../../../src/incoming/phase.js';

const FIVE_MINUTES = 5 * 60_000;
const names = (n: number) => Array.from({ length: n }, (_, i) => `acct-${String(i).padStart(4, '0')}`);

describe('phaseOffsetMs', () => {
  it('is the same for the same account, whatever the order or the run', () => {
    expect(phaseOffsetMs('support', FIVE_MINUTES)).toBe(phaseOffsetMs('support', FIVE_MINUTES));
    expect(hash32('support')).toBe(hash32('support'));
    expect(phaseOffsetMs('support', FIVE_MINUTES)).not.toBe(phaseOffsetMs('sales', FIVE_MINUTES));
  });

  it('lies in [0, period)', () => {
    for (const name of names(2000)) {
      const o = phaseOffsetMs(name, 1000);
      expect(o).toBeGreaterThanOrEqual(0);
      expect(o).toBeLessThan(1000);
      expect(Number.isInteger(o)).toBe(true);
    }
  });

  it('spreads 5,000 accounts with sequential names evenly over 5 minutes', () => {
    const perSecond = new Array<number>(300).fill(0);
    for (const name of names(5000)) perSecond[Math.floor(phaseOffsetMs(name, FIVE_MINUTES) / 1000)]!++;
    // 16.7 a second on average: no second gets a crowd, hardly any stays empty.
    expect(Math.max(...perSecond)).toBeLessThanOrEqual(40);
    expect(perSecond.filter((c) => c === 0).length).toBeLessThanOrEqual(3);
    const perMinute = [0, 1, 2, 3, 4].map((m) => perSecond.slice(m * 60, m * 60 + 60).reduce((a, b) => a + b, 0));
    for (const c of perMinute) expect(Math.abs(c - 1000)).toBeLessThan(120);
  });

  it('refuses a period that is not positive', () => {
    expect(() => phaseOffsetMs('a', 0)).toThrow(RangeError);
    expect(() => phaseOffsetMs('a', Number.NaN)).toThrow(RangeError);
  });
});

describe('nextPhaseAt and delayToPhaseMs', () => {
  it('is the account offset plus a whole number of periods, strictly after now', () => {
    const now = Date.UTC(2026, 11, 1, 12, 0, 0);
    for (const name of names(200)) {
      const next = nextPhaseAt(name, FIVE_MINUTES, now);
      expect(next).toBeGreaterThan(now);
      expect(next - now).toBeLessThanOrEqual(FIVE_MINUTES);
      expect((next - phaseOffsetMs(name, FIVE_MINUTES)) % FIVE_MINUTES).toBe(0);
      expect(delayToPhaseMs(name, FIVE_MINUTES, now)).toBe(next - now);
    }
  });

  it('gives a full period when now is exactly on the beat, and keeps the beat over time', () => {
    const offset = phaseOffsetMs('support', 60_000);
    const onBeat = 1_000 * 60_000 + offset;
    expect(delayToPhaseMs('support', 60_000, onBeat)).toBe(60_000);
    expect(nextPhaseAt('support', 60_000, onBeat - 1)).toBe(onBeat);
    // A reconnect halfway through does not move the account onto another beat.
    expect(nextPhaseAt('support', 60_000, onBeat + 30_000)).toBe(onBeat + 60_000);
  });
});
