import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/sources/parse-config-text.js';

const VIRTUAL_SERVICE = `# reviews routing
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
`;

describe('parseConfigText: YAML', () => {
  it('reads every document of a multi-document file, skipping empty and comment-only ones', () => {
    const text = `# leading comment only
---
apiVersion: v1
kind: A
metadata: { name: one }
---
# nothing here
---
---
apiVersion: v1
kind: B
metadata: { name: two }
`;
    const { documents, issues } = parseConfigText(text, 'cfg/multi.yaml');
    expect(issues).toEqual([]);
    expect(documents.map((d) => d.value)).toEqual([
      { apiVersion: 'v1', kind: 'A', metadata: { name: 'one' } },
      { apiVersion: 'v1', kind: 'B', metadata: { name: 'two' } },
    ]);
    expect(documents.map((d) => d.location)).toEqual([
      { file: 'cfg/multi.yaml', line: 3, column: 1 },
      { file: 'cfg/multi.yaml', line: 10, column: 1 },
    ]);
  });

  it('locates fields by path, 1-based, and a missing field at its nearest ancestor', () => {
    const { documents } = parseConfigText(VIRTUAL_SERVICE, 'vs.yaml');
    const doc = documents[0];
    expect(doc?.locate).toBeDefined();
    // `subset: v1` is on line 14 of the text above.
    expect(doc?.locate?.(['spec', 'http', 0, 'route', 0, 'destination', 'subset'])).toEqual({ file: 'vs.yaml', line: 14, column: 9 });
    expect(doc?.locate?.(['spec', 'hosts', 0])).toEqual({ file: 'vs.yaml', line: 9, column: 5 });
    expect(doc?.locate?.(['metadata', 'name'])?.line).toBe(5);
    // Missing fields point at the parent that should hold them.
    expect(doc?.locate?.(['spec', 'http', 0, 'timeout'])).toEqual({ file: 'vs.yaml', line: 11, column: 5 });
    expect(doc?.locate?.(['spec', 'tcp', 0, 'route'])?.line).toBe(7);
    expect(doc?.locate?.(['spec', 'hosts', 5])?.line).toBe(8);
    expect(doc?.locate?.([])?.line).toBe(2);
  });

  it('locates within the right document of a multi-document file', () => {
    const text = `kind: A\nmetadata:\n  name: a\n---\nkind: B\nmetadata:\n  name: b\n  labels:\n    app: x\n`;
    const { documents } = parseConfigText(text, 'f.yaml');
    expect(documents[1]?.locate?.(['metadata', 'labels', 'app'])?.line).toBe(9);
    expect(documents[0]?.locate?.(['metadata', 'name'])?.line).toBe(3);
  });

  it('follows aliases and merge keys when locating', () => {
    const text = `kind: A\nbase: &base\n  timeout: 1s\nspec:\n  <<: *base\n  retries: 3\n`;
    const { documents, issues } = parseConfigText(text, 'f.yaml');
    expect(issues).toEqual([]);
    expect(documents[0]?.value).toEqual({ kind: 'A', base: { timeout: '1s' }, spec: { timeout: '1s', retries: 3 } });
    expect(documents[0]?.locate?.(['spec', 'timeout'])?.line).toBe(3);
    expect(documents[0]?.locate?.(['spec', 'retries'])?.line).toBe(6);
  });

  it('yields plain JSON data', () => {
    const text = `kind: A\nspec:\n  on: on\n  count: 010\n  date: 2026-01-02\n  empty:\n`;
    const { documents } = parseConfigText(text, 'f.yaml');
    // As Kubernetes reads YAML (go-yaml): `on` is a boolean (a key becomes "true"), 010 octal, dates stay strings.
    expect(documents[0]?.value).toEqual({ kind: 'A', spec: { true: true, count: 8, date: '2026-01-02', empty: null } });
    expect(Object.getPrototypeOf(documents[0]?.value)).toBe(Object.prototype);
  });

  it('ignores a byte-order mark', () => {
    const { documents, issues } = parseConfigText('\uFEFFkind: A\n', 'f.yaml');
    expect(issues).toEqual([]);
    expect(documents[0]?.value).toEqual({ kind: 'A' });
  });

  it('returns nothing for an empty file', () => {
    expect(parseConfigText('', 'f.yaml')).toEqual({ documents: [], issues: [] });
    expect(parseConfigText('# just a comment\n', 'f.yaml')).toEqual({ documents: [], issues: [] });
  });

  it('rejects a file with a syntax error whole, reporting line and column', () => {
    const text = `kind: A\nmetadata: { name: ok }\n---\nkind: B\nspec:\n  hosts: [a, b\n  http: []\n`;
    const { documents, issues } = parseConfigText(text, 'bad.yaml');
    expect(documents).toEqual([]);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ severity: 'error', code: 'parse', location: { file: 'bad.yaml', line: 7 } });
    expect(issues[0]?.message).toMatch(/^YAML syntax error: .*\]/);
    expect(issues[0]?.location?.column).toBeGreaterThan(0);
  });

  it('reports a bad indentation on its line', () => {
    const { issues } = parseConfigText('kind: A\nspec:\n  hosts:\n  - a\n bad: 1\n', 'f.yaml');
    expect(issues[0]).toMatchObject({ severity: 'error', code: 'parse', location: { line: 5 } });
  });

  it('reports tabs used for indentation', () => {
    const { issues } = parseConfigText('kind: A\nspec:\n\thosts: []\n', 'f.yaml');
    expect(issues[0]).toMatchObject({ severity: 'error', code: 'parse', location: { line: 3 } });
    expect(issues[0]?.message).toMatch(/tab/i);
  });

  it('reports a duplicate key as an error with its line', () => {
    const text = `kind: A\nmetadata:\n  name: a\nspec:\n  hosts: [a]\n  gateways: [g]\n  hosts: [b]\n`;
    const { documents, issues } = parseConfigText(text, 'dup.yaml');
    expect(documents).toEqual([]);
    expect(issues).toEqual([
      {
        severity: 'error',
        code: 'parse',
        message: 'duplicate key "hosts" (a key may appear only once in a mapping)',
        location: { file: 'dup.yaml', line: 7, column: 3 },
      },
    ]);
  });

  it('rejects a document that is not a mapping', () => {
    const list = parseConfigText('kind: A\n---\n- a\n- b\n', 'f.yaml');
    expect(list.documents).toEqual([]);
    expect(list.issues).toEqual([
      {
        severity: 'error',
        code: 'parse',
        message: 'expected a Kubernetes object (mapping with apiVersion, kind, metadata), found a list',
        location: { file: 'f.yaml', line: 3, column: 1 },
      },
    ]);
    const scalar = parseConfigText('just some text\n', 'f.yaml');
    expect(scalar.issues[0]?.message).toBe('expected a Kubernetes object (mapping with apiVersion, kind, metadata), found a string ("just some text")');
    expect(parseConfigText('42\n', 'f.yaml').issues[0]?.message).toMatch(/found a number \(42\)$/);
  });

  it('accepts ordinary anchors and aliases', () => {
    const text = `kind: A\nlabels: &l { app: x }\nspec:\n  selector: *l\n`;
    const { documents, issues } = parseConfigText(text, 'f.yaml');
    expect(issues).toEqual([]);
    expect(documents[0]?.value).toEqual({ kind: 'A', labels: { app: 'x' }, spec: { selector: { app: 'x' } } });
  });

  it('rejects an alias expansion bomb', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const { documents, issues } = parseConfigText(`kind: A\n${levels.join('\n')}\n`, 'bomb.yaml');
    expect(documents).toEqual([]);
    expect(issues[0]).toMatchObject({ severity: 'error', code: 'parse', location: { file: 'bomb.yaml', line: 1 } });
    expect(issues[0]?.message).toMatch(/alias/i);
  });

  it('reports an alias to an undefined anchor', () => {
    const { documents, issues } = parseConfigText('kind: A\nspec: *nowhere\n', 'f.yaml');
    expect(documents).toEqual([]);
    expect(issues[0]).toMatchObject({ severity: 'error', code: 'parse' });
  });

  it('turns YAML warnings (unknown tags) into warnings and keeps the document', () => {
    const { documents, issues } = parseConfigText('kind: A\nspec: !custom value\n', 'f.yaml');
    expect(documents).toHaveLength(1);
    expect(issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'parse', location: expect.objectContaining({ line: 2 }) })]);
  });
});

