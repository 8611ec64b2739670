// Access tokens that must not work. Test tokens are signed with the
// server's own key (DATA_DIR/jwt_keys: lines "kid hex64", the first signs),
// so that each case differs from a valid token in exactly one way; the
// control case, built the same way with the claims of a real token, must
// work, which proves every 401 below is about that one difference.
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertError } from './lib/checks.mjs';
import { cleanup, startServer } from './lib/server.mjs';
import { AUTH_TEST_ARGS, call, jwtClaims, rememberSecret, signupAndLogin, assertNoSecretsInLogs } from './lib/users.mjs';

after(cleanup);

let srv;
let key; // { kid, secret: Buffer }
let alice;
let bob;
before(async () => {
  srv = await startServer({ args: AUTH_TEST_ARGS });
  const line = readFileSync(join(srv.dataDir, 'jwt_keys'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l && !l.startsWith('#'));
  const [kid, hex] = line.split(/\s+/);
  assert.match(hex, /^[0-9a-f]{64}$/);
  key = { kid, secret: Buffer.from(hex, 'hex') };
  alice = await signupAndLogin(srv);
  bob = await signupAndLogin(srv);
});

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** header.payload signed with HMAC (sha256 unless hash says otherwise) and the given secret. */
function sign(header, payload, { secret = key.secret, hash = 'sha256' } = {}) {
  const input = `${b64(header)}.${b64(payload)}`;
  const tok = `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
  return rememberSecret(tok);
}

const header = (extra = {}) => ({ alg: 'HS256', typ: 'JWT', kid: key.kid, ...extra });

/** Claims copied from alice's real token, with a fresh jti and times around now. */
function claims(extra = {}) {
  const real = jwtClaims(alice.accessToken);
  const now = Math.floor(Date.now() / 1000);
  return { ...real, jti: randomUUID(), iat: now, nbf: now, exp: now + 600, ...extra };
}

async function me(token) {
  return call(srv, 'GET', '/api/v1/me', { token });
}

async function expect401(token, what) {
  const r = await me(token);
  assert.equal(r.status, 401, `${what}: expected 401, got ${r.status} ${r.text}`);
  assertError(r.headers, r.body, 'unauthorized', what);
  assert.match(r.headers.get('www-authenticate') || '', /^Bearer/, `${what}: WWW-Authenticate`);
}

describe('JWT: the control case', () => {
  test('the real token and a token built by the test with the same claims both work', async () => {
    const real = await me(alice.accessToken);
    assert.equal(real.status, 200, real.text);
    const c = claims();
    assert.deepEqual(Object.keys(c).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'role', 'sid', 'sub', 'ver']);
    assert.equal(c.aud, 'loci');
    const r = await me(sign(header(), c));
    assert.equal(r.status, 200, `the test-built token must work, else the rejections prove nothing: ${r.text}`);
    assert.equal(r.body.id, alice.id);
    // Within the 30 s leeway an expiry just passed still works.
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await me(sign(header(), claims({ iat: now - 700, nbf: now - 700, exp: now - 10 })))).status, 200, 'exp 10 s ago is within the leeway');
    // aud may be an array that contains "loci".
    assert.equal((await me(sign(header(), claims({ aud: ['other', 'loci'] })))).status, 200, 'aud array with loci');
  });
});

describe('JWT: rejected tokens (each 401 on GET /api/v1/me)', () => {
  test('alg none / None / NONE without a signature', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const input = `${b64(header({ alg }))}.${b64(claims())}`;
      await expect401(`${input}.`, `alg ${alg}, empty signature`);
      await expect401(input, `alg ${alg}, no signature part`);
      // and with a valid HS256 signature over the none header
      await expect401(sign(header({ alg }), claims()), `alg ${alg} with an HMAC signature`);
    }
  });

  test('re-signed with HS512 (and HS384) using the real key; other algorithms named in the header', async () => {
    await expect401(sign(header({ alg: 'HS512' }), claims(), { hash: 'sha512' }), 'HS512');
    await expect401(sign(header({ alg: 'HS384' }), claims(), { hash: 'sha384' }), 'HS384');
    await expect401(sign(header({ alg: 'HS512' }), claims()), 'HS512 header, HS256 signature');
    await expect401(sign(header({ alg: 'RS256' }), claims()), 'RS256 header, HS256 signature');
    await expect401(sign(header({ alg: 'hs256' }), claims()), 'lower-case hs256');
    const noAlg = header();
    delete noAlg.alg;
    await expect401(sign(noAlg, claims()), 'no alg');
  });

  test('signed with another key, or the real key under an unknown or missing kid', async () => {
    await expect401(sign(header(), claims(), { secret: Buffer.alloc(32, 7) }), 'another key');
    await expect401(sign(header({ kid: 'not-a-kid' }), claims()), 'unknown kid');
    const noKid = header();
    delete noKid.kid;
    await expect401(sign(noKid, claims()), 'no kid');
    await expect401(sign(header({ crit: ['exp'] }), claims()), 'crit header');
    await expect401(sign(header({ typ: 'at+jwt' }), claims()), 'another typ');
  });

  test('expired, not yet valid, issued in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expect401(sign(header(), claims({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 })), 'expired an hour ago');
    await expect401(sign(header(), claims({ iat: now - 700, nbf: now - 700, exp: now - 31 })), 'expired just past the leeway');
    await expect401(sign(header(), claims({ nbf: now + 3600, exp: now + 7200 })), 'nbf in an hour');
    await expect401(sign(header(), claims({ iat: now + 3600, nbf: now, exp: now + 7200 })), 'iat in an hour');
    await expect401(sign(header(), claims({ exp: now - 5, iat: now })), 'exp before iat');
  });

  test('wrong aud, wrong iss', async () => {
    await expect401(sign(header(), claims({ aud: 'other' })), 'aud other');
    await expect401(sign(header(), claims({ aud: ['other'] })), 'aud [other]');
    await expect401(sign(header(), claims({ aud: 'Loci' })), 'aud Loci');
    await expect401(sign(header(), claims({ iss: 'http://evil.example' })), 'iss evil');
    await expect401(sign(header(), claims({ iss: `${jwtClaims(alice.accessToken).iss}/` })), 'iss with a trailing slash');
  });

  test('missing or malformed claims', async () => {
    for (const k of ['iss', 'aud', 'sub', 'sid', 'jti', 'role', 'ver', 'iat', 'nbf', 'exp']) {
      const c = claims();
      delete c[k];
      await expect401(sign(header(), c), `no ${k}`);
    }
    await expect401(sign(header(), claims({ exp: String(Math.floor(Date.now() / 1000) + 600) })), 'exp as a string');
    await expect401(sign(header(), claims({ sub: 'not-a-uuid' })), 'sub not a uuid');
    await expect401(sign(header(), claims({ role: 'root' })), 'role root');
  });

  test('tampered payload with the original signature: sub changed, role changed', async () => {
    const [h, p, s] = alice.accessToken.split('.');
    const real = jwtClaims(alice.accessToken);
    await expect401(`${h}.${b64({ ...real, sub: bob.id })}.${s}`, 'sub changed to another user');
    await expect401(`${h}.${b64({ ...real, role: 'admin' })}.${s}`, 'role changed to admin');
    await expect401(`${h}.${b64({ ...real, exp: real.exp + 86400 })}.${s}`, 'exp extended');
    await expect401(`${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`, 'signature changed');
    await expect401(`${h}.${p}.${s}x`, 'signature with an extra character');
    // The real token itself still works.
    assert.equal((await me(alice.accessToken)).status, 200);
  });

  test('a live key but a dead session, another user’s session, or a stale token version', async () => {
    await expect401(sign(header(), claims({ sid: randomUUID() })), 'sid of no session');
    await expect401(sign(header(), claims({ sid: bob.sessionId })), "sid of another user's session");
    await expect401(sign(header(), claims({ ver: jwtClaims(alice.accessToken).ver + 1 })), 'token version ahead');
    await expect401(sign(header(), claims({ sub: bob.id })), 'sub of bob with the sid of alice');
  });

  test('a correctly signed token that claims role admin gives no admin rights (the role comes from the database)', async () => {
    const t = sign(header(), claims({ role: 'admin' }));
    const r = await call(srv, 'GET', '/api/v1/me', { token: t });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.role, 'user');
    const adm = await call(srv, 'GET', '/api/v1/admin/users', { token: t });
    assert.equal(adm.status, 403, adm.text);
    assertError(adm.headers, adm.body, 'forbidden', 'admin route with a role:admin claim');
  });

  test('garbage and missing parts', async () => {
    const [h, p] = alice.accessToken.split('.');
    const cases = {
      garbage: 'garbage',
      'three dots': '...',
      'a.b.c': 'a.b.c',
      'header only': h,
      'header.payload': `${h}.${p}`,
      'header..sig': `${h}..${alice.accessToken.split('.')[2]}`,
      'four parts': `${alice.accessToken}.x`,
      'non-base64': '!!!.@@@.###',
      'header not JSON': `${b64('not json')}.${p}.${alice.accessToken.split('.')[2]}`,
      'header a JSON array': sign(['HS256'], claims()),
      'payload a JSON array': `${b64(header())}.${b64([1, 2])}.x`,
      'padded base64': `${h}=.${p}.${alice.accessToken.split('.')[2]}`,
      'very long': `${h}.${'A'.repeat(5000)}.x`,
      'loci_ prefix (not a key)': 'loci_garbage',
      'spaces inside': `${h} .${p}.x`,
    };
    for (const [what, t] of Object.entries(cases)) await expect401(t, what);
    // An empty bearer and a bare scheme.
    for (const v of ['Bearer ', 'Bearer', 'bearer  ']) {
      const r = await call(srv, 'GET', '/api/v1/me', { headers: { Authorization: v } });
      assert.equal(r.status, 401, `Authorization: ${JSON.stringify(v)} -> ${r.status}`);
    }
  });

  test('none of the forged tokens reached the log', () => {
    assertNoSecretsInLogs(srv);
  });
});
