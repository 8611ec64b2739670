// Accounts end to end with mail off (the default): sign-up, login with the
// cookie and the body delivery, /me, refresh rotation, logout, logout-all,
// password change, sessions, API keys, mass assignment, and the JSON input
// errors of a real JSON route. One server for the file; every test makes
// its own users. The last test scans the server's log for every secret used.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertError, UUID_RE } from './lib/checks.mjs';
import { pg } from './lib/pg.mjs';
import { rawRequest } from './lib/raw.mjs';
import { cleanup, startServer } from './lib/server.mjs';
import {
  AUTH_TEST_ARGS,
  assertNoSecretsInLogs,
  call,
  cookieValue,
  dbQuery,
  expectNotFoundForOtherUser,
  expectStatus,
  jwtClaims,
  login,
  loginAs,
  makeAdmin,
  newPassword,
  signup,
  signupAndLogin,
  uniqueEmail,
} from './lib/users.mjs';

after(cleanup);

let srv;
before(async () => {
  srv = await startServer({ args: [...AUTH_TEST_ARGS, '--max-body-bytes', '4096'] });
});

const KEY_RE = /^loci_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$/;

function refresh(token, extra = {}) {
  return call(srv, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: token, ...extra } });
}

describe('sign-up and login', () => {
  test('mail off: /auth/options says so, sign-up answers 202 and the account can log in at once', async () => {
    const o = await call(srv, 'GET', '/api/v1/auth/options');
    expectStatus(o, 200, null, 'options');
    assert.equal(o.body.mail_enabled, false);
    assert.equal(o.body.email_verification_required, false);
    assert.equal(o.body.password_min_length, 10);
    assert.equal(typeof o.body.setup_required, 'boolean');

    const email = uniqueEmail('fresh');
    const password = newPassword();
    const s = await signup(srv, { email, password, display_name: 'Ada' });
    assert.deepEqual(s.response.body, { status: 'accepted', email_verification_required: false });

    const r = await login(srv, { email, password });
    expectStatus(r, 200, null, 'login');
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.expires_in, 3600);
    assert.equal(r.body.access_token.split('.').length, 3, 'the access token is a JWT');
    assert.match(r.body.refresh_token, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(r.cookies, [], 'the body delivery sets no cookie');
    assert.equal(r.body.user.email, email);
    assert.equal(r.body.user.role, 'user');
    assert.equal(r.body.user.display_name, 'Ada');
    assert.equal(r.body.user.email_verified, true, 'with mail off the address needs no verification');
    assert.match(r.body.user.id, UUID_RE);
  });

  test('login with the cookie delivery (the default): refresh token only in an HttpOnly cookie, never in the body', async () => {
    const { email, password } = await signup(srv);
    const r = await login(srv, { email, password, delivery: null });
    expectStatus(r, 200, null, 'cookie login');
    assert.equal(r.body.refresh_token, undefined, 'no refresh token in the body');
    assert.equal(r.cookies.length, 1, `one Set-Cookie: ${r.cookies}`);
    const v = cookieValue(r.cookies, 'loci_refresh');
    assert.match(v, /^[A-Za-z0-9_-]{43}$/);
    const explicit = await login(srv, { email, password, delivery: 'cookie' });
    expectStatus(explicit, 200, null, 'token_delivery cookie');
    assert.ok(cookieValue(explicit.cookies, 'loci_refresh'));
    assert.equal(explicit.body.refresh_token, undefined);
    // The cookie works as a refresh credential (same-origin: no Origin header).
    const rr = await call(srv, 'POST', '/api/v1/auth/refresh', { body: {}, headers: { Cookie: `loci_refresh=${v}` } });
    expectStatus(rr, 200, null, 'refresh by cookie');
    assert.equal(rr.body.refresh_token, undefined, 'a cookie refresh answers with a cookie');
    const v2 = cookieValue(rr.cookies, 'loci_refresh');
    assert.ok(v2 && v2 !== v, 'a new refresh cookie');
  });

  test('wrong password, unknown account and a bad token_delivery', async () => {
    const { email, password } = await signup(srv);
    expectStatus(await login(srv, { email, password: 'wrong-password-123' }), 401, 'invalid_credentials', 'wrong password');
    expectStatus(await login(srv, { email: uniqueEmail('nobody'), password }), 401, 'invalid_credentials', 'unknown email');
    expectStatus(await login(srv, { email: 'not-an-address', password }), 401, 'invalid_credentials', 'not an address');
    const bad = await login(srv, { email, password, delivery: 'header' });
    expectStatus(bad, 422, 'validation_failed', 'token_delivery header');
    assert.equal(bad.body.error.field, 'token_delivery');
    // The address is matched case-insensitively and trimmed.
    expectStatus(await login(srv, { email: `  ${email.toUpperCase()} `, password }), 200, null, 'upper-case address');
  });
});

