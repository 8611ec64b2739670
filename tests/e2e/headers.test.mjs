// Security headers on every kind of response, HSTS with TLS, and CORS.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { assertError, assertSecurityHeaders } from './lib/checks.mjs';
import { rawRequest } from './lib/raw.mjs';
import { cleanup, run, startServer, tempDir } from './lib/server.mjs';

after(cleanup);

function webDir() {
  const d = tempDir('loci-web-');
  writeFileSync(join(d, 'index.html'), '<!doctype html><title>app</title><div id="app"></div>\n');
  mkdirSync(join(d, 'assets'));
  writeFileSync(join(d, 'assets', 'app-abc123.js'), 'console.log("app");\n');
  return d;
}

/** GET over HTTPS, accepting the self-signed certificate. */
function httpsGet(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'GET', headers, rejectUnauthorized: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('security headers', () => {
  test('200, 404, 405, 413, preflight and static responses all carry them; no HSTS without TLS', async () => {
    const srv = await startServer({ webDir: webDir(), args: ['--max-body-bytes', '1024'] });
    const cases = [
      ['GET /health', `${srv.url}/health`, {}, 200],
      ['GET /api/v1/nope', `${srv.url}/api/v1/nope`, {}, 404],
      ['POST /health', `${srv.url}/health`, { method: 'POST' }, 405],
      ['OPTIONS /health', `${srv.url}/health`, { method: 'OPTIONS' }, 204],
      ['GET / (static index.html)', `${srv.url}/`, {}, 200],
      ['GET /assets/app-abc123.js (static)', `${srv.url}/assets/app-abc123.js`, {}, 200],
      ['GET /missing.js (static 404)', `${srv.url}/missing.js`, {}, 404],
      ['GET /metrics', `${srv.url}/metrics`, {}, 200],
    ];
    for (const [what, url, init, status] of cases) {
      const res = await fetch(url, init);
      await res.arrayBuffer();
      assert.equal(res.status, status, what);
      assertSecurityHeaders(res.headers, { tls: false }, what);
    }
    // 413 answered before the body: only a raw socket can send the headers alone.
    const r = await rawRequest(srv.url, 'POST /health HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n');
    assert.equal(r.status, 413);
    assertSecurityHeaders(r.headers, { tls: false }, '413');
  });

  test('API responses are not cacheable (Cache-Control: no-store)', async () => {
    const srv = await startServer();
    for (const path of ['/health', '/api/v1/version', '/api/v1/nope']) {
      const res = await fetch(`${srv.url}${path}`);
      await res.arrayBuffer();
      assert.match(res.headers.get('cache-control') || '', /no-store/, path);
    }
  });

  test('with --tls-cert/--tls-key the server speaks HTTPS and sends HSTS on every response', async () => {
    const dir = tempDir('loci-tls-');
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const gen = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert]);
    assert.equal(gen.code, 0, `openssl: ${gen.stderr}`);
    const srv = await startServer({ args: ['--tls-cert', cert, '--tls-key', key] });
    assert.match(srv.url, /^https:\/\//, 'the listening url says https');

    const ok = await httpsGet(`${srv.url}/health`);
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.text), { status: 'ok' });
    assertSecurityHeaders(ok.headers, { tls: true }, 'TLS 200');

    const nf = await httpsGet(`${srv.url}/api/v1/nope`);
    assert.equal(nf.status, 404);
    assertSecurityHeaders(nf.headers, { tls: true }, 'TLS 404');
    assertError(nf.headers, JSON.parse(nf.text), 'not_found', 'TLS 404');

    // Plain HTTP on the TLS port gets no HTTP answer.
    const plain = await fetch(`${srv.url.replace('https:', 'http:')}/health`).then(
      (r) => r.status,
      () => 'refused',
    );
    assert.equal(plain, 'refused', 'plain HTTP on the TLS port must not be answered');
  });
});

describe('CORS', () => {
  const APP = 'https://app.example.com';

  test('an allowed origin gets Allow-Origin (exactly that origin) and Allow-Credentials', async () => {
    const srv = await startServer({ args: ['--cors-origins', APP] });
    const res = await fetch(`${srv.url}/health`, { headers: { Origin: APP } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    assert.match(res.headers.get('vary') || '', /Origin/i, 'Vary: Origin so caches keep origins apart');

    // Errors are readable cross-origin too.
    const nf = await fetch(`${srv.url}/api/v1/nope`, { headers: { Origin: APP } });
    await nf.arrayBuffer();
    assert.equal(nf.status, 404);
    assert.equal(nf.headers.get('access-control-allow-origin'), APP);
  });

  test('a preflight from an allowed origin gets Allow-Methods (and Allow-Headers)', async () => {
    const srv = await startServer({ args: ['--cors-origins', `${APP}, https://other.example.com`] });
    const res = await fetch(`${srv.url}/health`, {
      method: 'OPTIONS',
      headers: { Origin: APP, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-request-id' },
    });
    assert.ok(res.status === 204 || res.status === 200, `preflight status ${res.status}`);
    await res.arrayBuffer();
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    const methods = (res.headers.get('access-control-allow-methods') || '').split(',').map((s) => s.trim());
    assert.ok(methods.includes('GET'), `Allow-Methods lists GET: ${res.headers.get('access-control-allow-methods')}`);
    assert.ok(!methods.includes('POST'), `Allow-Methods does not list POST for /health: ${res.headers.get('access-control-allow-methods')}`);
    assert.match(res.headers.get('access-control-allow-headers') || '', /x-request-id/i);

    // The second origin of the list is allowed as well.
    const other = await fetch(`${srv.url}/health`, { headers: { Origin: 'https://other.example.com' } });
    await other.arrayBuffer();
    assert.equal(other.headers.get('access-control-allow-origin'), 'https://other.example.com');
  });

  test('an origin not on the list gets no CORS headers, on requests and preflights', async () => {
    const srv = await startServer({ args: ['--cors-origins', APP] });
    const origins = ['https://evil.example', 'http://app.example.com', 'https://app.example.com.evil.example', 'https://app.example.com:8443', 'null'];
    for (const origin of origins) {
      const res = await fetch(`${srv.url}/health`, { headers: { Origin: origin } });
      await res.arrayBuffer();
      assert.equal(res.status, 200, origin);
      assert.equal(res.headers.get('access-control-allow-origin'), null, `no Allow-Origin for ${origin}`);
      assert.equal(res.headers.get('access-control-allow-credentials'), null, `no Allow-Credentials for ${origin}`);
      const pre = await fetch(`${srv.url}/health`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'GET' } });
      await pre.arrayBuffer();
      assert.equal(pre.headers.get('access-control-allow-origin'), null, `no preflight Allow-Origin for ${origin}`);
      assert.equal(pre.headers.get('access-control-allow-methods'), null, `no preflight Allow-Methods for ${origin}`);
    }
  });

  test('with the default (empty) allowlist no origin gets CORS headers', async () => {
    const srv = await startServer();
    for (const origin of [APP, 'https://evil.example', `http://127.0.0.1:${srv.port}`]) {
      const res = await fetch(`${srv.url}/health`, { headers: { Origin: origin } });
      await res.arrayBuffer();
      assert.equal(res.headers.get('access-control-allow-origin'), null, origin);
      const pre = await fetch(`${srv.url}/health`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'GET' } });
      await pre.arrayBuffer();
      assert.equal(pre.headers.get('access-control-allow-origin'), null, `preflight ${origin}`);
    }
  });
});
