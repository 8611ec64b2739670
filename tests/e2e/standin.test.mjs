// The stand-in model server (tests/standin/server.mjs) checked against the
// official `openai` npm client: the wire format must be something the real
// client accepts, and each scripted fault must look to that client the way
// the equivalent failure of a real provider does. Where the official client's
// reaction is surprising (wrong content type, stalls after the headers) the
// test pins down what it actually does.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startStandIn, tokenize } from '../standin/server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVER = resolve(HERE, '../standin/server.mjs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MSGS = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is a memory palace?' },
];

let s;
before(async () => {
  s = await startStandIn();
});
after(async () => {
  await s?.close();
});
beforeEach(() => s.reset());

function client(opts = {}) {
  return new OpenAI({ baseURL: s.url + '/v1', apiKey: 'k', maxRetries: 0, timeout: 5000, ...opts });
}

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to throw');
}

async function collect(stream) {
  const chunks = [];
  for await (const ch of stream) chunks.push(ch);
  return chunks;
}

const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

describe('stand-in wire format with the official openai client', () => {
  test('models.list returns both models', async () => {
    const page = await client().models.list();
    const ids = page.data.map((m) => m.id).sort();
    assert.deepEqual(ids, ['standin-chat', 'standin-embed']);
    for (const m of page.data) {
      assert.equal(m.object, 'model');
      assert.equal(m.owned_by, 'standin');
      assert.ok(Number.isInteger(m.created));
    }
    assert.equal(s.requests().length, 1);
  });

  test('chat non-streaming: default reply and usage; scripted content verbatim', async () => {
    const c = client();
    const r = await c.chat.completions.create({ model: 'standin-chat', messages: MSGS, max_tokens: 50, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.model, 'standin-chat');
    assert.ok(Number.isInteger(r.created));
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual({ role: r.choices[0].message.role, content: r.choices[0].message.content }, { role: 'assistant', content: 'Stand-in reply to: What is a memory palace?' });
    // 3 + 5 words in; "Stand-in reply to: What is a memory palace?" is 8 pieces out
    assert.deepEqual(r.usage, { prompt_tokens: 8, completion_tokens: 8, total_tokens: 16 });

    const long = 'x'.repeat(300);
    const r2 = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: long }] });
    assert.equal(r2.choices[0].message.content, 'Stand-in reply to: ' + 'x'.repeat(200), 'the last user message is cut to 200 characters');
    assert.equal(r2.model, 'm', 'the requested model is echoed');

    const text = '  Line one,\n\tline "two" — ünïcødé 🙂 {"json": true}  ';
    s.script([{ content: text }]);
    const r3 = await c.chat.completions.create({ model: 'standin-chat', messages: MSGS, response_format: { type: 'json_object' } });
    assert.equal(r3.choices[0].message.content, text);
    assert.equal(r3.usage.completion_tokens, tokenize(text).length);
    assert.equal(tokenize(text).join(''), text);
  });

  test('chat streaming with include_usage: deltas join to the scripted content in order, usage last', async () => {
    const c = client();
    const tokens = ['Hel', 'lo', ',', ' wor', 'ld', '!\n', '  ', 'bye'];
    s.script([{ tokens }]);
    const stream = await c.chat.completions.create({ model: 'standin-chat', messages: MSGS, stream: true, stream_options: { include_usage: true } });
    const chunks = await collect(stream);
    assert.equal(chunks.length, 1 + tokens.length + 1 + 1, 'role chunk, one per token, finish chunk, usage chunk');
    const first = chunks[0];
    assert.equal(first.object, 'chat.completion.chunk');
    assert.deepEqual(first.choices[0].delta, { role: 'assistant', content: '' });
    assert.equal(first.choices[0].finish_reason, null);
    assert.ok(chunks.every((ch) => ch.id === first.id && ch.model === 'standin-chat'));
    const deltas = chunks.slice(1, 1 + tokens.length).map((ch) => ch.choices[0].delta.content);
    assert.deepEqual(deltas, tokens);
    const fin = chunks[chunks.length - 2];
    assert.deepEqual(fin.choices[0].delta, {});
    assert.equal(fin.choices[0].finish_reason, 'stop');
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: 8, completion_tokens: tokens.length, total_tokens: 8 + tokens.length });

    // Without include_usage there is no usage chunk; default content streams too.
    const chunks2 = await collect(await c.chat.completions.create({ model: 'standin-chat', messages: MSGS, stream: true }));
    assert.ok(chunks2.every((ch) => ch.choices.length === 1 && !ch.usage));
    assert.equal(chunks2.map((ch) => ch.choices[0].delta.content ?? '').join(''), 'Stand-in reply to: What is a memory palace?');
  });

  test('chat streaming arrives incrementally (each chunk is flushed on its own)', async () => {
    s.script([{ content: 'one two three', token_delay_ms: 120 }]);
    const stream = await client().chat.completions.create({ model: 'standin-chat', messages: MSGS, stream: true });
    const seen = [];
    for await (const ch of stream) {
      const d = ch.choices[0]?.delta?.content;
      if (d) seen.push([d, Date.now()]);
    }
    assert.deepEqual(
      seen.map(([d]) => d),
      ['one ', 'two ', 'three'],
    );
    assert.ok(seen[2][1] - seen[0][1] >= 200, `first and last token ${seen[2][1] - seen[0][1]} ms apart`);
  });

  test('embeddings: client default (base64) and explicit float; count, dims, unit norm, deterministic', async () => {
    const c = client();
    const input = ['alpha', 'beta gamma', 'alpha'];
    const b = await c.embeddings.create({ model: 'standin-embed', input });
    const sent = s.requests()[0].body;
    assert.equal(sent.encoding_format, 'base64', 'the official client asks for base64 unless told otherwise');
    assert.equal(b.object, 'list');
    assert.equal(b.model, 'standin-embed');
    assert.equal(b.data.length, 3);
    assert.deepEqual(
      b.data.map((d) => d.index),
      [0, 1, 2],
    );
    assert.deepEqual(b.usage, { prompt_tokens: 4, total_tokens: 4 });
    for (const d of b.data) {
      assert.equal(d.object, 'embedding');
      assert.equal(d.embedding.length, 8);
      assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5, `norm ${norm(d.embedding)}`);
    }
    assert.deepEqual(b.data[0].embedding, b.data[2].embedding, 'same text, same vector');
    assert.notDeepEqual(b.data[0].embedding, b.data[1].embedding);

    const f = await c.embeddings.create({ model: 'standin-embed', input, encoding_format: 'float' });
    assert.equal(s.requests()[1].body.encoding_format, 'float');
    assert.equal(f.data.length, 3);
    for (let i = 0; i < 3; i++) {
      assert.equal(f.data[i].embedding.length, 8);
      // base64 carries float32; the float form is those same float32 values
      assert.deepEqual(f.data[i].embedding, b.data[i].embedding);
    }

    const one = await c.embeddings.create({ model: 'standin-embed', input: 'alpha', dimensions: 32 });
    assert.equal(one.data.length, 1);
    assert.equal(one.data[0].embedding.length, 32);
    assert.ok(Math.abs(norm(one.data[0].embedding) - 1) < 1e-5);
    const again = await c.embeddings.create({ model: 'standin-embed', input: 'alpha', dimensions: 32, encoding_format: 'float' });
    assert.deepEqual(again.data[0].embedding, one.data[0].embedding, 'deterministic across requests');
  });

  test('the dims option sets the default vector size', async () => {
    const s2 = await startStandIn({ dims: 5 });
    try {
      const c = new OpenAI({ baseURL: s2.url + '/v1', apiKey: 'k', maxRetries: 0 });
      const r = await c.embeddings.create({ model: 'standin-embed', input: ['x', 'y'] });
      assert.deepEqual(
        r.data.map((d) => d.embedding.length),
        [5, 5],
      );
    } finally {
      await s2.close();
    }
  });
});