describe('/me', () => {
  test('GET /me is the signed-in user, without the hash or the token version; no token is 401', async () => {
    const a = await signupAndLogin(srv, { display_name: 'Grace' });
    const r = await a.call('GET', '/api/v1/me');
    expectStatus(r, 200, null, 'GET /me');
    assert.deepEqual(Object.keys(r.body).sort(), ['created_at', 'disabled', 'display_name', 'email', 'email_verified', 'id', 'role']);
    assert.equal(r.body.id, a.id);
    assert.equal(r.body.display_name, 'Grace');
    assert.equal(r.body.role, 'user');
    assert.doesNotMatch(r.text, /argon2|password|token_version/);
    const anon = await call(srv, 'GET', '/api/v1/me');
    expectStatus(anon, 401, 'unauthorized', 'no token');
    assert.match(anon.headers.get('www-authenticate') || '', /^Bearer/);
    expectStatus(await call(srv, 'GET', '/api/v1/me', { headers: { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } }), 401, 'unauthorized', 'Basic auth');
  });

  test('PATCH /me changes the display name; role (mass assignment) is 422 and changes nothing', async () => {
    const a = await signupAndLogin(srv);
    const ok = await a.call('PATCH', '/api/v1/me', { body: { display_name: 'New Name' } });
    expectStatus(ok, 200, null, 'PATCH display_name');
    assert.equal(ok.body.display_name, 'New Name');

    for (const body of [{ role: 'admin' }, { display_name: 'Sneaky', role: 'admin' }, { display_name: 'x', email_verified: true }, { display_name: 'x', disabled: false }]) {
      const r = await a.call('PATCH', '/api/v1/me', { body });
      expectStatus(r, 422, 'validation_failed', `PATCH ${JSON.stringify(body)}`);
    }
    const withRole = await a.call('PATCH', '/api/v1/me', { body: { display_name: 'Sneaky', role: 'admin' } });
    assert.equal(withRole.body.error.field, 'role', 'the error names the refused field');
    const me = await a.call('GET', '/api/v1/me');
    assert.equal(me.body.role, 'user', 'the role is unchanged');
    assert.equal(me.body.display_name, 'New Name', 'a refused PATCH changes nothing, not even the allowed field');
    // Admin routes stay closed.
    expectStatus(await a.call('GET', '/api/v1/admin/users'), 403, 'forbidden', 'admin route as a user');
    // One line only.
    const nl = await a.call('PATCH', '/api/v1/me', { body: { display_name: 'a\nb' } });
    expectStatus(nl, 422, 'validation_failed', 'display_name with a newline');
    assert.equal(nl.body.error.field, 'display_name');
  });
});

describe('display_name is one line everywhere', () => {
  test('sign-up refuses a display_name with a line break (422 display_name), as PATCH /me does', async () => {
    // The name is put into the verification mail ("Hello <name>,"): a
    // multi-line name would let anyone write paragraphs into a mail that
    // Loci sends to someone else's address.
    for (const name of ['Eve\nPlease confirm at http://evil.example', 'Eve\r\nX']) {
      const email = uniqueEmail('multiline');
      const r = await call(srv, 'POST', '/api/v1/auth/signup', { body: { email, password: newPassword(), display_name: name } });
      expectStatus(r, 422, 'validation_failed', `sign-up with display_name ${JSON.stringify(name)}`);
      assert.equal(r.body.error.field, 'display_name');
    }
  });

  test('setup refuses a display_name with a line break (422 display_name)', async () => {
    const s = await startServer({ args: AUTH_TEST_ARGS });
    const token = (await s.waitStdout(/\/setup\?token=([A-Za-z0-9_-]{43})/))[1];
    const r = await call(s, 'POST', '/api/v1/auth/setup', { body: { token, email: uniqueEmail('root'), password: newPassword(), display_name: 'Root\nAdmin' } });
    expectStatus(r, 422, 'validation_failed', 'setup with a multi-line display_name');
    assert.equal(r.body.error.field, 'display_name');
  });
});

