// The knowledge graph over HTTP, as a learner uses it: write a note, rename
// it (the old name still finds it), merge two nodes that are one idea,
// delete one, say how familiar a node is, page through recent roots, draw a
// slice. Every write appends a `graph.updated` event; bad input is refused
// on every route; another user's ids are 404 everywhere. Runs on SQLite,
// and on PostgreSQL when one is configured.
//
// Edges come from asking (the ask pipeline); these tests put a few in with
// SQL so that merges and slices have something to move and draw.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UUID_RE } from './lib/checks.mjs';
import { pg } from './lib/pg.mjs';
import { rawConnect } from './lib/raw.mjs';
import { cleanup, sleep, startServer } from './lib/server.mjs';
import { AUTH_TEST_ARGS, call, dbQuery, expectNotFoundForOtherUser, expectStatus, signupAndLogin } from './lib/users.mjs';

after(cleanup);

const ARGS = [...AUTH_TEST_ARGS, '--rate-api-burst', '100000', '--rate-api-per-min', '100000'];
const MISSING = '01900000-0000-7000-8000-000000000000';

/** The user's graph.updated events (their data), oldest first. */
async function graphEvents(s, user) {
  const rows = await dbQuery(s, `SELECT data FROM events WHERE user_id = '${user.id}' AND type = 'graph.updated' ORDER BY "offset"`);
  return rows.map((r) => JSON.parse(r));
}

/** Run write() and check it appended exactly one graph.updated event with reason; returns [response, event]. */
async function expectGraphEvent(s, user, reason, write) {
  const before = (await graphEvents(s, user)).length;
  const r = await write();
  const evs = await graphEvents(s, user);
  assert.equal(evs.length, before + 1, `${reason}: one graph.updated event appended (${r.status} ${r.text})`);
  const ev = evs[evs.length - 1];
  assert.equal(ev.reason, reason);
  for (const k of ['nodes', 'edges', 'removed_nodes', 'removed_edges']) assert.ok(Array.isArray(ev[k]), `${reason}: event has ${k}[]`);
  return [r, ev];
}

/** Run write() and check no graph.updated event was appended. */
async function expectNoGraphEvent(s, user, write) {
  const before = (await graphEvents(s, user)).length;
  const r = await write();
  assert.equal((await graphEvents(s, user)).length, before, `no graph.updated event for ${r.status} ${r.text}`);
  return r;
}

async function note(s, user, term, summary) {
  const body = summary === undefined ? { term } : { term, summary };
  return expectStatus(await user.call('POST', '/api/v1/nodes', { body }), 201, null, `note ${term}`).body;
}

/** An edge as the ask pipeline would write it ("related": src < dst). */
async function sqlEdge(s, user, a, b, type, weight) {
  const [src, dst] = type === 'related' && a > b ? [b, a] : [a, b];
  await dbQuery(s, `INSERT INTO edges (user_id, src, dst, type, weight, updated_at) VALUES ('${user.id}', '${src}', '${dst}', '${type}', ${weight}, 0)`);
}

