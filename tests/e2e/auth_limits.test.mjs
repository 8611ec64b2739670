// Rate limits on the auth routes (GCRA per client IP, with RateLimit
// headers), X-Forwarded-For believed only from trusted proxies, and the
// login back-off after failed passwords (temporary, never a lock-out).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { accessLog, cleanup, sleep, startServer } from './lib/server.mjs';
import { assertNoSecretsInLogs, call, expectStatus, login, signup } from './lib/users.mjs';

after(cleanup);

const OPTIONS = '/api/v1/auth/options';

function options(server, headers = {}) {
  return call(server, 'GET', OPTIONS, { headers });
}

/** RateLimit-Policy "auth";q=QUOTA;w=60 (requests per 60 s window) and
 * RateLimit "auth";r=R;t=T (draft-ietf-httpapi-ratelimit-headers). */
function assertRateHeaders(r, quota, what) {
  const policy = r.headers.get('ratelimit-policy');
  assert.ok(policy, `${what}: RateLimit-Policy present`);
  assert.match(policy, new RegExp(`^"auth";q=${quota};w=60$`), `${what}: RateLimit-Policy ${policy}`);
  const rl = r.headers.get('ratelimit');
  assert.ok(rl, `${what}: RateLimit present`);
  const m = /^"auth";r=(\d+);t=(\d+)$/.exec(rl);
  assert.ok(m, `${what}: RateLimit ${rl}`);
  return { remaining: Number(m[1]), reset: Number(m[2]) };
}

describe('auth rate limit (--rate-auth-burst 3 --rate-auth-per-min 6)', () => {
  test('burst + 1 requests: the last is 429 with Retry-After, RateLimit and RateLimit-Policy; spoofed X-Forwarded-For from an untrusted peer changes nothing', async () => {
    const s = await startServer({ args: ['--rate-auth-burst', '3', '--rate-auth-per-min', '6'] });
    const remaining = [];
    for (let i = 0; i < 3; i++) {
      const r = await options(s);
      expectStatus(r, 200, null, `request ${i + 1} of the burst`);
      remaining.push(assertRateHeaders(r, 6, `request ${i + 1}`).remaining);
    }
    assert.deepEqual(remaining, [2, 1, 0], 'RateLimit r counts down');
    const over = await options(s);
    expectStatus(over, 429, 'rate_limited', 'request 4');
    const ra = over.headers.get('retry-after');
    assert.match(ra || '', /^\d+$/, `Retry-After is whole seconds: ${ra}`);
    assert.ok(Number(ra) >= 1 && Number(ra) <= 10, `Retry-After ${ra} is about one emission interval (10 s)`);
    const h = assertRateHeaders(over, 6, '429');
    assert.equal(h.remaining, 0);

    // Other auth routes share the per-IP bucket (login here; no hashing happens).
    expectStatus(await login(s, { email: 'a@example.test', password: 'whatever-123' }), 429, 'rate_limited', 'login while limited');
    // A client that claims to be someone else is still 127.0.0.1.
    for (const [i, xff] of ['10.1.2.3', '203.0.113.9, 10.1.2.3'].entries()) {
      const r = await options(s, { 'X-Forwarded-For': xff, 'X-Real-IP': '10.9.9.9', Forwarded: 'for=10.8.8.8', 'X-Request-Id': `spoof-${i}` });
      expectStatus(r, 429, 'rate_limited', `spoofed X-Forwarded-For ${xff} from an untrusted peer`);
      assert.equal((await accessLog(s, `spoof-${i}`)).ip, '127.0.0.1', 'the log has the real peer address');
    }
    // Non-auth routes are not in this bucket.
    const health = await fetch(`${s.url}/health`);
    assert.equal(health.status, 200);
    await health.arrayBuffer();
  });

  test('a client under the limit never gets 429 (requests spaced wider than the emission interval)', async () => {
    // 600/min is one every 100 ms; a burst of 2; requests every 150 ms.
    const s = await startServer({ args: ['--rate-auth-burst', '2', '--rate-auth-per-min', '600'] });
    const statuses = [];
    for (let i = 0; i < 12; i++) {
      const r = await options(s);
      statuses.push(r.status);
      await sleep(150);
    }
    assert.deepEqual(statuses, Array(12).fill(200), `statuses: ${statuses}`);
    // And the same server does limit a burst.
    const burst = await Promise.all([1, 2, 3, 4].map(() => options(s)));
    assert.ok(
      burst.some((r) => r.status === 429),
      `4 at once with a burst of 2: ${burst.map((r) => r.status)}`,
    );
  });

  test('with --trusted-proxies 127.0.0.1 X-Forwarded-For is believed: each client address has its own bucket', async () => {
    const s = await startServer({ args: ['--rate-auth-burst', '3', '--rate-auth-per-min', '6', '--trusted-proxies', '127.0.0.1'] });
    for (let i = 0; i < 3; i++) expectStatus(await options(s, { 'X-Forwarded-For': '198.51.100.1' }), 200, null, `client 1 request ${i + 1}`);
    expectStatus(await options(s, { 'X-Forwarded-For': '198.51.100.1' }), 429, 'rate_limited', 'client 1 request 4');
    expectStatus(await options(s, { 'X-Forwarded-For': '198.51.100.2', 'X-Request-Id': 'xff-client-2' }), 200, null, 'client 2 has its own bucket');
    assert.equal((await accessLog(s, 'xff-client-2')).ip, '198.51.100.2', 'the log has the forwarded client address');
    // The client cannot escape by prepending an address: the rightmost
    // address not a trusted proxy is the client.
    expectStatus(await options(s, { 'X-Forwarded-For': '203.0.113.77, 198.51.100.1' }), 429, 'rate_limited', 'a prepended fake address');
    // Through a chain of trusted proxies the client is still found.
    expectStatus(await options(s, { 'X-Forwarded-For': '198.51.100.1, 127.0.0.1' }), 429, 'rate_limited', 'client 1 behind two proxies');
    // The proxy's own requests (no X-Forwarded-For) are the proxy's bucket.
    expectStatus(await options(s), 200, null, 'the proxy itself');
  });
});

