// Stand-in for an OpenAI-compatible model API, used by Loci's tests instead of
// a real provider. Plain node:http, no dependencies.
//
// Module:  const s = await startStandIn({ port, host, delayMs, dims, apiKey });
//          s.url (no trailing slash, no /v1), s.script(steps), s.reset(),
//          s.requests(), s.close()
// CLI:     node tests/standin/server.mjs [--port N] [--host H] [--delay-ms MS]
//                                        [--dims D] [--api-key KEY]
//          prints one line "standin listening on http://HOST:PORT" when ready.
//
// See tests/standin/README.md for the endpoints and the control protocol.
import http from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MAX_BODY = 64 * 1024 * 1024;
const MAX_LOG = 100_000; // oldest request-log entries are dropped beyond this
const MODELS = ['standin-chat', 'standin-embed'];
const STARTED = Math.floor(Date.now() / 1000);
const FAULTS = new Set(['none', '429', '500', '503', 'slow_first_byte', 'stall', 'malformed_json', 'disconnect', 'wrong_content_type', 'status']);

// ---- helpers ----------------------------------------------------------------

function apiError(message, type, code = null, param = null) {
  return { error: { message, type, param, code } };
}

function sendJson(res, status, obj, extraHeaders = {}) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, ...extraHeaders });
  res.end(body);
}

function sendEmpty(res, status, extraHeaders = {}) {
  res.writeHead(status, { 'Content-Length': 0, ...extraHeaders });
  res.end();
}

// Resolves true after ms, or false as soon as the response is closed (client
// went away, or the stand-in is shutting down).
function wait(res, ms) {
  if (res.destroyed || res.closed) return Promise.resolve(false);
  if (!(ms > 0)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onClose = () => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      res.off('close', onClose);
      resolve(true);
    }, ms);
    res.once('close', onClose);
  });
}

// res.write that resolves once the data is handed to the kernel (or fails).
function write(res, data) {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve(false);
    res.write(data, (err) => resolve(!err));
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function textOf(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (typeof p === 'string' ? p : p && typeof p.text === 'string' ? p.text : ''))
      .filter((s) => s !== '')
      .join(' ');
  }
  return '';
}

function countWords(s) {
  const m = s.match(/\S+/g);
  return m ? m.length : 0;
}

/** Split text into stream pieces; joining them gives the text back exactly. */
export function tokenize(s) {
  return s.match(/\S+\s*|\s+/g) || [];
}

// FNV-1a 32-bit hash of the UTF-8 bytes, used to seed the vector generator.
function fnv1a(str) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(str, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Deterministic L2-normalised vector for a text (exported for tests). */
export function embedText(text, dims) {
  let state = fnv1a(text) || 1;
  const next = () => {
    // xorshift32
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x100000000;
  };
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    v[i] = next() * 2 - 1;
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dims; i++) v[i] = v[i] / norm;
  return v;
}

function toBase64(vec) {
  const buf = Buffer.alloc(vec.length * 4);
  for (let i = 0; i < vec.length; i++) buf.writeFloatLE(vec[i], i * 4);
  return buf.toString('base64');
}

let idCounter = 0;
function newId(prefix) {
  idCounter = (idCounter + 1) % 0x7fffffff;
  return `${prefix}${Date.now().toString(36)}${idCounter.toString(36).padStart(6, '0')}`;
}

function retryAfterHeader(step) {
  return step.retry_after !== undefined && step.retry_after !== null ? { 'Retry-After': String(step.retry_after) } : {};
}

function validateStep(s) {
  if (!s || typeof s !== 'object' || Array.isArray(s)) return 'each step must be an object';
  if (s.fault !== undefined && !FAULTS.has(String(s.fault))) return `unknown fault "${s.fault}"`;
  if (s.content !== undefined && typeof s.content !== 'string') return 'step.content must be a string';
  if (s.tokens !== undefined && !(Array.isArray(s.tokens) && s.tokens.every((t) => typeof t === 'string'))) return 'step.tokens must be an array of strings';
  return null;
}

// ---- the server ---------------------------------------------------------------