/** A 2 MB JSON body announced by Content-Length: refused with 413 before it is sent. */
async function hugeBody(s, user, method, path) {
  const c = await rawConnect(s.url);
  try {
    await c.write(
      `${method} ${path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${user.accessToken}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n',
    );
    return await c.response({ timeoutMs: 10000 });
  } finally {
    c.destroy();
  }
}

function neighbour(node, id) {
  return node.neighbours.find((n) => n.node.id === id);
}

function assertNode(n, what) {
  assert.match(n.id, UUID_RE, `${what}: id`);
  for (const k of ['term', 'summary']) assert.equal(typeof n[k], 'string', `${what}: ${k}`);
  assert.ok(n.familiarity >= 0 && n.familiarity <= 1, `${what}: familiarity`);
  assert.ok(n.cluster === null || typeof n.cluster === 'string', `${what}: cluster`);
  assert.equal(typeof n.is_root, 'boolean', `${what}: is_root`);
  assert.ok(Number.isInteger(n.created_at) && Number.isInteger(n.updated_at), `${what}: timestamps`);
}

for (const backend of ['sqlite', 'postgres']) {
  describe(`the graph API (${backend})`, () => {
    let s;
    let alice;
    let bob;
    before(async (t) => {
      let dbUrl;
      if (backend === 'postgres') {
        const p = pg(t);
        if (!p) return;
        dbUrl = (await p.createDb()).url;
      }
      s = await startServer({ args: ARGS, dbUrl });
      alice = await signupAndLogin(s);
      bob = await signupAndLogin(s);
    });
    after(() => s?.stop());

    test('a note: written, renamed (the old name still finds it), summarised, embedded', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const [r, ev] = await expectGraphEvent(s, alice, 'node.created', () =>
        alice.call('POST', '/api/v1/nodes', { body: { term: '  Neural \t Networks ', summary: ' Layers of weighted units. ' } }),
      );
      expectStatus(r, 201);
      const n = r.body;
      assertNode(n, 'created');
      assert.equal(n.term, 'Neural Networks');
      assert.equal(n.summary, 'Layers of weighted units.');
      assert.equal(n.familiarity, 0);
      assert.equal(n.is_root, false);
      assert.deepEqual(n.aliases, []);
      assert.deepEqual(n.neighbours, []);
      assert.equal(r.headers.get('location'), `/api/v1/nodes/${n.id}`);
      assert.equal(ev.nodes[0].id, n.id);
      assert.equal(ev.nodes[0].term, 'Neural Networks');

      const got = expectStatus(await alice.call('GET', `/api/v1/nodes/${n.id}`), 200).body;
      assert.deepEqual(got, n);

      // The same idea however written: 409 naming the node, nothing written.
      for (const term of ['neural network', 'NEURAL NETWORKS', 'Neural  networks']) {
        const dup = await expectNoGraphEvent(s, alice, () => alice.call('POST', '/api/v1/nodes', { body: { term } }));
        expectStatus(dup, 409, 'conflict', term);
        assert.equal(dup.body.error.field, 'term');
        assert.equal(dup.body.error.existing_id, n.id);
      }

      // Rename: the old spelling becomes an alias and still lands on the node.
      const [ren, rev] = await expectGraphEvent(s, alice, 'node.updated', () =>
        alice.call('PATCH', `/api/v1/nodes/${n.id}`, { body: { term: 'Deep Learning' } }),
      );
      expectStatus(ren, 200);
      assert.equal(ren.body.term, 'Deep Learning');
      assert.deepEqual(ren.body.aliases, ['Neural Networks']);
      assert.equal(ren.body.summary, 'Layers of weighted units.');
      assert.ok(Array.isArray(ren.body.neighbours));
      assert.equal(rev.nodes[0].term, 'Deep Learning');
      const old = expectStatus(await alice.call('POST', '/api/v1/nodes', { body: { term: 'neural networks' } }), 409, 'conflict');
      assert.equal(old.body.error.existing_id, n.id);

      // Summary only.
      const [sum] = await expectGraphEvent(s, alice, 'node.updated', () =>
        alice.call('PATCH', `/api/v1/nodes/${n.id}`, { body: { summary: 'Stacks of layers that learn.' } }),
      );
      assert.equal(expectStatus(sum, 200).body.summary, 'Stacks of layers that learn.');
      assert.equal(sum.body.term, 'Deep Learning');
      // The same values again: 200, nothing changed, no event.
      const same = await expectNoGraphEvent(s, alice, () =>
        alice.call('PATCH', `/api/v1/nodes/${n.id}`, { body: { term: 'Deep Learning', summary: 'Stacks of layers that learn.' } }),
      );
      expectStatus(same, 200);

      // Renaming another node onto a taken name (or a kept spelling) is 409.
      const bp = await note(s, alice, 'Backpropagation');
      for (const term of ['deep learning', 'Neural Network']) {
        const c = await expectNoGraphEvent(s, alice, () => alice.call('PATCH', `/api/v1/nodes/${bp.id}`, { body: { term } }));
        expectStatus(c, 409, 'conflict', term);
        assert.equal(c.body.error.field, 'term');
        assert.equal(c.body.error.existing_id, n.id);
      }
      assert.equal(expectStatus(await alice.call('GET', `/api/v1/nodes/${bp.id}`), 200).body.term, 'Backpropagation');

      // The same term is free in Bob's graph.
      const bobs = await note(s, bob, 'Deep Learning');
      assert.notEqual(bobs.id, n.id);

      // The embedding job catches up with the last text.
      let rows = [];
      for (let i = 0; i < 300; i++) {
        rows = await dbQuery(s, `SELECT dims, embedder FROM node_embeddings WHERE node_id = '${n.id}' AND user_id = '${alice.id}'`);
        if (rows.length) break;
        await sleep(100);
      }
      assert.equal(rows.length, 1, 'the node has an embedding');
      const [dims, embedder] = rows[0].split('|');
      assert.ok(Number(dims) > 0);
      assert.match(embedder, /^local:/);
    });

    test('merge: edges move with their weights, self-loops go, the merged name finds the node', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const a = await note(s, alice, 'Photosynthesis');
      const b = await note(s, alice, 'Light reactions', 'The light-dependent part.');
      const c = await note(s, alice, 'Chlorophyll');
      const d = await note(s, alice, 'Sunlight');
      await sqlEdge(s, alice, a.id, c.id, 'related', 2);
      await sqlEdge(s, alice, b.id, c.id, 'related', 1);
      await sqlEdge(s, alice, a.id, b.id, 'related', 1);
      await sqlEdge(s, alice, b.id, d.id, 'uses', 1.5);

      const before = expectStatus(await alice.call('GET', `/api/v1/nodes/${a.id}`), 200).body;
      assert.equal(before.neighbours.length, 2);
      assert.equal(before.neighbours[0].node.id, c.id, 'strongest first');

      const [m, ev] = await expectGraphEvent(s, alice, 'node.merged', () =>
        alice.call('POST', `/api/v1/nodes/${b.id}/merge`, { body: { into: a.id } }),
      );
      expectStatus(m, 200);
      const into = m.body;
      assert.equal(into.id, a.id);
      assert.equal(into.term, 'Photosynthesis');
      assert.equal(into.summary, 'The light-dependent part.', 'an empty summary takes the merged one');
      assert.deepEqual(into.aliases, ['Light reactions']);
      assert.equal(into.neighbours.length, 2, 'no self-loop');
      assert.deepEqual(neighbour(into, c.id), { node: { id: c.id, term: 'Chlorophyll', familiarity: 0 }, type: 'related', weight: 3, direction: 'both' });
      assert.deepEqual(neighbour(into, d.id), { node: { id: d.id, term: 'Sunlight', familiarity: 0 }, type: 'uses', weight: 1.5, direction: 'out' });
      assert.deepEqual(ev.removed_nodes, [b.id]);
      assert.equal(ev.removed_edges.length, 3);
      assert.equal(ev.edges.length, 2);
      assert.equal(ev.nodes[0].id, a.id);

      expectStatus(await alice.call('GET', `/api/v1/nodes/${b.id}`), 404, 'not_found');
      const again = expectStatus(await alice.call('POST', '/api/v1/nodes', { body: { term: 'light reaction' } }), 409, 'conflict');
      assert.equal(again.body.error.existing_id, a.id, 'the merged name lands on the node merged into');
      assert.deepEqual(await dbQuery(s, `SELECT COUNT(*) FROM edges WHERE src = '${b.id}' OR dst = '${b.id}'`), ['0']);

      // Refused merges change nothing.
      const self = await expectNoGraphEvent(s, alice, () => alice.call('POST', `/api/v1/nodes/${a.id}/merge`, { body: { into: a.id } }));
      expectStatus(self, 422, 'validation_failed');
      assert.equal(self.body.error.field, 'into');
      const gone = await expectNoGraphEvent(s, alice, () => alice.call('POST', `/api/v1/nodes/${a.id}/merge`, { body: { into: b.id } }));
      expectStatus(gone, 404, 'not_found');
      assert.equal(gone.body.error.field, 'into');
      for (const body of [{}, { into: 5 }, { into: null }, { into: a.id, extra: 1 }]) {
        const r = expectStatus(await alice.call('POST', `/api/v1/nodes/${d.id}/merge`, { body }), 422, 'validation_failed', JSON.stringify(body));
        assert.equal(r.body.error.field, Object.keys(body).length === 2 ? 'extra' : 'into');
      }
      expectStatus(await alice.call('POST', `/api/v1/nodes/${d.id}/merge`, { body: { into: 'not-a-uuid' } }), 404, 'not_found');
    });

    test('delete: the node goes with its edges; familiarity is 0..1', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const a = await note(s, alice, 'Mitochondria');
      const b = await note(s, alice, 'ATP');
      await sqlEdge(s, alice, a.id, b.id, 'related', 1);
      const [del, ev] = await expectGraphEvent(s, alice, 'node.deleted', () => alice.call('DELETE', `/api/v1/nodes/${a.id}`));
      expectStatus(del, 204);
      assert.equal(del.text, '');
      assert.deepEqual(ev.removed_nodes, [a.id]);
      assert.equal(ev.removed_edges.length, 1);
      expectStatus(await alice.call('GET', `/api/v1/nodes/${a.id}`), 404, 'not_found');
      assert.deepEqual(expectStatus(await alice.call('GET', `/api/v1/nodes/${b.id}`), 200).body.neighbours, []);
      expectStatus(await alice.call('DELETE', `/api/v1/nodes/${a.id}`), 404, 'not_found');
      // The name is free again.
      await note(s, alice, 'mitochondria');

      const [f] = await expectGraphEvent(s, alice, 'node.familiarity', () =>
        alice.call('PATCH', `/api/v1/nodes/${b.id}/familiarity`, { body: { value: 0.75 } }),
      );
      expectStatus(f, 204);
      assert.equal(expectStatus(await alice.call('GET', `/api/v1/nodes/${b.id}`), 200).body.familiarity, 0.75);
      for (const value of [0, 1]) expectStatus(await alice.call('PATCH', `/api/v1/nodes/${b.id}/familiarity`, { body: { value } }), 204);
      for (const value of [-0.1, 1.5, 'x', null, true, [0.5], 1e300]) {
        const r = await expectNoGraphEvent(s, alice, () => alice.call('PATCH', `/api/v1/nodes/${b.id}/familiarity`, { body: { value } }));
        expectStatus(r, 422, 'validation_failed', `value ${JSON.stringify(value)}`);
        assert.equal(r.body.error.field, 'value');
      }
      const none = expectStatus(await alice.call('PATCH', `/api/v1/nodes/${b.id}/familiarity`, { body: {} }), 422, 'validation_failed');
      assert.equal(none.body.error.field, 'value');
      assert.equal(expectStatus(await alice.call('GET', `/api/v1/nodes/${b.id}`), 200).body.familiarity, 1);
    });

    test('recent roots: newest first, page by page with an opaque cursor', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const carol = await signupAndLogin(s);
      const empty = expectStatus(await carol.call('GET', '/api/v1/graphs/recent'), 200).body;
      assert.deepEqual(empty, { items: [], next_cursor: null });
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await note(s, carol, `Root topic ${'abcde'[i]}`)).id);
      await note(s, carol, 'Not a root');
      // Questions asked without a focus make roots; these stand in for them.
      for (let i = 0; i < 5; i++) await dbQuery(s, `UPDATE nodes SET is_root = 1, created_at = ${1000 + i * 10} WHERE id = '${ids[i]}'`);
      const seen = [];
      let cursor = null;
      let pages = 0;
      do {
        const q = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : '?limit=2';
        const page = expectStatus(await carol.call('GET', `/api/v1/graphs/recent${q}`), 200).body;
        pages++;
        for (const n of page.items) {
          assertNode(n, 'root');
          assert.equal(n.is_root, true);
          assert.ok(Array.isArray(n.aliases));
        }
        seen.push(...page.items.map((n) => n.id));
        cursor = page.next_cursor;
        assert.ok(cursor === null || (typeof cursor === 'string' && cursor.length > 0));
        assert.ok(pages <= 5);
      } while (cursor);
      assert.equal(pages, 3);
      assert.deepEqual(seen, [...ids].reverse(), 'newest first, each once');
      const all = expectStatus(await carol.call('GET', '/api/v1/graphs/recent'), 200).body;
      assert.equal(all.items.length, 5);
      assert.equal(all.next_cursor, null);

      for (const cursor of ['!!!', 'bm90LWEtY3Vyc29y', 'x'.repeat(129), 'MTIzOm5vdC1hLXV1aWQ']) {
        const r = expectStatus(await carol.call('GET', `/api/v1/graphs/recent?cursor=${encodeURIComponent(cursor)}`), 422, 'validation_failed', cursor);
        assert.equal(r.body.error.field, 'cursor');
      }
      for (const limit of ['0', '101', 'x', '-1', '1.5', '']) {
        const r = expectStatus(await carol.call('GET', `/api/v1/graphs/recent?limit=${limit}`), 400, 'bad_request', `limit ${limit}`);
        assert.equal(r.body.error.field, 'limit');
      }
      // Alice sees none of Carol's roots.
      const other = expectStatus(await alice.call('GET', '/api/v1/graphs/recent?limit=100'), 200).body;
      assert.ok(!other.items.some((n) => ids.includes(n.id)));
    });

    test('a slice for drawing: strongest edges first, capped, by cluster', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const dave = await signupAndLogin(s);
      const n = [];
      for (let i = 0; i < 8; i++) n.push(await note(s, dave, `Slice term ${'abcdefgh'[i]}`));
      for (let i = 1; i < 8; i++) await sqlEdge(s, dave, n[i - 1].id, n[i].id, 'related', i);
      await dbQuery(s, `UPDATE nodes SET cluster = 'c1' WHERE id IN ('${n[0].id}', '${n[1].id}', '${n[2].id}')`);

      const full = expectStatus(await dave.call('GET', '/api/v1/graph'), 200).body;
      assert.equal(full.nodes.length, 8);
      assert.equal(full.edges.length, 7);
      assert.equal(full.truncated, false);
      assert.deepEqual(
        full.edges.map((e) => e.weight),
        [7, 6, 5, 4, 3, 2, 1],
      );
      for (const node of full.nodes) assertNode(node, 'slice node');
      for (const e of full.edges) {
        assert.equal(e.type, 'related');
        assert.ok(e.src < e.dst);
      }

      const small = expectStatus(await dave.call('GET', '/api/v1/graph?limit=3'), 200).body;
      assert.equal(small.nodes.length, 3);
      assert.equal(small.truncated, true);
      const ids = new Set(small.nodes.map((x) => x.id));
      assert.ok(ids.has(n[7].id) && ids.has(n[6].id), 'the strongest edge is drawn');
      for (const e of small.edges) assert.ok(ids.has(e.src) && ids.has(e.dst));
      assert.deepEqual(
        small.edges.map((e) => e.weight),
        [7, 6],
      );

      const c1 = expectStatus(await dave.call('GET', '/api/v1/graph?cluster=c1'), 200).body;
      assert.deepEqual(new Set(c1.nodes.map((x) => x.id)), new Set([n[0].id, n[1].id, n[2].id]));
      assert.equal(c1.edges.length, 2);
      assert.equal(c1.truncated, false);
      assert.deepEqual(expectStatus(await dave.call('GET', '/api/v1/graph?cluster=nope'), 200).body, { nodes: [], edges: [], truncated: false });

      for (const limit of ['0', '2001', 'many', '']) {
        const r = expectStatus(await dave.call('GET', `/api/v1/graph?limit=${limit}`), 400, 'bad_request', `limit ${limit}`);
        assert.equal(r.body.error.field, 'limit');
      }
      for (const cluster of ['', 'c'.repeat(129)]) {
        const r = expectStatus(await dave.call('GET', `/api/v1/graph?cluster=${cluster}`), 400, 'bad_request', `cluster ${cluster.length}`);
        assert.equal(r.body.error.field, 'cluster');
      }
      // Nobody else's nodes.
      const mine = expectStatus(await alice.call('GET', '/api/v1/graph?limit=2000'), 200).body;
      assert.ok(!mine.nodes.some((x) => n.some((y) => y.id === x.id)));
    });

    test("another user's node ids are 404 on every route, and so are malformed ids", async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const mine = await note(s, alice, 'Alice only');
      const target = await note(s, alice, 'Alice target');
      const bobs = await note(s, bob, 'Bob only');
      const id = mine.id;
      await expectNotFoundForOtherUser(s, 'GET', `/api/v1/nodes/${id}`, { owner: alice, other: bob });
      await expectNotFoundForOtherUser(s, 'PATCH', `/api/v1/nodes/${id}`, { owner: alice, other: bob, body: { summary: 'by bob' } });
      await expectNotFoundForOtherUser(s, 'PATCH', `/api/v1/nodes/${id}/familiarity`, { owner: alice, other: bob, body: { value: 0.5 } });
      await expectNotFoundForOtherUser(s, 'POST', `/api/v1/nodes/${id}/merge`, { owner: alice, other: bob, body: { into: bobs.id } });
      await expectNotFoundForOtherUser(s, 'DELETE', `/api/v1/nodes/${id}`, { owner: alice, other: bob });
      // `into` of another user: 404 too, and nothing moves.
      const into = expectStatus(await bob.call('POST', `/api/v1/nodes/${bobs.id}/merge`, { body: { into: target.id } }), 404, 'not_found');
      assert.equal(into.body.error.field, 'into');
      const missing = expectStatus(await bob.call('POST', `/api/v1/nodes/${bobs.id}/merge`, { body: { into: MISSING } }), 404, 'not_found');
      assert.equal(missing.body.error.message, into.body.error.message);
      const after = expectStatus(await alice.call('GET', `/api/v1/nodes/${id}`), 200).body;
      assert.equal(after.summary, '');
      assert.equal(after.familiarity, 0);
      expectStatus(await alice.call('GET', `/api/v1/nodes/${target.id}`), 200);
      expectStatus(await bob.call('GET', `/api/v1/nodes/${bobs.id}`), 200);
      assert.equal((await graphEvents(s, bob)).filter((e) => e.reason !== 'node.created').length, 0, 'bob changed nothing');

      for (const bad of ['not-a-uuid', '123', `${id}x`, id.toUpperCase().replace(/-/g, '')]) {
        expectStatus(await alice.call('GET', `/api/v1/nodes/${bad}`), 404, 'not_found', bad);
        expectStatus(await alice.call('PATCH', `/api/v1/nodes/${bad}`, { body: { summary: 'x' } }), 404, 'not_found', bad);
        expectStatus(await alice.call('DELETE', `/api/v1/nodes/${bad}`), 404, 'not_found', bad);
        expectStatus(await alice.call('POST', `/api/v1/nodes/${bad}/merge`, { body: { into: target.id } }), 404, 'not_found', bad);
        expectStatus(await alice.call('PATCH', `/api/v1/nodes/${bad}/familiarity`, { body: { value: 1 } }), 404, 'not_found', bad);
      }
    });

    test('bad input on every route: no token, wrong types, too long, malformed, huge', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const n = await note(s, alice, 'Input checks');
      const other = await note(s, alice, 'Input other');
      const writes = [
        ['POST', '/api/v1/nodes', { term: 'Fine' }],
        ['PATCH', `/api/v1/nodes/${n.id}`, { summary: 'fine' }],
        ['POST', `/api/v1/nodes/${n.id}/merge`, { into: other.id }],
        ['PATCH', `/api/v1/nodes/${n.id}/familiarity`, { value: 0.5 }],
      ];
      const reads = [['GET', `/api/v1/nodes/${n.id}`], ['DELETE', `/api/v1/nodes/${n.id}`], ['GET', '/api/v1/graphs/recent'], ['GET', '/api/v1/graph']];
      await expectNoGraphEvent(s, alice, async () => {
        for (const [m, p, body] of [...writes, ...reads]) {
          expectStatus(await call(s, m, p, { body }), 401, 'unauthorized', `${m} ${p} without a token`);
          expectStatus(await call(s, m, p, { body, token: 'not-a-token' }), 401, 'unauthorized', `${m} ${p} with a bad token`);
        }
        return { status: 401, text: 'every route without a valid token' };
      });
      await expectNoGraphEvent(s, alice, async () => {
        for (const [m, p] of writes) {
          expectStatus(await alice.call(m, p, { body: '{"term": "x", ' }), 400, 'invalid_json', `${m} ${p} malformed`);
          expectStatus(await alice.call(m, p, { body: '' }), 400, null, `${m} ${p} empty`);
          expectStatus(await alice.call(m, p, { body: '[]' }), 422, 'validation_failed', `${m} ${p} array`);
          expectStatus(await alice.call(m, p, { body: '"term"' }), 422, 'validation_failed', `${m} ${p} string`);
          expectStatus(await alice.call(m, p, { body: 'term=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type', `${m} ${p} form`);
          const huge = await hugeBody(s, alice, m, p);
          assert.equal(huge.status, 413, `${m} ${p} huge`);
          assert.equal(JSON.parse(huge.text).error.code, 'payload_too_large');
          const deep = '{"term":' + '['.repeat(200) + ']'.repeat(200) + '}';
          expectStatus(await alice.call(m, p, { body: deep }), 400, null, `${m} ${p} deep`);
          const unknown = expectStatus(await alice.call(m, p, { body: { term: 'ok', value: 0.5, into: n.id, is_root: true } }), 422, 'validation_failed', `${m} ${p} unknown field`);
          assert.ok(unknown.body.error.field, 'the unknown field is named');
        }
        const cases = [
          [{ term: 5 }, 'term'],
          [{ term: null }, 'term'],
          [{ term: '' }, 'term'],
          [{ term: '   ' }, 'term'],
          [{ term: '?!…' }, 'term'],
          [{ term: 'x'.repeat(201) }, 'term'],
          [{ term: 'é'.repeat(150) }, 'term'], // 150 characters, 300 bytes
          [{ term: ['a'] }, 'term'],
          [{ term: 'ok', summary: 's'.repeat(2001) }, 'summary'],
          [{ term: 'ok', summary: 'é'.repeat(1500) }, 'summary'],
          [{ term: 'ok', summary: 7 }, 'summary'],
          [{ summary: 'no term' }, 'term'],
        ];
        for (const [body, field] of cases) {
          const r = expectStatus(await alice.call('POST', '/api/v1/nodes', { body }), 422, 'validation_failed', JSON.stringify(body).slice(0, 60));
          assert.equal(r.body.error.field, field, JSON.stringify(body).slice(0, 60));
        }
        for (const [body, field] of cases.filter(([b]) => 'term' in b && b.term !== null)) {
          const r = expectStatus(await alice.call('PATCH', `/api/v1/nodes/${n.id}`, { body }), 422, 'validation_failed', JSON.stringify(body).slice(0, 60));
          assert.equal(r.body.error.field, field);
        }
        expectStatus(await alice.call('PATCH', `/api/v1/nodes/${n.id}`, { body: {} }), 422, 'validation_failed', 'empty patch');
        expectStatus(await alice.call('PATCH', `/api/v1/nodes/${n.id}`, { body: { summary: null } }), 422, 'validation_failed', 'null summary');
        return { status: 422, text: 'bad input on every write' };
      });
      // A summary of exactly the limit, and a term of exactly 200 bytes, are fine.
      const ok = await note(s, alice, 'y'.repeat(200), 's'.repeat(2000));
      assert.equal(ok.summary.length, 2000);
      // Control characters never reach the graph.
      const clean = await note(s, alice, 'Tab\tand\u0007bell', ' line one\nline\u0007 two\u001b ');
      assert.equal(clean.term, 'Tab andbell');
      assert.equal(clean.summary, 'line one\nline two');
      const nul = expectStatus(await alice.call('POST', '/api/v1/nodes', { body: { term: 'ok', summary: 'a\u0000b' } }), 422, 'validation_failed');
      assert.equal(nul.body.error.field, 'summary');
    });
  });
}