describe('parseConfigText: Kubernetes lists', () => {
  const LIST = `apiVersion: v1
kind: List
metadata: {}
items:
- apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata:
    name: a
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata:
    name: b
  spec:
    host: b
    subsets:
    - name: v1
`;

  it('expands kind: List into one document per item, each with its own location', () => {
    const { documents, issues } = parseConfigText(LIST, 'list.yaml');
    expect(issues).toEqual([]);
    expect(documents.map((d) => (d.value as { metadata: { name: string } }).metadata.name)).toEqual(['a', 'b']);
    expect(documents.map((d) => d.location)).toEqual([
      { file: 'list.yaml', line: 5, column: 3 },
      { file: 'list.yaml', line: 9, column: 3 },
    ]);
  });

  it('locates paths relative to the item', () => {
    const { documents } = parseConfigText(LIST, 'list.yaml');
    expect(documents[1]?.locate?.(['spec', 'subsets', 0, 'name'])?.line).toBe(16);
    expect(documents[0]?.locate?.(['metadata', 'name'])?.line).toBe(8);
    expect(documents[0]?.locate?.(['spec', 'hosts'])?.line).toBe(5);
  });

  it('expands typed lists and fills in the kind and apiVersion their items omit', () => {
    const text = `apiVersion: networking.istio.io/v1\nkind: VirtualServiceList\nitems:\n- metadata: { name: a }\n- kind: VirtualService\n  apiVersion: networking.istio.io/v1beta1\n  metadata: { name: b }\n`;
    const { documents, issues } = parseConfigText(text, 'l.yaml');
    expect(issues).toEqual([]);
    expect(documents.map((d) => d.value)).toEqual([
      { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'a' } },
      { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'b' } },
    ]);
  });

  it('treats an empty List as no documents, and a List item that is not a mapping as an error', () => {
    expect(parseConfigText('apiVersion: v1\nkind: List\nitems: []\n', 'l.yaml')).toEqual({ documents: [], issues: [] });
    const { documents, issues } = parseConfigText('apiVersion: v1\nkind: List\nitems:\n- kind: A\n- oops\n', 'l.yaml');
    expect(documents).toEqual([]);
    expect(issues[0]).toMatchObject({ severity: 'error', code: 'parse', location: { line: 5 } });
    expect(issues[0]?.message).toMatch(/^list item 1: expected a Kubernetes object/);
  });

  it('rejects a List whose items are not a list', () => {
    const { issues } = parseConfigText('apiVersion: v1\nkind: List\nitems: nope\n', 'l.yaml');
    expect(issues[0]).toMatchObject({ severity: 'error', code: 'parse', location: { line: 3 } });
  });

  it('leaves a kind that merely ends in List alone when it has no items', () => {
    const { documents } = parseConfigText('apiVersion: x/v1\nkind: AllowList\nspec: {}\n', 'l.yaml');
    expect(documents.map((d) => d.value)).toEqual([{ apiVersion: 'x/v1', kind: 'AllowList', spec: {} }]);
  });
});

