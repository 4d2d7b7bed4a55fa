import { re2SyntaxError } from '../../match/regex.js';
import type { SchemaNode, SchemaType } from '../schema/schema-node.js';
import type { FieldSupport } from '../support.js';
import type { EnforcedCelRule } from './cel-rules.js';
import { CEL_RULES } from './cel-rules.js';
import { describeTyped, describeValue, listNames, quoteText } from './describe.js';
import { suggestion } from './did-you-mean.js';
import { parseDuration } from '../../duration.js';
import { exclusiveGroups } from './exclusive-fields.js';
import type { SupportNode } from './support-tree.js';
import { describePattern } from './pattern-names.js';

/** What the schema walk reports to; `path` is the field being checked (pushed and popped). */
export interface WalkContext {
  readonly path: (string | number)[];
  error(code: string, message: string, field?: string | number): void;
  warning(code: string, message: string, field?: string | number): void;
  /** Set when a `null` was dropped, as Kubernetes prunes nulls of non-nullable fields. */
  prunedNull: boolean;
}

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const EXPECTED: Readonly<Record<SchemaType, string>> = {
  object: 'an object',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean (true or false)',
};

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

interface CompiledRule {
  readonly message: string;
  readonly implementation: EnforcedCelRule;
}

/**
 * One schema node, compiled once: everything the walk needs (child validators, sibling names for
 * suggestions, ranges, CEL predicates) is computed here, so validating a document only walks the
 * document.
 */
export class CompiledSchema {
  readonly nullable: boolean;
  readonly #type: SchemaType | undefined;
  readonly #intOrString: boolean;
  readonly #enum: ReadonlySet<string | number> | undefined;
  readonly #enumList: readonly string[];
  readonly #minimum: number | undefined;
  readonly #maximum: number | undefined;
  readonly #minLength: number | undefined;
  readonly #maxLength: number | undefined;
  readonly #pattern: RegExp | undefined;
  readonly #byte: boolean;
  readonly #duration: boolean;
  readonly #re2: boolean;
  readonly #minItems: number | undefined;
  readonly #maxItems: number | undefined;
  readonly #minProperties: number | undefined;
  readonly #maxProperties: number | undefined;
  readonly #properties: ReadonlyMap<string, CompiledSchema> | undefined;
  readonly #propertyNames: readonly string[];
  readonly #required: readonly string[];
  readonly #additional: CompiledSchema | undefined;
  readonly #items: CompiledSchema | undefined;
  readonly #exclusive: readonly string[][];
  readonly #rules: readonly CompiledRule[];
  readonly #preserveUnknown: boolean;
  readonly #listMapKeys: readonly string[] | undefined;
  /** `x-kubernetes-list-type: set`: no value twice. */
  readonly #listSet: boolean;
  /** Properties with a schema default, filled in (as Kubernetes does) before CEL rules run. */
  readonly #defaults: ReadonlyArray<readonly [string, unknown]>;
  /** This node or one under it has a default, so CEL rules here need the defaulted value. */
  readonly hasDefaults: boolean;

