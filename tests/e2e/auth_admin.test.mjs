// The first admin (the one-time setup link printed on stdout, or `loci user
// add --admin`), no admin by being first, and the admin's user list and
// user changes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup, startServer } from './lib/server.mjs';
import {
  AUTH_TEST_ARGS,
  assertNoSecretsInLogs,
  call,
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

const SETUP_RE = /\/setup\?token=([A-Za-z0-9_-]{43})/;

describe('the first admin', () => {
  test('a fresh server prints a setup link on stdout (not in the log); POST /auth/setup with its token creates an admin once', async () => {
    const s = await startServer({ args: AUTH_TEST_ARGS });
    const m = await s.waitStdout(SETUP_RE, 5000);
    const token = rememberSecret(m[1]);
    assert.match(s.stdout(), /loci user add .*--admin/, 'the CLI way is offered too');
    assert.ok(!s.dump().includes(token), 'the setup token is not in the log (stderr)');

    const before1 = await call(s, 'GET', '/api/v1/auth/options');
    assert.equal(before1.body.setup_required, true);

    const email = uniqueEmail('root');
    const password = newPassword();
    expectStatus(await call(s, 'POST', '/api/v1/auth/setup', { body: { token: 'z'.repeat(43), email, password } }), 400, 'invalid_token', 'a wrong token');
    const weak = await call(s, 'POST', '/api/v1/auth/setup', { body: { token, email, password: 'short' } });
    expectStatus(weak, 422, 'validation_failed', 'a weak password');
    assert.equal(weak.body.error.field, 'password');
    expectStatus(await call(s, 'POST', '/api/v1/auth/setup', { body: { token, email: 'nope', password } }), 422, 'validation_failed', 'a bad address');

    const r = await call(s, 'POST', '/api/v1/auth/setup', { body: { token, email, password, display_name: 'Root' } });
    expectStatus(r, 201, null, 'setup');
    assert.equal(r.body.user.role, 'admin');
    assert.equal(r.body.user.email, email);
    assert.equal(r.body.user.email_verified, true);

    const again = await call(s, 'POST', '/api/v1/auth/setup', { body: { token, email: uniqueEmail('second'), password: newPassword() } });
    expectStatus(again, 400, 'invalid_token', 'the setup token is single-use');
    const after1 = await call(s, 'GET', '/api/v1/auth/options');
    assert.equal(after1.body.setup_required, false, 'setup_required flips to false');

    const admin = await loginAs(s, email, password);
    assert.equal(admin.user.role, 'admin');
    expectStatus(await admin.call('GET', '/api/v1/admin/users'), 200, null, 'the new admin can administer');
    assertNoSecretsInLogs(s, [token]);
  });

  test('`loci user add EMAIL --admin` (password on stdin) makes an admin; without --admin a user', async () => {
    const s = await startServer({ args: AUTH_TEST_ARGS });
    assert.equal((await call(s, 'GET', '/api/v1/auth/options')).body.setup_required, true);
    const email = uniqueEmail('cli-admin');
    const password = newPassword();
    const r = await lociUser(s, ['add', email, '--admin', '--name', 'Cli Admin'], { input: `${password}\n` });
    assert.match(r.stdout, new RegExp(`created ${email.replace(/[.]/g, '\\.')} \\(admin\\)`));
    assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), 'the password is not echoed');
    assert.equal((await call(s, 'GET', '/api/v1/auth/options')).body.setup_required, false);
    const admin = await loginAs(s, email, password);
    assert.equal(admin.user.role, 'admin');
    assert.equal(admin.user.display_name, 'Cli Admin');
    expectStatus(await admin.call('GET', '/api/v1/admin/users'), 200, null, 'admin route');

    const userEmail = uniqueEmail('cli-user');
    const userPw = newPassword();
    const ru = await lociUser(s, ['add', userEmail], { input: `${userPw}\n` });
    assert.match(ru.stdout, /\(user\)/);
    const u = await loginAs(s, userEmail, userPw);
    assert.equal(u.user.role, 'user');

    // Refusals: a short password, an address that exists, a bad address.
    await lociUser(s, ['add', uniqueEmail('short'), '--admin'], { input: 'short\n', expectCode: 2 });
    await lociUser(s, ['add', email, '--admin'], { input: `${newPassword()}\n`, expectCode: 1 });
    await lociUser(s, ['add', 'not-an-address'], { input: `${newPassword()}\n`, expectCode: 2 });
    expectStatus(await login(s, { email, password }), 200, null, 'the existing admin is unchanged');
    // set-role works from the CLI as well.
    await lociUser(s, ['set-role', userEmail, 'admin']);
    expectStatus(await (await loginAs(s, userEmail, userPw)).call('GET', '/api/v1/admin/users'), 200, null, 'after loci user set-role admin');
  });

  test('no account becomes admin by being first: the first sign-up is a user and setup stays required', async () => {
    const s = await startServer({ args: AUTH_TEST_ARGS });
    const first = await signupAndLogin(s);
    assert.equal(first.user.role, 'user');
    expectStatus(await first.call('GET', '/api/v1/admin/users'), 403, 'forbidden', 'the first account on an admin route');
    assert.equal((await call(s, 'GET', '/api/v1/auth/options')).body.setup_required, true, 'still no admin');
    // The setup token cannot be used to make an existing account admin.
    const token = rememberSecret((await s.waitStdout(SETUP_RE)).at(1));
    const r = await call(s, 'POST', '/api/v1/auth/setup', { body: { token, email: first.email, password: newPassword() } });
    assert.notEqual(r.status, 201, `setup with an existing address must not succeed: ${r.text}`);
    expectStatus(await first.call('GET', '/api/v1/admin/users'), 403, 'forbidden', 'still a user');
    assertNoSecretsInLogs(s, [token]);
  });
});

