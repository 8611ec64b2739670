// Accounts for tests: call the API as someone, sign up and log in, make
// admins with `loci user add`, look into the server's database, and the
// check every per-user resource needs ("another user gets 404").
//
// Every password, access token, refresh token and API key that passes
// through these helpers is remembered, so that a test can prove none of
// them ever reached the server's log (assertNoSecretsInLogs).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { assertError } from './checks.mjs';
import { run, runLoci } from './server.mjs';

/**
 * Server flags for tests that sign in a lot from 127.0.0.1: the auth rate
 * limit (default 10 at once, 30 a minute per IP) and the login back-off
 * would otherwise get in the way of tests that are not about them.
 */
export const AUTH_TEST_ARGS = ['--rate-auth-burst', '100000', '--rate-auth-per-min', '100000', '--login-free-failures', '100'];

const secrets = new Set();

/** Remember secrets (strings of 8+ characters) for the log scan; returns the first. */
export function rememberSecret(...values) {
  for (const v of values) if (typeof v === 'string' && v.length >= 8) secrets.add(v);
  return values[0];
}

/** Every secret remembered so far in this test process. */
export function rememberedSecrets() {
  return [...secrets];
}

/** A fresh address nobody has used: <tag>-<random>@example.test. */
export function uniqueEmail(tag = 'user') {
  return `${tag}-${randomBytes(5).toString('hex')}@example.test`;
}

/** A fresh password that passes the policy (10-256 characters). */
export function newPassword() {
  return rememberSecret(`pw-${randomBytes(12).toString('base64url')}`);
}

/** The claims of a JWT (no verification). */
export function jwtClaims(token) {
  const parts = String(token).split('.');
  assert.equal(parts.length, 3, `a JWT has three parts: ${token}`);
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

/** The value of cookie `name` in a list of Set-Cookie lines (undefined when absent). */
export function cookieValue(setCookies, name) {
  for (const line of setCookies) {
    const first = line.split(';')[0];
    const i = first.indexOf('=');
    if (first.slice(0, i).trim() === name) return first.slice(i + 1).trim();
  }
  return undefined;
}

function rememberFromResponse(body, setCookies) {
  if (body && typeof body === 'object') {
    for (const k of ['access_token', 'refresh_token', 'key']) if (typeof body[k] === 'string') rememberSecret(body[k]);
  }
  for (const line of setCookies) {
    const first = line.split(';')[0];
    rememberSecret(first.slice(first.indexOf('=') + 1));
  }
}

/**
 * One request: body (an object is sent as JSON with Content-Type
 * application/json unless headers say otherwise; a string is sent as is),
 * token (Authorization: Bearer). Resolves to { status, headers, body (parsed
 * JSON or null), text, cookies (the Set-Cookie lines) }.
 */
export async function call(server, method, path, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${server.url}${path}`, { method, headers: h, body: payload });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  const cookies = res.headers.getSetCookie();
  rememberFromResponse(data, cookies);
  return { status: res.status, headers: res.headers, body: data, text, cookies };
}

/** Assert a response's status and, for errors, the error code; returns the response. */
export function expectStatus(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: expected ${status}${code ? ` ${code}` : ''}, got ${r.status} ${r.text}`);
  if (code) assertError(r.headers, r.body, code, what);
  return r;
}

/** POST /api/v1/auth/signup; asserts the 202. */
export async function signup(server, { email = uniqueEmail(), password = newPassword(), display_name } = {}) {
  rememberSecret(password);
  const body = { email, password };
  if (display_name !== undefined) body.display_name = display_name;
  const r = await call(server, 'POST', '/api/v1/auth/signup', { body });
  expectStatus(r, 202, null, `signup ${email}`);
  return { email, password, response: r };
}

/** POST /api/v1/auth/login (token_delivery "body" unless delivery says otherwise); the raw response. */
export function login(server, { email, password, delivery = 'body', headers } = {}) {
  rememberSecret(password);
  const body = { email, password };
  if (delivery) body.token_delivery = delivery;
  return call(server, 'POST', '/api/v1/auth/login', { body, headers });
}

/** A signed-in account: { email, password, id, user, accessToken, refreshToken, sessionId, auth(), call() }. */
function account(server, email, password, r) {
  const a = {
    email,
    password,
    id: r.body.user.id,
    user: r.body.user,
    accessToken: r.body.access_token,
    refreshToken: r.body.refresh_token,
    sessionId: jwtClaims(r.body.access_token).sid,
    /** Authorization headers for this account (plus extra). */
    auth(extra = {}) {
      return { Authorization: `Bearer ${a.accessToken}`, ...extra };
    },
    /** call() as this account. */
    call(method, path, opts = {}) {
      return call(server, method, path, { token: a.accessToken, ...opts });
    },
  };
  return a;
}

/** Log in with the body delivery and return the account; asserts the 200. */
export async function loginAs(server, email, password) {
  const r = await login(server, { email, password });
  expectStatus(r, 200, null, `login ${email}`);
  return account(server, email, password, r);
}