describe('stand-in faults as the official client sees them', () => {
  test('429 → RateLimitError with Retry-After visible; an HTTP date passes through too', async () => {
    s.script([{ fault: '429', retry_after: '1' }]);
    const e = await rejection(client().chat.completions.create({ model: 'standin-chat', messages: MSGS }));
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
    assert.equal(e.status, 429);
    assert.equal(e.headers.get('retry-after'), '1');
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.equal(e.type, 'requests');
    assert.equal(e.error.message, 'Rate limit reached');

    const date = new Date(Date.now() + 1000).toUTCString();
    s.script([{ fault: '429', retry_after: date }]);
    const e2 = await rejection(client().embeddings.create({ model: 'standin-embed', input: 'x' }));
    assert.ok(e2 instanceof OpenAI.RateLimitError);
    assert.equal(e2.headers.get('retry-after'), date);

    s.script([{ fault: '429' }]);
    const e3 = await rejection(client().chat.completions.create({ model: 'standin-chat', messages: MSGS }));
    assert.equal(e3.headers.get('retry-after'), null, 'no Retry-After unless scripted');
  });

  test('the official client retries a 429 after Retry-After and then succeeds', async () => {
    s.script([{ fault: '429', retry_after: '0' }, { content: 'second time lucky' }]);
    const r = await client({ maxRetries: 1 }).chat.completions.create({ model: 'standin-chat', messages: MSGS });
    assert.equal(r.choices[0].message.content, 'second time lucky');
    assert.equal(s.requests().length, 2);
  });

  test('500 → InternalServerError; 503 → InternalServerError with status 503 and Retry-After', async () => {
    s.script([{ fault: '500' }, { fault: '503', retry_after: '2' }]);
    const e = await rejection(client().chat.completions.create({ model: 'standin-chat', messages: MSGS }));
    assert.ok(e instanceof OpenAI.InternalServerError, e.constructor.name);
    assert.equal(e.status, 500);
    assert.equal(e.type, 'server_error');
    const e2 = await rejection(client().chat.completions.create({ model: 'standin-chat', messages: MSGS, stream: true }));
    assert.ok(e2 instanceof OpenAI.InternalServerError);
    assert.equal(e2.status, 503);
    assert.equal(e2.headers.get('retry-after'), '2');
  });

  test('status fault: any status and body verbatim', async () => {
    s.script([{ fault: 'status', status: 418, body: 'teapot' }, { fault: 'status', status: 400, body: '{"error":{"message":"bad thing","type":"invalid_request_error","param":"messages","code":null}}' }]);
    const e = await rejection(client().chat.completions.create({ model: 'standin-chat', messages: MSGS }));
    assert.ok(e instanceof OpenAI.APIError);
    assert.equal(e.status, 418);
    assert.equal(e.message, '418 teapot');
    const e2 = await rejection(client().chat.completions.create({ model: 'standin-chat', messages: MSGS }));
    assert.ok(e2 instanceof OpenAI.BadRequestError);
    assert.equal(e2.param, 'messages');
    assert.equal(e2.error.message, 'bad thing');
  });

  test('malformed JSON → the client throws a SyntaxError (not an OpenAI error class), streaming or not', async () => {
    s.script([{ fault: 'malformed_json' }]);
    const e = await rejection(client().chat.completions.create({ model: 'standin-chat', messages: MSGS }));
    assert.ok(e instanceof SyntaxError, e.constructor.name);
    assert.ok(!(e instanceof OpenAI.OpenAIError));

    s.script([{ fault: 'malformed_json' }]);
    const stream = await client().chat.completions.create({ model: 'standin-chat', messages: MSGS, stream: true });
    // The client logs the bad line with console.error before throwing; keep the test output clean.
    const orig = console.error;
    console.error = () => {};
    try {
      const e2 = await rejection(collect(stream));
      assert.ok(e2 instanceof SyntaxError, e2.constructor.name);
    } finally {
      console.error = orig;
    }
  });

  test('wrong content type → no error: non-streaming returns the HTML as a string, streaming yields nothing', async () => {
    s.script([{ fault: 'wrong_content_type' }, { fault: 'wrong_content_type' }]);
    const r = await client().chat.completions.create({ model: 'standin-chat', messages: MSGS });
    assert.equal(typeof r, 'string', 'the official client does not check the content type and hands back the text');
    assert.equal(r, '<html><body>Gateway</body></html>');
    assert.equal(r.choices, undefined, 'so there is no valid completion');

    const stream = await client().chat.completions.create({ model: 'standin-chat', messages: MSGS, stream: true });
    const chunks = await collect(stream);
    assert.deepEqual(chunks, [], 'an HTML body has no SSE data lines: the stream ends cleanly and empty');
  });

  test('disconnect mid-stream → the iteration throws TypeError "terminated" after the first tokens', async () => {
    s.script([{ fault: 'disconnect', content: 'one two three four' }]);
    const stream = await client().chat.completions.create({ model: 'standin-chat', messages: MSGS, stream: true });
    const got = [];
    let err = null;
    try {
      for await (const ch of stream) got.push(ch.choices[0].delta.content);
    } catch (e) {
      err = e;
    }
    assert.deepEqual(got, ['', 'one ', 'two '], 'role chunk and disconnect_after (default 2) tokens arrive first');
    assert.ok(err, 'the iteration must throw');
    assert.ok(err instanceof TypeError, err.constructor.name);
    assert.equal(err.message, 'terminated');
    assert.ok(!(err instanceof OpenAI.OpenAIError), 'a raw fetch error, not an APIError');

    s.script([{ fault: 'disconnect', disconnect_after: 0, content: 'one two' }]);
    const got0 = [];
    const e0 = await rejection(
      (async () => {
        for await (const ch of await client().chat.completions.create({ model: 'standin-chat', messages: MSGS, stream: true })) got0.push(ch.choices[0].delta.content);
      })(),
    );
    assert.deepEqual(got0, ['']);
    assert.equal(e0.message, 'terminated');
  });

  test('disconnect without streaming → APIConnectionError (before any response byte)', async () => {
    s.script([{ fault: 'disconnect' }]);
    const e = await rejection(client().chat.completions.create({ model: 'standin-chat', messages: MSGS }));
    assert.ok(e instanceof OpenAI.APIConnectionError, e.constructor.name);
    assert.ok(!(e instanceof OpenAI.APIConnectionTimeoutError));
  });

  test('stall without streaming → the client timeout does NOT fire (it only covers the headers); abort rejects with AbortError', async () => {
    s.script([{ fault: 'stall' }]);
    const ac = new AbortController();
    const t0 = Date.now();
    const p = client({ timeout: 300 })
      .chat.completions.create({ model: 'standin-chat', messages: MSGS }, { signal: ac.signal })
      .then(
        (r) => ({ r }),
        (e) => ({ e }),
      );
    const outcome = await Promise.race([p, sleep(900).then(() => 'pending')]);
    assert.equal(outcome, 'pending', 'still waiting for the body long after the 300 ms timeout');
    ac.abort();
    const { e } = await p;
    assert.ok(e, 'aborting rejects');
    assert.equal(e.name, 'AbortError');
    assert.ok(!(e instanceof OpenAI.OpenAIError), `a raw DOMException, not APIUserAbortError (${e.constructor.name})`);
    assert.ok(Date.now() - t0 >= 900);
  });

  test('stall while streaming → first token arrives, then the iteration hangs past the timeout; aborting ends it silently', async () => {
    s.script([{ fault: 'stall', content: 'a b c d' }]);
    const stream = await client({ timeout: 300 }).chat.completions.create({ model: 'standin-chat', messages: MSGS, stream: true });
    const it = stream[Symbol.asyncIterator]();
    assert.deepEqual((await it.next()).value.choices[0].delta, { role: 'assistant', content: '' });
    assert.equal((await it.next()).value.choices[0].delta.content, 'a ');
    const pending = it.next();
    const outcome = await Promise.race([pending, sleep(800).then(() => 'pending')]);
    assert.equal(outcome, 'pending', 'no timeout once the headers are in');
    stream.controller.abort();
    const end = await pending;
    assert.equal(end.done, true, 'abort finishes the iteration without an error, as if the stream were complete');
  });

  test('slow_first_byte: the answer arrives after delay_ms; with a shorter client timeout → APIConnectionTimeoutError', async () => {
    s.script([{ fault: 'slow_first_byte', delay_ms: 300, content: 'late' }]);
    const t0 = Date.now();
    const r = await client().chat.completions.create({ model: 'standin-chat', messages: MSGS });
    const took = Date.now() - t0;
    assert.equal(r.choices[0].message.content, 'late');
    assert.ok(took >= 300, `took ${took} ms`);

    s.script([{ fault: 'slow_first_byte', delay_ms: 1500 }]);
    const t1 = Date.now();
    const e = await rejection(client({ timeout: 200 }).chat.completions.create({ model: 'standin-chat', messages: MSGS }));
    assert.ok(e instanceof OpenAI.APIConnectionTimeoutError, e.constructor.name);
    assert.ok(Date.now() - t1 < 1000, 'timed out before the stand-in answered');

    // A plain step delay_ms also delays the first byte.
    s.script([{ delay_ms: 150 }]);
    const t2 = Date.now();
    await client().embeddings.create({ model: 'standin-embed', input: 'x' });
    assert.ok(Date.now() - t2 >= 150);
  });

  test('invalid requests → BadRequestError with the OpenAI error shape', async () => {
    const e = await rejection(client().chat.completions.create({ model: 'standin-chat', messages: [] }));
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.param, 'messages');

    const res = await fetch(s.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [' });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error.type, 'invalid_request_error');
    assert.ok('param' in body.error && 'code' in body.error);
  });
});

describe('stand-in auth', () => {
  let sa;
  before(async () => {
    sa = await startStandIn({ apiKey: 'sekrit' });
  });
  after(async () => {
    await sa?.close();
  });

  test('with apiKey set a wrong key → AuthenticationError 401; the right key works', async () => {
    const bad = new OpenAI({ baseURL: sa.url + '/v1', apiKey: 'wrong', maxRetries: 0 });
    const e = await rejection(bad.chat.completions.create({ model: 'standin-chat', messages: MSGS }));
    assert.ok(e instanceof OpenAI.AuthenticationError, e.constructor.name);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.error.message, 'Incorrect API key provided');
    const e2 = await rejection(bad.models.list());
    assert.equal(e2.status, 401);

    const res = await fetch(sa.url + '/v1/models');
    assert.equal(res.status, 401, 'no Authorization header');

    const good = new OpenAI({ baseURL: sa.url + '/v1', apiKey: 'sekrit', maxRetries: 0 });
    const r = await good.chat.completions.create({ model: 'standin-chat', messages: MSGS });
    assert.equal(r.choices[0].message.content, 'Stand-in reply to: What is a memory palace?');

    // Control endpoints need no key; rejected requests are logged with their headers.
    const log = await (await fetch(sa.url + '/_requests')).json();
    assert.equal(log.requests.length, 4);
    assert.equal(log.requests[0].headers.authorization, 'Bearer wrong');
    assert.equal(log.requests[3].headers.authorization, 'Bearer sekrit');
  });
});

