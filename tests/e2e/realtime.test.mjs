// Realtime delivery with a real WebSocket client (npm ws) against a real
// server: authentication by first message and by session cookie with an
// allowed Origin, refusals (foreign Origin, no auth in time, bad token),
// each user's events to that user only, resume with ?since (exactly the
// missed events, then live ones), a slow client dropped while another keeps
// receiving, oversized frames, ping/pong, and the same log over
// GET /api/v1/sync with its paging and bad input.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { cleanup, sleep, startServer } from './lib/server.mjs';
import { AUTH_TEST_ARGS, call, cookieValue, expectStatus, login, loginAs, signup, signupAndLogin } from './lib/users.mjs';

after(cleanup);

const QUIET_LIMITS = ['--rate-api-burst', '100000', '--rate-api-per-min', '1000000'];

let srv;
before(async () => {
  srv = await startServer({
    args: [
      ...AUTH_TEST_ARGS,
      ...QUIET_LIMITS,
      ...['--ws-auth-timeout-ms', '1000', '--ws-max-frame-bytes', '4096'],
      ...['--public-url', 'https://loci.example', '--cors-origins', 'https://app.example'],
    ],
  });
});

const wsUrl = (server, path = '/ws') => server.url.replace(/^http/, 'ws') + path;

/**
 * Open a WebSocket; resolves once open (or rejects with the HTTP status of a
 * refused upgrade). Returns { ws, next(ms), nextOfType(type, ms), closed }
 * where next() resolves to the next JSON message and closed to {code, reason}.
 */
function openWs(server, { path = '/ws', headers = {}, autoPong = true } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(server, path), { headers, autoPong });
    const queue = [];
    const waiters = [];
    let closeInfo = null;
    const closed = new Promise((res) => {
      ws.on('close', (code, reason) => {
        closeInfo = { code, reason: reason.toString() };
        res(closeInfo);
        for (const w of waiters.splice(0)) w.reject(new Error(`socket closed (${code} ${closeInfo.reason}) while waiting for a message`));
      });
    });
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      const w = waiters.shift();
      if (w) w.resolve(m);
      else queue.push(m);
    });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const err = new Error(`upgrade refused: ${res.statusCode}`);
        err.status = res.statusCode;
        err.headers = res.headers;
        err.body = body ? JSON.parse(body) : null;
        reject(err);
      });
    });
    ws.on('error', (e) => reject(e));
    ws.on('open', () => {
      const next = (ms = 3000) =>
        new Promise((res, rej) => {
          if (queue.length) return res(queue.shift());
          if (closeInfo) return rej(new Error(`socket closed (${closeInfo.code} ${closeInfo.reason})`));
          const w = { resolve: res, reject: rej };
          waiters.push(w);
          setTimeout(() => {
            const i = waiters.indexOf(w);
            if (i >= 0) {
              waiters.splice(i, 1);
              rej(new Error(`no message within ${ms} ms`));
            }
          }, ms);
          return undefined;
        });
      const nextOfType = async (type, ms = 3000) => {
        for (;;) {
          const m = await next(ms);
          if (m.type === type) return m;
        }
      };
      /** Resolves to true when nothing arrives within ms. */
      const quiet = async (ms = 300) => {
        try {
          const m = await next(ms);
          return assert.fail(`expected silence, got ${JSON.stringify(m)}`);
        } catch (e) {
          if (e.code === 'ERR_ASSERTION') throw e;
          return true;
        }
      };
      resolve({ ws, next, nextOfType, quiet, closed, pending: () => queue.length });
    });
  });
}

/** Open and authenticate with a first message; resolves to the socket and the ready message. */
async function authed(server, token, { since, path } = {}) {
  const s = await openWs(server, { path });
  const msg = { type: 'auth', token };
  if (since !== undefined) msg.since = since;
  s.ws.send(JSON.stringify(msg));
  const ready = await s.next();
  assert.equal(ready.type, 'ready', `first message after auth: ${JSON.stringify(ready)}`);
  assert.equal(typeof ready.offset, 'number');
  return { ...s, ready };
}

