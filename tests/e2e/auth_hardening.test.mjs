// Hardening found in review: API keys do not outlive a password reset,
// change or logout-all; X-Forwarded-For is read across header lines and only
// as IP addresses; a user agent that is not UTF-8 does not break login on
// PostgreSQL; a server shutting down refuses new password work cleanly.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { pg } from './lib/pg.mjs';
import { rawConnect } from './lib/raw.mjs';
import { cleanup, startServer, sleep } from './lib/server.mjs';
import { AUTH_TEST_ARGS, call, expectStatus, newPassword, signupAndLogin, uniqueEmail } from './lib/users.mjs';

after(cleanup);

async function makeKey(a) {
  const r = await a.call('POST', '/api/v1/me/api-keys', { body: { name: 'ci', scopes: ['read', 'write'] } });
  expectStatus(r, 201, null, 'create key');
  return r.body.key;
}

describe('API keys end with the credentials that made them', () => {
  test('password change revokes every API key (the current session goes on)', async () => {
    const s = await startServer({ args: AUTH_TEST_ARGS });
    const a = await signupAndLogin(s);
    const key = await makeKey(a);
    expectStatus(await call(s, 'GET', '/api/v1/me', { token: key }), 200, null, 'key works');
    const next = newPassword();
    const r = await a.call('POST', '/api/v1/me/password', { body: { current_password: a.password, new_password: next } });
    expectStatus(r, 200, null, 'change password');
    expectStatus(await call(s, 'GET', '/api/v1/me', { token: key }), 401, null, 'key after change');
    expectStatus(await call(s, 'GET', '/api/v1/me', { token: r.body.access_token }), 200, null, 'new access token');
  });

  test('logout-all revokes every API key', async () => {
    const s = await startServer({ args: AUTH_TEST_ARGS });
    const a = await signupAndLogin(s);
    const key = await makeKey(a);
    expectStatus(await a.call('POST', '/api/v1/auth/logout-all', { body: {} }), 204, null, 'logout-all');
    expectStatus(await call(s, 'GET', '/api/v1/me', { token: key }), 401, null, 'key after logout-all');
    const list = await (await signupAndLogin(s)).call('GET', '/api/v1/me/api-keys');
    expectStatus(list, 200);
  });
});

describe('X-Forwarded-For from a trusted proxy', () => {
  test('every header line counts, read from the right, and a non-address ends the walk', async () => {
    const s = await startServer({ args: ['--trusted-proxies', '127.0.0.1', '--rate-auth-burst', '1', '--rate-auth-per-min', '1'] });
    const c = await rawConnect(s.url);
    try {
      // Two lines: the client wrote the first, the proxy appended the second.
      const req = (xff) =>
        `GET /api/v1/auth/options HTTP/1.1\r\nHost: x\r\n${xff.map((v) => `X-Forwarded-For: ${v}\r\n`).join('')}\r\n`;
      await c.write(req(['6.6.6.6', '203.0.113.7']));
      const r1 = await c.response();
      assert.equal(r1.status, 200);
      // Same real client (203.0.113.7) claiming another first line: still limited.
      await c.write(req(['7.7.7.7', '203.0.113.7']));
      const r2 = await c.response();
      assert.equal(r2.status, 429, 'the client cannot pick its bucket with an extra header line');
      // Garbage right of the client: the walk stops at the proxy, not at the garbage.
      await c.write(req(['203.0.113.9, not-an-ip']));
      const r3 = await c.response();
      assert.equal(r3.status, 200, 'a new bucket: the proxy itself');
    } finally {
      c.destroy();
    }
    const lines = s.logs().filter((l) => l.msg === 'request').map((l) => l.ip);
    assert.ok(lines.includes('203.0.113.7'));
    assert.ok(!lines.includes('6.6.6.6') && !lines.includes('7.7.7.7') && !lines.includes('not-an-ip'));
  });
});

describe('user agents', () => {
  test('a login with a user agent that is not UTF-8 works on PostgreSQL and lists cleanly', async (t) => {
    const p = pg(t);
    if (!p) return;
    const db = await p.createDb();
    const s = await startServer({ dbUrl: db.url, args: AUTH_TEST_ARGS });
    const email = uniqueEmail('ua');
    const password = newPassword();
    expectStatus(await call(s, 'POST', '/api/v1/auth/signup', { body: { email, password } }), 202);
    const c = await rawConnect(s.url);
    let token;
    try {
      const body = JSON.stringify({ email, password, token_delivery: 'body' });
      const head = `POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nUser-Agent: Caf`;
      await c.write(Buffer.concat([Buffer.from(head), Buffer.from([0xe9]), Buffer.from(`Client/1.0\r\n\r\n${body}`)]));
      const r = await c.response();
      assert.equal(r.status, 200, r.body?.toString?.() ?? '');
      token = JSON.parse(r.body.toString()).access_token;
    } finally {
      c.destroy();
    }
    const list = await call(s, 'GET', '/api/v1/me/sessions', { token });
    expectStatus(list, 200);
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].user_agent, 'Caf?Client/1.0');
  });
});

describe('shutdown and password hashing', () => {
  test('after SIGTERM, a login on a kept-alive connection is refused with 503 and the server exits 0', async () => {
    const s = await startServer({ args: [...AUTH_TEST_ARGS, '--shutdown-timeout-ms', '3000'] });
    const email = uniqueEmail('shut');
    const password = newPassword();
    expectStatus(await call(s, 'POST', '/api/v1/auth/signup', { body: { email, password } }), 202);
    const c = await rawConnect(s.url);
    try {
      // A request on the connection keeps it open past the listening socket.
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab');
      // Only signal once the server is handling it (on a loaded machine the
      // bytes may not have been read yet): in flight are it and this scrape.
      for (let i = 0; i < 200; i++) {
        const m = await (await fetch(`${s.url}/metrics`)).text();
        if (/^http_requests_in_flight 2$/m.test(m)) break;
        await sleep(10);
      }
      const exit = s.stop('SIGTERM');
      await sleep(300);
      await c.write('cd');
      const r0 = await c.response();
      assert.equal(r0.status, 200, 'the in-flight request completes');
      const body = JSON.stringify({ email, password });
      await c.write(`POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const r1 = await c.response().catch(() => null);
      if (r1) assert.equal(r1.status, 503, 'no new password work once shutting down');
      assert.equal(await exit, 0, 'clean exit, no abort');
    } finally {
      c.destroy();
    }
  });
});
