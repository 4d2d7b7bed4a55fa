import type { FieldPath } from '../../document.js';

/**
 * Where Istio's own rules report. An error is what istiod's validating webhook refuses (the change
 * is rejected); a warning is what it admits with a warning (reported, the resource kept).
 */
export interface RuleReport {
  error(path: FieldPath, message: string, code?: string): void;
  warn(path: FieldPath, message: string, code?: string): void;
}

/** What a kind's rules know besides the spec. */
export interface RuleSubject {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** Go's `%q` for the strings our messages quote. */
export function q(text: string): string {
  return JSON.stringify(text);
}

/** Go's `%f`. */
export function goFloat(value: number): string {
  return value.toFixed(6);
}