  constructor(node: SchemaNode, where: string, compile: (node: SchemaNode, where: string) => CompiledSchema) {
    this.nullable = node.nullable === true;
    this.#type = node.type;
    this.#intOrString = node['x-kubernetes-int-or-string'] === true;
    this.#enumList = (node.enum ?? []).map(String);
    this.#enum = node.enum ? new Set(node.enum) : undefined;
    const int32 = node.format === 'int32';
    this.#minimum = node.minimum ?? (int32 ? INT32_MIN : undefined);
    this.#maximum = node.maximum ?? (int32 ? INT32_MAX : undefined);
    this.#minLength = node.minLength;
    this.#maxLength = node.maxLength;
    this.#pattern = node.pattern === undefined ? undefined : new RegExp(node.pattern, 'u');
    this.#byte = node.format === 'byte';
    this.#duration = node['x-sidecarless-duration'] === true;
    this.#re2 = node['x-sidecarless-re2'] === true;
    this.#minItems = node.minItems;
    this.#maxItems = node.maxItems;
    this.#minProperties = node.minProperties;
    this.#maxProperties = node.maxProperties;
    this.#preserveUnknown = node['x-kubernetes-preserve-unknown-fields'] === true;
    this.#listMapKeys = node['x-kubernetes-list-type'] === 'map' ? node['x-kubernetes-list-map-keys'] : undefined;
    this.#listSet = node['x-kubernetes-list-type'] === 'set';
    if (node.properties) {
      const properties = new Map<string, CompiledSchema>();
      for (const [name, child] of Object.entries(node.properties)) properties.set(name, compile(child, `${where}.${name}`));
      this.#properties = properties;
    }
    this.#propertyNames = Object.keys(node.properties ?? {});
    this.#required = node.required ?? [];
    this.#additional = node.additionalProperties ? compile(node.additionalProperties, `${where}{}`) : undefined;
    this.#items = node.items ? compile(node.items, `${where}[]`) : undefined;
    this.#exclusive = exclusiveGroups(node, where);
    this.#defaults = Object.entries(node.properties ?? {}).flatMap(([name, child]) => (child.default === undefined ? [] : [[name, child.default] as const]));
    this.hasDefaults = this.#defaults.length > 0 || [...(this.#properties?.values() ?? []), this.#items, this.#additional].some((c) => c?.hasDefaults === true);
    this.#rules = (node['x-kubernetes-validations'] ?? []).flatMap((rule): CompiledRule[] => {
      const implementation = CEL_RULES.get(rule.rule);
      if (!implementation) throw new Error(`${where}: CEL rule not implemented: ${rule.rule}`);
      return implementation.enforced ? [{ message: rule.message, implementation }] : [];
    });
  }

  /** Checks `value` (present, at ctx.path) and everything under it. */
  validate(value: unknown, ctx: WalkContext, support: SupportNode): void {
    if (value === null) {
      if (!this.nullable) ctx.error('type', `expected ${this.#expected()}, found null`);
      return;
    }
    if (this.#intOrString) {
      if (typeof value === 'string') return;
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        ctx.error('type', `expected an integer or a string, found ${describeTyped(value)}`);
        return;
      }
    }
    switch (this.#type) {
      case 'string':
        if (typeof value !== 'string') return this.#typeError(value, ctx);
        this.#checkString(value, ctx);
        break;
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value)) return this.#typeError(value, ctx);
        if (this.#enum && !this.#enum.has(value)) return ctx.error('enum', `expected one of ${this.#enumList.join(', ')}, found ${value}`);
        this.#checkRange(value, ctx);
        break;
      case 'number':
        if (typeof value !== 'number' || !Number.isFinite(value)) return this.#typeError(value, ctx);
        this.#checkRange(value, ctx);
        break;
      case 'boolean':
        if (typeof value !== 'boolean') return this.#typeError(value, ctx);
        break;
      case 'array':
        if (!Array.isArray(value)) return this.#typeError(value, ctx);
        this.#checkArray(value, ctx, support);
        break;
      case 'object':
        if (!isObject(value)) return this.#typeError(value, ctx);
        this.#checkObject(value, ctx, support);
        break;
      default:
        break;
    }
    const self = this.#rules.length > 0 && this.hasDefaults ? this.withDefaults(value) : value;
    for (const rule of this.#rules) {
      if (!rule.implementation.check(self)) {
        const found = rule.implementation.found?.(self) ?? (isObject(self) || Array.isArray(self) ? undefined : `found ${describeValue(self)}`);
        ctx.error('rule', found ? `${rule.message} (${found})` : rule.message, rule.implementation.field);
      }
    }
  }

  /** `value` with the schema's defaults filled in where a field is absent, as the API server stores it. */
  withDefaults(value: unknown): unknown {
    if (!this.hasDefaults) return value;
    if (Array.isArray(value)) {
      const items = this.#items;
      return items ? value.map((v) => items.withDefaults(v)) : value;
    }
    if (!isObject(value)) return value;
    const out: Obj = { ...value };
    for (const [name, v] of this.#defaults) if (out[name] === undefined || out[name] === null) out[name] = v;
    for (const [key, v] of Object.entries(out)) {
      const child = this.#properties?.get(key) ?? this.#additional;
      if (child?.hasDefaults) out[key] = child.withDefaults(v);
    }
    return out;
  }

  /** A copy of `value` without the nulls Kubernetes would have pruned. */
  prune(value: unknown): unknown {
    if (Array.isArray(value)) {
      const items = this.#items;
      return items ? value.map((v) => items.prune(v)) : value;
    }
    if (!isObject(value)) return value;
    const out: Obj = {};
    for (const [key, v] of Object.entries(value)) {
      const child = this.#properties?.get(key) ?? this.#additional;
      if (v === null && child && !child.nullable) continue;
      out[key] = child ? child.prune(v) : v;
    }
    return out;
  }

  #expected(): string {
    if (this.#intOrString) return 'an integer or a string';
    return this.#type ? EXPECTED[this.#type] : 'a value';
  }

  #typeError(value: unknown, ctx: WalkContext): void {
    ctx.error('type', `expected ${this.#expected()}, found ${describeTyped(value)}`);
  }

  #checkString(value: string, ctx: WalkContext): void {
    if (this.#enum && !this.#enum.has(value)) {
      ctx.error('enum', `expected one of ${this.#enumList.join(', ')}, found ${quoteText(value)}${suggestion(value, this.#enumList)}`);
      return;
    }
    if (this.#maxLength !== undefined && value.length > this.#maxLength) {
      ctx.error('range', `expected at most ${this.#maxLength} characters, found ${value.length}: ${quoteText(value)}`);
    }
    if (this.#minLength !== undefined && value.length < this.#minLength) {
      ctx.error('range', `expected at least ${this.#minLength} characters, found ${quoteText(value)}`);
    }
    if (this.#pattern && !this.#pattern.test(value)) {
      ctx.error('pattern', `expected ${describePattern(this.#pattern.source)}, found ${quoteText(value)}`);
    }
    if (this.#byte && !BASE64.test(value)) {
      ctx.error('format', `expected base64-encoded bytes, found ${quoteText(value)}`);
    }
    if (this.#duration && parseDuration(value) === undefined) {
      ctx.error('duration', `expected a duration such as "1.5s", "100ms" or "1h30m" (units h, m, s, ms, us, ns), found ${quoteText(value)}`);
    }
    // In a withoutHeaders match Istio reads `regex: "*"` as "the header is present", not as RE2.
    if (this.#re2 && !(value === '*' && ctx.path[ctx.path.length - 3] === 'withoutHeaders')) {
      const reason = re2SyntaxError(value);
      if (reason !== undefined) ctx.error('regex', `expected an RE2 regular expression, found ${quoteText(value)}: ${reason}`);
    }
  }

  #checkRange(value: number, ctx: WalkContext): void {
    const below = this.#minimum !== undefined && value < this.#minimum;
    const above = this.#maximum !== undefined && value > this.#maximum;
    if (!below && !above) return;
    const what = this.#type === 'integer' ? 'an integer' : 'a number';
    const range =
      this.#minimum !== undefined && this.#maximum !== undefined
        ? `from ${this.#minimum} to ${this.#maximum}`
        : this.#minimum !== undefined
          ? `of at least ${this.#minimum}`
          : `of at most ${this.#maximum}`;
    ctx.error('range', `expected ${what} ${range}, found ${value}`);
  }

  #checkArray(value: readonly unknown[], ctx: WalkContext, support: SupportNode): void {
    if (this.#maxItems !== undefined && value.length > this.#maxItems) {
      ctx.error('range', `expected at most ${this.#maxItems} ${plural(this.#maxItems, 'item')}, found ${value.length}`);
    }
    if (this.#minItems !== undefined && value.length < this.#minItems) {
      ctx.error('range', `expected at least ${this.#minItems} ${plural(this.#minItems, 'item')}, found ${value.length}`);
    }
    const items = this.#items;
    if (items) {
      for (let i = 0; i < value.length; i++) {
        ctx.path.push(i);
        items.validate(value[i], ctx, support);
        ctx.path.pop();
      }
    }
    if (this.#listMapKeys) this.#checkListMapKeys(value, this.#listMapKeys, ctx);
    if (this.#listSet) {
      value.forEach((item, i) => {
        if (value.findIndex((v) => JSON.stringify(v) === JSON.stringify(item)) !== i) {
          ctx.error('duplicate', `expected each value once (the list is a set), found ${describeValue(item)} again`, i);
        }
      });
    }
  }

  #checkListMapKeys(value: readonly unknown[], keys: readonly string[], ctx: WalkContext): void {
    const seen = new Set<string>();
    value.forEach((item, i) => {
      if (!isObject(item)) return;
      const id = JSON.stringify(keys.map((k) => item[k] ?? null));
      if (seen.has(id)) {
        const shown = keys.map((k) => `${k} ${describeValue(item[k] ?? null)}`).join(', ');
        ctx.error('duplicate', `expected each entry to have a distinct ${listNames(keys)}, found ${shown} again`, i);
      }
      seen.add(id);
    });
  }

  #checkObject(value: Obj, ctx: WalkContext, support: SupportNode): void {
    const properties = this.#properties;
    const additional = this.#additional;
    let count = 0;
    for (const key of Object.keys(value)) {
      const v = value[key];
      if (v === undefined) continue;
      count++;
      const child = properties?.get(key);
      if (child) {
        if (v === null && !child.nullable) {
          ctx.prunedNull = true;
          continue;
        }
        const childSupport = support.child(key);
        ctx.path.push(key);
        if (childSupport.warn) reportUnsupported(ctx, key, childSupport.support);
        if (childSupport.support.values) reportUnsupportedValues(ctx, key, v, childSupport.support);
        child.validate(v, ctx, childSupport);
        ctx.path.pop();
      } else if (additional) {
        if (v === null && !additional.nullable) {
          ctx.prunedNull = true;
          continue;
        }
        ctx.path.push(key);
        additional.validate(v, ctx, support);
        ctx.path.pop();
      } else if (properties && !this.#preserveUnknown) {
        const hint = suggestion(key, this.#propertyNames);
        const expected = hint === '' ? `; expected one of ${this.#propertyNames.join(', ')}` : hint;
        ctx.error('unknown-field', `unknown field '${key}'${expected}`, key);
      }
    }
    for (const name of this.#required) {
      if (this.#defaults.some(([d]) => d === name)) continue;
      const v = value[name];
      if (v === undefined || (v === null && !properties?.get(name)?.nullable)) {
        ctx.error('required', `missing required field '${name}'`, name);
      }
    }
    for (const group of this.#exclusive) {
      const set = group.filter((name) => value[name] !== undefined && value[name] !== null);
      if (set.length > 1) ctx.error('one-of', `only one of ${listNames(group, 'or')} may be set, found ${listNames(set)}`);
    }
    if (this.#maxProperties !== undefined && count > this.#maxProperties) {
      ctx.error('range', `expected at most ${this.#maxProperties} ${plural(this.#maxProperties, 'entry')}, found ${count}`);
    }
    if (this.#minProperties !== undefined && count < this.#minProperties) {
      ctx.error('range', `expected at least ${this.#minProperties} ${plural(this.#minProperties, 'entry')}, found ${count}`);
    }
  }
}