describe('parseConfigText: JSON', () => {
  const JSON_TEXT = `{
  "apiVersion": "networking.istio.io/v1",
  "kind": "DestinationRule",
  "metadata": { "name": "reviews" },
  "spec": {
    "host": "reviews",
    "subsets": [
      { "name": "v1", "labels": { "version": "v1" } }
    ]
  }
}
`;

  it('reads a JSON file and locates its fields', () => {
    const { documents, issues } = parseConfigText(JSON_TEXT, 'dr.json');
    expect(issues).toEqual([]);
    expect(documents).toHaveLength(1);
    expect(documents[0]?.value).toEqual(JSON.parse(JSON_TEXT));
    expect(documents[0]?.location).toEqual({ file: 'dr.json', line: 1, column: 1 });
    expect(documents[0]?.locate?.(['spec', 'subsets', 0, 'labels', 'version'])).toEqual({ file: 'dr.json', line: 8, column: 35 });
    expect(documents[0]?.locate?.(['spec', 'trafficPolicy'])?.line).toBe(5);
  });

  it('reports a missing value with line and column', () => {
    const { documents, issues } = parseConfigText('{\n  "kind": "A",\n  "spec": }\n', 'f.json');
    expect(documents).toEqual([]);
    expect(issues).toEqual([
      { severity: 'error', code: 'parse', message: "JSON syntax error: expected a value, found '}'", location: { file: 'f.json', line: 3, column: 11 } },
    ]);
  });

  it('reports a trailing comma and a missing comma', () => {
    expect(parseConfigText('{\n  "a": 1,\n}\n', 'f.json').issues[0]).toMatchObject({
      message: "JSON syntax error: trailing comma before '}'",
      location: { line: 3, column: 1 },
    });
    expect(parseConfigText('{\n  "a": 1\n  "b": 2\n}\n', 'f.json').issues[0]).toMatchObject({
      message: "JSON syntax error: expected ',' or '}' after a property value, found '\"'",
      location: { line: 3, column: 3 },
    });
  });

  it('reports a duplicate key in JSON', () => {
    const { documents, issues } = parseConfigText('{\n  "kind": "A",\n  "kind": "B"\n}\n', 'f.json');
    expect(documents).toEqual([]);
    expect(issues).toEqual([
      expect.objectContaining({
        severity: 'error',
        code: 'parse',
        message: expect.stringContaining('duplicate key "kind"'),
        location: { file: 'f.json', line: 3, column: 3 },
      }),
    ]);
  });

  it('expands a JSON List', () => {
    const text = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ kind: 'A' }, { kind: 'B' }] }, null, 2);
    const { documents } = parseConfigText(text, 'l.json');
    expect(documents.map((d) => d.value)).toEqual([{ kind: 'A' }, { kind: 'B' }]);
    expect(documents.map((d) => d.location.line)).toEqual([5, 8]);
  });

  it('rejects a JSON value that is not an object', () => {
    expect(parseConfigText('[1, 2]', 'f.json').issues[0]?.message).toMatch(/found a list$/);
  });

  it('treats an empty JSON file as no documents', () => {
    expect(parseConfigText('  \n', 'f.json')).toEqual({ documents: [], issues: [] });
  });
});
