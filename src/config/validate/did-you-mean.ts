/**
 * The candidate closest to `name`, if close enough to be a likely typo: case, `_`/`-` and
 * transpositions are forgiven (`Retries`, `per_try_timeout`, `retires`), so the user coming from
 * the proto field names or a misspelling gets the right field name.
 */
export function didYouMean(name: string, candidates: readonly string[]): string | undefined {
  const wanted = normalize(name);
  const limit = Math.min(3, Math.max(1, Math.floor(wanted.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    if (candidate === name) continue;
    const distance = editDistance(wanted, normalize(candidate), bestDistance);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** ` did you mean 'x'?` or the empty string, for appending to a message. */
export function suggestion(name: string, candidates: readonly string[]): string {
  const match = didYouMean(name, candidates);
  return match === undefined ? '' : `; did you mean '${match}'?`;
}

function normalize(text: string): string {
  return text.toLowerCase().replace(/[_-]/g, '');
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), capped at `cap`. */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let previous2: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, (previous2[j - 2] as number) + 1);
      }
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin >= cap) return cap;
    previous2 = previous;
    previous = current;
  }
  return Math.min(previous[b.length] as number, cap);
}