describe('login back-off (--login-free-failures 2)', () => {
  test('after 2 failed logins the next attempt is 429 with Retry-After even with the right password', async () => {
    const s = await startServer({ args: ['--rate-auth-burst', '1000', '--rate-auth-per-min', '100000', '--login-free-failures', '2'] });
    const { email, password } = await signup(s);
    for (let i = 0; i < 2; i++) expectStatus(await login(s, { email, password: `wrong-password-${i}` }), 401, 'invalid_credentials', `failure ${i + 1}`);
    const r = await login(s, { email, password });
    expectStatus(r, 429, 'rate_limited', 'the right password right after 2 failures');
    assert.match(r.headers.get('retry-after') || '', /^\d+$/, 'Retry-After');
    assert.equal(r.body.access_token, undefined);
  });

  test('the back-off is temporary: after waiting Retry-After seconds the right password works (never a permanent lock-out)', async () => {
    const s = await startServer({ args: ['--rate-auth-burst', '1000', '--rate-auth-per-min', '100000', '--login-free-failures', '2'] });
    const { email, password } = await signup(s);
    // Fail until a back-off of at least 2 s is in force (1 s, then 2 s:
    // a 1 s back-off can run out before a loaded machine sends the next
    // request). Attempts during a back-off are refused unseen and do not count.
    let limited = null;
    let backoffs = 0;
    for (let i = 0; i < 12 && !limited; i++) {
      const r = await login(s, { email, password: `wrong-password-${i}` });
      if (r.status === 429) {
        backoffs++;
        const ra = Number(r.headers.get('retry-after'));
        assert.ok(ra >= 1 && ra <= 8, `an early back-off is short (1 s, doubling): Retry-After ${ra}`);
        if (ra >= 2) limited = r;
        else await sleep(ra * 1000 + 50);
      } else {
        expectStatus(r, 401, 'invalid_credentials', `failure ${i + 1}`);
      }
    }
    assert.ok(limited, `a back-off of 2 s starts after a few failures (${backoffs} back-offs seen)`);
    const wait = Number(limited.headers.get('retry-after'));
    const during = await login(s, { email, password });
    expectStatus(during, 429, 'rate_limited', 'the right password during the back-off');
    await sleep(wait * 1000 + 100);
    const ok = await login(s, { email, password });
    expectStatus(ok, 200, null, 'the right password after Retry-After');
    // A success clears the account's failures: one more failure is free again.
    expectStatus(await login(s, { email, password: 'wrong-again-123' }), 401, 'invalid_credentials', 'a failure after success');
    expectStatus(await login(s, { email, password }), 200, null, 'not blocked by a single failure');
    assertNoSecretsInLogs(s);
  });

  test('the back-off is per account: another account from the same address can still log in', async () => {
    const s = await startServer({ args: ['--rate-auth-burst', '1000', '--rate-auth-per-min', '100000', '--login-free-failures', '2'] });
    const victim = await signup(s);
    const other = await signup(s);
    for (let i = 0; i < 4; i++) await login(s, { email: victim.email, password: `wrong-password-${i}` });
    expectStatus(await login(s, { email: victim.email, password: victim.password }), 429, 'rate_limited', 'the attacked account');
    expectStatus(await login(s, { email: other.email, password: other.password }), 200, null, 'another account from the same IP');
  });
});
