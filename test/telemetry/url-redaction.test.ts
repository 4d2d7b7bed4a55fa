import { describe, expect, it } from 'vitest';
import { redactedUrl } from '../../src/telemetry/url-redaction.js';
import { formatResponseFlags, ResponseFlag } from '../../src/telemetry/response-flags.js';
import { semconvMethod } from '../../src/telemetry/semconv.js';

describe('url.full, http.request.method and response_flags as the conventions write them', () => {
  it('redacts credentials and the signature parameters the spec names, and nothing else', () => {
    expect(redactedUrl('https', 'store:8443', '/o?X-Goog-Signature=abc&page=2&sig=zz&Signature=1&AWSAccessKeyId=k', true)).toBe(
      'https://REDACTED:REDACTED@store:8443/o?X-Goog-Signature=REDACTED&page=2&sig=REDACTED&Signature=REDACTED&AWSAccessKeyId=REDACTED',
    );
    expect(redactedUrl('http', 'reviews:9080', '/r?id=7&signature=x', false)).toBe('http://reviews:9080/r?id=7&signature=x');
  });

  it('reports an unknown method as _OTHER (case-sensitive)', () => {
    expect(semconvMethod('GET')).toBe('GET');
    expect(semconvMethod('get')).toBe('_OTHER');
    expect(semconvMethod('PURGE')).toBe('_OTHER');
  });

  it("prints Envoy's short flag names, - for none", () => {
    expect(formatResponseFlags(0)).toBe('-');
    expect(formatResponseFlags(ResponseFlag.DI | ResponseFlag.FI)).toBe('DI,FI');
    expect(formatResponseFlags(ResponseFlag.UO)).toBe('UO');
  });
});
