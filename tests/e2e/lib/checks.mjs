// Assertions shared by several test files.
import assert from 'node:assert/strict';

/** A header from a fetch Headers object or a raw response's plain object. */
export function header(headers, name) {
  if (typeof headers.get === 'function') return headers.get(name);
  const v = headers[name.toLowerCase()];
  return v === undefined ? null : v;
}

/**
 * The one error shape: {"error":{"code","message","request_id"}} with
 * request_id equal to the X-Request-Id response header.
 */
export function assertError(headers, body, code, where = '') {
  const ctype = header(headers, 'content-type') || '';
  assert.match(ctype, /^application\/json/, `${where}: error Content-Type`);
  assert.ok(body && typeof body === 'object' && body.error && typeof body.error === 'object', `${where}: body is {"error":{...}}: ${JSON.stringify(body)}`);
  assert.equal(body.error.code, code, `${where}: error.code`);
  assert.equal(typeof body.error.message, 'string', `${where}: error.message is a string`);
  assert.ok(body.error.message.length > 0, `${where}: error.message is not empty`);
  const rid = header(headers, 'x-request-id');
  assert.ok(rid, `${where}: X-Request-Id header present`);
  assert.equal(body.error.request_id, rid, `${where}: error.request_id equals the X-Request-Id header`);
}

/** The security headers every response carries (HSTS only when tls). */
export function assertSecurityHeaders(headers, { tls = false } = {}, where = '') {
  const csp = header(headers, 'content-security-policy');
  assert.ok(csp, `${where}: Content-Security-Policy present`);
  assert.match(csp, /(^|;)\s*default-src 'self'(\s*;|$)/, `${where}: CSP has default-src 'self'`);
  assert.equal(header(headers, 'x-content-type-options'), 'nosniff', `${where}: X-Content-Type-Options`);
  assert.equal(header(headers, 'x-frame-options'), 'DENY', `${where}: X-Frame-Options`);
  assert.equal(header(headers, 'referrer-policy'), 'no-referrer', `${where}: Referrer-Policy`);
  assert.ok(header(headers, 'permissions-policy'), `${where}: Permissions-Policy present`);
  const hsts = header(headers, 'strict-transport-security');
  if (tls) {
    assert.ok(hsts, `${where}: Strict-Transport-Security present with TLS`);
    assert.match(hsts, /max-age=\d+/, `${where}: HSTS has max-age`);
    assert.ok(Number(/max-age=(\d+)/.exec(hsts)[1]) > 0, `${where}: HSTS max-age > 0`);
  } else {
    assert.equal(hsts, null, `${where}: no Strict-Transport-Security without TLS`);
  }
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
