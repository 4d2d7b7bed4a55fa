import { describe, expect, it } from 'vitest';
import { repeat } from '../../src/clock.js';
import { TestClock } from '../helpers/test-clock.js';

// The one test clock every timing test stands on: if it ran timers out of order, skipped ones set
// by timers, or moved time wrongly, those tests would prove nothing.

describe('TestClock', () => {
  it("advance runs the timers due, in time order (ties in the order set), reading each one's due time", () => {
    const clock = new TestClock({ now: 0 });
    const ran: string[] = [];
    clock.schedule(30, () => ran.push(`c@${clock.now()}`), 'request');
    clock.schedule(10, () => ran.push(`a@${clock.now()}`), 'background');
    clock.schedule(10, () => ran.push(`b@${clock.now()}`), 'request');
    clock.schedule(31, () => ran.push(`late@${clock.now()}`), 'request');
    expect(clock.advance(30).map((t) => t.delayMs)).toEqual([10, 10, 30]);
    expect(ran).toEqual(['a@10', 'b@10', 'c@30']);
    expect(clock.now()).toBe(30);
    expect(clock.waiting.map((t) => t.delayMs)).toEqual([31]);
  });

  it('runs timers set by timers when they fall due within the same advance, and not before', () => {
    const clock = new TestClock({ now: 0 });
    const ran: number[] = [];
    clock.schedule(
      5,
      () => {
        ran.push(clock.now());
        clock.schedule(5, () => ran.push(clock.now()), 'background');
        clock.schedule(0, () => ran.push(clock.now()), 'background');
      },
      'background',
    );
    clock.advance(9);
    expect(ran).toEqual([5, 5]);
    clock.advance(1);
    expect(ran).toEqual([5, 5, 10]);
  });

  it('drives repeat(): one run per period, for as long as time moves', () => {
    const clock = new TestClock({ now: 0 });
    const at: number[] = [];
    const stop = repeat(clock, 100, () => at.push(clock.now()));
    clock.advance(350);
    expect(at).toEqual([100, 200, 300]);
    stop();
    clock.advance(1_000);
    expect(at).toEqual([100, 200, 300]);
    expect(clock.waiting).toEqual([]);
  });

  it('cancelled timers never run; state tells ran from cancelled', () => {
    const clock = new TestClock({ now: 0 });
    const cancel = clock.schedule(10, () => expect.unreachable(), 'request');
    clock.schedule(20, () => undefined, 'request');
    cancel();
    clock.advance(20);
    expect(clock.scheduled.map((t) => t.state)).toEqual(['cancelled', 'ran']);
  });

  it('runNext moves to the matching timer, running what is due before it; next waits for one to be set', async () => {
    const clock = new TestClock({ now: 0 });
    const ran: string[] = [];
    clock.schedule(5, () => ran.push('background'), 'background');
    clock.schedule(50, () => ran.push('request'), 'request');
    expect(clock.runNext((t) => t.kind === 'request')?.delayMs).toBe(50);
    expect(ran).toEqual(['background', 'request']);
    expect(clock.now()).toBe(50);

    setImmediate(() => clock.schedule(7, () => ran.push('later'), 'request'));
    expect((await clock.next()).delayMs).toBe(7);
    expect(ran.at(-1)).toBe('later');
    expect(clock.now()).toBe(57);
  });

  it('wall time moves with the clock from the start given', () => {
    const clock = new TestClock({ now: 0, wallNow: Date.parse('2030-01-01T00:00:00Z') });
    clock.advance(90_000);
    expect(new Date(clock.wallNow()).toISOString()).toBe('2030-01-01T00:01:30.000Z');
  });

  it('auto timers run by themselves at their due time; the others wait for the test', async () => {
    const clock = new TestClock({ now: 0, auto: (t) => t.delayMs < 100 });
    const ran: string[] = [];
    clock.schedule(1_000, () => ran.push('held'), 'request');
    clock.schedule(25, () => ran.push(`auto@${clock.now()}`), 'request');
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual(['auto@25']);
    clock.advance(1_000);
    expect(ran).toEqual(['auto@25', 'held']);
  });
});