export async function startStandIn({ port = 0, host = '127.0.0.1', delayMs = 0, dims = 8, apiKey = null } = {}) {
  const queue = [];
  let log = [];
  const sockets = new Set();

  const server = http.createServer({ keepAlive: true });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.requestTimeout = 0;
  server.timeout = 0;
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  });
  server.on('clientError', (err, sock) => {
    if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else sock.destroy();
  });

  function addSteps(steps) {
    const list = Array.isArray(steps) ? steps : [steps];
    for (const s of list) {
      const err = validateStep(s);
      if (err) throw new Error(err);
    }
    for (const s of list) queue.push({ ...s });
  }

  // ---- control protocol ----
  async function control(req, res, path, raw) {
    const method = req.method;
    if (path === '/_script') {
      if (method === 'GET') return sendJson(res, 200, { steps: queue.map((s) => ({ ...s })) });
      if (method !== 'POST') return sendJson(res, 405, apiError(`${method} not allowed on ${path}`, 'invalid_request_error', 'method_not_allowed'), { Allow: 'GET, POST' });
      let body;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return sendJson(res, 400, apiError('body must be JSON {"steps":[...]}', 'invalid_request_error'));
      }
      const steps = Array.isArray(body) ? body : body && body.steps;
      if (!Array.isArray(steps)) return sendJson(res, 400, apiError('body must be JSON {"steps":[...]}', 'invalid_request_error', null, 'steps'));
      try {
        addSteps(steps);
      } catch (e) {
        return sendJson(res, 400, apiError(e.message, 'invalid_request_error', null, 'steps'));
      }
      return sendEmpty(res, 204);
    }
    if (path === '/_reset') {
      if (method !== 'POST') return sendJson(res, 405, apiError(`${method} not allowed on ${path}`, 'invalid_request_error', 'method_not_allowed'), { Allow: 'POST' });
      queue.length = 0;
      log = [];
      return sendEmpty(res, 204);
    }
    if (path === '/_requests') {
      if (method !== 'GET') return sendJson(res, 405, apiError(`${method} not allowed on ${path}`, 'invalid_request_error', 'method_not_allowed'), { Allow: 'GET' });
      return sendJson(res, 200, { requests: log });
    }
    return sendJson(res, 404, apiError(`Unknown control path ${path}`, 'invalid_request_error', 'unknown_url'));
  }

  // ---- faults ----
  // Returns true when the fault handled the response entirely.
  async function fault(req, res, step, stream, model) {
    const kind = String(step.fault ?? 'none');
    const headers = step.headers && typeof step.headers === 'object' ? step.headers : {};
    switch (kind) {
      case 'none':
      case 'slow_first_byte':
        return false;
      case '429':
        sendJson(res, 429, apiError('Rate limit reached', 'requests', 'rate_limit_exceeded'), { ...retryAfterHeader(step), ...headers });
        return true;
      case '500':
        sendJson(res, 500, apiError('The server had an error while processing your request.', 'server_error', null), headers);
        return true;
      case '503':
        sendJson(res, 503, apiError('The server is overloaded or not ready yet.', 'server_error', 'service_unavailable'), { ...retryAfterHeader(step), ...headers });
        return true;
      case 'malformed_json':
        if (stream) {
          res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', ...headers });
          res.end('data: {not json\n\n');
        } else {
          const body = '{"id":"x","choices":[{"message":';
          res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
          res.end(body);
        }
        return true;
      case 'wrong_content_type': {
        const body = '<html><body>Gateway</body></html>';
        res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(body), ...headers });
        res.end(body);
        return true;
      }
      case 'status': {
        const status = Number.isInteger(step.status) && step.status >= 200 && step.status <= 599 ? step.status : 500;
        const body = step.body === undefined || step.body === null ? '' : String(step.body);
        let ct = step.content_type;
        if (!ct) {
          try {
            JSON.parse(body);
            ct = 'application/json';
          } catch {
            ct = 'text/plain';
          }
        }
        res.writeHead(status, { 'Content-Type': ct, 'Content-Length': Buffer.byteLength(body), ...headers });
        res.end(body);
        return true;
      }
      case 'stall':
      case 'disconnect':
        return false; // handled while writing the normal response
      default:
        return false;
    }
  }

  // ---- /v1/chat/completions ----
  async function chat(req, res, body, step) {
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return sendJson(res, 400, apiError('We could not parse the JSON body of your request.', 'invalid_request_error'));
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return sendJson(res, 400, apiError("'messages' must be a non-empty array", 'invalid_request_error', null, 'messages'));
    }
    const model = typeof body.model === 'string' && body.model ? body.model : 'standin-chat';
    const stream = body.stream === true;
    const kind = String(step.fault ?? 'none');

    let tokens;
    if (Array.isArray(step.tokens)) tokens = step.tokens.slice();
    else {
      let content = step.content;
      if (typeof content !== 'string' && body.response_format && typeof body.response_format === 'object') {
        // A structured request with nothing scripted: a valid key-terms
        // object (Loci's terms schema), so load tests need no scripting.
        content = JSON.stringify({
          terms: [{ term: 'Stand-in term', summary: 'A term the stand-in always names.' }],
          relations: [],
        });
      } else if (typeof content !== 'string') {
        let last = '';
        for (const m of body.messages) if (m && m.role === 'user') last = textOf(m.content);
        content = 'Stand-in reply to: ' + [...last].slice(0, 200).join('');
      }
      tokens = tokenize(content);
    }
    const content = tokens.join('');
    let promptTokens = 0;
    for (const m of body.messages) if (m) promptTokens += countWords(textOf(m.content));
    const usage = { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length };
    const finish = typeof step.finish_reason === 'string' ? step.finish_reason : 'stop';
    const id = newId('chatcmpl-');
    const created = Math.floor(Date.now() / 1000);
    const sock = req.socket;

    if (!stream) {
      if (kind === 'stall') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.flushHeaders();
        return; // never finish; the socket stays open until the client closes it
      }
      if (kind === 'disconnect') {
        sock.destroy();
        return;
      }
      return sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: finish }],
        usage,
      });
    }

    const chunk = (delta, finishReason, extra) =>
      'data: ' +
      JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices: delta === null ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
        ...extra,
      }) +
      '\n\n';

    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    if (!(await write(res, chunk({ role: 'assistant', content: '' }, null)))) return;

    let limit = tokens.length;
    if (kind === 'stall') limit = Math.min(limit, Number.isInteger(step.stall_after) && step.stall_after >= 0 ? step.stall_after : 1);
    if (kind === 'disconnect') limit = Math.min(limit, Number.isInteger(step.disconnect_after) && step.disconnect_after >= 0 ? step.disconnect_after : 2);
    const tokenDelay = Number(step.token_delay_ms) > 0 ? Number(step.token_delay_ms) : 0;

    for (let i = 0; i < limit; i++) {
      if (i > 0 && tokenDelay && !(await wait(res, tokenDelay))) return;
      if (!(await write(res, chunk({ content: tokens[i] }, null)))) return;
    }
    if (kind === 'stall') return; // keep the socket open, send nothing more
    if (kind === 'disconnect') {
      sock.destroy();
      return;
    }
    if (!(await write(res, chunk({}, finish)))) return;
    if (body.stream_options && body.stream_options.include_usage === true) {
      if (!(await write(res, chunk(null, null, { usage })))) return;
    }
    res.end('data: [DONE]\n\n');
  }

  // ---- /v1/embeddings ----
  async function embeddings(req, res, body, step) {
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return sendJson(res, 400, apiError('We could not parse the JSON body of your request.', 'invalid_request_error'));
    }
    let inputs = body.input;
    if (typeof inputs === 'string') inputs = [inputs];
    else if (Array.isArray(inputs) && inputs.length > 0 && inputs.every((x) => typeof x === 'number')) inputs = [inputs.join(' ')];
    if (!Array.isArray(inputs) || inputs.length === 0) {
      return sendJson(res, 400, apiError("'input' must be a string or a non-empty array of strings", 'invalid_request_error', null, 'input'));
    }
    inputs = inputs.map((x) => (typeof x === 'string' ? x : Array.isArray(x) ? x.join(' ') : null));
    if (inputs.some((x) => x === null)) {
      return sendJson(res, 400, apiError("'input' must be a string or a non-empty array of strings", 'invalid_request_error', null, 'input'));
    }
    let d = dims;
    if (body.dimensions !== undefined && body.dimensions !== null) {
      if (!Number.isInteger(body.dimensions) || body.dimensions < 1 || body.dimensions > 65536) {
        return sendJson(res, 400, apiError("'dimensions' must be a positive integer", 'invalid_request_error', null, 'dimensions'));
      }
      d = body.dimensions;
    }
    const fmt = body.encoding_format ?? 'float';
    if (fmt !== 'float' && fmt !== 'base64') {
      return sendJson(res, 400, apiError("'encoding_format' must be 'float' or 'base64'", 'invalid_request_error', null, 'encoding_format'));
    }
    const kind = String(step.fault ?? 'none');
    if (kind === 'stall') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      return;
    }
    if (kind === 'disconnect') {
      req.socket.destroy();
      return;
    }
    let words = 0;
    const data = inputs.map((text, index) => {
      words += countWords(text);
      const v = embedText(text, d);
      return { object: 'embedding', index, embedding: fmt === 'base64' ? toBase64(v) : Array.from(v) };
    });
    const model = typeof body.model === 'string' && body.model ? body.model : 'standin-embed';
    return sendJson(res, 200, { object: 'list', data, model, usage: { prompt_tokens: words, total_tokens: words } });
  }

  // ---- /v1 dispatch ----
  const ROUTES = { '/v1/models': 'GET', '/v1/chat/completions': 'POST', '/v1/embeddings': 'POST' };

  async function api(req, res, path, raw) {
    let body = null;
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = null;
      }
    }
    log.push({ method: req.method, path, headers: { ...req.headers }, body, at: Date.now() });
    if (log.length > MAX_LOG) log.splice(0, log.length - MAX_LOG);

    let error = null;
    if (apiKey !== null && apiKey !== undefined && req.headers.authorization !== `Bearer ${apiKey}`) {
      error = [401, apiError('Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'), {}];
    } else if (!(path in ROUTES)) {
      error = [404, apiError(`Unknown request URL: ${req.method} ${path}`, 'invalid_request_error', 'unknown_url'), {}];
    } else if (req.method !== ROUTES[path]) {
      error = [405, apiError(`Method ${req.method} not allowed on ${path}`, 'invalid_request_error', 'method_not_allowed'), { Allow: ROUTES[path] }];
    }
    if (error) {
      if (!(await wait(res, delayMs))) return;
      return sendJson(res, ...error);
    }

    if (path === '/v1/models') {
      if (!(await wait(res, delayMs))) return;
      return sendJson(res, 200, { object: 'list', data: MODELS.map((id) => ({ id, object: 'model', created: STARTED, owned_by: 'standin' })) });
    }

    const step = queue.length ? queue.shift() : {};
    const stepDelay = Number(step.delay_ms) > 0 ? Number(step.delay_ms) : 0;
    const extra = String(step.fault) === 'slow_first_byte' ? (step.delay_ms === undefined ? 10_000 : stepDelay) : stepDelay;
    if (!(await wait(res, delayMs + extra))) return;
    const stream = !!(body && typeof body === 'object' && body.stream === true);
    if (await fault(req, res, step, stream)) return;

    if (raw.length && body === null) {
      return sendJson(res, 400, apiError('We could not parse the JSON body of your request.', 'invalid_request_error'));
    }
    if (path === '/v1/chat/completions') return chat(req, res, body, step);
    return embeddings(req, res, body, step);
  }

  server.on('request', async (req, res) => {
    try {
      const raw = await readBody(req);
      const path = new URL(req.url, 'http://x').pathname.replace(/\/+$/, '') || '/';
      if (path.startsWith('/_')) return await control(req, res, path, raw);
      if (path === '/v1' || path.startsWith('/v1/')) return await api(req, res, path, raw);
      return sendJson(res, 404, apiError(`Unknown request URL: ${req.method} ${path}`, 'invalid_request_error', 'unknown_url'));
    } catch (e) {
      if (!res.headersSent && !res.destroyed) {
        try {
          sendJson(res, 500, apiError(`stand-in error: ${e.message}`, 'server_error'));
        } catch {
          res.destroy();
        }
      } else res.destroy();
    }
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  let urlHost = host === '0.0.0.0' || host === '::' || !host ? '127.0.0.1' : host;
  if (urlHost.includes(':')) urlHost = `[${urlHost}]`;
  const url = `http://${urlHost}:${addr.port}`;

  let closing = null;
  return {
    url,
    port: addr.port,
    script(steps) {
      addSteps(steps);
    },
    reset() {
      queue.length = 0;
      log = [];
    },
    requests() {
      return JSON.parse(JSON.stringify(log));
    },
    close() {
      if (!closing) {
        closing = new Promise((resolve) => {
          server.close(() => resolve());
          for (const s of sockets) s.destroy();
          sockets.clear();
        });
      }
      return closing;
    },
  };
}

// ---- CLI ------------------------------------------------------------------------

function usage(msg) {
  if (msg) process.stderr.write(`standin: ${msg}\n`);
  process.stderr.write('usage: node tests/standin/server.mjs [--port N] [--host 127.0.0.1] [--delay-ms MS] [--dims D] [--api-key KEY]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1', delayMs: 0, dims: 8, apiKey: null };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const val = () => {
      if (v !== undefined) return v;
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    const int = (name, min) => {
      const s = val();
      if (!/^\d+$/.test(s) || Number(s) < min) usage(`${name} must be an integer >= ${min}`);
      return Number(s);
    };
    switch (a) {
      case '--port':
        opts.port = int('--port', 0);
        if (opts.port > 65535) usage('--port must be <= 65535');
        break;
      case '--host':
        opts.host = val();
        break;
      case '--delay-ms':
        opts.delayMs = int('--delay-ms', 0);
        break;
      case '--dims':
        opts.dims = int('--dims', 1);
        break;
      case '--api-key':
        opts.apiKey = val();
        break;
      case '-h':
      case '--help':
        process.stdout.write('usage: node tests/standin/server.mjs [--port N] [--host 127.0.0.1] [--delay-ms MS] [--dims D] [--api-key KEY]\n');
        process.exit(0);
        break;
      default:
        usage(`unknown argument '${a}'`);
    }
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let s;
  try {
    s = await startStandIn(opts);
  } catch (e) {
    process.stderr.write(`standin: cannot listen: ${e.message}\n`);
    process.exit(1);
  }
  // Pipes and files get synchronous writes on Linux; the line is out at once.
  process.stdout.write(`standin listening on ${s.url}\n`);
  const stop = () => {
    setTimeout(() => process.exit(0), 2000).unref();
    s.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function isMain() {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) main();
