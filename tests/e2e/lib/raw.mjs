// Raw HTTP/1.1 over node:net, for requests fetch will not make: partial or
// slow bodies, lying Content-Length, un-normalised paths.
import { connect } from 'node:net';

/**
 * Open a TCP connection to the server at url. The returned connection has
 *   write(data)                   send bytes (string or Buffer)
 *   response({timeoutMs, head})   the next complete response (head: to a HEAD request):
 *                                 { status, headers (lower-case names), body (Buffer), text }
 *   closed({timeoutMs})           resolves when the server has closed the connection
 *   destroy()
 */
export function rawConnect(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: hostname, port: Number(port) });
    let buf = Buffer.alloc(0);
    let isClosed = false;
    let error = null;
    const waiters = new Set();
    const poke = () => {
      for (const w of [...waiters]) w();
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      poke();
    });
    sock.on('error', (e) => {
      error = e;
      poke();
    });
    sock.on('close', () => {
      isClosed = true;
      poke();
    });

    // Try to cut one complete response off the front of buf (a response to
    // HEAD has no body whatever its headers say).
    function take(isHead) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
      if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(head[0])}`);
      const headers = {};
      for (const h of head.slice(1)) {
        const i = h.indexOf(':');
        const k = h.slice(0, i).trim().toLowerCase();
        const v = h.slice(i + 1).trim();
        headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
      }
      const status = Number(m[1]);
      let rest = buf.subarray(end + 4);
      let body;
      let used;
      if (isHead || status === 204 || status === 304 || (status >= 100 && status < 200)) {
        body = Buffer.alloc(0);
        used = 0;
      } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
        const parts = [];
        let off = 0;
        for (;;) {
          const le = rest.indexOf('\r\n', off);
          if (le < 0) return null;
          const size = parseInt(rest.subarray(off, le).toString('latin1'), 16);
          if (size === 0) {
            const tail = rest.indexOf('\r\n\r\n', le);
            if (tail < 0 && rest.length < le + 4) return null;
            used = tail >= 0 ? tail + 4 : le + 4;
            break;
          }
          if (rest.length < le + 2 + size + 2) return null;
          parts.push(rest.subarray(le + 2, le + 2 + size));
          off = le + 2 + size + 2;
        }
        body = Buffer.concat(parts);
      } else if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        if (rest.length < n) return null;
        body = rest.subarray(0, n);
        used = n;
      } else {
        if (!isClosed) return null; // body runs to the end of the connection
        body = rest;
        used = rest.length;
      }
      buf = rest.subarray(used);
      return { status, headers, body, text: body.toString('utf8') };
    }

    const conn = {
      socket: sock,
      write(data) {
        return new Promise((res, rej) => sock.write(data, (e) => (e ? rej(e) : res())));
      },
      response({ timeoutMs = 5000, head = false } = {}) {
        return new Promise((res, rej) => {
          const check = () => {
            let r;
            try {
              r = take(head);
            } catch (e) {
              return done(e);
            }
            if (r) return done(null, r);
            if (isClosed || error) {
              return done(new Error(`connection ${error ? `failed (${error.code || error.message})` : 'closed'} before a complete response; got ${JSON.stringify(buf.toString('latin1').slice(0, 500))}`));
            }
            return undefined;
          };
          const timer = setTimeout(() => done(new Error(`no complete response within ${timeoutMs} ms; got ${JSON.stringify(buf.toString('latin1').slice(0, 500))}`)), timeoutMs);
          const done = (e, v) => {
            clearTimeout(timer);
            waiters.delete(check);
            if (e) rej(e);
            else res(v);
          };
          waiters.add(check);
          check();
        });
      },
      closed({ timeoutMs = 5000 } = {}) {
        return new Promise((res, rej) => {
          const check = () => {
            if (isClosed) done(null);
          };
          const timer = setTimeout(() => done(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
          const done = (e) => {
            clearTimeout(timer);
            waiters.delete(check);
            if (e) rej(e);
            else res();
          };
          waiters.add(check);
          check();
        });
      },
      destroy() {
        sock.destroy();
      },
    };
    let isConnected = false;
    sock.once('connect', () => {
      isConnected = true;
      resolve(conn);
    });
    sock.once('error', (e) => {
      if (!isConnected) reject(e);
    });
  });
}

/** Send one raw request (text up to and including the body) and read one response. */
export async function rawRequest(url, text, { timeoutMs = 5000 } = {}) {
  const c = await rawConnect(url);
  try {
    await c.write(text);
    return await c.response({ timeoutMs });
  } finally {
    c.destroy();
  }
}