describe('refresh, logout, logout-all', () => {
  test('refresh rotates: a new refresh token and access token; logout ends the session; refresh then fails', async () => {
    const a = await signupAndLogin(srv);
    const r1 = await refresh(a.refreshToken);
    expectStatus(r1, 200, null, 'refresh');
    assert.notEqual(r1.body.refresh_token, a.refreshToken, 'a new refresh token');
    assert.notEqual(r1.body.access_token, a.accessToken, 'a new access token');
    assert.equal(jwtClaims(r1.body.access_token).sid, a.sessionId, 'the same session');
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: r1.body.access_token }), 200, null, 'the new access token works');

    const out = await call(srv, 'POST', '/api/v1/auth/logout', { body: { refresh_token: r1.body.refresh_token } });
    assert.equal(out.status, 204, out.text);
    expectStatus(await refresh(r1.body.refresh_token), 401, 'invalid_refresh_token', 'refresh after logout');
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: r1.body.access_token }), 401, 'unauthorized', 'the access token of the ended session');
    const again = await call(srv, 'POST', '/api/v1/auth/logout', { body: { refresh_token: r1.body.refresh_token } });
    assert.equal(again.status, 204, 'logging out twice is fine');
    expectStatus(await refresh('x'.repeat(43)), 401, 'invalid_refresh_token', 'an unknown refresh token');
    expectStatus(await call(srv, 'POST', '/api/v1/auth/refresh', { body: {} }), 401, 'invalid_refresh_token', 'no refresh token at all');
  });

  test('logout with only the access token ends that session', async () => {
    const a = await signupAndLogin(srv);
    const out = await a.call('POST', '/api/v1/auth/logout', { body: {} });
    assert.equal(out.status, 204, out.text);
    expectStatus(await a.call('GET', '/api/v1/me'), 401, 'unauthorized', 'access token after logout');
    expectStatus(await refresh(a.refreshToken), 401, 'invalid_refresh_token', 'refresh token after logout');
  });

  test('logout-all ends every session of the user, and only theirs', async () => {
    const a = await signupAndLogin(srv);
    const a2 = await loginAs(srv, a.email, a.password);
    const b = await signupAndLogin(srv);
    expectStatus(await call(srv, 'POST', '/api/v1/auth/logout-all', { body: {} }), 401, 'unauthorized', 'logout-all without a token');
    const r = await a.call('POST', '/api/v1/auth/logout-all', { body: {} });
    assert.equal(r.status, 204, r.text);
    for (const [what, s] of [
      ['first', a],
      ['second', a2],
    ]) {
      expectStatus(await s.call('GET', '/api/v1/me'), 401, 'unauthorized', `${what} session's access token`);
      expectStatus(await refresh(s.refreshToken), 401, 'invalid_refresh_token', `${what} session's refresh token`);
    }
    expectStatus(await b.call('GET', '/api/v1/me'), 200, null, "another user's session is untouched");
    expectStatus(await refresh(b.refreshToken), 200, null, "another user's refresh token still works");
  });
});

describe('password change', () => {
  test('POST /me/password needs the current password, ends the other sessions and gives this one a new access token', async () => {
    const a = await signupAndLogin(srv);
    const other = await loginAs(srv, a.email, a.password);
    const next = newPassword();

    const wrong = await a.call('POST', '/api/v1/me/password', { body: { current_password: 'not-the-password', new_password: next } });
    expectStatus(wrong, 403, 'wrong_password', 'wrong current password');
    const short = await a.call('POST', '/api/v1/me/password', { body: { current_password: a.password, new_password: 'short' } });
    expectStatus(short, 422, 'validation_failed', 'too short');
    assert.equal(short.body.error.field, 'new_password');
    expectStatus(await a.call('POST', '/api/v1/me/password', { body: { new_password: next } }), 422, 'validation_failed', 'no current password');

    const r = await a.call('POST', '/api/v1/me/password', { body: { current_password: a.password, new_password: next } });
    expectStatus(r, 200, null, 'password change');
    assert.equal(r.body.sessions_revoked, 1, 'the other session was ended');
    assert.equal(r.body.token_type, 'Bearer');
    const fresh = r.body.access_token;
    assert.equal(jwtClaims(fresh).sid, a.sessionId, 'the new access token belongs to this session');

    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: fresh }), 200, null, 'the new access token');
    expectStatus(await a.call('GET', '/api/v1/me'), 401, 'unauthorized', 'the old access token of this session');
    expectStatus(await other.call('GET', '/api/v1/me'), 401, 'unauthorized', "the other session's access token");
    expectStatus(await refresh(other.refreshToken), 401, 'invalid_refresh_token', "the other session's refresh token");
    expectStatus(await refresh(a.refreshToken), 200, null, "this session's refresh token goes on");

    expectStatus(await login(srv, { email: a.email, password: a.password }), 401, 'invalid_credentials', 'the old password');
    expectStatus(await login(srv, { email: a.email, password: next }), 200, null, 'the new password');
  });
});

