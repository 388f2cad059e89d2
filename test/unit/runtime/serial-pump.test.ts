import { describe, expect, it } from 'vitest';
import { SerialPump } from '../../../src/runtime/serial-pump.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('SerialPump', () => {
  it('merges wakes before a run, never overlaps runs, and passes once more for a wake during a run', async () => {
    let passes = 0;
    let settles = 0;
    let active = 0;
    let maxActive = 0;
    let release: () => void = () => undefined;
    const pump: SerialPump = new SerialPump({
      pass: async () => {
        passes++;
        active++;
        maxActive = Math.max(maxActive, active);
        if (passes === 1) await new Promise<void>((r) => (release = r));
        active--;
      },
      settle: async () => {
        settles++;
      },
      onError: () => undefined,
      idleRecheckMs: 60_000,
    });
    pump.start();
    pump.wake();
    pump.wake();
    await tick();
    expect(passes).toBe(1); // three wakes, one run
    pump.wake(); // during the run
    pump.wake();
    await tick();
    release();
    await tick();
    await tick();
    expect(passes).toBe(2);
    expect(settles).toBe(1); // settle once, after the last pass of the run
    expect(maxActive).toBe(1);
    pump.stop();
    pump.wake();
    await tick();
    expect(passes).toBe(2);
  });

  it('passes again at once while a pass asks for it, and survives a failing pass', async () => {
    let passes = 0;
    const errors: unknown[] = [];
    const pump = new SerialPump({
      pass: async () => {
        passes++;
        if (passes === 4) throw new Error('store gone');
        return passes < 3;
      },
      settle: async () => undefined,
      onError: (err) => errors.push(err),
      idleRecheckMs: 60_000,
    });
    pump.start();
    await tick();
    await tick();
    expect(passes).toBe(3);
    pump.wake();
    await tick();
    await tick();
    expect(passes).toBe(4);
    expect(errors).toHaveLength(1);
    pump.wake();
    await tick();
    await tick();
    expect(passes).toBe(5);
    pump.stop();
  });
});
