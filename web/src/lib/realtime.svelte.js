// The realtime connection: one WebSocket to /ws, authenticated by a first
// {"type":"auth","token"} message. Every event {type, offset, data} goes to
// the listeners of its type; the last offset seen is kept so that a
// reconnect resumes with ?since=OFFSET and nothing is missed.
import { refresh, session } from './api.svelte.js';

export const conn = $state({ state: 'offline', offset: null });

const listeners = new Map(); // type -> Set(fn); '*' hears everything
let ws = null;
let attempt = 0;
let timer = null;
let wanted = false;

/** Listen to events of `type` ('*' for all); returns the unsubscribe function. */
export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(fn);
  return () => listeners.get(type)?.delete(fn);
}

function emit(ev) {
  for (const key of [ev.type, '*']) {
    for (const fn of listeners.get(key) || []) {
      try {
        fn(ev.data, ev);
      } catch (e) {
        console.error('realtime listener failed', e);
      }
    }
  }
}

function url() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const since = conn.offset !== null ? `?since=${conn.offset}` : '';
  return `${proto}//${location.host}/ws${since}`;
}

function schedule() {
  if (!wanted) return;
  conn.state = 'reconnecting';
  const base = Math.min(10000, 500 * 2 ** attempt);
  attempt++;
  clearTimeout(timer);
  timer = setTimeout(open, base / 2 + Math.random() * (base / 2));
}

function open() {
  if (!wanted || !session.token) return;
  if (conn.state !== 'reconnecting') conn.state = 'connecting';
  let authFailed = false;
  const sock = new WebSocket(url());
  ws = sock;
  sock.onopen = () => sock.send(JSON.stringify({ type: 'auth', token: session.token }));
  sock.onmessage = (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    if (ev.type === 'ready') {
      attempt = 0;
      conn.state = 'live';
      if (conn.offset === null && typeof ev.offset === 'number') conn.offset = ev.offset;
      emit(ev);
      return;
    }
    if (typeof ev.offset === 'number') {
      if (conn.offset !== null && ev.offset <= conn.offset) return; // already seen
      conn.offset = ev.offset;
    }
    emit(ev);
  };
  sock.onclose = async (c) => {
    if (ws !== sock) return;
    ws = null;
    if (!wanted) {
      conn.state = 'offline';
      return;
    }
    authFailed = c.code === 1008;
    if (authFailed && !(await refresh())) {
      conn.state = 'offline';
      return;
    }
    schedule();
  };
}

/** Connect (idempotent). */
export function connect() {
  wanted = true;
  if (!ws) open();
}

/** Close for good (logout). */
export function disconnect() {
  wanted = false;
  clearTimeout(timer);
  conn.offset = null;
  if (ws) {
    const s = ws;
    ws = null;
    s.close(1000);
  }
  conn.state = 'offline';
}

/** Drop the socket as if the network failed (tests, and "retry now"). */
export function reconnectNow() {
  attempt = 0;
  if (ws) ws.close(4000);
  else if (wanted) open();
}

window.addEventListener('online', () => wanted && !ws && open());