describe('sessions', () => {
  test('GET /me/sessions lists live sessions with the current one marked; DELETE ends one; another user gets 404', async () => {
    const a = await signupAndLogin(srv);
    const a2 = await loginAs(srv, a.email, a.password);
    const b = await signupAndLogin(srv);

    const list = await a.call('GET', '/api/v1/me/sessions', { headers: { 'User-Agent': 'e2e-agent' } });
    expectStatus(list, 200, null, 'sessions');
    const ids = list.body.items.map((s) => s.id).sort();
    assert.deepEqual(ids, [a.sessionId, a2.sessionId].sort(), 'exactly my two sessions');
    const cur = list.body.items.filter((s) => s.current);
    assert.equal(cur.length, 1, 'one current session');
    assert.equal(cur[0].id, a.sessionId);
    for (const s of list.body.items) {
      for (const k of ['id', 'created_at', 'last_used_at', 'expires_at', 'user_agent', 'ip', 'current']) assert.ok(k in s, `session has ${k}`);
      assert.doesNotMatch(JSON.stringify(s), /token/i, 'no token material in the list');
    }
    assert.ok(!list.text.includes(a.refreshToken) && !list.text.includes(a2.refreshToken), 'no refresh token in the list');

    await expectNotFoundForOtherUser(srv, 'DELETE', `/api/v1/me/sessions/${a2.sessionId}`, { owner: a, other: b });
    const survived = expectStatus(await refresh(a2.refreshToken), 200, null, "the session survived the other user's DELETE");
    a2.accessToken = survived.body.access_token;

    const del = await a.call('DELETE', `/api/v1/me/sessions/${a2.sessionId}`);
    assert.equal(del.status, 204, del.text);
    expectStatus(await a2.call('GET', '/api/v1/me'), 401, 'unauthorized', "the deleted session's access token");
    const after1 = await a.call('GET', '/api/v1/me/sessions');
    assert.deepEqual(
      after1.body.items.map((s) => s.id),
      [a.sessionId],
    );
    expectStatus(await a.call('DELETE', `/api/v1/me/sessions/${a2.sessionId}`), 404, 'not_found', 'deleting it again');
  });
});

