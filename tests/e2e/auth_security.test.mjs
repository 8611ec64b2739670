// The security properties of accounts: refresh-token reuse revokes the
// family, revocation is effective on the very next request (logout, disable,
// demotion), CSRF on the cookie routes, cookie attributes with and without
// TLS, no account enumeration (sign-up, login timing), and no secret in the
// log.
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { accessLog, cleanup, run, startServer, tempDir } from './lib/server.mjs';
import {
  AUTH_TEST_ARGS,
  assertNoSecretsInLogs,
  call,
  cookieValue,
  dbQuery,
  expectStatus,
  login,
  loginAs,
  lociUser,
  makeAdmin,
  newPassword,
  rememberSecret,
  signup,
  signupAndLogin,
  uniqueEmail,
} from './lib/users.mjs';

after(cleanup);

let srv;
before(async () => {
  srv = await startServer({ args: AUTH_TEST_ARGS });
});

const REFRESH_MAX_AGE = 30 * 86400; // refresh_absolute_days default

/**
 * The refresh cookie's attributes, on every Set-Cookie: HttpOnly,
 * SameSite=Strict, Path=/, Max-Age (0 and an empty value when cleared),
 * Secure exactly when TLS (then the __Host- name), and never Domain.
 */
function assertRefreshCookie(line, { tls = false, cleared = false } = {}, what = '') {
  const parts = line.split(';').map((s) => s.trim());
  const [nv, ...attrs] = parts;
  const name = nv.slice(0, nv.indexOf('='));
  const value = nv.slice(nv.indexOf('=') + 1);
  const lower = attrs.map((a) => a.toLowerCase());
  assert.equal(name, tls ? '__Host-loci_refresh' : 'loci_refresh', `${what}: cookie name in ${line}`);
  assert.ok(lower.includes('httponly'), `${what}: HttpOnly in ${line}`);
  assert.ok(lower.includes('samesite=strict'), `${what}: SameSite=Strict in ${line}`);
  assert.ok(attrs.includes('Path=/'), `${what}: Path=/ in ${line}`);
  const ma = attrs.find((a) => /^max-age=/i.test(a));
  assert.ok(ma, `${what}: Max-Age in ${line}`);
  const maxAge = Number(ma.split('=')[1]);
  if (cleared) {
    assert.equal(maxAge, 0, `${what}: a cleared cookie has Max-Age=0`);
    assert.equal(value, '', `${what}: a cleared cookie is empty`);
  } else {
    assert.equal(maxAge, REFRESH_MAX_AGE, `${what}: Max-Age is the session's absolute lifetime`);
    assert.match(value, /^[A-Za-z0-9_-]{43}$/, `${what}: cookie value`);
  }
  assert.equal(lower.includes('secure'), tls, `${what}: Secure ${tls ? 'present with' : 'absent without'} TLS in ${line}`);
  assert.ok(!lower.some((a) => a.startsWith('domain=')), `${what}: no Domain attribute in ${line}`);
}

function onlyCookie(r, what) {
  assert.equal(r.cookies.length, 1, `${what}: exactly one Set-Cookie, got ${JSON.stringify(r.cookies)}`);
  return r.cookies[0];
}

/** Log in with the cookie delivery; the cookie value. */
async function cookieLogin(server, email, password) {
  const r = await login(server, { email, password, delivery: 'cookie' });
  expectStatus(r, 200, null, 'cookie login');
  assertRefreshCookie(onlyCookie(r, 'login'), {}, 'login');
  return { cookie: cookieValue(r.cookies, 'loci_refresh'), accessToken: r.body.access_token };
}

function cookieRefresh(server, cookie, headers = {}, { contentType = 'application/json' } = {}) {
  return call(server, 'POST', '/api/v1/auth/refresh', { body: '{}', headers: { 'Content-Type': contentType, Cookie: `loci_refresh=${cookie}`, ...headers } });
}

