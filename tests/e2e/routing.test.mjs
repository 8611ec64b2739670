// Routing, the error shape, request ids and the access log.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UUID_RE, assertError } from './lib/checks.mjs';
import { rawConnect } from './lib/raw.mjs';
import { accessLog, cleanup, startServer } from './lib/server.mjs';

after(cleanup);

let srv;
before(async () => {
  srv = await startServer();
});

describe('routing', () => {
  test('GET /health is 200 {"status":"ok"} as JSON', async () => {
    const res = await fetch(`${srv.url}/health`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  test('an unknown /api/v1 path is a JSON 404 in the error shape', async () => {
    const res = await fetch(`${srv.url}/api/v1/nope`);
    assert.equal(res.status, 404);
    assertError(res.headers, await res.json(), 'not_found', 'GET /api/v1/nope');
  });

  test('POST /health is 405 with Allow: GET, HEAD, OPTIONS and a JSON error', async () => {
    const res = await fetch(`${srv.url}/health`, { method: 'POST' });
    assert.equal(res.status, 405);
    const allow = (res.headers.get('allow') || '').split(',').map((s) => s.trim()).filter(Boolean);
    assert.deepEqual([...allow].sort(), ['GET', 'HEAD', 'OPTIONS'], `Allow header: ${res.headers.get('allow')}`);
    assertError(res.headers, await res.json(), 'method_not_allowed', 'POST /health');
  });

  test('other unrouted methods on /health are 405 too (DELETE, PUT, PATCH)', async () => {
    for (const method of ['DELETE', 'PUT', 'PATCH']) {
      const res = await fetch(`${srv.url}/health`, { method });
      assert.equal(res.status, 405, method);
      assert.ok(res.headers.get('allow'), `${method}: Allow header`);
      assertError(res.headers, await res.json(), 'method_not_allowed', `${method} /health`);
    }
  });

  test('HEAD /health is 200 with no body (the next request on the connection is intact)', async () => {
    const c = await rawConnect(srv.url);
    try {
      // Pipelined: any body bytes after the HEAD answer would corrupt the GET's.
      await c.write('HEAD /health HTTP/1.1\r\nHost: t\r\n\r\nGET /api/v1/version HTTP/1.1\r\nHost: t\r\n\r\n');
      const head = await c.response({ head: true });
      assert.equal(head.status, 200);
      assert.match(head.headers['content-type'] || '', /^application\/json/);
      assert.ok(head.headers['x-request-id'], 'HEAD still carries X-Request-Id');
      const get = await c.response();
      assert.equal(get.status, 200);
      assert.equal(JSON.parse(get.text).name, 'loci');
    } finally {
      c.destroy();
    }
  });

  test('OPTIONS /health is 204 with Allow and no body', async () => {
    const res = await fetch(`${srv.url}/health`, { method: 'OPTIONS' });
    assert.equal(res.status, 204);
    const allow = (res.headers.get('allow') || '').split(',').map((s) => s.trim());
    for (const m of ['GET', 'HEAD', 'OPTIONS']) assert.ok(allow.includes(m), `Allow lists ${m}: ${res.headers.get('allow')}`);
    assert.ok(!allow.includes('POST'), `Allow does not list POST: ${res.headers.get('allow')}`);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  test('OPTIONS on an unknown API path is a 404, not a 204', async () => {
    const res = await fetch(`${srv.url}/api/v1/nope`, { method: 'OPTIONS' });
    assert.equal(res.status, 404);
    assertError(res.headers, await res.json(), 'not_found', 'OPTIONS /api/v1/nope');
  });
});

describe('error shape', () => {
  test('every error body carries code, message and request_id equal to X-Request-Id', async () => {
    const cases = [
      ['GET', '/api/v1/nope', 404, 'not_found'],
      ['GET', '/api/v2/version', 404, 'not_found'],
      ['POST', '/health', 405, 'method_not_allowed'],
      ['DELETE', '/api/v1/version', 405, 'method_not_allowed'],
      ['POST', '/api/v1/nope', 404, 'not_found'],
      ['GET', '/health/nope', 404, 'not_found'],
    ];
    for (const [method, path, status, code] of cases) {
      const res = await fetch(`${srv.url}${path}`, { method });
      assert.equal(res.status, status, `${method} ${path}`);
      assertError(res.headers, await res.json(), code, `${method} ${path}`);
    }
  });

  test('a client-supplied request id is the one in the error body', async () => {
    const res = await fetch(`${srv.url}/api/v1/nope`, { headers: { 'X-Request-Id': 'err-id.42:x_y' } });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-request-id'), 'err-id.42:x_y');
    const body = await res.json();
    assert.equal(body.error.request_id, 'err-id.42:x_y');
  });
});

describe('request ids and the access log', () => {
  test('a sane X-Request-Id is echoed and logged in the access line for that request', async () => {
    const res = await fetch(`${srv.url}/health`, { headers: { 'X-Request-Id': 'abc-123' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-request-id'), 'abc-123');
    await res.arrayBuffer();
    const line = await accessLog(srv, 'abc-123');
    assert.equal(typeof line.ts, 'string');
    assert.ok(!Number.isNaN(Date.parse(line.ts)), `ts parses as a date: ${line.ts}`);
    assert.equal(line.level, 'info');
    assert.equal(line.msg, 'request');
    assert.equal(line.route, '/health');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/health');
    assert.equal(line.status, 200);
    assert.equal(typeof line.duration_ms, 'number');
    assert.ok(line.duration_ms >= 0 && line.duration_ms < 5000, `duration_ms ${line.duration_ms}`);
    assert.equal(line.trace_id, undefined, 'no trace_id without traceparent');
  });

  test('without X-Request-Id the server generates a UUID and logs it', async () => {
    const res = await fetch(`${srv.url}/health`);
    const rid = res.headers.get('x-request-id');
    assert.match(rid, UUID_RE);
    await res.arrayBuffer();
    const line = await accessLog(srv, rid);
    assert.equal(line.status, 200);
  });

  const insane = {
    'spaces': 'has spaces in it',
    '200 characters': 'a'.repeat(200),
    'quotes': 'quo"ted\'id',
    'a JSON-breaking value': '","level":"error',
    'angle brackets': '<script>',
  };
  for (const [what, value] of Object.entries(insane)) {
    test(`an X-Request-Id with ${what} is replaced by a generated UUID, also in the log`, async () => {
      const res = await fetch(`${srv.url}/health`, { headers: { 'X-Request-Id': value } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      const rid = res.headers.get('x-request-id');
      assert.notEqual(rid, value);
      assert.match(rid, UUID_RE, `generated id is a UUID: ${rid}`);
      const line = await accessLog(srv, rid);
      assert.equal(line.path, '/health');
      assert.ok(!srv.logs().some((l) => l.request_id === value), 'the rejected id never appears as a request_id in the logs');
    });
  }

  test('a 128-character id of allowed characters is still accepted', async () => {
    const id = `x${'A1._:-'.repeat(21)}y`.slice(0, 128);
    assert.equal(id.length, 128);
    const res = await fetch(`${srv.url}/health`, { headers: { 'X-Request-Id': id } });
    await res.arrayBuffer();
    assert.equal(res.headers.get('x-request-id'), id);
  });

  test('a valid W3C traceparent puts trace_id in the access log line', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`${srv.url}/health`, {
      headers: { 'X-Request-Id': 'trace-ok-1', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const line = await accessLog(srv, 'trace-ok-1');
    assert.equal(line.trace_id, traceId);
  });

  const badTraceparents = {
    'garbage': 'not-a-traceparent',
    'an all-zero trace id': '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    'an all-zero parent id': '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    'upper-case hex': '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01',
    'version ff': 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    'a short trace id': '00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01',
    'trailing data on version 00': '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
  };
  let n = 0;
  for (const [what, value] of Object.entries(badTraceparents)) {
    const rid = `trace-bad-${++n}`;
    test(`a traceparent with ${what} is ignored (no trace_id logged, request still served)`, async () => {
      const res = await fetch(`${srv.url}/health`, { headers: { 'X-Request-Id': rid, traceparent: value } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      const line = await accessLog(srv, rid);
      assert.equal(line.trace_id, undefined, `trace_id logged for ${value}: ${JSON.stringify(line)}`);
    });
  }

  test('a 404 and a 405 are logged with their status and an unmatched route', async () => {
    const r1 = await fetch(`${srv.url}/api/v1/nope`, { headers: { 'X-Request-Id': 'log-404' } });
    await r1.arrayBuffer();
    const r2 = await fetch(`${srv.url}/health`, { method: 'POST', headers: { 'X-Request-Id': 'log-405' } });
    await r2.arrayBuffer();
    const l1 = await accessLog(srv, 'log-404');
    assert.equal(l1.status, 404);
    assert.equal(l1.path, '/api/v1/nope');
    assert.equal(l1.method, 'GET');
    const l2 = await accessLog(srv, 'log-405');
    assert.equal(l2.status, 405);
    assert.equal(l2.method, 'POST');
  });
});