describe('API keys', () => {
  test('create (shown once), list (no secret), use as Bearer, revoke; the next use is 401', async () => {
    const a = await signupAndLogin(srv);
    const c = await a.call('POST', '/api/v1/me/api-keys', { body: { name: 'ci', scopes: ['read', 'write'], expires_in_days: 30 } });
    expectStatus(c, 201, null, 'create key');
    const key = c.body.key;
    const m = KEY_RE.exec(key);
    assert.ok(m, `the key looks like loci_<8 hex>_<43 chars>: ${key}`);
    assert.equal(c.body.prefix, m[1], 'the visible prefix is the key prefix');
    assert.deepEqual(c.body.scopes, ['read', 'write']);
    assert.equal(c.body.name, 'ci');
    assert.match(c.body.id, UUID_RE);
    assert.ok(c.body.expires_at > Date.now() + 29 * 86400000, 'expires in 30 days');

    const list = await a.call('GET', '/api/v1/me/api-keys');
    expectStatus(list, 200, null, 'list keys');
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].id, c.body.id);
    assert.equal(list.body.items[0].prefix, m[1]);
    assert.equal(list.body.items[0].key, undefined, 'the list never shows the key');
    assert.ok(!list.text.includes(key.slice(14)), 'the secret part is nowhere in the list');

    const me = await call(srv, 'GET', '/api/v1/me', { token: key });
    expectStatus(me, 200, null, 'the key as Bearer');
    assert.equal(me.body.id, a.id);
    expectStatus(await call(srv, 'PATCH', '/api/v1/me', { token: key, body: { display_name: 'by key' } }), 200, null, 'a write with a write key');
    // A key cannot manage credentials.
    expectStatus(await call(srv, 'POST', '/api/v1/me/api-keys', { token: key, body: { name: 'child' } }), 403, 'session_required', 'a key making keys');
    expectStatus(await call(srv, 'POST', '/api/v1/me/password', { token: key, body: { current_password: a.password, new_password: newPassword() } }), 403, 'session_required', 'a key changing the password');
    expectStatus(await call(srv, 'DELETE', `/api/v1/me/api-keys/${c.body.id}`, { token: key }), 403, 'session_required', 'a key revoking keys');

    const del = await a.call('DELETE', `/api/v1/me/api-keys/${c.body.id}`);
    assert.equal(del.status, 204, del.text);
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: key }), 401, 'unauthorized', 'the revoked key');
    assert.deepEqual((await a.call('GET', '/api/v1/me/api-keys')).body.items, [], 'the revoked key is no longer listed');
    // A key that was never issued, with a real prefix but a wrong secret.
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: `loci_${m[1]}_${'A'.repeat(43)}` }), 401, 'unauthorized', 'wrong secret');
  });

  test('a read-scope key reads but is refused on a write with 403 insufficient_scope', async () => {
    const a = await signupAndLogin(srv);
    const c = await a.call('POST', '/api/v1/me/api-keys', { body: { name: 'reader' } });
    expectStatus(c, 201, null, 'create a default (read) key');
    assert.deepEqual(c.body.scopes, ['read']);
    assert.equal(c.body.expires_at, null);
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: c.body.key }), 200, null, 'read');
    const w = await call(srv, 'PATCH', '/api/v1/me', { token: c.body.key, body: { display_name: 'nope' } });
    expectStatus(w, 403, 'insufficient_scope', 'write with a read key');
    assert.notEqual((await a.call('GET', '/api/v1/me')).body.display_name, 'nope');
  });

  test('key input is validated: scopes, expiry, name', async () => {
    const a = await signupAndLogin(srv);
    for (const [body, field] of [
      [{ name: 'x', scopes: ['admin'] }, 'scopes'],
      [{ name: 'x', scopes: [] }, 'scopes'],
      [{ name: 'x', expires_in_days: 0 }, 'expires_in_days'],
      [{ name: 'x', expires_in_days: 3651 }, 'expires_in_days'],
      [{ name: '' }, 'name'],
      [{ scopes: ['read'] }, 'name'],
      [{ name: 'x', owner: 'someone' }, 'owner'],
    ]) {
      const r = await a.call('POST', '/api/v1/me/api-keys', { body });
      expectStatus(r, 422, 'validation_failed', JSON.stringify(body));
      assert.equal(r.body.error.field, field, JSON.stringify(body));
    }
  });

  test("another user's key id is 404 on DELETE, and the key keeps working", async () => {
    const a = await signupAndLogin(srv);
    const b = await signupAndLogin(srv);
    const c = await a.call('POST', '/api/v1/me/api-keys', { body: { name: 'mine' } });
    expectStatus(c, 201, null, 'create');
    await expectNotFoundForOtherUser(srv, 'DELETE', `/api/v1/me/api-keys/${c.body.id}`, { owner: a, other: b });
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: c.body.key }), 200, null, "the key survived the other user's DELETE");
    assert.equal((await a.call('DELETE', `/api/v1/me/api-keys/${c.body.id}`)).status, 204, 'its owner can revoke it');
    expectStatus(await call(srv, 'GET', '/api/v1/me', { token: c.body.key }), 401, 'unauthorized', 'revoked by its owner');
  });
});