let nameSeq = 0;
/** PATCH /api/v1/me with a fresh name: one user.updated event. */
async function rename(server, account) {
  const r = await call(server, 'PATCH', '/api/v1/me', { token: account.accessToken, body: { display_name: `name ${++nameSeq}` } });
  expectStatus(r, 200, null, 'PATCH /me');
}

async function syncAll(server, token, offset = 0, limit = 100) {
  const events = [];
  for (;;) {
    const r = await call(server, 'GET', `/api/v1/sync?offset=${offset}&limit=${limit}`, { token });
    expectStatus(r, 200, null, 'sync');
    events.push(...r.body.events);
    offset = r.body.next_offset;
    if (!r.body.has_more) return events;
  }
}

describe('authentication', () => {
  test('a first auth message with an access token: ready, then the user\'s events', async () => {
    const a = await signupAndLogin(srv);
    const s = await authed(srv, a.accessToken);
    await rename(srv, a);
    const m = await s.nextOfType('user.updated');
    assert.ok(m.offset > s.ready.offset, `event offset ${m.offset} after ready ${s.ready.offset}`);
    assert.deepEqual(m.data, { fields: ['display_name'] });
    assert.deepEqual(Object.keys(m).sort(), ['data', 'offset', 'type']);
    s.ws.close();
  });

  test('an API key works as the token too', async () => {
    const a = await signupAndLogin(srv);
    const k = await a.call('POST', '/api/v1/me/api-keys', { body: { name: 'ws', scopes: ['read'] } });
    expectStatus(k, 201, null, 'create key');
    const s = await authed(srv, k.body.key);
    await rename(srv, a);
    await s.nextOfType('user.updated');
    s.ws.close();
  });

  test('the session cookie from an allowed Origin signs the socket in without a message', async () => {
    const { email, password } = await signup(srv);
    const r = await login(srv, { email, password, delivery: 'cookie' });
    expectStatus(r, 200, null, 'cookie login');
    const cookie = `loci_refresh=${cookieValue(r.cookies, 'loci_refresh')}`;
    const token = r.body.access_token;
    // public_url's origin, the page's own origin (the Host it came to), a CORS origin
    for (const origin of ['https://loci.example', `http://127.0.0.1:${srv.port}`, 'https://app.example']) {
      const s = await openWs(srv, { headers: { Cookie: cookie, Origin: origin } });
      const ready = await s.next();
      assert.equal(ready.type, 'ready', `cookie + ${origin}`);
      await call(srv, 'PATCH', '/api/v1/me', { token, body: { display_name: `cookie ${++nameSeq}` } });
      await s.nextOfType('user.updated');
      s.ws.close();
    }
  });

  test('a foreign Origin is refused with 403 before the upgrade, cookie or not', async () => {
    const { email, password } = await signup(srv);
    const r = await login(srv, { email, password, delivery: 'cookie' });
    const cookie = `loci_refresh=${cookieValue(r.cookies, 'loci_refresh')}`;
    const foreign = ['https://evil.example', 'https://loci.example.evil.example', 'http://loci.example', `http://localhost:${srv.port}`, 'null'];
    for (const headers of foreign.flatMap((o) => [{ Origin: o }, { Origin: o, Cookie: cookie }])) {
      await assert.rejects(openWs(srv, { headers }), (e) => {
        assert.equal(e.status, 403, JSON.stringify(headers));
        assert.equal(e.body.error.code, 'origin_refused');
        return true;
      });
    }
  });

  test('a socket that does not authenticate in time is closed with 1008', async () => {
    const s = await openWs(srv);
    const t0 = Date.now();
    const c = await s.closed;
    assert.equal(c.code, 1008);
    assert.match(c.reason, /authentication timed out/);
    assert.ok(Date.now() - t0 >= 800, `closed after ${Date.now() - t0} ms (deadline 1000)`);
  });

  test('a bad token is closed with 1008 and a reason that says so', async () => {
    for (const token of ['not-a-token', 'eyJhbGciOiJIUzI1NiJ9.e30.AAAA', 'loci_00000000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx']) {
      const s = await openWs(srv);
      s.ws.send(JSON.stringify({ type: 'auth', token }));
      const c = await s.closed;
      assert.equal(c.code, 1008, token);
      assert.match(c.reason, /authentication failed: the token is invalid, expired or revoked/);
    }
    const s = await openWs(srv);
    s.ws.send('{"hello":"world"}');
    const c = await s.closed;
    assert.equal(c.code, 1008);
    assert.match(c.reason, /first message must be/);
  });

  test('a token that was revoked by logout-all no longer opens a socket', async () => {
    const a = await signupAndLogin(srv);
    const r = await a.call('POST', '/api/v1/auth/logout-all', { body: {} });
    expectStatus(r, 204, null, 'logout-all');
    const s = await openWs(srv);
    s.ws.send(JSON.stringify({ type: 'auth', token: a.accessToken }));
    assert.equal((await s.closed).code, 1008);
  });

  test('sockets end with the credentials they signed in with: logout, key revoked, logout everywhere', async () => {
    const a = await signupAndLogin(srv);
    const second = await loginAs(srv, a.email, a.password); // another session of the same user
    const key = await a.call('POST', '/api/v1/me/api-keys', { body: { name: 'ws', scopes: ['read'] } });
    expectStatus(key, 201, null, 'key');
    const byToken = await authed(srv, a.accessToken);
    const bySecond = await authed(srv, second.accessToken);
    const byKey = await authed(srv, key.body.key);

    // one session ends: only its socket closes, after the event
    const out = await call(srv, 'POST', '/api/v1/auth/logout', { body: { refresh_token: second.refreshToken } });
    expectStatus(out, 204, null, 'logout');
    assert.equal((await bySecond.nextOfType('auth.logged_out')).data.session_id, second.sessionId);
    const c1 = await bySecond.closed;
    assert.equal(c1.code, 1008);
    assert.match(c1.reason, /revoked/);

    // one key is revoked: only its socket closes
    expectStatus(await a.call('DELETE', `/api/v1/me/api-keys/${key.body.id}`), 204, null, 'revoke key');
    await byKey.nextOfType('api_key.revoked');
    assert.equal((await byKey.closed).code, 1008);
    await byToken.nextOfType('auth.logged_out');
    await byToken.nextOfType('api_key.revoked');
    assert.equal(byToken.ws.readyState, WebSocket.OPEN);

    // everything of the user ends
    expectStatus(await a.call('POST', '/api/v1/auth/logout-all', { body: {} }), 204, null, 'logout-all');
    await byToken.nextOfType('auth.sessions_revoked');
    assert.equal((await byToken.closed).code, 1008);
    const m = await call(srv, 'GET', '/metrics');
    assert.match(m.text, /^loci_ws_closed_total\{reason="revoked"\} [1-9]/m);
  });

  test('a plain GET /ws is told to upgrade (426); a bad since is 422', async () => {
    const r = await call(srv, 'GET', '/ws');
    expectStatus(r, 426, 'upgrade_required', 'plain GET');
    assert.equal(r.headers.get('sec-websocket-version'), '13');
    await assert.rejects(openWs(srv, { path: '/ws?since=abc' }), (e) => {
      assert.equal(e.status, 422);
      assert.equal(e.body.error.field, 'since');
      return true;
    });
  });
});

