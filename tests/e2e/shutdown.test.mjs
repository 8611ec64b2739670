// Graceful shutdown on SIGTERM: in-flight requests finish, new connections
// are refused, the process exits 0.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import { rawConnect } from './lib/raw.mjs';
import { accessLog, cleanup, sleep, startServer } from './lib/server.mjs';

after(cleanup);

/** Resolves to 'connected' or the error code of a fresh TCP connection. */
function tryConnect(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e) => resolve(e.code || e.message));
  });
}

/** Wait until the server has taken our partial request (the scrape + it are in flight). */
async function untilInFlight(srv) {
  let n;
  for (let i = 0; i < 100; i++) {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    n = Number(/^http_requests_in_flight (\S+)$/m.exec(text)?.[1]);
    if (n >= 2) return;
    await sleep(20);
  }
  assert.fail(`the partial request never became in flight (http_requests_in_flight ${n})`);
}

describe('graceful shutdown', () => {
  test('SIGTERM on an idle server exits 0 within 2 s and logs "shutting down" and "stopped"', async () => {
    const srv = await startServer();
    const r = await fetch(`${srv.url}/health`);
    await r.arrayBuffer();
    const t0 = Date.now();
    srv.proc.kill('SIGTERM');
    const ex = await srv.waitExit(2000);
    assert.notEqual(ex, 'timeout', `still running 2 s after SIGTERM; stderr:\n${srv.dump()}`);
    assert.deepEqual(ex, { code: 0, signal: null }, 'exit status 0');
    assert.ok(Date.now() - t0 < 2000);
    const msgs = srv.logs().map((l) => l.msg);
    const i = msgs.indexOf('shutting down');
    const j = msgs.indexOf('stopped');
    assert.ok(i >= 0, `"shutting down" logged: ${msgs.join(' | ')}`);
    assert.ok(j > i, `"stopped" logged after it: ${msgs.join(' | ')}`);
    assert.equal(srv.logs()[i].signal, 'SIGTERM');
    assert.equal(await tryConnect(srv.port), 'ECONNREFUSED', 'nothing listens afterwards');
  });

  test('SIGINT stops the server the same way', async () => {
    const srv = await startServer();
    assert.equal(await srv.stop('SIGINT'), 0, 'exit status 0 on SIGINT');
    assert.ok(srv.logs().some((l) => l.msg === 'stopped'));
  });

  test('a request in flight at SIGTERM still gets its answer; new connections are refused; exit 0 after', async () => {
    const srv = await startServer();
    const c = await rawConnect(srv.url);
    try {
      // Headers and half of a 10-byte body: the request is in flight.
      await c.write('GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: in-flight-1\r\nContent-Length: 10\r\n\r\n12345');
      await untilInFlight(srv);
      srv.proc.kill('SIGTERM');
      const bye = await srv.waitLog((l) => l.msg === 'shutting down', 2000, '"shutting down"');
      assert.ok(bye.in_flight >= 1, `the server knows a request is in flight (in_flight ${bye.in_flight})`);

      await sleep(300);
      assert.equal(srv.proc.exitCode, null, 'the server waits for the in-flight request');
      assert.equal(await tryConnect(srv.port), 'ECONNREFUSED', 'a new connection after SIGTERM is refused');

      await c.write('67890');
      const r = await c.response({ timeoutMs: 3000 });
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), { status: 'ok' });
      assert.equal(r.headers['x-request-id'], 'in-flight-1');
    } finally {
      c.destroy();
    }
    const ex = await srv.waitExit(3000);
    assert.deepEqual(ex, { code: 0, signal: null }, `exit after the last request; stderr:\n${srv.dump()}`);
    const line = await accessLog(srv, 'in-flight-1', 100);
    assert.equal(line.status, 200);
    const stopped = srv.logs().find((l) => l.msg === 'stopped');
    assert.ok(stopped, '"stopped" logged');
    assert.equal(stopped.abandoned_requests, 0, 'no request was abandoned');
  });

  test('a request that never completes is abandoned at shutdown_timeout_ms; the exit is still 0', async () => {
    const srv = await startServer({ args: ['--shutdown-timeout-ms', '500'] });
    const c = await rawConnect(srv.url);
    try {
      await c.write('GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12');
      await untilInFlight(srv);
      const t0 = Date.now();
      srv.proc.kill('SIGTERM');
      const ex = await srv.waitExit(3000);
      assert.deepEqual(ex, { code: 0, signal: null }, `exit status; stderr:\n${srv.dump()}`);
      const took = Date.now() - t0;
      assert.ok(took >= 400, `waited for the deadline (${took} ms)`);
      const stopped = srv.logs().find((l) => l.msg === 'stopped');
      assert.equal(stopped?.abandoned_requests, 1);
    } finally {
      c.destroy();
    }
  });
});
