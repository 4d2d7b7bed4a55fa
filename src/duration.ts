/**
 * Parses a duration the way Istio reads one (Go's `time.ParseDuration`, which is also what the
 * CRDs' CEL `duration()` accepts): an optional sign, then one or more decimal numbers each followed
 * by a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), e.g. `1.5s`, `100ms`, `1h30m`; or `0`.
 * Returns milliseconds (fractional for sub-millisecond values), or `undefined` if the text is not a
 * duration.
 */
export function parseDuration(text: string): number | undefined {
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  let i = 0;
  while (i < s.length) {
    const start = i;
    while (i < s.length && isDigit(s.charCodeAt(i))) i++;
    const hasInt = i > start;
    let hasFraction = false;
    if (s[i] === '.') {
      i++;
      const fractionStart = i;
      while (i < s.length && isDigit(s.charCodeAt(i))) i++;
      hasFraction = i > fractionStart;
    }
    if (!hasInt && !hasFraction) return undefined;
    const number = Number(s.slice(start, i));
    const unitStart = i;
    while (i < s.length && s[i] !== '.' && !isDigit(s.charCodeAt(i))) i++;
    const unit = UNIT_MS.get(s.slice(unitStart, i));
    if (unit === undefined) return undefined;
    total += number * unit;
  }
  // Go rejects what does not fit an int64 of nanoseconds (about 292 years).
  if (total > MAX_MS) return undefined;
  return negative ? -total : total;
}

const UNIT_MS: ReadonlyMap<string, number> = new Map([
  ['ns', 1e-6],
  ['us', 1e-3],
  ['\u00b5s', 1e-3],
  ['\u03bcs', 1e-3],
  ['ms', 1],
  ['s', 1000],
  ['m', 60_000],
  ['h', 3_600_000],
]);

const MAX_MS = 9_223_372_036_854.775;

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

const UNIT_NS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n],
  ['\u03bcs', 1_000n],
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

/**
 * A duration in whole nanoseconds, exact where {@link parseDuration}'s milliseconds are a float, for
 * the checks that need exact values (Istio accepts only whole milliseconds). Fractions below a
 * nanosecond are dropped, as Go does; undefined when the text is not a duration.
 */
export function parseDurationNanos(text: string): bigint | undefined {
  if (parseDuration(text) === undefined) return undefined;
  const negative = text.startsWith('-');
  const s = text.replace(/^[-+]/, '');
  if (s === '0') return 0n;
  let total = 0n;
  for (const [, whole = '', fraction = '', unit = ''] of s.matchAll(/(\d*)(?:\.(\d*))?([^\d.]+)/g)) {
    const scale = UNIT_NS.get(unit)!;
    total += BigInt(whole || '0') * scale;
    if (fraction !== '') total += (BigInt(fraction) * scale) / 10n ** BigInt(fraction.length);
  }
  return negative ? -total : total;
}