describe('delivery', () => {
  test('two users: each socket gets its own user\'s events and nothing of the other\'s', async () => {
    const a = await signupAndLogin(srv);
    const b = await signupAndLogin(srv);
    const sa = await authed(srv, a.accessToken);
    const sa2 = await authed(srv, a.accessToken);
    const sb = await authed(srv, b.accessToken);
    await rename(srv, a);
    const key = await b.call('POST', '/api/v1/me/api-keys', { body: { name: 'k', scopes: ['read'] } });
    expectStatus(key, 201, null, 'key');
    await rename(srv, a);
    await rename(srv, b);
    /** Everything a socket got until it went quiet. */
    const drain = async (s) => {
      const got = [];
      for (;;) {
        try {
          got.push(await s.next(400));
        } catch {
          return got;
        }
      }
    };
    const [ga, ga2, gb] = await Promise.all([drain(sa), drain(sa2), drain(sb)]);
    // exactly the user's own log after the socket's ready offset
    const logA = (await syncAll(srv, a.accessToken, sa.ready.offset)).map((e) => [e.type, e.offset]);
    const logB = (await syncAll(srv, b.accessToken, sb.ready.offset)).map((e) => [e.type, e.offset]);
    assert.deepEqual(ga.map((m) => [m.type, m.offset]), logA);
    assert.deepEqual(ga2.map((m) => [m.type, m.offset]), (await syncAll(srv, a.accessToken, sa2.ready.offset)).map((e) => [e.type, e.offset]));
    assert.deepEqual(gb.map((m) => [m.type, m.offset]), logB);
    assert.deepEqual(ga.filter((m) => m.type === 'user.updated').length, 2);
    const created = gb.find((m) => m.type === 'api_key.created');
    assert.equal(created.data.api_key_id, key.body.id);
    const offsA = new Set(ga.map((m) => m.offset));
    assert.ok(gb.every((m) => !offsA.has(m.offset)), 'nothing of a reached b');
    for (const s of [sa, sa2, sb]) s.ws.close();
  });

  test('resume with ?since: exactly the missed events, in order, then live ones', async () => {
    const a = await signupAndLogin(srv);
    const first = await authed(srv, a.accessToken);
    await rename(srv, a);
    const seen = await first.nextOfType('user.updated');
    first.ws.close();
    await first.closed;
    // offline: three changes
    for (let i = 0; i < 3; i++) await rename(srv, a);
    const k = await a.call('POST', '/api/v1/me/api-keys', { body: { name: 'while away', scopes: ['read'] } });
    expectStatus(k, 201, null, 'key');
    const missed = (await syncAll(srv, a.accessToken, seen.offset)).map((e) => [e.type, e.offset]);
    assert.deepEqual(missed.map((m) => m[0]), ['user.updated', 'user.updated', 'user.updated', 'api_key.created']);

    for (const how of ['query', 'message']) {
      const s = how === 'query' ? await authed(srv, a.accessToken, { path: `/ws?since=${seen.offset}` }) : await authed(srv, a.accessToken, { since: seen.offset });
      assert.equal(s.ready.offset, seen.offset, `${how}: ready names the resume point`);
      const got = [];
      for (let i = 0; i < missed.length; i++) {
        const m = await s.next();
        got.push([m.type, m.offset]);
      }
      assert.deepEqual(got, missed, `${how}: the missed events, no gap, no duplicate`);
      await rename(srv, a);
      const live = await s.next();
      assert.equal(live.type, 'user.updated');
      assert.ok(live.offset > missed.at(-1)[1]);
      await s.quiet(200);
      s.ws.close();
      missed.push([live.type, live.offset]);
    }
  });

  test('resume while events keep coming: every event exactly once', async () => {
    const a = await signupAndLogin(srv);
    const s0 = await authed(srv, a.accessToken);
    const start = s0.ready.offset;
    s0.ws.close();
    for (let i = 0; i < 30; i++) await rename(srv, a);
    // reconnect while 30 more are being written
    const writer = (async () => {
      for (let i = 0; i < 30; i++) await rename(srv, a);
    })();
    const s = await authed(srv, a.accessToken, { since: start });
    await writer;
    const offsets = [];
    while (offsets.length < 60) {
      const m = await s.next(5000);
      if (m.type === 'user.updated') offsets.push(m.offset);
    }
    const sorted = [...offsets].sort((x, y) => x - y);
    assert.deepEqual(offsets, sorted, 'in order');
    assert.equal(new Set(offsets).size, 60, 'no duplicates');
    const fromLog = (await syncAll(srv, a.accessToken, start)).filter((e) => e.type === 'user.updated').map((e) => e.offset);
    assert.deepEqual(offsets, fromLog, 'the same events as the log');
    await s.quiet(200);
    s.ws.close();
  });

  test('a frame over ws_max_frame_bytes closes the socket with 1009', async () => {
    const a = await signupAndLogin(srv);
    const s = await authed(srv, a.accessToken);
    s.ws.send(JSON.stringify({ type: 'note', text: 'x'.repeat(5000) }));
    const c = await s.closed;
    assert.equal(c.code, 1009);
    // under the limit is fine (and ignored)
    const s2 = await authed(srv, a.accessToken);
    s2.ws.send(JSON.stringify({ type: 'note', text: 'x'.repeat(3000) }));
    await rename(srv, a);
    await s2.nextOfType('user.updated');
    s2.ws.close();
  });
});

