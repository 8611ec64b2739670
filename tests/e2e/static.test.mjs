// The static web UI: files, immutable hashed assets, SPA fallback, JSON 404s
// for API paths and missing files, path traversal, and the built-in page
// when there is no UI.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertError } from './lib/checks.mjs';
import { rawConnect, rawRequest } from './lib/raw.mjs';
import { cleanup, startServer, tempDir } from './lib/server.mjs';

after(cleanup);

const INDEX = '<!doctype html><html><head><title>Loci app</title></head><body><div id="app">e2e-index-7c1f</div></body></html>\n';
const APP_JS = 'console.log("e2e-app-js-93ab");\n';
const SECRET = 'e2e-secret-outside-webdir-5d2e';

let srv;
let root;
before(async () => {
  root = tempDir('loci-static-');
  const web = join(root, 'web');
  mkdirSync(join(web, 'assets'), { recursive: true });
  writeFileSync(join(web, 'index.html'), INDEX);
  writeFileSync(join(web, 'assets', 'app-abc123.js'), APP_JS);
  writeFileSync(join(web, 'robots.txt'), 'User-agent: *\n');
  writeFileSync(join(web, '.env'), `TOKEN=${SECRET}\n`);
  writeFileSync(join(root, 'secret.txt'), `${SECRET}\n`);
  srv = await startServer({ webDir: web });
});

describe('static UI from --web-dir', () => {
  test('GET / is index.html as text/html, revalidated (not immutable)', async () => {
    const res = await fetch(`${srv.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.equal(await res.text(), INDEX);
    assert.doesNotMatch(res.headers.get('cache-control') || '', /immutable/, 'index.html must not be cached forever');
  });

  test('a hashed asset is text/javascript with an immutable Cache-Control', async () => {
    const res = await fetch(`${srv.url}/assets/app-abc123.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/javascript/);
    assert.match(res.headers.get('cache-control') || '', /immutable/);
    assert.match(res.headers.get('cache-control') || '', /max-age=\d+/);
    assert.equal(await res.text(), APP_JS);
  });

  test('a non-asset file is served with its own type and no immutable caching', async () => {
    const res = await fetch(`${srv.url}/robots.txt`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain/);
    assert.doesNotMatch(res.headers.get('cache-control') || '', /immutable/);
    await res.arrayBuffer();
  });

  test('HEAD on a static file is 200 with no body (the next request on the connection is intact)', async () => {
    const c = await rawConnect(srv.url);
    try {
      await c.write('HEAD /assets/app-abc123.js HTTP/1.1\r\nHost: t\r\n\r\nGET /assets/app-abc123.js HTTP/1.1\r\nHost: t\r\n\r\n');
      const head = await c.response({ head: true });
      assert.equal(head.status, 200);
      assert.match(head.headers['content-type'] || '', /^text\/javascript/);
      const get = await c.response();
      assert.equal(get.status, 200);
      assert.equal(get.text, APP_JS);
    } finally {
      c.destroy();
    }
  });

  test('an app route without an extension falls back to index.html (SPA)', async () => {
    for (const path of ['/some/app/route', '/graph', '/nodes/0190abcd-1234']) {
      const res = await fetch(`${srv.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type'), /^text\/html/, path);
      assert.equal(await res.text(), INDEX, path);
    }
  });

  test('a missing file with an extension is a JSON 404, not index.html', async () => {
    for (const path of ['/missing.js', '/assets/app-000000.js', '/favicon.ico']) {
      const res = await fetch(`${srv.url}${path}`);
      assert.equal(res.status, 404, path);
      assertError(res.headers, await res.json(), 'not_found', path);
    }
  });

  test('unknown /api/ paths are JSON 404s, never index.html', async () => {
    for (const path of ['/api/v1/unknown', '/api/v1/', '/api/whatever/deep/path', '/api/v1/unknown.html']) {
      const res = await fetch(`${srv.url}${path}`);
      const text = await res.text();
      assert.ok(!text.includes('e2e-index-7c1f'), `${path} served index.html`);
      assert.equal(res.status, 404, path);
      assertError(res.headers, JSON.parse(text), 'not_found', path);
    }
  });

  test('unknown paths under /health are not swallowed by the SPA fallback', async () => {
    for (const path of ['/health/nope', '/health/detailed/x']) {
      const res = await fetch(`${srv.url}${path}`);
      const text = await res.text();
      assert.equal(res.status, 404, path);
      assert.ok(!text.includes('e2e-index-7c1f'), `${path} served index.html`);
    }
  });

  test('a POST to an app route is 404 JSON, not index.html', async () => {
    const res = await fetch(`${srv.url}/some/app/route`, { method: 'POST' });
    assert.equal(res.status, 404);
    assertError(res.headers, await res.json(), 'not_found', 'POST /some/app/route');
  });

  test('hidden files in the web dir are not served', async () => {
    const r = await rawRequest(srv.url, 'GET /.env HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.notEqual(r.status, 200);
    assert.ok(!r.text.includes(SECRET), 'the hidden file leaked');
  });

  const traversals = [
    '/../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/assets/../../secret.txt',
    '/assets/%2e%2e/%2e%2e/secret.txt',
    '/..%2fsecret.txt',
    '/%2e%2e%2fsecret.txt',
    '/assets/..%2f..%2fsecret.txt',
    '/..\\secret.txt',
    '/%2e%2e%5csecret.txt',
    '/.%2e/.%2e/etc/passwd',
    '/%252e%252e/secret.txt',
  ];
  for (const path of traversals) {
    test(`path traversal ${path} never returns a file outside the web dir`, async () => {
      const r = await rawRequest(srv.url, `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`);
      assert.ok(!r.text.includes(SECRET), `${path} returned the secret file`);
      assert.ok(!/root:.*:0:0:/.test(r.text), `${path} returned /etc/passwd`);
      assert.ok(r.status >= 400 || r.text === INDEX, `${path}: status ${r.status} with ${JSON.stringify(r.text.slice(0, 200))}`);
    });
  }
});

describe('no web UI', () => {
  for (const [what, makeDir] of [
    ["--web-dir ''", () => ''],
    ['a web dir without index.html', () => tempDir('loci-noindex-')],
  ]) {
    test(`with ${what}, GET / is a small page saying "Loci is running" with a link to /health`, async () => {
      const s = await startServer({ webDir: makeDir() });
      const res = await fetch(`${s.url}/`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^text\/html/);
      const html = await res.text();
      assert.match(html, /Loci is running/);
      assert.match(html, /href="\/health"/);
      assert.ok(html.length < 4096, 'small');
      const api = await fetch(`${s.url}/api/v1/unknown`);
      assert.equal(api.status, 404);
      assertError(api.headers, await api.json(), 'not_found', 'no UI: /api/v1/unknown');
    });
  }
});