/**
 * Sign up (mail off: the account works at once) and log in with
 * "token_delivery":"body". Resolves to
 * { email, password, id, user, accessToken, refreshToken, sessionId, auth(), call() }.
 */
export async function signupAndLogin(server, { email = uniqueEmail(), password = newPassword(), display_name } = {}) {
  await signup(server, { email, password, display_name });
  return loginAs(server, email, password);
}

/** Flags that point a `loci` command at the server's database. */
export function dbFlags(server) {
  return server.dbUrl ? ['--data-dir', server.dataDir, '--database-url', server.dbUrl] : ['--data-dir', server.dataDir];
}

/** `loci user ...args` against the server's database; asserts exit 0 unless expectCode says otherwise. */
export async function lociUser(server, args, { input, expectCode = 0 } = {}) {
  const r = await runLoci(['user', ...args, ...dbFlags(server)], { input, timeoutMs: 15000 });
  assert.equal(r.code, expectCode, `loci user ${args.join(' ')}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Create an admin with `loci user add EMAIL --admin` (password on stdin) and log in as them. */
export async function makeAdmin(server, { email = uniqueEmail('admin'), password = newPassword() } = {}) {
  await lociUser(server, ['add', email, '--admin'], { input: `${password}\n` });
  return loginAs(server, email, password);
}

/** Rows of a query on the server's database (sqlite3 or psql), one string per row, columns joined by '|'. */
export async function dbQuery(server, sql) {
  const isPg = server.dbUrl && /^postgres(ql)?:/.test(server.dbUrl);
  const r = isPg
    ? await run('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', server.dbUrl, '-c', sql])
    : await run('sqlite3', ['-cmd', '.timeout 10000', join(server.dataDir, 'loci.db'), sql]);
  assert.equal(r.code, 0, `query ${sql} failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.length > 0);
}

const UUID_IN_PATH = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/**
 * "Another user asking for this resource gets 404": `other` sends
 * METHOD path (with body) and must get the same 404 not_found that an id
 * which never existed gets (no way to tell "not yours" from "not there").
 * When ownerStatus is given (default 200 for GET), the owner then sends the
 * same request and gets it, proving the resource exists.
 */
export async function expectNotFoundForOtherUser(server, method, path, { owner, other, body, ownerStatus = method === 'GET' ? 200 : undefined } = {}) {
  assert.ok(owner && other && owner.id !== other.id, 'owner and other are two different accounts');
  const r = await call(server, method, path, { token: other.accessToken, body });
  assert.equal(r.status, 404, `${method} ${path} by another user (owner ${owner.email}) must be 404, got ${r.status} ${r.text}`);
  assertError(r.headers, r.body, 'not_found', `${method} ${path} by another user`);
  const missingPath = path.replace(UUID_IN_PATH, () => '01900000-0000-7000-8000-000000000000');
  if (missingPath !== path) {
    const m = await call(server, method, missingPath, { token: other.accessToken, body });
    assert.equal(m.status, 404, `${method} ${missingPath} (never existed) must be 404 too, got ${m.status}`);
    assert.equal(m.body?.error?.code, r.body.error.code, 'not yours and not there have the same error code');
    assert.equal(m.body?.error?.message, r.body.error.message, 'not yours and not there have the same message');
  }
  if (ownerStatus !== undefined) {
    const o = await call(server, method, path, { token: owner.accessToken, body });
    assert.equal(o.status, ownerStatus, `the owner's own ${method} ${path} must be ${ownerStatus}, got ${o.status} ${o.text}`);
  }
  return r;
}

/**
 * The server's whole stderr (JSON log lines) holds none of the secrets
 * remembered so far nor any in extra: passwords, access tokens (and their
 * signatures), refresh tokens, API keys (and their secret part).
 */
export function assertNoSecretsInLogs(server, extra = []) {
  const text = server.dump();
  assert.ok(text.length > 0, 'the server logged something');
  const needles = new Set();
  for (const s of [...secrets, ...extra]) {
    if (typeof s !== 'string' || s.length < 8) continue;
    needles.add(s);
    const jwt = s.split('.');
    if (jwt.length === 3 && jwt[2].length >= 40) needles.add(jwt[2]);
    const key = /^loci_[0-9a-f]{8}_(.{43})$/.exec(s);
    if (key) needles.add(key[1]);
  }
  assert.ok(needles.size > 0, 'there are secrets to look for');
  const hits = [];
  for (const n of needles) {
    const i = text.indexOf(n);
    if (i >= 0) hits.push(`${n.slice(0, 12)}... in: ${text.slice(Math.max(0, text.lastIndexOf('\n', i) + 1), text.indexOf('\n', i) < 0 ? undefined : text.indexOf('\n', i)).slice(0, 300)}`);
  }
  assert.deepEqual(hits, [], `secrets found in the server log (${needles.size} looked for)`);
  return needles.size;
}
