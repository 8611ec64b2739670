// The API client. The access token lives in memory only (this module); the
// refresh token is an HttpOnly cookie the browser sends to
// /api/v1/auth/refresh, so a reload restores the session without any token
// in storage. A request answered 401 refreshes once and is retried.
import { t } from './i18n.svelte.js';

export const session = $state({ user: null, token: null, ready: false });

export class ApiError extends Error {
  constructor(status, body) {
    const e = body?.error || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || (status === 0 ? 'network' : `http_${status}`);
    this.field = e.field;
    this.body = body;
  }
}

/** A message for the user from an ApiError (or any error). */
export function errorText(err) {
  if (!err) return '';
  if (err.code === 'network') return t('error.network');
  if (err instanceof ApiError && err.body?.error?.message) {
    return err.field ? t('error.field', { message: err.message, field: err.field }) : err.message;
  }
  return t('error.generic', { code: err.code || err.message });
}

let refreshing = null;

/** Rotate the refresh cookie into a new access token; resolves true on success. */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const res = await fetch('/api/v1/auth/refresh', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json' },
          body: '{}',
        });
        if (!res.ok) {
          session.token = null;
          session.user = null;
          return false;
        }
        const body = await res.json();
        session.token = body.access_token;
        session.user = body.user;
        return true;
      } catch {
        return false;
      } finally {
        setTimeout(() => (refreshing = null), 0);
      }
    })();
  }
  return refreshing;
}

async function parse(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { text };
  }
}

/**
 * Call the API: api('GET', '/api/v1/me'), api('POST', path, {body}).
 * Resolves to the parsed JSON body; rejects with ApiError.
 */
export async function api(method, path, { body, headers = {}, raw = false, signal, retry = true } = {}) {
  const h = { ...headers };
  if (session.token) h.Authorization = `Bearer ${session.token}`;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData) && typeof body !== 'string') {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: payload, credentials: 'same-origin', signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, null);
  }
  if (res.status === 401 && retry && session.token && !path.startsWith('/api/v1/auth/')) {
    if (await refresh()) return api(method, path, { body, headers, raw, signal, retry: false });
  }
  if (raw) {
    if (!res.ok) throw new ApiError(res.status, await parse(res));
    return res;
  }
  const data = await parse(res);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export async function login(email, password) {
  const body = await api('POST', '/api/v1/auth/login', { body: { email, password, token_delivery: 'cookie' } });
  session.token = body.access_token;
  session.user = body.user;
  return body;
}

export async function signup(email, password, displayName) {
  const b = { email, password };
  if (displayName) b.display_name = displayName;
  return api('POST', '/api/v1/auth/signup', { body: b });
}

export async function logout() {
  try {
    await api('POST', '/api/v1/auth/logout', { body: {} });
  } catch {
    /* the session ends here whatever the server says */
  }
  session.token = null;
  session.user = null;
}

/** On start: restore the session from the refresh cookie. */
export async function restore() {
  await refresh();
  session.ready = true;
}
