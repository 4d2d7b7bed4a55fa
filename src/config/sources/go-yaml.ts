import { Composer, Lexer, LineCounter, Parser, Schema, isAlias, isMap, isScalar, isSeq, visit } from 'yaml';
import type { Document, DocumentOptions, ParseOptions, ScalarTag, SchemaOptions } from 'yaml';

/**
 * YAML read as Kubernetes reads it. kubectl, the API server and istioctl turn YAML into JSON with
 * sigs.k8s.io/yaml, which parses with go-yaml v2: YAML 1.1 scalars as go-yaml resolves them
 * (`yes`/`no`/`on`/`off`/`y`/`n` are booleans, `0777` is octal, `1:2:3` and timestamps stay
 * strings) and go-yaml's plain scalars in flow collections (`[1.2.3.4, 001:db8::]` is two strings).
 * The `yaml` package parses the text; a lexeme filter and this schema make it read the same values.
 */

const INT = 'tag:yaml.org,2002:int';
const FLOAT = 'tag:yaml.org,2002:float';
const BOOL = 'tag:yaml.org,2002:bool';
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
/** go-yaml's yamlStyleFloat, tried on the text without underscores. */
const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
/** Integer literals as Go's strconv.ParseInt reads them with base 0 (sign, 0x, 0o, 0b, leading-0 octal). */
const GO_INT = /^([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|(0[0-7]*)|([1-9][0-9]*))$/;
const SPECIAL_FLOATS: ReadonlyMap<string, number> = new Map([
  ...['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'].map((s) => [s, Infinity] as const),
  ...['-.inf', '-.Inf', '-.INF'].map((s) => [s, -Infinity] as const),
  ...['.nan', '.NaN', '.NAN'].map((s) => [s, NaN] as const),
]);
const TRUE = /^(?:y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const FALSE = /^(?:n|N|no|No|NO|false|False|FALSE|off|Off|OFF)$/;

interface GoNumber {
  readonly kind: 'int' | 'float';
  readonly value: number;
}

function goInt(plain: string): bigint | undefined {
  const m = GO_INT.exec(plain);
  if (!m) return undefined;
  const [, sign, hex, oct, bin, leadingZero, dec] = m;
  const magnitude =
    hex !== undefined
      ? BigInt(`0x${hex}`)
      : oct !== undefined
        ? BigInt(`0o${oct}`)
        : bin !== undefined
          ? BigInt(`0b${bin}`)
          : leadingZero !== undefined
            ? BigInt(`0o${leadingZero.slice(1) || '0'}`)
            : BigInt(dec!);
  const value = sign === '-' ? -magnitude : magnitude;
  // ParseInt's int64, else ParseUint's uint64 (which takes no sign).
  if (value >= INT64_MIN && value <= INT64_MAX) return value;
  return sign === '' && value <= UINT64_MAX ? value : undefined;
}

/** go-yaml v2's resolve() for a plain scalar that starts like a number; undefined when it stays a string. */
export function resolveGoNumber(text: string): GoNumber | undefined {
  const special = SPECIAL_FLOATS.get(text);
  if (special !== undefined) return { kind: 'float', value: special };
  const first = text[0];
  if (first === '.') {
    // strconv.ParseFloat on the text as written.
    if (!/^\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?$/.test(text)) return undefined;
    const value = Number(text.replaceAll('_', ''));
    return Number.isFinite(value) ? { kind: 'float', value } : undefined;
  }
  if (first === undefined || !'+-0123456789'.includes(first)) return undefined;
  const plain = text.replaceAll('_', '');
  const int = goInt(plain);
  if (int !== undefined) return { kind: 'int', value: Number(int) };
  if (YAML_STYLE_FLOAT.test(plain)) {
    const value = Number(plain);
    // Out of range is an error for ParseFloat: the text stays a string.
    if (Number.isFinite(value)) return { kind: 'float', value };
  }
  return undefined;
}

/** A `test` that is go-yaml's resolver rather than a regular expression. */
class GoNumberTest extends RegExp {
  constructor(private readonly kind: GoNumber['kind']) {
    super('(?:)');
  }

  override test(text: string): boolean {
    return resolveGoNumber(text)?.kind === this.kind;
  }
}

function jsonNumber(text: string, onError: (message: string) => void): number | string {
  const n = resolveGoNumber(text);
  if (n === undefined) return text;
  if (!Number.isFinite(n.value)) {
    // go-yaml reads it; the conversion to JSON then fails, and Kubernetes refuses the file.
    onError(`${JSON.stringify(text)} is not a number JSON can carry (Kubernetes refuses it: json: unsupported value)`);
    return text;
  }
  return n.value;
}

/** An explicitly tagged scalar (`!!int "12"`) goes through the same resolver and must yield that type. */
function explicit(tag: string, short: string, resolve: (text: string) => unknown): ScalarTag {
  return {
    tag,
    resolve: (text, onError) => {
      const value = resolve(text);
      if (value === undefined) onError(`cannot decode !!str \`${text}\` as a !!${short}`);
      return value ?? text;
    },
  };
}

function goTags(defaults: readonly unknown[]): unknown[] {
  const collections = defaults.filter((t) => (t as { collection?: string }).collection !== undefined);
  const byName = (name: string) => defaults.find((t) => (t as { tag?: string }).tag === `tag:yaml.org,2002:${name}`);
  const bool: ScalarTag = {
    tag: BOOL,
    default: true,
    test: /^(?:y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON|n|N|no|No|NO|false|False|FALSE|off|Off|OFF)$/,
    resolve: (text) => TRUE.test(text),
  };
  const int: ScalarTag = { tag: INT, default: true, test: new GoNumberTest('int'), resolve: jsonNumber };
  const float: ScalarTag = { tag: FLOAT, default: true, test: new GoNumberTest('float'), resolve: jsonNumber };
  const binary: ScalarTag = {
    tag: 'tag:yaml.org,2002:binary',
    resolve: (text, onError) => {
      const compact = text.replace(/\s+/g, '');
      if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact)) onError('!!binary value contains invalid base64 data');
      // go-yaml hands the decoded bytes on as a string.
      return Buffer.from(compact, 'base64').toString('utf8');
    },
  };
  const timestamp: ScalarTag = {
    tag: 'tag:yaml.org,2002:timestamp',
    // Read into JSON, a timestamp stays the text it was written as.
    resolve: (text, onError) => {
      if (!/^\d{4}-\d{1,2}-\d{1,2}(?:[Tt ]\d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?)?$/.test(text)) {
        onError(`cannot decode !!str \`${text}\` as a !!timestamp`);
      }
      return text;
    },
  };
  return [
    ...collections,
    byName('str'),
    byName('null'),
    bool,
    int,
    float,
    explicit(BOOL, 'bool', (t) => (TRUE.test(t) ? true : FALSE.test(t) ? false : undefined)),
    explicit(INT, 'int', (t) => (resolveGoNumber(t)?.kind === 'int' ? resolveGoNumber(t)!.value : undefined)),
    explicit(FLOAT, 'float', (t) => resolveGoNumber(t)?.value),
    binary,
    timestamp,
  ];
}

