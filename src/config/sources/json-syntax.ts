/**
 * Finds where JSON text stops being valid and says why in plain words. Runs only after JSON.parse
 * has failed: V8's messages sometimes carry no position at all (`Unexpected token '}', "..." is not
 * valid JSON`), and a line number is what the user needs.
 */

export interface JsonSyntaxError {
  /** Offset in the text of the offending character. */
  readonly offset: number;
  readonly message: string;
}

class JsonScanError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const HEX = /^[0-9a-fA-F]{4}$/;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Returns the first syntax error, or undefined when the text is valid JSON (or too deep to scan). */
export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  const scanner = new JsonScanner(text);
  try {
    scanner.document();
    return undefined;
  } catch (error) {
    if (error instanceof JsonScanError) return { offset: error.offset, message: error.message };
    // Nesting deep enough to overflow the stack: let the caller fall back to V8's message.
    return undefined;
  }
}

function describeChar(ch: string | undefined): string {
  if (ch === undefined) return 'the end of the file';
  if (ch === '\n' || ch === '\r') return 'the end of the line';
  return `'${ch}'`;
}

class JsonScanner {
  private pos = 0;

  constructor(private readonly text: string) {}

  document(): void {
    this.skipSpace();
    this.value();
    this.skipSpace();
    if (this.pos < this.text.length) {
      this.fail('unexpected content after the JSON value (a JSON file holds one value; use a List or YAML --- to hold several)');
    }
  }

  private value(): void {
    const ch = this.text[this.pos];
    if (ch === '{') this.object();
    else if (ch === '[') this.array();
    else if (ch === '"') this.string();
    else if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) this.number();
    else if (!this.literal('true') && !this.literal('false') && !this.literal('null')) {
      this.fail(`expected a value, found ${describeChar(ch)}${ch === "'" ? ' (JSON strings use double quotes)' : ''}`);
    }
  }

  private object(): void {
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    for (;;) {
      const ch = this.text[this.pos];
      if (ch === '}') this.fail("trailing comma before '}'");
      if (ch !== '"') this.fail(`expected a property name in double quotes, found ${describeChar(ch)}`);
      this.string();
      this.skipSpace();
      if (this.text[this.pos] !== ':') this.fail(`expected ':' after the property name, found ${describeChar(this.text[this.pos])}`);
      this.pos++;
      this.skipSpace();
      this.value();
      this.skipSpace();
      const next = this.text[this.pos];
      if (next === '}') {
        this.pos++;
        return;
      }
      if (next !== ',') this.fail(`expected ',' or '}' after a property value, found ${describeChar(next)}`);
      this.pos++;
      this.skipSpace();
    }
  }

  private array(): void {
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (;;) {
      if (this.text[this.pos] === ']') this.fail("trailing comma before ']'");
      this.value();
      this.skipSpace();
      const next = this.text[this.pos];
      if (next === ']') {
        this.pos++;
        return;
      }
      if (next !== ',') this.fail(`expected ',' or ']' after a list element, found ${describeChar(next)}`);
      this.pos++;
      this.skipSpace();
    }
  }

  private string(): void {
    const start = this.pos;
    this.pos++;
    for (;;) {
      const ch = this.text[this.pos];
      if (ch === undefined) this.fail('unterminated string', start);
      if (ch === '"') {
        this.pos++;
        return;
      }
      if (ch < ' ') this.fail(ch === '\n' ? 'unterminated string (line break inside a string)' : 'control character inside a string');
      if (ch === '\\') {
        const esc = this.text[this.pos + 1];
        if (esc === 'u') {
          if (!HEX.test(this.text.slice(this.pos + 2, this.pos + 6))) this.fail('invalid \\u escape (needs 4 hex digits)');
          this.pos += 6;
          continue;
        }
        if (esc === undefined || !ESCAPES.has(esc)) this.fail(`invalid escape sequence '\\${esc ?? ''}'`);
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
  }

  private number(): void {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (!match || match[0] === '-') this.fail('invalid number');
    const end = this.pos + match[0].length;
    const after = this.text[end];
    if (after !== undefined && /[0-9A-Za-z.+-]/.test(after)) this.fail('invalid number', this.pos);
    this.pos = end;
  }

  private literal(word: string): boolean {
    if (!this.text.startsWith(word, this.pos)) return false;
    this.pos += word.length;
    return true;
  }

  private skipSpace(): void {
    for (;;) {
      const ch = this.text[this.pos];
      if (ch !== ' ' && ch !== '\t' && ch !== '\n' && ch !== '\r') return;
      this.pos++;
    }
  }

  private fail(message: string, offset = this.pos): never {
    throw new JsonScanError(offset, message);
  }
}
