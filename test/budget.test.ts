import { describe, expect, it } from 'vitest';

import { RequestBudget } from '../src/budget.js';

describe('RequestBudget', () => {
  it('allows the limit within a window', () => {
    let now = 1_000;
    const budget = new RequestBudget({ limit: 3, windowMs: 60_000, now: () => now });
    expect(budget.remaining()).toBe(3);
    return (async () => {
      await budget.take();
      await budget.take();
      await budget.take();
      expect(budget.remaining()).toBe(0);
      // A minute plus the 1.2 s margin for network delay.
      expect(budget.waitTimeMs()).toBe(61_200);

      now += 30_000;
      expect(budget.waitTimeMs()).toBe(31_200);
      now += 30_000;
      expect(budget.remaining()).toBe(0);
      now += 1_200;
      expect(budget.remaining()).toBe(3);
    })();
  });

  it('never lets a rolling window exceed the limit', async () => {
    const budget = new RequestBudget({ limit: 5, windowMs: 200 });
    const starts: number[] = [];
    const deadline = Date.now() + 700;
    while (Date.now() < deadline) {
      await budget.take();
      starts.push(Date.now());
    }
    for (const start of starts) {
      const inWindow = starts.filter((other) => other >= start && other < start + 200).length;
      expect(inWindow).toBeLessThanOrEqual(5);
    }
    expect(starts.length).toBeGreaterThan(5);
  });

  it('stops waiting when aborted', async () => {
    const budget = new RequestBudget({ limit: 1, windowMs: 60_000 });
    await budget.take();
    const controller = new AbortController();
    const waiting = budget.take(controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(budget.remaining()).toBe(0);
  });

  it('rejects a limit below one', () => {
    expect(() => new RequestBudget({ limit: 0 })).toThrow(RangeError);
  });
});