/** Parse options shared by every reader: go-yaml's scalars, keys unique, `<<` merge keys. */
export const GO_YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  uniqueKeys: true,
  merge: true,
  prettyErrors: false,
  logLevel: 'error',
  schema: new Schema({ schema: 'core', merge: true, customTags: goTags as NonNullable<SchemaOptions['customTags']> }),
};

const SCALAR = '\x1f';
const FLOW_ENDS = new Set([',', ']', '}']);

/**
 * The `yaml` lexer ends a plain scalar in a flow collection at a `:` followed by `,`, `]` or `}`;
 * go-yaml ends it only at a `:` followed by a blank, so `[001:db8::]` holds the string
 * `001:db8::`. Joins such a `:` back into the scalar (and drops the empty value the lexer then
 * supplies); offsets are unchanged, so positions stay right.
 */
export function* goYamlLexemes(source: string): Generator<string> {
  const lexemes = [...new Lexer().lex(source)];
  let depth = 0;
  for (let i = 0; i < lexemes.length; i++) {
    const lexeme = lexemes[i]!;
    if (lexeme === SCALAR && i + 1 < lexemes.length) {
      let text = lexemes[i + 1]!;
      i++;
      if (depth > 0 && lexemes[i + 1] === ':') {
        let next = i + 2;
        if (lexemes[next] === SCALAR && lexemes[next + 1] === '') next += 2;
        if (FLOW_ENDS.has(lexemes[next] ?? '')) {
          text += ':';
          i = next - 1;
        }
      }
      yield SCALAR;
      yield text;
      continue;
    }
    if (lexeme === '[' || lexeme === '{') depth++;
    else if ((lexeme === ']' || lexeme === '}') && depth > 0) depth--;
    else if (lexeme === '---') depth = 0;
    yield lexeme;
  }
}