describe('refresh token reuse', () => {
  test('presenting a rotated refresh token revokes the whole family: the old and the new token and its access token are dead; an event is recorded', async () => {
    const a = await signupAndLogin(srv);
    const untouched = await loginAs(srv, a.email, a.password);
    const r1 = await call(srv, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: a.refreshToken } });
    expectStatus(r1, 200, null, 'rotate');
    const reuse = await call(srv, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: a.refreshToken } });
    expectStatus(reuse, 401, 'invalid_refresh_token', 'the old token again');
    expectStatus(await call(srv, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: r1.body.refresh_token } }), 401, 'invalid_refresh_token', 'the new token of the same family');
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: r1.body.access_token }), 401, 'unauthorized', 'the access token of the revoked family');
    // Another session of the same user is another family: untouched.
    expectStatus(await untouched.call('GET', '/api/v1/me'), 200, null, 'another session of the user');
    const types = await dbQuery(srv, 'SELECT type FROM events');
    assert.ok(types.includes('auth.refresh_reuse_detected'), `events: ${[...new Set(types)]}`);
    const data = await dbQuery(srv, `SELECT data FROM events WHERE type = 'auth.refresh_reuse_detected' AND user_id = '${a.id}'`);
    assert.equal(data.length, 1);
    assert.equal(JSON.parse(data[0]).session_id, a.sessionId);
    assert.ok(!data[0].includes(a.refreshToken), 'the event holds no token');
    assert.ok(srv.logs().some((l) => l.level === 'warn' && /reuse/.test(l.msg) && l.session_id === a.sessionId), 'a warning in the log names the session');
  });

  test('reuse of a rotated cookie clears the cookie', async () => {
    const { email, password } = await signup(srv);
    const { cookie } = await cookieLogin(srv, email, password);
    const r1 = await cookieRefresh(srv, cookie);
    expectStatus(r1, 200, null, 'rotate by cookie');
    assertRefreshCookie(onlyCookie(r1, 'refresh'), {}, 'refresh');
    const again = await cookieRefresh(srv, cookie);
    expectStatus(again, 401, 'invalid_refresh_token', 'the rotated cookie again');
    assertRefreshCookie(onlyCookie(again, 'failed refresh'), { cleared: true }, 'failed refresh');
    expectStatus(await cookieRefresh(srv, cookieValue(r1.cookies, 'loci_refresh')), 401, 'invalid_refresh_token', 'the family is gone');
  });
});

describe('revocation is effective on the very next request', () => {
  test('logout: the access token of the logged-out session is 401 at once', async () => {
    const a = await signupAndLogin(srv);
    expectStatus(await a.call('GET', '/api/v1/me'), 200, null, 'before');
    const out = await call(srv, 'POST', '/api/v1/auth/logout', { body: { refresh_token: a.refreshToken } });
    assert.equal(out.status, 204);
    expectStatus(await a.call('GET', '/api/v1/me'), 401, 'unauthorized', 'right after logout');
  });

  test('disabled by an admin (PATCH disabled:true): the next request is 401, login fails, API keys die; enabling lets them log in again', async () => {
    const admin = await makeAdmin(srv);
    const u = await signupAndLogin(srv);
    const key = (await u.call('POST', '/api/v1/me/api-keys', { body: { name: 'k' } })).body.key;
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: key }), 200, null, 'key before');
    const p = await admin.call('PATCH', `/api/v1/admin/users/${u.id}`, { body: { disabled: true } });
    expectStatus(p, 200, null, 'disable');
    assert.equal(p.body.disabled, true);
    expectStatus(await u.call('GET', '/api/v1/me'), 401, 'unauthorized', 'access token of a disabled user');
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: key }), 401, 'unauthorized', 'API key of a disabled user');
    expectStatus(await call(srv, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: u.refreshToken } }), 401, 'invalid_refresh_token', 'refresh of a disabled user');
    expectStatus(await login(srv, { email: u.email, password: u.password }), 401, 'invalid_credentials', 'login of a disabled user');
    expectStatus(await admin.call('PATCH', `/api/v1/admin/users/${u.id}`, { body: { disabled: false } }), 200, null, 'enable');
    expectStatus(await login(srv, { email: u.email, password: u.password }), 200, null, 'login after enabling');
  });

  test('disabled with `loci user disable`: the next request is 401; `loci user enable` undoes it', async () => {
    const u = await signupAndLogin(srv);
    const r = await lociUser(srv, ['disable', u.email]);
    assert.match(r.stdout, /disable/);
    expectStatus(await u.call('GET', '/api/v1/me'), 401, 'unauthorized', 'after loci user disable');
    expectStatus(await login(srv, { email: u.email, password: u.password }), 401, 'invalid_credentials', 'login while disabled');
    await lociUser(srv, ['enable', u.email]);
    expectStatus(await login(srv, { email: u.email, password: u.password }), 200, null, 'after loci user enable');
    await lociUser(srv, ['disable', uniqueEmail('nobody')], { expectCode: 1 });
  });

  test('a demoted admin: the next admin request is refused (403 with their API key or a refreshed token; the old access token is dead)', async () => {
    const boss = await makeAdmin(srv);
    const demoted = await makeAdmin(srv);
    const key = (await demoted.call('POST', '/api/v1/me/api-keys', { body: { name: 'admin-key', scopes: ['read', 'write'] } })).body.key;
    expectStatus(await demoted.call('GET', '/api/v1/admin/users'), 200, null, 'admin before');
    expectStatus(await call(srv, 'GET', '/api/v1/admin/users', { token: key }), 200, null, 'admin key before');
    const p = await boss.call('PATCH', `/api/v1/admin/users/${demoted.id}`, { body: { role: 'user' } });
    expectStatus(p, 200, null, 'demote');
    assert.equal(p.body.role, 'user');

    expectStatus(await call(srv, 'GET', '/api/v1/admin/users', { token: key }), 403, 'forbidden', "the demoted admin's API key on an admin route");
    // A role change ends every access token (token_version): the old one is 401 (not merely 403).
    expectStatus(await demoted.call('GET', '/api/v1/admin/users'), 401, 'unauthorized', "the demoted admin's old access token");
    const r = await call(srv, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: demoted.refreshToken } });
    expectStatus(r, 200, null, 'the session goes on');
    expectStatus(await call(srv, 'GET', '/api/v1/admin/users', { token: r.body.access_token }), 403, 'forbidden', 'a fresh token of the demoted admin on an admin route');
    const me = await call(srv, 'GET', '/api/v1/me', { token: r.body.access_token });
    assert.equal(me.body.role, 'user');
  });
});