describe('admin: users', () => {
  let srv;
  let admin;
  const tag = `zq${Math.random().toString(36).slice(2, 7)}`;
  const people = [];
  before(async () => {
    srv = await startServer({ args: AUTH_TEST_ARGS });
    admin = await makeAdmin(srv);
    for (const n of ['c', 'a', 'b']) people.push(await signup(srv, { email: `${tag}-${n}@example.test` }));
    await signup(srv, { email: `other-${tag}@example.test` });
  });

  test('GET /admin/users: prefix search with q, ordered by email, paginated with limit and next/after', async () => {
    const p1 = await admin.call('GET', `/api/v1/admin/users?q=${tag}-&limit=2`);
    expectStatus(p1, 200, null, 'page 1');
    assert.deepEqual(
      p1.body.items.map((u) => u.email),
      [`${tag}-a@example.test`, `${tag}-b@example.test`],
    );
    assert.equal(p1.body.next, `${tag}-b@example.test`, 'next names the last email of the page');
    for (const u of p1.body.items) {
      assert.deepEqual(Object.keys(u).sort(), ['created_at', 'disabled', 'display_name', 'email', 'email_verified', 'id', 'role']);
    }
    const p2 = await admin.call('GET', `/api/v1/admin/users?q=${tag}-&limit=2&after=${encodeURIComponent(p1.body.next)}`);
    expectStatus(p2, 200, null, 'page 2');
    assert.deepEqual(
      p2.body.items.map((u) => u.email),
      [`${tag}-c@example.test`],
    );
    assert.equal(p2.body.next, null, 'the last page has no next');

    const upper = await admin.call('GET', `/api/v1/admin/users?q=${tag.toUpperCase()}-`);
    assert.equal(upper.body.items.length, 3, 'q is case-insensitive');
    const none = await admin.call('GET', `/api/v1/admin/users?q=${tag}_`);
    assert.deepEqual(none.body.items, [], "'_' in q is a literal, not a wildcard");
    const pct = await admin.call('GET', `/api/v1/admin/users?q=${encodeURIComponent('%')}`);
    assert.deepEqual(pct.body.items, [], "'%' in q is a literal");
    const all = await admin.call('GET', '/api/v1/admin/users?limit=200');
    const emails = all.body.items.map((u) => u.email);
    for (const e of [admin.email, ...people.map((p) => p.email), `other-${tag}@example.test`]) assert.ok(emails.includes(e), `every user without q: ${e}`);
    assert.deepEqual(emails, [...emails].sort(), 'ordered by email');

    for (const q of ['limit=0', 'limit=201', 'limit=x', `q=${'a'.repeat(300)}`]) {
      const r = await admin.call('GET', `/api/v1/admin/users?${q}`);
      expectStatus(r, 400, 'bad_request', q.slice(0, 20));
    }
  });

  test('PATCH /admin/users/:id changes the role and disables; bad input is 422, self-demotion 409, unknown id 404', async () => {
    const u = await signupAndLogin(srv);
    const r = await admin.call('PATCH', `/api/v1/admin/users/${u.id}`, { body: { role: 'admin' } });
    expectStatus(r, 200, null, 'promote');
    assert.equal(r.body.role, 'admin');
    assert.equal(r.body.id, u.id);
    const promoted = await loginAs(srv, u.email, u.password);
    expectStatus(await promoted.call('GET', '/api/v1/admin/users'), 200, null, 'the promoted user on an admin route');

    const d = await admin.call('PATCH', `/api/v1/admin/users/${u.id}`, { body: { disabled: true, role: 'user' } });
    expectStatus(d, 200, null, 'disable and demote');
    assert.equal(d.body.disabled, true);
    assert.equal(d.body.role, 'user');
    expectStatus(await promoted.call('GET', '/api/v1/me'), 401, 'unauthorized', 'a disabled user');

    for (const [body, field] of [
      [{ role: 'root' }, 'role'],
      [{ role: 'ADMIN' }, 'role'],
      [{ disabled: 'yes' }, 'disabled'],
      [{ email: 'x@example.test' }, 'email'],
      [{ password_hash: 'x' }, 'password_hash'],
    ]) {
      const bad = await admin.call('PATCH', `/api/v1/admin/users/${u.id}`, { body });
      expectStatus(bad, 422, 'validation_failed', JSON.stringify(body));
      assert.equal(bad.body.error.field, field);
    }
    const self = await admin.call('PATCH', `/api/v1/admin/users/${admin.id}`, { body: { role: 'user' } });
    expectStatus(self, 409, 'conflict', 'demoting yourself');
    expectStatus(await admin.call('PATCH', `/api/v1/admin/users/${admin.id}`, { body: { disabled: true } }), 409, 'conflict', 'disabling yourself');
    expectStatus(await admin.call('GET', '/api/v1/me'), 200, null, 'the admin is still there');
    expectStatus(await admin.call('PATCH', '/api/v1/admin/users/01900000-0000-7000-8000-000000000000', { body: { role: 'user' } }), 404, 'not_found', 'unknown id');
  });

  test('admin user routes: a user gets 403, no token 401', async () => {
    const u = await signupAndLogin(srv);
    expectStatus(await u.call('GET', '/api/v1/admin/users'), 403, 'forbidden', 'GET as a user');
    expectStatus(await u.call('PATCH', `/api/v1/admin/users/${u.id}`, { body: { role: 'admin' } }), 403, 'forbidden', 'self-promotion as a user');
    assert.equal((await u.call('GET', '/api/v1/me')).body.role, 'user');
    expectStatus(await call(srv, 'GET', '/api/v1/admin/users'), 401, 'unauthorized', 'no token');
    expectStatus(await call(srv, 'PATCH', `/api/v1/admin/users/${u.id}`, { body: { role: 'admin' } }), 401, 'unauthorized', 'PATCH without a token');
  });

  test('no secret in the log', () => {
    assertNoSecretsInLogs(srv);
  });
});