function plural(n: number, word: string): string {
  if (n === 1) return word;
  return word.endsWith('y') ? `${word.slice(0, -1)}ies` : `${word}s`;
}

function supportCode(status: FieldSupport['status']): string {
  return status === 'not-yet' ? 'not-implemented' : 'not-applicable';
}

function reportUnsupported(ctx: WalkContext, field: string, support: FieldSupport): void {
  const what =
    support.status === 'not-yet' ? `'${field}' is not implemented yet and has no effect` : `'${field}' does not apply to an in-process mesh and is ignored`;
  ctx.warning(supportCode(support.status), support.reason ? `${what}: ${support.reason}` : what);
}

function reportUnsupportedValues(ctx: WalkContext, field: string, value: unknown, support: FieldSupport): void {
  const rule = support.values;
  if (!rule) return;
  const check = (v: unknown, index?: number): void => {
    if (typeof v !== 'string' || rule.supported.includes(v)) return;
    const what =
      rule.otherwise === 'not-yet'
        ? `${quoteText(v)} in '${field}' is not implemented yet and has no effect`
        : `${quoteText(v)} in '${field}' does not apply to an in-process mesh and is ignored`;
    ctx.warning(supportCode(rule.otherwise), `${what}: ${rule.reason}`, index);
  };
  if (Array.isArray(value)) value.forEach((v, i) => check(v, i));
  else check(value);
}

const compiled = new WeakMap<SchemaNode, CompiledSchema>();

/**
 * Compiles a schema (once per node object: the generated schemas share nodes between versions and
 * between the places a type occurs, and so do the compiled validators).
 */
export function compileSchema(node: SchemaNode, where = 'spec'): CompiledSchema {
  let result = compiled.get(node);
  if (!result) {
    result = new CompiledSchema(node, where, compileSchema);
    compiled.set(node, result);
  }
  return result;
}
