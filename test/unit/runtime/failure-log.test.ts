import { describe, expect, it } from 'vitest';
import { FailureLog } from '../../../src/runtime/failure-log.js';

describe('FailureLog: a failing state once, then reminders at a growing interval', () => {
  it('logs a change at once, stays quiet, then reminds after 5 min, 10 min, 20 min … up to the cap', () => {
    let now = 0;
    const log = new FailureLog({ firstReminderMs: 5 * 60_000, maxReminderMs: 20 * 60_000, now: () => now });
    expect(log.failed('down')).toEqual({ log: 'changed', previous: null });
    const reminders: number[] = [];
    // a failure every 30 s for two hours
    for (let t = 30_000; t <= 2 * 3_600_000; t += 30_000) {
      now = t;
      const r = log.failed('down');
      if (r.log === 'reminder') reminders.push(t / 60_000);
      else expect(r.log).toBe('quiet');
    }
    // 5, then +10, +20, +20, … (capped at 20)
    expect(reminders.slice(0, 4)).toEqual([5, 15, 35, 55]);
    expect(reminders.length).toBeLessThan(10);
  });

  it('a different failure is a new state; recovery ends it and says since when', () => {
    let now = 1_000;
    const log = new FailureLog({ now: () => now });
    log.failed('refused');
    now = 2_000;
    expect(log.failed('refused').log).toBe('quiet');
    expect(log.failed('dns')).toEqual({ log: 'changed', previous: 'refused' });
    expect(log.failing).toBe(true);
    expect(log.recovered()).toEqual({ key: 'dns', since: 2_000, attempts: 1 });
    expect(log.recovered()).toBeNull();
    expect(log.failed('dns').log).toBe('changed');
  });
});
