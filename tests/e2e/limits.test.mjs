// Body size limits: 413 before reading an oversized declared body, and 413
// for a chunked body that grows past the limit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertError, assertSecurityHeaders } from './lib/checks.mjs';
import { rawConnect, rawRequest } from './lib/raw.mjs';
import { accessLog, cleanup, sleep, startServer } from './lib/server.mjs';

after(cleanup);

let srv;
before(async () => {
  srv = await startServer({ args: ['--max-body-bytes', '1024'] });
});

function chunked(sizes) {
  return sizes.map((n) => `${n.toString(16)}\r\n${'x'.repeat(n)}\r\n`).join('') + '0\r\n\r\n';
}

async function stillServes() {
  const res = await fetch(`${srv.url}/health`);
  assert.equal(res.status, 200, 'the server still answers /health afterwards');
  await res.arrayBuffer();
}

describe('request body limits (--max-body-bytes 1024)', () => {
  test('Content-Length: 10000000 is refused with a JSON 413 before any body byte is sent', async () => {
    const c = await rawConnect(srv.url);
    try {
      await c.write('POST /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: big-cl\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n');
      // No body is ever sent: the answer must come anyway.
      const r = await c.response({ timeoutMs: 3000 });
      assert.equal(r.status, 413);
      assertError(r.headers, JSON.parse(r.text), 'payload_too_large', '413');
      assert.equal(r.headers['x-request-id'], 'big-cl');
      assertSecurityHeaders(r.headers, {}, '413');
      assert.match(JSON.parse(r.text).error.message, /1024/, 'the message names the limit');
    } finally {
      c.destroy();
    }
    const line = await accessLog(srv, 'big-cl');
    assert.equal(line.status, 413);
    await stillServes();
  });

  test('the early 413 does not depend on the route or method (GET /health, unknown path)', async () => {
    for (const start of ['GET /health', 'PUT /api/v1/nope']) {
      const r = await rawRequest(srv.url, `${start} HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n`, { timeoutMs: 3000 });
      assert.equal(r.status, 413, start);
      assertError(r.headers, JSON.parse(r.text), 'payload_too_large', start);
    }
    await stillServes();
  });

  test('a body of exactly the limit is accepted (GET /health with Content-Length: 1024)', async () => {
    const r = await rawRequest(srv.url, `GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n${'x'.repeat(1024)}`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { status: 'ok' });
  });

  test('a chunked body that grows past the limit is a JSON 413', async () => {
    // GET /health is the only kind of route there is; a routed request is
    // the one whose body is read (an unrouted one is 404/405 first).
    const r = await rawRequest(
      srv.url,
      `GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: big-chunked\r\nTransfer-Encoding: chunked\r\n\r\n${chunked([500, 500, 500, 500])}`,
      { timeoutMs: 3000 },
    );
    assert.equal(r.status, 413);
    assertError(r.headers, JSON.parse(r.text), 'payload_too_large', 'chunked 413');
    assert.equal(r.headers['x-request-id'], 'big-chunked');
    const line = await accessLog(srv, 'big-chunked');
    assert.equal(line.status, 413);
    await stillServes();
  });

  test('a chunked body under the limit is accepted', async () => {
    const r = await rawRequest(srv.url, `GET /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${chunked([300, 300])}`);
    assert.equal(r.status, 200);
  });

  test('a chunked body that keeps growing far past the limit is answered 413 or cut off, and the server survives', async () => {
    const c = await rawConnect(srv.url);
    try {
      await c.write('GET /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n');
      const piece = chunked([60000]).slice(0, -5); // a 60000-byte chunk without the terminator
      let written = 0;
      let stopped = false;
      c.socket.on('error', () => (stopped = true));
      // 4 MiB is 4096 times the limit; the server must not hold it.
      while (written < 4 * 1024 * 1024 && !stopped && !c.socket.destroyed) {
        try {
          await c.write(piece);
        } catch {
          break;
        }
        written += 60000;
      }
      if (!stopped && !c.socket.destroyed) await c.write('0\r\n\r\n').catch(() => {});
      const r = await c.response({ timeoutMs: 5000 }).catch((e) => e);
      if (!(r instanceof Error)) assert.equal(r.status, 413);
    } finally {
      c.destroy();
    }
    await stillServes();
  });
});

describe('request framing (raw sockets)', () => {
  test('a client that sends half a body and hangs up leaves nothing in flight', async () => {
    for (let i = 0; i < 3; i++) {
      const c = await rawConnect(srv.url);
      await c.write(`GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: half-body-${i}\r\nContent-Length: 10\r\n\r\n123`);
      await sleep(50);
      c.destroy();
    }
    for (let i = 0; i < 3; i++) {
      const line = await accessLog(srv, `half-body-${i}`);
      assert.equal(line.completed, false, 'logged as not completed');
    }
    let inFlight;
    for (let i = 0; i < 20; i++) {
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      inFlight = Number(/^http_requests_in_flight (\S+)$/m.exec(text)?.[1]);
      if (inFlight === 1) break;
      await sleep(50);
    }
    assert.equal(inFlight, 1, 'only the scrape itself is in flight');
  });

  test('a method the server does not know is a JSON 405, not a crash', async () => {
    const r = await rawRequest(srv.url, 'BREW /health HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal(r.status, 405);
    assertError(r.headers, JSON.parse(r.text), 'method_not_allowed', 'BREW /health');
    assertSecurityHeaders(r.headers, {}, 'BREW /health');
    await stillServes();
  });

  /** Whether a request with this id reached the server (its access log line appears). */
  async function ran(requestId) {
    return accessLog(srv, requestId, 500).then(
      () => true,
      () => false,
    );
  }

  // RFC 9110 §8.6 / RFC 9112 §6.3: differing Content-Length values make the
  // framing invalid; the server must answer 400 and close, or a request
  // hidden in the body ("smuggled") is run as if it came on its own.
  test('conflicting Content-Length headers are refused with 400; the hidden request never runs', async () => {
    const c = await rawConnect(srv.url);
    let status;
    try {
      // One reading of the headers sees a 5-byte body and then a second
      // request; the other sees a single request whose body is all of it.
      const body = 'abcdeGET /api/v1/version HTTP/1.1\r\nHost: t\r\nX-Request-Id: smuggled-cl\r\n\r\n';
      await c.write(`GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      status = (await c.response({ timeoutMs: 3000 })).status;
    } finally {
      c.destroy();
    }
    assert.deepEqual({ status, hiddenRequestRan: await ran('smuggled-cl') }, { status: 400, hiddenRequestRan: false });
    await stillServes();
  });

  // RFC 9112 §6.1: with both Transfer-Encoding and Content-Length, the server
  // may reject the request, or honour Transfer-Encoding, but must then close
  // the connection after responding.
  test('Content-Length with Transfer-Encoding: 400, or one answer and the connection closed', async () => {
    const c = await rawConnect(srv.url);
    let status;
    let closed;
    try {
      const body = '0\r\n\r\nGET /api/v1/version HTTP/1.1\r\nHost: t\r\nX-Request-Id: smuggled-te\r\n\r\n';
      await c.write(`GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
      status = (await c.response({ timeoutMs: 3000 })).status;
      closed = await c.closed({ timeoutMs: 1000 }).then(
        () => true,
        () => false,
      );
    } finally {
      c.destroy();
    }
    assert.ok(status === 400 || status === 200, `status ${status}`);
    assert.deepEqual({ closed, hiddenRequestRan: await ran('smuggled-te') }, { closed: true, hiddenRequestRan: false });
    await stillServes();
  });
});