describe('JSON input errors on POST /api/v1/auth/signup', () => {
  test('malformed JSON is 400 invalid_json with line and column', async () => {
    const r = await call(srv, 'POST', '/api/v1/auth/signup', { body: '{\n  "email": "a@b.co",\n  "password": oops\n}' });
    assert.equal(r.status, 400, r.text);
    assertError(r.headers, r.body, 'invalid_json', 'malformed');
    assert.equal(r.body.error.line, 3, 'the error names line 3');
    assert.equal(typeof r.body.error.column, 'number');
    assert.match(r.body.error.message, /line 3, column \d+/);
    const empty = await call(srv, 'POST', '/api/v1/auth/signup', { body: '', headers: { 'Content-Type': 'application/json' } });
    expectStatus(empty, 400, 'invalid_json', 'empty body');
  });

  test('a text/plain body is 415', async () => {
    const r = await call(srv, 'POST', '/api/v1/auth/signup', { body: JSON.stringify({ email: uniqueEmail(), password: newPassword() }), headers: { 'Content-Type': 'text/plain' } });
    expectStatus(r, 415, 'unsupported_media_type', 'text/plain');
  });

  test('schema errors are 422 naming the field', async () => {
    const pw = newPassword();
    for (const [body, field] of [
      [{ password: pw }, 'email'],
      [{ email: uniqueEmail() }, 'password'],
      [{ email: uniqueEmail(), password: 12345678901 }, 'password'],
      [{ email: 'x'.repeat(321), password: pw }, 'email'],
      [{ email: uniqueEmail(), password: pw, role: 'admin' }, 'role'],
      [{ email: uniqueEmail(), password: pw, display_name: 'n'.repeat(101) }, 'display_name'],
      [{ email: 'not-an-address', password: pw }, 'email'],
      [{ email: uniqueEmail(), password: 'short' }, 'password'],
      [{ email: uniqueEmail(), password: 'p'.repeat(257) }, 'password'],
    ]) {
      const r = await call(srv, 'POST', '/api/v1/auth/signup', { body });
      expectStatus(r, 422, 'validation_failed', JSON.stringify(body).slice(0, 80));
      assert.equal(r.body.error.field, field, `field for ${JSON.stringify(body).slice(0, 80)}`);
    }
    const arr = await call(srv, 'POST', '/api/v1/auth/signup', { body: [] });
    expectStatus(arr, 422, 'validation_failed', 'an array body');
  });

  test('a body over --max-body-bytes is 413', async () => {
    const body = JSON.stringify({ email: uniqueEmail(), password: newPassword(), display_name: 'x'.repeat(5000) });
    const r = await rawRequest(srv.url, `POST /api/v1/auth/signup HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, { timeoutMs: 3000 });
    assert.equal(r.status, 413);
    assertError(r.headers, JSON.parse(r.text), 'payload_too_large', '413');
  });
});

describe('PostgreSQL', () => {
  test('the same story on PostgreSQL: sign-up, login, refresh rotation and reuse, API key, logout', async (t) => {
    const p = pg(t);
    if (!p) return;
    const db = await p.createDb();
    const s = await startServer({ dbUrl: db.url, args: AUTH_TEST_ARGS });
    const a = await signupAndLogin(s);
    expectStatus(await a.call('GET', '/api/v1/me'), 200, null, 'me on PG');
    const r1 = await call(s, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: a.refreshToken } });
    expectStatus(r1, 200, null, 'refresh on PG');
    expectStatus(await call(s, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: a.refreshToken } }), 401, 'invalid_refresh_token', 'reuse on PG');
    expectStatus(await call(s, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: r1.body.refresh_token } }), 401, 'invalid_refresh_token', 'the family is revoked on PG');
    const b = await loginAs(s, a.email, a.password);
    const k = await b.call('POST', '/api/v1/me/api-keys', { body: { name: 'pg', scopes: ['read', 'write'] } });
    expectStatus(k, 201, null, 'key on PG');
    expectStatus(await call(s, 'GET', '/api/v1/me', { token: k.body.key }), 200, null, 'key use on PG');
    const other = await signupAndLogin(s);
    await expectNotFoundForOtherUser(s, 'DELETE', `/api/v1/me/sessions/${b.sessionId}`, { owner: b, other });
    const admin = await makeAdmin(s);
    const users = await admin.call('GET', `/api/v1/admin/users?q=${encodeURIComponent(a.email)}`);
    expectStatus(users, 200, null, 'admin users on PG');
    assert.deepEqual(
      users.body.items.map((u) => u.email),
      [a.email],
    );
    const events = await dbQuery(s, "SELECT type FROM events WHERE type = 'auth.refresh_reuse_detected'");
    assert.equal(events.length, 1, 'the reuse event on PG');
    assertNoSecretsInLogs(s);
  });
});

describe('logs', () => {
  test("no password, access token, refresh token or API key used in this file is in the server's log", () => {
    const n = assertNoSecretsInLogs(srv);
    assert.ok(n > 20, `looked for ${n} secrets`);
  });
});
