import type { FieldPath } from '../../document.js';
import type { Headers } from '../../schema/index.js';
import type { RuleReport } from './rule-report.js';
import { q } from './rule-report.js';

/** RFC 7230 token characters. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;
const STRICT_HEADER_NAME = /^[-_A-Za-z0-9]+$/;
// eslint-disable-next-line no-control-regex
const HEADER_VALUE_CHARS = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);

/** `@request.auth.claims.sub` or `@request.auth.claims[sub]`: routing on a JWT claim (gateways only). */
export function isJwtClaimHeader(name: string): boolean {
  if (!name.toLowerCase().startsWith('@request.auth.claims')) return false;
  const rest = name.slice('@request.auth.claims'.length);
  return (rest.startsWith('.') && rest.length > 1) || (rest.startsWith('[') && rest.endsWith(']') && rest.length > 2);
}

/** A header a route may match on (ValidateHTTPHeaderNameOrJwtClaimRoute). */
export function validateMatchHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isJwtClaimHeader(name) || PSEUDO_HEADERS.has(name)) return undefined;
  return HEADER_NAME.test(name) ? undefined : `header name ${name} is not a valid header name`;
}

export function validateStrictHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  return STRICT_HEADER_NAME.test(name) ? undefined : `header name ${name} is not a valid header name`;
}

export function validateCorsHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  return name === '*' || HEADER_NAME.test(name) ? undefined : `header name ${name} is not a valid header name`;
}

const isInternal = (name: string): boolean => name.startsWith(':') || name.toLowerCase() === 'host';
export const isAuthorityHeader = (name: string): boolean => name.toLowerCase() === ':authority' || name.toLowerCase() === 'host';

/** A request header set or added; the authority may be, and is checked apart (ValidateHTTPHeaderWithAuthorityOperationName). */
function validateSetRequestHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  return isInternal(name) && !isAuthorityHeader(name) ? `invalid header ${q(name)}: header cannot have ":" prefix` : undefined;
}

/** A request header removed, or any response header changed (ValidateHTTPHeaderOperationName). */
function validateHeaderOperationName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name.toLowerCase() === 'host') return `invalid header ${q(name)}: cannot set Host header`;
  return isInternal(name) ? `invalid header ${q(name)}: header cannot have ":" prefix` : undefined;
}

/**
 * A header value as Envoy's header parser reads it: control characters are refused and every
 * unescaped `%` must open a `%VARIABLE%` or `%VARIABLE(args)%` expression (ValidateHTTPHeaderValue).
 */
export function validateHeaderValue(value: string): string | undefined {
  if (!HEADER_VALUE_CHARS.test(value)) return `header value configuration ${value} is invalid`;
  const problem = envoyHeaderFormatProblem(value);
  return problem ? `header value configuration: ${problem}` : undefined;
}

const enum State {
  Literal,
  VariableName,
  ExpectArray,
  ExpectString,
  String,
  ExpectArrayDelimiterOrEnd,
  ExpectArgsEnd,
  ExpectVariableEnd,
}

function envoyHeaderFormatProblem(value: string): string | undefined {
  let state = State.Literal;
  for (let pos = 0; pos < value.length; pos++) {
    const ch = value[pos];
    const hasNext = pos + 1 < value.length;
    switch (state) {
      case State.Literal:
        if (ch !== '%') break;
        if (!hasNext) return 'invalid header configuration. Un-escaped %';
        if (value[pos + 1] === '%') pos++;
        else state = State.VariableName;
        break;
      case State.VariableName:
        if (ch === '%') state = State.Literal;
        else if (ch === '(') state = State.ExpectArray;
        break;
      case State.ExpectArray:
        if (ch === '[') state = State.ExpectString;
        else if (ch !== ' ') state = State.String;
        break;
      case State.ExpectArrayDelimiterOrEnd:
        if (ch === ',') state = State.ExpectString;
        else if (ch === ']') state = State.ExpectArgsEnd;
        else if (ch !== ' ') return "invalid header configuration. Expecting ',', ']', or whitespace";
        break;
      case State.ExpectString:
        if (ch === '"') state = State.String;
        else if (ch !== ' ') return "invalid header configuration. Expecting '\"'";
        break;
      case State.String:
        if (ch === '\\') {
          if (!hasNext) return 'invalid header configuration. Un-terminated backslash in JSON string';
          pos++;
        } else if (ch === ')') state = State.ExpectVariableEnd;
        else if (ch === '"') state = State.ExpectArrayDelimiterOrEnd;
        break;
      case State.ExpectArgsEnd:
        if (ch === ')') state = State.ExpectVariableEnd;
        else if (ch !== ' ') return "invalid header configuration. Expecting ')' or whitespace after '{}', but found '{}'";
        break;
      case State.ExpectVariableEnd:
        if (ch === '%') state = State.Literal;
        else if (ch !== ' ') return "invalid header configuration. Expecting '%' or whitespace after";
        break;
    }
  }
  return state === State.Literal ? undefined : `invalid header configuration. Un-terminated variable expression '${value}'`;
}

/** Header operations of a route or of one destination (both sides, as validateHTTPRoute does). */
export function checkHeaderOperations(headers: Headers | undefined, path: FieldPath, report: RuleReport): void {
  if (!headers) return;
  const request = headers.request;
  const response = headers.response;
  const values = (map: Readonly<Record<string, string>> | undefined, at: FieldPath, nameRule: (n: string) => string | undefined): void => {
    for (const [name, value] of Object.entries(map ?? {})) {
      const bad = nameRule(name);
      if (bad) report.error([...at, name], bad);
      const badValue = validateHeaderValue(value);
      if (badValue) report.error([...at, name], badValue);
    }
  };
  const removals = (names: readonly string[] | undefined, at: FieldPath): void => {
    names?.forEach((name, i) => {
      const bad = validateHeaderOperationName(name);
      if (bad) report.error([...at, i], bad);
    });
  };
  values(request?.add, [...path, 'request', 'add'], validateSetRequestHeaderName);
  values(request?.set, [...path, 'request', 'set'], validateSetRequestHeaderName);
  removals(request?.remove, [...path, 'request', 'remove']);
  values(response?.add, [...path, 'response', 'add'], validateHeaderOperationName);
  values(response?.set, [...path, 'response', 'set'], validateHeaderOperationName);
  removals(response?.remove, [...path, 'response', 'remove']);
}
