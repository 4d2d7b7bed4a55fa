import { RETRY_ON_NAMES } from '../../../resilience/retry-on.js';
import type { FieldPath } from '../../document.js';
import { suggestion } from '../did-you-mean.js';
import type { RuleReport } from './rule-report.js';
import { q } from './rule-report.js';

/** The status codes Go's http.StatusText names: the only numbers istiod accepts in `retryOn`. */
const KNOWN_STATUS = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408,
  409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);
const NAMES: ReadonlySet<string> = new Set(RETRY_ON_NAMES);

/**
 * agent.ValidateHTTPRetry's `retryOn` rule: the text is split on commas exactly (a blank around a
 * comma makes an unknown entry, as in Istio), and each entry is an Envoy condition or a known HTTP
 * status code.
 */
export function checkRetryOn(retryOn: string, path: FieldPath, report: RuleReport): void {
  for (const entry of retryOn.split(',')) {
    if (NAMES.has(entry)) continue;
    if (/^[+-]?\d+$/.test(entry) && KNOWN_STATUS.has(Number(entry))) continue;
    const trimmed = entry.trim();
    const hint =
      trimmed !== entry && (NAMES.has(trimmed) || KNOWN_STATUS.has(Number(trimmed)))
        ? `; did you mean ${q(trimmed)}? (no blanks around the commas)`
        : suggestion(entry, RETRY_ON_NAMES);
    report.error(
      path,
      `${q(entry)} is not a valid retryOn policy${hint}: expected a comma-separated list of ${RETRY_ON_NAMES.join(', ')} or HTTP status codes`,
      'retry-on',
    );
  }
}
