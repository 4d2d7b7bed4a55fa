import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';

// `mesh.fetch` takes the global RequestInit (Node's own undici classes) and answers a Response:
// what the upstream receives must be what the caller gave, whichever undici made its parts.
let pods: Pods;
let mesh: Mesh;

/** What the pod received: content type and the body as text. */
interface Echo {
  readonly contentType: string;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  pods.behave = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const echo: Echo = { contentType: req.headers['content-type'] ?? '', body: Buffer.concat(chunks).toString('utf8'), headers: req.headers };
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-echo', 'yes');
      res.end(JSON.stringify(echo));
    });
    return true;
  };
  mesh = await meshFromYaml(reviewsServiceEntry(pods.port, ['127.0.0.2']), { namespace: 'shop', dns: false });
});

afterAll(async () => {
  await mesh?.close();
  await pods?.close();
});

describe('mesh.fetch with the global fetch types', () => {
  it('sends a global FormData as multipart, fields and files intact', async () => {
    const form = new FormData();
    form.set('user', 'jason');
    form.set('upload', new File(['file contents'], 'notes.txt', { type: 'text/plain' }));
    const init: RequestInit = { method: 'POST', body: form };
    const res: Response = await mesh.fetch(`http://reviews.shop:${pods.port}/upload`, init);
    expect(res.status).toBe(200);
    const echo = (await res.json()) as Echo;
    expect(echo.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(echo.body).not.toContain('[object FormData]');
    expect(echo.body).toMatch(/name="user"\r\n\r\njason\r\n/);
    expect(echo.body).toMatch(/name="upload"; filename="notes.txt"\r\nContent-Type: text\/plain\r\n\r\nfile contents\r\n/);
  });

  it('sends global Headers, URLSearchParams and Blob bodies as given', async () => {
    const headers = new Headers({ 'end-user': 'jason' });
    const form = await mesh.fetch(`http://reviews.shop:${pods.port}/`, { method: 'POST', headers, body: new URLSearchParams({ q: 'a b' }) });
    const formEcho = (await form.json()) as Echo;
    expect(formEcho.headers['end-user']).toBe('jason');
    expect(formEcho.contentType).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    expect(formEcho.body).toBe('q=a+b');

    const blob = await mesh.fetch(`http://reviews.shop:${pods.port}/`, { method: 'PUT', body: new Blob(['bytes'], { type: 'application/octet-stream' }) });
    expect(((await blob.json()) as Echo).body).toBe('bytes');
  });

  it('takes a global Request whose body is a FormData', async () => {
    const form = new FormData();
    form.set('user', 'jason');
    const res = await mesh.fetch(new Request(`http://reviews.shop:${pods.port}/`, { method: 'POST', body: form }));
    const echo = (await res.json()) as Echo;
    expect(echo.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(echo.body).toMatch(/name="user"\r\n\r\njason\r\n/);
  });

  it('answers with the Response API', async () => {
    const res = await mesh.fetch(new URL(`http://reviews.shop:${pods.port}/`));
    expect(res.ok).toBe(true);
    expect(res.headers.get('x-echo')).toBe('yes');
    expect(((await res.json()) as Echo).body).toBe('');
  });
});