describe('stand-in control protocol', () => {
  async function control(method, path, body) {
    const res = await fetch(s.url + path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  test('/_requests records the bodies in order; /_reset clears; steps are consumed FIFO', async () => {
    assert.equal((await control('POST', '/_script', { steps: [{ content: 'first' }, { content: 'second' }] })).status, 204);
    assert.equal((await control('POST', '/_script', { steps: [{ content: 'third' }] })).status, 204);
    assert.deepEqual((await control('GET', '/_script')).body.steps, [{ content: 'first' }, { content: 'second' }, { content: 'third' }]);
    const c = client();
    await c.models.list(); // does not consume a step
    const a = await c.chat.completions.create({ model: 'standin-chat', messages: [{ role: 'user', content: 'one' }] });
    const b = await collect(await c.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'two' }], stream: true }));
    const e = await c.embeddings.create({ model: 'standin-embed', input: 'three' }); // consumes "third" (content is ignored for embeddings)
    const d = await c.chat.completions.create({ model: 'standin-chat', messages: [{ role: 'user', content: 'four' }] });
    assert.equal(a.choices[0].message.content, 'first');
    assert.equal(b.map((ch) => ch.choices[0]?.delta?.content ?? '').join(''), 'second');
    assert.equal(e.data.length, 1);
    assert.equal(d.choices[0].message.content, 'Stand-in reply to: four', 'an empty queue means default behaviour');

    const { status, body } = await control('GET', '/_requests');
    assert.equal(status, 200);
    const reqs = body.requests;
    assert.deepEqual(
      reqs.map((r) => `${r.method} ${r.path}`),
      ['GET /v1/models', 'POST /v1/chat/completions', 'POST /v1/chat/completions', 'POST /v1/embeddings', 'POST /v1/chat/completions'],
    );
    assert.equal(reqs[0].body, null);
    assert.deepEqual(reqs[1].body.messages, [{ role: 'user', content: 'one' }]);
    assert.equal(reqs[1].body.model, 'standin-chat');
    assert.ok(!reqs[1].body.stream);
    assert.equal(reqs[2].body.model, 'other');
    assert.equal(reqs[2].body.stream, true);
    assert.equal(reqs[3].body.input, 'three');
    assert.equal(reqs[1].headers.authorization, 'Bearer k');
    for (let i = 1; i < reqs.length; i++) assert.ok(reqs[i].at >= reqs[i - 1].at);
    assert.ok(Math.abs(reqs[0].at - Date.now()) < 10_000, 'at is epoch milliseconds');
    assert.deepEqual(s.requests(), reqs, 'the module API returns the same log');

    s.script({ content: 'left over' });
    assert.equal((await control('POST', '/_reset')).status, 204);
    assert.deepEqual((await control('GET', '/_requests')).body.requests, []);
    const r = await c.chat.completions.create({ model: 'standin-chat', messages: [{ role: 'user', content: 'after' }] });
    assert.equal(r.choices[0].message.content, 'Stand-in reply to: after', 'reset cleared the queue');
  });

  test('bad scripts, unknown paths and wrong methods are rejected', async () => {
    assert.equal((await control('POST', '/_script', { nope: 1 })).status, 400);
    assert.equal((await control('POST', '/_script', { steps: [{ fault: 'explode' }] })).status, 400);
    assert.equal((await control('POST', '/_script', { steps: ['x'] })).status, 400);
    assert.deepEqual((await control('GET', '/_script')).body.steps, [], 'a rejected script adds nothing');
    assert.throws(() => s.script([{ fault: 'explode' }]), /unknown fault/);
    assert.equal((await control('GET', '/_reset')).status, 405);
    assert.equal((await control('GET', '/_nothing')).status, 404);

    const nf = await control('GET', '/v1/nothing');
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.type, 'invalid_request_error');
    const e = await rejection(client().get('/nothing'));
    assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
    const wm = await control('GET', '/v1/chat/completions');
    assert.equal(wm.status, 405);
    assert.ok(wm.body.error);
    assert.equal((await control('POST', '/v1/models', {})).status, 405);
    assert.equal((await control('GET', '/elsewhere')).status, 404);
  });
});