/** Every document of `text`, parsed as Kubernetes would read it. */
export function parseGoYamlDocuments(text: string): { docs: Document.Parsed[]; lineCounter: LineCounter } {
  const { docs, lineCounter } = streamGoYamlDocuments(text);
  return { docs: [...docs], lineCounter };
}

/**
 * {@link parseGoYamlDocuments} as a lazy sequence, one document at a time, so a file of thousands
 * of documents can be parsed in slices. `lineCounter` knows the lines up to the document last produced.
 */
export function streamGoYamlDocuments(text: string): { docs: Iterable<Document.Parsed>; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  const parser = new Parser(lineCounter.addNewLine);
  lineCounter.addNewLine(0);
  function* tokens() {
    for (const lexeme of goYamlLexemes(text)) yield* parser.next(lexeme);
    yield* parser.end();
  }
  return { docs: new Composer(GO_YAML_OPTIONS).compose(tokens()), lineCounter };
}

/** A problem go-yaml (or its conversion to JSON) has with a document the `yaml` package reads. */
export interface GoYamlProblem {
  readonly offset: number | undefined;
  readonly message: string;
}

const isMergeKey = (key: unknown): boolean => isScalar(key) && (key.value === '<<' || (typeof key.value === 'symbol' && key.value.description === '<<'));

/**
 * Mapping keys Kubernetes cannot turn into JSON (a list, a mapping or null as a key), and a `<<`
 * merge that would set a key already written before it: go-yaml lets the merge win, other YAML
 * readers the written key, so such a file means two different things and is refused.
 */
export function goYamlProblems(doc: Document.Parsed): GoYamlProblem[] {
  const problems: GoYamlProblem[] = [];
  visit(doc, {
    Map(_, map) {
      const written = new Set<string>();
      for (const pair of map.items) {
        const key = pair.key;
        const offset = (key as { range?: [number] } | null)?.range?.[0];
        if (isMergeKey(key)) {
          for (const name of mergedKeys(doc, pair.value, 0)) {
            if (written.has(name)) {
              problems.push({
                offset,
                message: `key ${JSON.stringify(name)} is written before a "<<" merge that sets it too; Kubernetes (go-yaml) takes the merged value, the YAML specification the written one: move the "<<" first`,
              });
            }
          }
          continue;
        }
        if (isAlias(key) || !isScalar(key)) {
          problems.push({ offset, message: 'a mapping key must be a string, a number or a boolean; Kubernetes cannot read a list or a mapping as a key' });
        } else if (key.value === null) {
          problems.push({ offset, message: 'a mapping key cannot be empty or null; Kubernetes cannot read it' });
        } else {
          written.add(String(key.value));
        }
      }
    },
  });
  return problems;
}

function mergedKeys(doc: Document.Parsed, value: unknown, depth: number): string[] {
  const source = isAlias(value) ? value.resolve(doc) : value;
  if (depth > 16) return [];
  if (isSeq(source)) return source.items.flatMap((item) => mergedKeys(doc, item, depth + 1));
  if (!isMap(source)) return [];
  return source.items.flatMap((pair) => (isMergeKey(pair.key) ? mergedKeys(doc, pair.value, depth + 1) : isScalar(pair.key) ? [String(pair.key.value)] : []));
}