describe('sync', () => {
  test('pages through the user\'s own log; another user\'s events never appear', async () => {
    const a = await signupAndLogin(srv);
    const b = await signupAndLogin(srv);
    for (let i = 0; i < 5; i++) {
      await rename(srv, a);
      await rename(srv, b);
    }
    const all = await syncAll(srv, a.accessToken, 0, 100);
    const paged = await syncAll(srv, a.accessToken, 0, 2);
    assert.deepEqual(paged, all, 'pages of 2 add up to the whole log');
    const types = all.map((e) => e.type);
    assert.ok(types.includes('user.signed_up') && types.includes('user.logged_in'), types.join());
    assert.equal(types.filter((t) => t === 'user.updated').length, 5);
    for (const e of all) {
      assert.deepEqual(Object.keys(e).sort(), ['created_at', 'data', 'offset', 'type']);
      assert.equal(typeof e.created_at, 'number');
      assert.equal(typeof e.data, 'object');
    }
    const offs = all.map((e) => e.offset);
    assert.deepEqual(offs, [...offs].sort((x, y) => x - y));
    const bOffs = new Set((await syncAll(srv, b.accessToken)).map((e) => e.offset));
    assert.ok(offs.every((o) => !bOffs.has(o)), 'no event of b in a\'s log');
    const first = await call(srv, 'GET', '/api/v1/sync?limit=1', { token: a.accessToken });
    expectStatus(first, 200, null, 'limit 1');
    assert.equal(first.body.events.length, 1);
    assert.equal(first.body.has_more, true);
    assert.equal(first.body.next_offset, first.body.events[0].offset);
    const end = await call(srv, 'GET', `/api/v1/sync?offset=${offs.at(-1)}`, { token: a.accessToken });
    assert.deepEqual(end.body, { events: [], next_offset: offs.at(-1), has_more: false });
  });

  test('bad offset or limit: 422 naming the field; no token: 401', async () => {
    const a = await signupAndLogin(srv);
    for (const [q, field] of [
      ['offset=-1', 'offset'],
      ['offset=abc', 'offset'],
      ['offset=1.5', 'offset'],
      ['offset=99999999999999999999', 'offset'],
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=x', 'limit'],
    ]) {
      const r = await call(srv, 'GET', `/api/v1/sync?${q}`, { token: a.accessToken });
      expectStatus(r, 422, 'validation_failed', q);
      assert.equal(r.body.error.field, field, q);
    }
    expectStatus(await call(srv, 'GET', '/api/v1/sync'), 401, null, 'anonymous');
  });
});