describe('CSRF on the cookie-authenticated routes', () => {
  test('cross-site refresh by cookie is 403 csrf_failed (Origin or Sec-Fetch-Site); text/plain is 415; same-origin works', async () => {
    const { email, password } = await signup(srv);
    let { cookie } = await cookieLogin(srv, email, password);
    const self = `http://127.0.0.1:${srv.port}`;

    for (const headers of [
      { Origin: 'https://evil.example' },
      { Origin: 'null' },
      { Origin: `${self}.evil.example` },
      { Origin: `https://127.0.0.1:${srv.port}` },
      { 'Sec-Fetch-Site': 'cross-site' },
      { 'Sec-Fetch-Site': 'same-site' },
      { 'Sec-Fetch-Site': 'cross-site', Origin: self },
    ]) {
      const r = await cookieRefresh(srv, cookie, headers);
      expectStatus(r, 403, 'csrf_failed', `refresh by cookie with ${JSON.stringify(headers)}`);
      assert.deepEqual(r.cookies, [], 'a refused request leaves the cookie alone');
    }
    const plain = await cookieRefresh(srv, cookie, {}, { contentType: 'text/plain' });
    expectStatus(plain, 415, 'unsupported_media_type', 'text/plain (a "simple" cross-site request)');
    const form = await cookieRefresh(srv, cookie, { Origin: 'https://evil.example' }, { contentType: 'application/x-www-form-urlencoded' });
    expectStatus(form, 415, 'unsupported_media_type', 'a form post');

    // The refused attempts did not use up the token: same-origin works.
    const noOrigin = await cookieRefresh(srv, cookie);
    expectStatus(noOrigin, 200, null, 'no Origin (not a browser)');
    assertRefreshCookie(onlyCookie(noOrigin, 'same-origin refresh'), {}, 'same-origin refresh');
    cookie = cookieValue(noOrigin.cookies, 'loci_refresh');
    const sameOrigin = await cookieRefresh(srv, cookie, { Origin: self, 'Sec-Fetch-Site': 'same-origin' });
    expectStatus(sameOrigin, 200, null, 'Origin equal to our own origin (Host matches)');
    assertRefreshCookie(onlyCookie(sameOrigin, 'same-origin refresh'), {}, 'same-origin refresh 2');
    cookie = cookieValue(sameOrigin.cookies, 'loci_refresh');

    // Logout by cookie is guarded the same way, and a refused one ends nothing.
    const evilOut = await call(srv, 'POST', '/api/v1/auth/logout', { body: '{}', headers: { 'Content-Type': 'application/json', Cookie: `loci_refresh=${cookie}`, Origin: 'https://evil.example' } });
    expectStatus(evilOut, 403, 'csrf_failed', 'cross-site logout');
    const still = await cookieRefresh(srv, cookie);
    expectStatus(still, 200, null, 'the session survived the cross-site logout');
    cookie = cookieValue(still.cookies, 'loci_refresh');
    const out = await call(srv, 'POST', '/api/v1/auth/logout', { body: '{}', headers: { 'Content-Type': 'application/json', Cookie: `loci_refresh=${cookie}`, Origin: self } });
    assert.equal(out.status, 204, out.text);
    assertRefreshCookie(onlyCookie(out, 'logout'), { cleared: true }, 'logout');
    expectStatus(await cookieRefresh(srv, cookie), 401, 'invalid_refresh_token', 'after logout');
  });

  test('with --public-url the configured origin is our own origin too', async () => {
    const s = await startServer({ args: [...AUTH_TEST_ARGS, '--public-url', 'https://loci.example.com'] });
    const { email, password } = await signup(s);
    const { cookie } = await cookieLogin(s, email, password);
    const ok = await cookieRefresh(s, cookie, { Origin: 'https://loci.example.com', 'Sec-Fetch-Site': 'same-origin' });
    expectStatus(ok, 200, null, 'Origin equal to public_url');
    expectStatus(await cookieRefresh(s, cookieValue(ok.cookies, 'loci_refresh'), { Origin: 'https://evil.example' }), 403, 'csrf_failed', 'a foreign Origin');
    assertNoSecretsInLogs(s);
  });

  test('a refresh token in the body is not an ambient credential: it works from any origin', async () => {
    const a = await signupAndLogin(srv);
    const r = await call(srv, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: a.refreshToken }, headers: { Origin: 'https://evil.example' } });
    expectStatus(r, 200, null, 'body token with a foreign Origin');
  });

  test('logout-all clears the cookie', async () => {
    const a = await signupAndLogin(srv);
    const r = await a.call('POST', '/api/v1/auth/logout-all', { body: {} });
    assert.equal(r.status, 204);
    assertRefreshCookie(onlyCookie(r, 'logout-all'), { cleared: true }, 'logout-all');
  });
});

