import type { FieldPath } from '../../document.js';
import type { IssueSeverity } from '../../../issue.js';
import { describeTyped, quoteText } from '../../validate/describe.js';
import { suggestion } from '../../validate/did-you-mean.js';

/** Where findings go: severity, stable code, message, and the field path in the resource. */
export type Report = (severity: IssueSeverity, code: string, message: string, path: FieldPath) => void;

type Obj = Readonly<Record<string, unknown>>;

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * One protobuf message written as JSON, the way Envoy reads an EnvoyFilter's `typed_config`:
 * field names in snake_case or lowerCamelCase, any other name an error (Envoy rejects unknown
 * fields). Reads report problems against the field path in the resource.
 */
export class ProtoMessage {
  private readonly fields = new Map<string, { readonly value: unknown; readonly key: string }>();

  constructor(
    value: Obj,
    readonly path: FieldPath,
    private readonly report: Report,
    known: readonly string[],
    /** Keys that are not fields (`@type` of an Any). */
    skip: readonly string[] = [],
  ) {
    for (const [key, v] of Object.entries(value)) {
      if (skip.includes(key) || v === undefined) continue;
      const name = snake(key);
      if (!known.includes(name)) {
        const hint = suggestion(name, known);
        report('error', 'unknown-field', `unknown field '${key}'${hint === '' ? `; expected one of ${known.join(', ')}` : hint}`, [...path, key]);
        continue;
      }
      if (this.fields.has(name)) {
        report('error', 'duplicate', `field '${name}' is set twice (as '${this.fields.get(name)!.key}' and '${key}')`, [...path, key]);
        continue;
      }
      // null is the JSON form of an unset field.
      if (v !== null) this.fields.set(name, { value: v, key });
    }
  }

  has(name: string): boolean {
    return this.fields.has(name);
  }

  /** The field's path as written (its own spelling). */
  at(name: string): FieldPath {
    return [...this.path, this.fields.get(name)?.key ?? name];
  }

  raw(name: string): unknown {
    return this.fields.get(name)?.value;
  }

  /** Reports an error on field `name`; returns undefined for `return m.error(...)`. */
  error(name: string, code: string, message: string): undefined {
    this.report('error', code, message, this.at(name));
    return undefined;
  }

  string(name: string, { required = false, minLength = 0 } = {}): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return required ? this.error(name, 'required', `missing required field '${name}'`) : undefined;
    if (typeof v !== 'string') return this.error(name, 'type', `expected a string, found ${describeTyped(v)}`);
    if (v.length < minLength) return this.error(name, 'range', `expected at least ${minLength} character${minLength === 1 ? '' : 's'}, found ${quoteText(v)}`);
    return v;
  }

  bool(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    // google.protobuf.BoolValue is written as the bare boolean.
    if (typeof v !== 'boolean') return this.error(name, 'type', `expected a boolean (true or false), found ${describeTyped(v)}`);
    return v;
  }

  /** uint32 (or a UInt32Value wrapper): a number or a decimal string, within `min`..2^32-1. */
  uint32(name: string, { required = false, min = 0 } = {}): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return required ? this.error(name, 'required', `missing required field '${name}'`) : undefined;
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) return this.error(name, 'type', `expected an integer, found ${describeTyped(v)}`);
    if (n < min || n > 4_294_967_295) return this.error(name, 'range', `expected an integer from ${min} to 4294967295, found ${n}`);
    return n;
  }

  /** An enum by name (or number, as protobuf JSON allows). */
  enumValue<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < values.length) return values[v];
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as T;
    return this.error(name, 'enum', `expected one of ${values.join(', ')}, found ${describeTyped(v)}${typeof v === 'string' ? suggestion(v, values) : ''}`);
  }

  /**
   * google.protobuf.Duration in its JSON form: seconds with up to nine decimals and an `s`
   * (`1s`, `0.5s`, `60s`). Returns milliseconds.
   */
  duration(name: string, { required = false } = {}): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return required ? this.error(name, 'required', `missing required field '${name}'`) : undefined;
    if (typeof v !== 'string' || !/^-?\d+(\.\d{1,9})?s$/.test(v)) {
      return this.error(name, 'duration', `expected a protobuf duration in seconds such as "1s", "0.25s" or "60s", found ${describeTyped(v)}`);
    }
    return Number(v.slice(0, -1)) * 1000;
  }

  message(name: string, known: readonly string[], { required = false } = {}): ProtoMessage | undefined {
    const v = this.raw(name);
    if (v === undefined) return required ? this.error(name, 'required', `missing required field '${name}'`) : undefined;
    if (!isObject(v)) return this.error(name, 'type', `expected an object, found ${describeTyped(v)}`);
    return new ProtoMessage(v, this.at(name), this.report, known);
  }

  list(name: string, { maxItems = Infinity } = {}): { readonly value: unknown; readonly path: FieldPath }[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      this.error(name, 'type', `expected a list, found ${describeTyped(v)}`);
      return [];
    }
    if (v.length > maxItems) this.error(name, 'range', `expected at most ${maxItems} items, found ${v.length}`);
    return v.map((value: unknown, i) => ({ value, path: [...this.at(name), i] }));
  }

  warn(name: string, code: 'not-implemented' | 'not-applicable', reason: string): void {
    const what = code === 'not-implemented' ? 'is not implemented yet and has no effect' : 'does not apply to an in-process mesh and is ignored';
    this.report('warning', code, `'${name}' ${what}: ${reason}`, this.at(name));
  }
}
