import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/sources/parse-config-text.js';
import { validateDocument } from '../../../src/config/validate/index.js';

/** The value of `a` in a one-line document, as the file source reads it. */
function valueOf(yaml: string): unknown {
  const { documents, issues } = parseConfigText(`a: ${yaml}\n`, 'f.yaml');
  expect(
    issues.filter((i) => i.severity === 'error'),
    yaml,
  ).toEqual([]);
  return (documents[0]?.value as { a: unknown }).a;
}

function errorOf(text: string): string {
  const { documents, issues } = parseConfigText(text, 'f.yaml');
  expect(documents).toEqual([]);
  return issues.map((i) => `${i.location?.line}: ${i.message}`).join('\n');
}

/**
 * kubectl, the API server and istioctl read YAML with sigs.k8s.io/yaml, which parses it with go-yaml
 * v2 and turns it into JSON. Each expectation here is what go-yaml v2.4's resolver (resolve.go)
 * and scanner yield for the text, not what YAML 1.2 says.
 */
describe('YAML scalars as Kubernetes reads them', () => {
  it.each([
    // YAML 1.1 booleans, in go-yaml's spellings.
    ['yes', true],
    ['Yes', true],
    ['YES', true],
    ['y', true],
    ['Y', true],
    ['on', true],
    ['On', true],
    ['ON', true],
    ['true', true],
    ['True', true],
    ['no', false],
    ['n', false],
    ['N', false],
    ['off', false],
    ['OFF', false],
    ['false', false],
    ['FALSE', false],
    // Not booleans in go-yaml.
    ['yES', 'yES'],
    ['oN', 'oN'],
    ['tRUE', 'tRUE'],
    // Null.
    ['~', null],
    ['null', null],
    ['Null', null],
    ['NULL', null],
    ['', null],
    ['nULL', 'nULL'],
    // Integers as Go's strconv.ParseInt (base 0) reads them once underscores are dropped.
    ['0777', 511],
    ['010', 8],
    ['0o17', 15],
    ['0x1F', 31],
    ['-0x10', -16],
    ['0b101', 5],
    ['+12', 12],
    ['1_000', 1000],
    ['0', 0],
    ['00', 0],
    // `08` is no octal number; go-yaml then reads it as the float 8.
    ['08', 8],
    ['09.5', 9.5],
    // Floats: yamlStyleFloat, then strconv.ParseFloat.
    ['1e3', 1000],
    ['1.5e3', 1500],
    ['.5', 0.5],
    ['1.', 1],
    ['685_230.15', 685230.15],
    ['-.5', -0.5],
    // Strings: no sexagesimal numbers, no timestamps (into JSON they stay text), out-of-range floats.
    ['1:2:3', '1:2:3'],
    ['12:30', '12:30'],
    ['190:20:30.15', '190:20:30.15'],
    ['2001-12-14', '2001-12-14'],
    ['2001-12-14T21:59:43.10-05:00', '2001-12-14T21:59:43.10-05:00'],
    ['1e400', '1e400'],
    ['0xZZ', '0xZZ'],
    ['1e', '1e'],
    ['+', '+'],
    // Quoted and tagged scalars.
    ['"yes"', 'yes'],
    ["'0777'", '0777'],
    ['!!str 12', '12'],
    ['!!int "12"', 12],
    ['!!float 1', 1],
    ['!!bool yes', true],
    ['!!binary aGVsbG8=', 'hello'],
    ['!!timestamp 2001-12-14', '2001-12-14'],
  ] as const)('%s', (yaml, expected) => expect(valueOf(yaml)).toEqual(expected));

  it('keeps a colon inside a plain scalar of a flow collection, as go-yaml does', () => {
    expect(valueOf('[1.2.3.4, 001:db8::]')).toEqual(['1.2.3.4', '001:db8::']);
    expect(valueOf('[x:, "y":]')).toEqual(['x:', { y: null }]);
    expect(valueOf('{c:, d: 1}')).toEqual({ 'c:': null, d: 1 });
    expect(valueOf('[a:b, a::b::]')).toEqual(['a:b', 'a::b::']);
    // A colon followed by a blank is still a key.
    expect(valueOf('[a: b]')).toEqual([{ a: 'b' }]);
  });

  it('turns keys into JSON strings as sigs.k8s.io/yaml does', () => {
    expect(valueOf('{80: http, 0x10: hex, on: bool, 1.5: float}')).toEqual({ 80: 'http', 16: 'hex', true: 'bool', '1.5': 'float' });
    // `on` and `y` are both the key true: a duplicate.
    expect(errorOf('a: {on: 1, y: 2}\n')).toContain('duplicate key "true"');
  });

  it('refuses what Kubernetes cannot turn into JSON', () => {
    expect(errorOf('a: .inf\n')).toBe('1: YAML: ".inf" is not a number JSON can carry (Kubernetes refuses it: json: unsupported value)');
    expect(errorOf('a: [-.Inf]\n')).toContain('"-.Inf" is not a number JSON can carry');
    expect(errorOf('a: .nan\n')).toContain('".nan" is not a number JSON can carry');
    expect(errorOf('a: !!int abc\n')).toBe('1: YAML: cannot decode !!str `abc` as a !!int');
    expect(errorOf('a: !!binary "%%%"\n')).toContain('!!binary value contains invalid base64 data');
    expect(errorOf('a:\n  ? [x]\n  : 1\n')).toBe(
      '2: a mapping key must be a string, a number or a boolean; Kubernetes cannot read a list or a mapping as a key',
    );
    expect(errorOf('a:\n  ~: 1\n')).toBe('2: a mapping key cannot be empty or null; Kubernetes cannot read it');
  });

  it('refuses duplicate keys, as istioctl validate does (kubectl would keep the last one)', () => {
    expect(errorOf('a: 1\nb: 2\na: 3\n')).toBe('3: duplicate key "a" (a key may appear only once in a mapping)');
  });

  it('reads merge keys, and refuses a merge that would override a key written before it', () => {
    const base = 'base: &base {timeout: 1s, retries: 2}\n';
    const { documents } = parseConfigText(`${base}route:\n  <<: *base\n  timeout: 5s\n`, 'f.yaml');
    expect((documents[0]?.value as { route: unknown }).route).toEqual({ timeout: '5s', retries: 2 });
    // go-yaml lets the merge win here, YAML 1.2 readers the written key: two meanings, refused.
    expect(errorOf(`${base}route:\n  timeout: 5s\n  <<: *base\n`)).toBe(
      '4: key "timeout" is written before a "<<" merge that sets it too; Kubernetes (go-yaml) takes the merged value, the YAML specification the written one: move the "<<" first',
    );
  });

  it("accepts Istio's own ServiceEntry test file that a YAML 1.2 reader rejects", () => {
    const text = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: full
  namespace: default
spec:
  hosts: ["example.com"]
  workloadSelector:
    labels:
      foo: bar
  addresses: [1.2.3.4, 001:db8::]
  exportTo: [foo, .]
  location: MESH_EXTERNAL
  ports:
    - name: foo
      protocol: HTTP
      number: 1234
      targetPort: 2345
  subjectAltNames: [sa]
  resolution: DNS
`;
    const { documents, issues } = parseConfigText(text, 'serviceentry-valid.yaml');
    expect(issues).toEqual([]);
    const result = validateDocument(documents[0]!, { defaultNamespace: 'default' });
    expect(result.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect((result.resource?.spec as { addresses: string[] }).addresses).toEqual(['1.2.3.4', '001:db8::']);
  });

  it('locates fields of a go-yaml-only document', () => {
    const { documents } = parseConfigText('a: 1\nb: [x:, 001:db8::]\nc: yes\n', 'f.yaml');
    expect(documents[0]?.locate?.(['b', 1])).toMatchObject({ line: 2, column: 9 });
    expect(documents[0]?.locate?.(['c'])).toMatchObject({ line: 3, column: 1 });
  });
});