describe('backpressure and liveness', () => {
  test('a client that stops reading is dropped; another socket of the same user keeps receiving', async () => {
    const s2 = await startServer({ args: [...AUTH_TEST_ARGS, ...QUIET_LIMITS, '--ws-send-queue-bytes', '4096'] });
    const a = await signupAndLogin(s2);
    const slow = await authed(s2, a.accessToken);
    const fast = await authed(s2, a.accessToken);
    slow.ws._socket.pause(); // stop reading: the kernel buffers fill, then the server's queue
    let sent = 0;
    let dropped = 0;
    const got = [];
    const counting = (async () => {
      for (;;) {
        const m = await fast.next(10000);
        got.push(m.offset);
        if (m.type === 'done') return;
      }
    })().catch(() => {});
    const deadline = Date.now() + 60000;
    while (dropped === 0 && Date.now() < deadline) {
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          const r = await call(s2, 'PATCH', '/api/v1/me', { token: a.accessToken, body: { display_name: `n${'x'.repeat(90)}${++nameSeq}` } });
          expectStatus(r, 200, null, 'patch');
          sent++;
        }),
      );
      const m = await call(s2, 'GET', '/metrics');
      const line = m.text.split('\n').find((l) => l.startsWith('loci_ws_closed_total{reason="slow_client"}'));
      dropped = line ? Number(line.split(' ')[1]) : 0;
    }
    assert.equal(dropped, 1, `the slow client was dropped after ${sent} events`);
    // the fast socket got every event so far and is still open
    const final = await call(s2, 'PATCH', '/api/v1/me', { token: a.accessToken, body: { display_name: 'final' } });
    expectStatus(final, 200, null, 'final patch');
    const until = Date.now() + 10000;
    while (got.length < sent + 1 && Date.now() < until) await sleep(20);
    assert.equal(got.length, sent + 1, `the fast socket received all ${sent + 1} events`);
    assert.equal(new Set(got).size, got.length);
    const m = await call(s2, 'GET', '/metrics');
    assert.match(m.text, /^loci_ws_connections 1$/m, 'one socket left');
    fast.ws.close();
    slow.ws.terminate();
    await counting;
    await s2.stop();
  });

  test('pings keep an answering client; one that never answers is closed', async () => {
    const s3 = await startServer({ args: [...AUTH_TEST_ARGS, ...QUIET_LIMITS, '--ws-ping-interval-ms', '300'] });
    const a = await signupAndLogin(s3);
    const live = await authed(s3, a.accessToken);
    let pings = 0;
    live.ws.on('ping', () => pings++);
    const mute = await openWs(s3, { autoPong: false });
    mute.ws.send(JSON.stringify({ type: 'auth', token: a.accessToken }));
    assert.equal((await mute.next()).type, 'ready');
    const t0 = Date.now();
    const c = await mute.closed;
    assert.equal(c.code, 1008);
    assert.match(c.reason, /pong/);
    assert.ok(Date.now() - t0 < 2000, `closed within two intervals (${Date.now() - t0} ms)`);
    await sleep(1200);
    assert.ok(pings >= 4, `the live client was pinged (${pings})`);
    assert.equal(live.ws.readyState, WebSocket.OPEN);
    await rename(s3, a);
    await live.nextOfType('user.updated');
    const m = await call(s3, 'GET', '/metrics');
    assert.match(m.text, /^loci_ws_closed_total\{reason="ping_timeout"\} 1$/m);
    live.ws.close();
    await s3.stop();
  });

  test('shutdown closes sockets with 1001', async () => {
    const s4 = await startServer({ args: [...AUTH_TEST_ARGS, ...QUIET_LIMITS] });
    const a = await signupAndLogin(s4);
    const s = await authed(s4, a.accessToken);
    const pending = await openWs(s4);
    const code = s4.stop();
    assert.equal((await s.closed).code, 1001);
    assert.equal((await pending.closed).code, 1001);
    assert.equal(await code, 0);
  });
});
