import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/validate/index.js';

describe('parseDuration (Go time.ParseDuration, as Istio reads durations)', () => {
  it('reads decimal numbers with units, in milliseconds', () => {
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('100ms')).toBe(100);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('10us')).toBeCloseTo(0.01);
    expect(parseDuration('10\u00b5s')).toBeCloseTo(0.01);
    expect(parseDuration('5ns')).toBeCloseTo(0.000005);
    expect(parseDuration('.5s')).toBe(500);
    expect(parseDuration('5.s')).toBe(5000);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('-1.5s')).toBe(-1500);
    expect(parseDuration('+2s')).toBe(2000);
  });

  it('rejects what Go rejects', () => {
    for (const text of ['', '10', '1 s', '10 seconds', 's', '.s', '1d', '1S', '1h 30m', '--1s', '1.2.3s', '9999999h']) {
      expect([text, parseDuration(text)]).toEqual([text, undefined]);
    }
  });
});