describe('stand-in CLI', () => {
  function startCli(args) {
    const child = spawn(process.execPath, [SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    const line = new Promise((resolve, reject) => {
      let buf = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) resolve(buf.slice(0, nl));
      });
      child.once('exit', (code) => reject(new Error(`exited ${code} before listening`)));
    });
    return { child, line, exited };
  }

  let proc;
  afterEach(() => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  });

  test('prints the listening line, applies --delay-ms, exits 0 on SIGTERM even with a stalled request open', async () => {
    proc = startCli(['--port', '0', '--delay-ms', '50']);
    const line = await proc.line;
    const m = /^standin listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
    assert.ok(m, `listening line: ${JSON.stringify(line)}`);
    const url = m[1];
    assert.ok(Number(m[2]) > 0);

    const t0 = Date.now();
    const res = await fetch(url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'standin-chat', messages: [{ role: 'user', content: 'ping' }] }) });
    const took = Date.now() - t0;
    assert.equal(res.status, 200);
    assert.equal((await res.json()).choices[0].message.content, 'Stand-in reply to: ping');
    assert.ok(took >= 50, `took ${took} ms`);

    // Leave a stalled request hanging: shutdown must not wait for it.
    await fetch(url + '/_script', { method: 'POST', body: JSON.stringify({ steps: [{ fault: 'stall' }] }) });
    const stalled = await fetch(url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }) });
    assert.equal(stalled.status, 200);
    const bodyDone = stalled.text().catch((e) => e);

    const t1 = Date.now();
    proc.child.kill('SIGTERM');
    const { code, signal } = await proc.exited;
    assert.equal(signal, null);
    assert.equal(code, 0);
    assert.ok(Date.now() - t1 < 1500, 'exits promptly');
    assert.ok((await bodyDone) instanceof Error, 'the stalled response was cut off');
  });

  test('--api-key and --dims are honoured; bad arguments exit 2', async () => {
    proc = startCli(['--api-key', 'kk', '--dims', '3']);
    const url = (await proc.line).replace('standin listening on ', '');
    const c = new OpenAI({ baseURL: url + '/v1', apiKey: 'kk', maxRetries: 0 });
    const r = await c.embeddings.create({ model: 'standin-embed', input: 'x' });
    assert.equal(r.data[0].embedding.length, 3);
    const e = await rejection(new OpenAI({ baseURL: url + '/v1', apiKey: 'nope', maxRetries: 0 }).models.list());
    assert.equal(e.status, 401);
    proc.child.kill('SIGINT');
    assert.deepEqual(await proc.exited, { code: 0, signal: null });

    const bad = startCli(['--bogus']);
    bad.line.catch(() => {});
    assert.equal((await bad.exited).code, 2);
  });
});