/** One HTTPS request accepting the self-signed certificate. */
function httpsCall(url, method, path, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const req = httpsRequest(`${url}${path}`, { method, headers: h, rejectUnauthorized: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch {
          data = null;
        }
        const cookies = res.headers['set-cookie'] || [];
        for (const c of cookies) rememberSecret(c.split(';')[0].split('=').slice(1).join('='));
        if (data?.access_token) rememberSecret(data.access_token);
        resolve({ status: res.statusCode, headers: res.headers, text, body: data, cookies });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('cookies with TLS', () => {
  test('over HTTPS the cookie is __Host-loci_refresh with Secure; the plain name is not accepted there', async () => {
    const dir = tempDir('loci-tls-');
    const cert = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    const gen = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', keyFile, '-out', cert]);
    assert.equal(gen.code, 0, `openssl: ${gen.stderr}`);
    const s = await startServer({ args: [...AUTH_TEST_ARGS, '--tls-cert', cert, '--tls-key', keyFile] });
    assert.match(s.url, /^https:/);
    const email = uniqueEmail('tls');
    const password = newPassword();
    expectStatus(await httpsCall(s.url, 'POST', '/api/v1/auth/signup', { body: { email, password } }), 202, null, 'signup over TLS');
    const l = await httpsCall(s.url, 'POST', '/api/v1/auth/login', { body: { email, password } });
    assert.equal(l.status, 200, l.text);
    assert.equal(l.cookies.length, 1, JSON.stringify(l.cookies));
    assertRefreshCookie(l.cookies[0], { tls: true }, 'TLS login');
    const value = cookieValue(l.cookies, '__Host-loci_refresh');

    const wrongName = await httpsCall(s.url, 'POST', '/api/v1/auth/refresh', { body: {}, headers: { Cookie: `loci_refresh=${value}` } });
    assert.equal(wrongName.status, 401, 'the non-__Host- name is not read over TLS');
    const r = await httpsCall(s.url, 'POST', '/api/v1/auth/refresh', { body: {}, headers: { Cookie: `__Host-loci_refresh=${value}` } });
    assert.equal(r.status, 200, r.text);
    assertRefreshCookie(r.cookies[0], { tls: true }, 'TLS refresh');
    const evil = await httpsCall(s.url, 'POST', '/api/v1/auth/refresh', { body: {}, headers: { Cookie: `__Host-loci_refresh=${cookieValue(r.cookies, '__Host-loci_refresh')}`, Origin: 'https://evil.example' } });
    assert.equal(evil.status, 403, 'CSRF over TLS');
    const out = await httpsCall(s.url, 'POST', '/api/v1/auth/logout', { body: {}, headers: { Cookie: `__Host-loci_refresh=${cookieValue(r.cookies, '__Host-loci_refresh')}` } });
    assert.equal(out.status, 204);
    assertRefreshCookie(out.cookies[0], { tls: true, cleared: true }, 'TLS logout');
    assertNoSecretsInLogs(s);
  });
});

describe('no account enumeration', () => {
  test('sign-up with an existing address answers exactly like a new one and changes nothing', async () => {
    const email = uniqueEmail('taken');
    const first = await signup(srv, { email });
    const secondPassword = newPassword();
    const second = await call(srv, 'POST', '/api/v1/auth/signup', { body: { email, password: secondPassword, display_name: 'Mallory' } });
    const fresh = await call(srv, 'POST', '/api/v1/auth/signup', { body: { email: uniqueEmail('new'), password: newPassword() } });
    assert.equal(second.status, first.response.status);
    assert.deepEqual(second.body, first.response.body, 'same body for an existing address');
    assert.deepEqual(second.body, fresh.body, 'same body as for a new address');
    const upper = await call(srv, 'POST', '/api/v1/auth/signup', { body: { email: email.toUpperCase(), password: newPassword() } });
    assert.equal(upper.status, 202);
    assert.deepEqual(upper.body, fresh.body);
    const l = await login(srv, { email, password: first.password });
    expectStatus(l, 200, null, 'the original password still works');
    assert.equal(l.body.user.display_name, '', 'the display name was not changed by the second sign-up');
    expectStatus(await login(srv, { email, password: secondPassword }), 401, 'invalid_credentials', "the second sign-up's password does not work");
    const rows = await dbQuery(srv, `SELECT COUNT(*) FROM users WHERE email_norm = '${email}'`);
    assert.deepEqual(rows, ['1'], 'one account');
  });

  test('a failed login for an unknown address takes about as long as a wrong password (median ratio 0.5-2x)', async (t) => {
    const { email } = await signup(srv);
    // The server's own duration (access log, by request id) of each
    // attempt; the two kinds alternate so that load on the machine hits
    // both alike, and each pair is compared.
    let n = 0;
    const time = async (body) => {
      const rid = `timing-${process.pid}-${n++}`;
      const r = await call(srv, 'POST', '/api/v1/auth/login', { body, headers: { 'X-Request-Id': rid } });
      assert.equal(r.status, 401, r.text);
      return (await accessLog(srv, rid)).duration_ms;
    };
    const unknownBody = () => ({ email: uniqueEmail('nobody'), password: 'wrong-password-1' });
    const wrongBody = { email, password: 'wrong-password-1' };
    await time(unknownBody()); // warm up (the burn hash is made on first use)
    await time(wrongBody);
    const unknown = [];
    const wrong = [];
    for (let i = 0; i < 7; i++) {
      unknown.push(await time(unknownBody()));
      wrong.push(await time(wrongBody));
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const ratio = median(unknown) / median(wrong);
    const pairRatio = median(unknown.map((u, i) => u / wrong[i]));
    t.diagnostic(`login failure medians (server-side): unknown address ${median(unknown).toFixed(1)} ms, wrong password ${median(wrong).toFixed(1)} ms, ratio ${ratio.toFixed(2)}, median pair ratio ${pairRatio.toFixed(2)}`);
    assert.ok(
      (ratio >= 0.5 && ratio <= 2) || (pairRatio >= 0.5 && pairRatio <= 2),
      `unknown ${unknown.map((x) => x.toFixed(0))} ms vs wrong password ${wrong.map((x) => x.toFixed(0))} ms: median ratio ${ratio.toFixed(2)}, median pair ratio ${pairRatio.toFixed(2)}`,
    );
    assert.ok(median(wrong) > 5, `a wrong password costs a real hash (${median(wrong).toFixed(1)} ms)`);
  });
});

describe('logs', () => {
  test("no password, token or API key used in this file is in the server's log", () => {
    assertNoSecretsInLogs(srv);
  });
});
