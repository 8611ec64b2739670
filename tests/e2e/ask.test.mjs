// Ask → answer → graph, as a learner uses it: with the offline engine and
// with a model (the stand-in), in wait, async and stream mode; the same
// term asked twice is one node with a stronger edge; a model that is down
// ends the ask with a clear error and writes nothing to the graph; bad input
// and other users' ids on every route.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStandIn } from '../standin/server.mjs';
import { cleanup, sleep, startServer } from './lib/server.mjs';
import { AUTH_TEST_ARGS, call, dbQuery, expectNotFoundForOtherUser, expectStatus, signupAndLogin } from './lib/users.mjs';

after(cleanup);

function ask(s, user, body) {
  return call(s, 'POST', '/api/v1/ask', { token: user.accessToken, body });
}

/** Read an SSE response to its end: [{event, data}] in order. */
async function sseEvents(s, user, body) {
  const res = await fetch(`${s.url}/api/v1/ask`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${user.accessToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, mode: 'stream' }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((b) => {
      const ev = /^event: (.*)$/m.exec(b)?.[1];
      const data = /^data: (.*)$/m.exec(b)?.[1];
      return { event: ev, data: data ? JSON.parse(data) : null };
    });
}

async function nodeCount(s, user) {
  const rows = await dbQuery(s, `SELECT COUNT(*) FROM nodes WHERE user_id = '${user.id}'`);
  return Number(rows[0]);
}

describe('ask with the offline engine', () => {
  let s;
  let alice;
  let bob;
  before(async () => {
    s = await startServer({ args: AUTH_TEST_ARGS });
    alice = await signupAndLogin(s);
    bob = await signupAndLogin(s);
  });
  after(() => s?.stop());

  test('no material: the answer says so plainly, the question\'s terms still enter the graph', async () => {
    const r = expectStatus(await ask(s, alice, { text: 'What is photosynthesis in green plants?' }), 200);
    const a = r.body;
    assert.equal(a.provider, 'local');
    assert.equal(a.is_found, false);
    assert.match(a.answer_markdown, /could not find|nothing/i);
    assert.deepEqual(a.citations, []);
    assert.ok(a.extracted_terms.length >= 1, JSON.stringify(a));
    const photo = a.extracted_terms.find((t) => /photosynthesis/i.test(t.term));
    assert.ok(photo, `photosynthesis is a term: ${JSON.stringify(a.extracted_terms)}`);
    assert.equal(photo.is_new, true);
    for (const k of ['question_id', 'message_id', 'conversation_id']) assert.match(a[k], /^[0-9a-f-]{36}$/);
    // the conversation holds the question and the answer
    const m = expectStatus(await call(s, 'GET', `/api/v1/conversations/${a.conversation_id}/messages`, { token: alice.accessToken }), 200);
    assert.deepEqual(m.body.items.map((x) => [x.role, x.status]), [['user', 'done'], ['assistant', 'done']]);
    assert.equal(m.body.items[1].content, a.answer_markdown);
    assert.equal(m.body.items[1].reply_to, a.question_id);
    assert.deepEqual(m.body.items[1].extracted_terms, a.extracted_terms);
    const list = expectStatus(await call(s, 'GET', '/api/v1/conversations', { token: alice.accessToken }), 200);
    assert.equal(list.body.items[0].id, a.conversation_id);
    assert.match(list.body.items[0].title, /photosynthesis/i);
    // the events were appended for alice
    const ev = await dbQuery(s, `SELECT type FROM events WHERE user_id = '${alice.id}' AND type IN ('answer.created', 'graph.updated') ORDER BY "offset"`);
    assert.deepEqual(ev, ['graph.updated', 'answer.created']);
  });

  test('the same term however it is written is one node, asked again the edge grows', async () => {
    const a1 = expectStatus(await ask(s, alice, { text: 'How do Neural Networks learn with backpropagation?' }), 200).body;
    const a2 = expectStatus(await ask(s, alice, { text: 'Is a neural network trained by backpropagation?' }), 200).body;
    const nn1 = a1.extracted_terms.find((t) => /neural network/i.test(t.term));
    const nn2 = a2.extracted_terms.find((t) => /neural network/i.test(t.term));
    assert.ok(nn1 && nn2, `${JSON.stringify(a1.extracted_terms)} / ${JSON.stringify(a2.extracted_terms)}`);
    assert.equal(nn2.node_id, nn1.node_id, '"Neural Networks" and "neural network" are one node');
    assert.equal(nn2.is_new, false);
    const bp1 = a1.extracted_terms.find((t) => /backpropagation/i.test(t.term));
    const bp2 = a2.extracted_terms.find((t) => /backpropagation/i.test(t.term));
    assert.equal(bp2.node_id, bp1.node_id);
    const [lo, hi] = [nn1.node_id, bp1.node_id].sort();
    const w = await dbQuery(s, `SELECT weight FROM edges WHERE user_id = '${alice.id}' AND src = '${lo}' AND dst = '${hi}' AND type = 'related'`);
    assert.equal(Number(w[0]), 2, 'co-occurring twice: weight 2');
    const keys = await dbQuery(s, `SELECT COUNT(*) FROM nodes WHERE user_id = '${alice.id}' AND key = 'neural network'`);
    assert.equal(keys[0], '1');
  });

  test('async: 202 at once, the answer lands in the conversation', async () => {
    const r = expectStatus(await ask(s, alice, { text: 'What are mitochondria?', mode: 'async' }), 202);
    assert.equal(r.body.status, 'pending');
    let items = [];
    for (let i = 0; i < 100 && items.length < 2; i++) {
      await sleep(50);
      items = (await call(s, 'GET', `/api/v1/conversations/${r.body.conversation_id}/messages`, { token: alice.accessToken })).body.items;
    }
    assert.equal(items.length, 2);
    assert.equal(items[0].id, r.body.question_id);
  });

  test('stream: accepted, tokens, then the whole answer', async () => {
    const evs = await sseEvents(s, alice, { text: 'What is chlorophyll?' });
    assert.equal(evs[0].event, 'accepted');
    const last = evs[evs.length - 1];
    assert.equal(last.event, 'answer');
    const tokens = evs.filter((e) => e.event === 'token').map((e) => e.data.text).join('');
    assert.equal(tokens, last.data.answer_markdown);
    assert.equal(last.data.question_id, evs[0].data.question_id);
  });

  test('continuing a conversation keeps it; bad input changes nothing', async () => {
    const first = expectStatus(await ask(s, alice, { text: 'What is osmosis?' }), 200).body;
    const next = expectStatus(await ask(s, alice, { text: 'And diffusion?', conversation_id: first.conversation_id }), 200).body;
    assert.equal(next.conversation_id, first.conversation_id);
    const before = await nodeCount(s, alice);
    const cases = [
      [{}, 422],
      [{ text: '' }, 422],
      [{ text: 'x'.repeat(8001) }, 422],
      [{ text: 42 }, 422],
      [{ text: 'hi', mode: 'fast' }, 422],
      [{ text: 'hi', extra: 1 }, 422],
      [{ text: 'hi', focus_node_id: 5 }, 422],
      [{ text: 'hi', focus_node_id: '01900000-0000-7000-8000-000000000000' }, 404],
      [{ text: 'hi', conversation_id: '01900000-0000-7000-8000-000000000000' }, 404],
      ['{"text": ', 400],
      [{ text: '   \n\t ' }, 422],
    ];
    for (const [body, status] of cases) {
      for (const mode of [undefined, 'async']) {
        const b = typeof body === 'object' && mode && !('mode' in body) ? { ...body, mode } : body;
        const r = await ask(s, alice, b);
        assert.equal(r.status, status, `${JSON.stringify(b).slice(0, 80)} -> ${status}, got ${r.status} ${r.text}`);
        assert.ok(r.body?.error?.code, 'a JSON error');
      }
    }
    const sse = await sseEvents(s, alice, { text: 'hi', conversation_id: '01900000-0000-7000-8000-000000000000' });
    assert.equal(sse[sse.length - 1].event, 'error');
    assert.equal(sse[sse.length - 1].data.code, 'not_found');
    assert.equal(await nodeCount(s, alice), before, 'no node was written');
    const r = await call(s, 'POST', '/api/v1/ask', { body: { text: 'hi' } });
    assert.equal(r.status, 401);
  });

  test("another user's conversation and focus node are not found", async () => {
    const a = expectStatus(await ask(s, alice, { text: 'What is a ribosome?' }), 200).body;
    const node = a.extracted_terms[0].node_id;
    await expectNotFoundForOtherUser(s, 'GET', `/api/v1/conversations/${a.conversation_id}/messages`, { owner: alice, other: bob });
    expectStatus(await ask(s, bob, { text: 'hi', focus_node_id: node }), 404, 'not_found');
    expectStatus(await ask(s, bob, { text: 'hi', conversation_id: a.conversation_id }), 404, 'not_found');
    const mine = (await call(s, 'GET', '/api/v1/conversations', { token: bob.accessToken })).body.items;
    assert.ok(!mine.some((c) => c.id === a.conversation_id));
    expectStatus(await call(s, 'GET', '/api/v1/conversations?cursor=nonsense', { token: alice.accessToken }), 422);
    expectStatus(await call(s, 'GET', '/api/v1/conversations?limit=0', { token: alice.accessToken }), 400);
  });

  test('conversations page with a cursor', async () => {
    const u = await signupAndLogin(s);
    // wait mode: each answer has landed (and touched its conversation)
    // before paging, so the order cannot change between the two pages
    for (let i = 0; i < 3; i++) expectStatus(await ask(s, u, { text: `Question number ${i} about enzymes` }), 200);
    const p1 = expectStatus(await call(s, 'GET', '/api/v1/conversations?limit=2', { token: u.accessToken }), 200).body;
    assert.equal(p1.items.length, 2);
    assert.ok(p1.next_cursor);
    const p2 = expectStatus(await call(s, 'GET', `/api/v1/conversations?limit=2&cursor=${encodeURIComponent(p1.next_cursor)}`, { token: u.accessToken }), 200).body;
    assert.equal(p2.items.length, 1);
    assert.equal(p2.next_cursor, null);
    const ids = new Set([...p1.items, ...p2.items].map((c) => c.id));
    assert.equal(ids.size, 3);
  });
});

describe('ask with a model (the stand-in)', () => {
  let standin;
  let s;
  let alice;
  const termsJson = (terms, relations = []) => JSON.stringify({ terms, relations });
  before(async () => {
    standin = await startStandIn({});
    s = await startServer({
      args: [...AUTH_TEST_ARGS, '--ai-providers', 'openai', '--ai-base-url', `${standin.url}/v1`, '--ai-chat-model', 'standin-chat',
        '--ai-embed-model', '', '--ai-retries', '1', '--ai-backoff-base-ms', '10', '--ai-breaker-failures', '1000', '--http-threads', '2'],
    });
    alice = await signupAndLogin(s);
  });
  after(async () => {
    await s?.stop();
    await standin?.close();
  });

  test('focus node as context: the answer cites it, typed relations become edges', async () => {
    const focus = expectStatus(await call(s, 'POST', '/api/v1/nodes', { token: alice.accessToken, body: { term: 'Photosynthesis', summary: 'Plants turn light into chemical energy.' } }), 201).body;
    standin.reset();
    standin.script([
      { content: 'Chlorophyll absorbs the light that drives it [1]. Also [4].' },
      { content: termsJson([{ term: 'Chlorophyll', summary: 'The green pigment.' }, { term: 'Light energy', summary: 'Energy carried by light.' }], [{ from: 'Chlorophyll', to: 'Light energy', type: 'uses' }]) },
    ]);
    const a = expectStatus(await ask(s, alice, { text: 'What role does chlorophyll play?', focus_node_id: focus.id }), 200).body;
    assert.equal(a.provider, 'openai');
    assert.equal(a.answer_markdown, 'Chlorophyll absorbs the light that drives it [1]. Also.');
    assert.deepEqual(a.citations.map((c) => [c.n, c.kind, c.node_id]), [[1, 'node', focus.id]]);
    assert.match(a.citations[0].quote, /light into chemical energy/);
    assert.deepEqual(a.extracted_terms.map((t) => [t.term, t.is_new]), [['Chlorophyll', true], ['Light energy', true]]);
    assert.ok(a.usage.prompt_tokens > 0 && a.usage.completion_tokens > 0);
    // the prompt had the focus as a fenced passage
    const chat = standin.requests().filter((r) => r.path === '/v1/chat/completions')[0];
    assert.match(chat.body.messages[1].content, /<<<DATA passage \[1\] from your note 'Photosynthesis'>>>/);
    // edges: focus -> each term, the two terms related, and the typed one
    const chl = a.extracted_terms[0].node_id;
    const light = a.extracted_terms[1].node_id;
    const edges = await dbQuery(s, `SELECT src, dst, type FROM edges WHERE user_id = '${alice.id}' ORDER BY type, src`);
    assert.ok(edges.includes(`${chl}|${light}|uses`), edges.join('\n'));
    const rel = (x, y) => (x < y ? `${x}|${y}|related` : `${y}|${x}|related`);
    for (const e of [rel(focus.id, chl), rel(focus.id, light), rel(chl, light)]) assert.ok(edges.includes(e), `${e} in ${edges}`);
    const roots = await dbQuery(s, `SELECT COUNT(*) FROM nodes WHERE user_id = '${alice.id}' AND is_root = 1`);
    assert.equal(roots[0], '0', 'asked with a focus: no new root');
  });

  test('stream mode relays the model\'s tokens in order', async () => {
    standin.reset();
    standin.script([{ tokens: ['Light ', 'is ', 'absorbed ', 'by ', 'chlorophyll.'] }, { content: termsJson([{ term: 'Light', summary: '' }]) }]);
    const evs = await sseEvents(s, alice, { text: 'What absorbs light?' });
    const tokens = evs.filter((e) => e.event === 'token').map((e) => e.data.text);
    assert.deepEqual(tokens, ['Light ', 'is ', 'absorbed ', 'by ', 'chlorophyll.']);
    assert.equal(evs[evs.length - 1].event, 'answer');
    assert.equal(evs[evs.length - 1].data.answer_markdown, 'Light is absorbed by chlorophyll.');
  });

  test('model down and no fallback: 503, the question kept as failed, the graph untouched', async () => {
    const before = await nodeCount(s, alice);
    standin.reset();
    standin.script([{ fault: '500' }, { fault: '500' }, { fault: '500' }, { fault: '500' }]);
    const r = expectStatus(await ask(s, alice, { text: 'Why is the sky blue?' }), 503, 'ai_unavailable');
    assert.match(r.body.error.message, /no AI provider could answer/);
    const q = await dbQuery(s, `SELECT status, error FROM messages WHERE user_id = '${alice.id}' AND content = 'Why is the sky blue?'`);
    assert.equal(q.length, 1);
    assert.match(q[0], /^failed\|no AI provider could answer \(server_error/);
    assert.equal(await nodeCount(s, alice), before);
    const failed = await dbQuery(s, `SELECT COUNT(*) FROM events WHERE user_id = '${alice.id}' AND type = 'answer.failed'`);
    assert.equal(failed[0], '1');
  });

  test('a waiting ask holds no HTTP thread (2 threads, 8 slow asks, health stays fast)', async () => {
    standin.reset();
    const steps = [];
    for (let i = 0; i < 8; i++) steps.push({ fault: 'slow_first_byte', delay_ms: 800, content: `slow ${i}` }, { content: termsJson([{ term: `Slow topic ${i}`, summary: '' }]) });
    standin.script(steps);
    const u = await signupAndLogin(s);
    const asks = [];
    for (let i = 0; i < 8; i++) asks.push(ask(s, u, { text: `slow question ${i}`, mode: 'wait' }));
    await sleep(200);
    const t0 = Date.now();
    const h = await fetch(`${s.url}/health`);
    assert.equal(h.status, 200);
    assert.ok(Date.now() - t0 < 300, `health answered in ${Date.now() - t0} ms while asks wait`);
    const done = await Promise.all(asks);
    for (const r of done) assert.ok(r.status === 200 || r.status === 202, `${r.status} ${r.text}`);
  });
});

describe('a slow model', () => {
  let standin;
  let s;
  before(async () => {
    standin = await startStandIn({});
    s = await startServer({
      args: [...AUTH_TEST_ARGS, '--ai-providers', 'openai,local', '--ai-base-url', `${standin.url}/v1`, '--ai-embed-model', '',
        '--ai-retries', '0', '--ask-wait-timeout-ms', '300', '--ai-first-byte-timeout-ms', '5000'],
    });
  });
  after(async () => {
    await s?.stop();
    await standin?.close();
  });

  test('a wait past ask_wait_timeout_ms is answered 202; the answer still lands', async () => {
    const u = await signupAndLogin(s);
    standin.script([{ fault: 'slow_first_byte', delay_ms: 1200, content: 'Late but right.' }]);
    const t0 = Date.now();
    const r = expectStatus(await ask(s, u, { text: 'Tell me something slowly' }), 202);
    assert.ok(Date.now() - t0 < 1100, `answered after ${Date.now() - t0} ms`);
    assert.equal(r.body.status, 'pending');
    assert.match(r.body.job_id, /^[0-9a-f-]{36}$/);
    let items = [];
    for (let i = 0; i < 100 && items.length < 2; i++) {
      await sleep(50);
      items = (await call(s, 'GET', `/api/v1/conversations/${r.body.conversation_id}/messages`, { token: u.accessToken })).body.items;
    }
    assert.equal(items[1]?.content, 'Late but right.');
  });

  test('the server stops cleanly with asks waiting: they get 503', async () => {
    const s2 = await startServer({
      args: [...AUTH_TEST_ARGS, '--ai-providers', 'openai', '--ai-base-url', `${standin.url}/v1`, '--ai-retries', '0',
        '--ai-first-byte-timeout-ms', '20000', '--shutdown-timeout-ms', '300'],
    });
    const u = await signupAndLogin(s2);
    standin.script([{ fault: 'slow_first_byte', delay_ms: 5000 }]);
    const pending = ask(s2, u, { text: 'A question the server will not finish' });
    await sleep(300);
    const stopped = s2.stop();
    const r = await pending;
    assert.equal(r.status, 503, r.text);
    const exit = await stopped;
    assert.equal(exit?.code ?? 0, 0);
  });
});

describe('answers reach the asker live over the WebSocket', () => {
  let s;
  before(async () => {
    s = await startServer({ args: AUTH_TEST_ARGS });
  });
  after(() => s?.stop());

  /** An authenticated socket collecting every event it receives. */
  async function live(user) {
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${s.url.replace(/^http/, 'ws')}/ws`);
    const events = [];
    await new Promise((res, rej) => {
      ws.on('error', rej);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token: user.accessToken })));
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString());
        if (m.type === 'ready') res();
        else events.push(m);
      });
    });
    return { ws, events };
  }

  test('async ask: answer.created and graph.updated arrive for the asker, nothing for another user', async () => {
    const alice = await signupAndLogin(s);
    const bob = await signupAndLogin(s);
    const a = await live(alice);
    const b = await live(bob);
    const r = expectStatus(await ask(s, alice, { text: 'What is an enzyme?', mode: 'async' }), 202);
    for (let i = 0; i < 100 && !a.events.some((e) => e.type === 'answer.created'); i++) await sleep(50);
    const created = a.events.find((e) => e.type === 'answer.created');
    assert.ok(created, `answer.created arrived: ${JSON.stringify(a.events.map((e) => e.type))}`);
    assert.equal(created.data.question_id, r.body.question_id);
    assert.equal(typeof created.offset, 'number');
    const graph = a.events.find((e) => e.type === 'graph.updated');
    assert.ok(graph, 'graph.updated arrived');
    assert.ok(graph.offset < created.offset, 'the graph delta comes first, in commit order');
    const ids = graph.data.nodes.map((n) => n.id);
    for (const t of created.data.extracted_terms) assert.ok(ids.includes(t.node_id), `${t.term} is in the delta`);
    await sleep(200);
    assert.deepEqual(b.events.filter((e) => /^(answer|graph)\./.test(e.type)), [], "bob hears nothing of alice's ask");
    a.ws.close();
    b.ws.close();
  });
});
