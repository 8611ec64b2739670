// Searching one's documents over HTTP, as a learner does: full text with
// highlighted snippets, vectors, and hybrid (the default); one document
// only; bad input refused with the field named; another user's document is
// 404 and another user's passages never show, whatever the query. Runs on
// SQLite, and on PostgreSQL when one is configured.
//
// Documents and chunks are put in with SQL (as the documents module writes
// them, with the SQLite full-text rows at the chunks' rowids). Vectors are
// the local embedder's: a note's text is embedded by the graph.embed job,
// and its vector is copied to a chunk holding exactly that text.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pg } from './lib/pg.mjs';
import { cleanup, sleep, startServer } from './lib/server.mjs';
import { AUTH_TEST_ARGS, call, dbQuery, expectStatus, signupAndLogin } from './lib/users.mjs';

after(cleanup);

const ARGS = [...AUTH_TEST_ARGS, '--rate-api-burst', '100000', '--rate-api-per-min', '100000'];
const MISSING = '01900000-0000-7000-8000-000000000000';

const sq = (v) => (v === null || v === undefined ? 'NULL' : `'${String(v).replaceAll("'", "''")}'`);

/** A document with chunks [{text, page?, heading?}] → { id, chunks: [ids] }. */
async function addDoc(s, user, filename, chunks) {
  const id = randomUUID();
  await dbQuery(
    s,
    `INSERT INTO documents (id, user_id, filename, media_type, size_bytes, sha256, status, chunk_count, created_at, updated_at) ` +
      `VALUES ('${id}', '${user.id}', ${sq(filename)}, 'text/markdown', 100, '${id}', 'done', ${chunks.length}, 0, 0)`,
  );
  const ids = [];
  for (const [i, c] of chunks.entries()) {
    const cid = randomUUID();
    ids.push(cid);
    await dbQuery(
      s,
      `INSERT INTO chunks (id, user_id, document_id, ord, text, page, heading, created_at) ` +
        `VALUES ('${cid}', '${user.id}', '${id}', ${i}, ${sq(c.text)}, ${c.page ?? 'NULL'}, ${sq(c.heading)}, 0)`,
    );
  }
  if (!s.dbUrl) {
    await dbQuery(
      s,
      `INSERT INTO chunks_fts (rowid, text, chunk_id, user_id, document_id) ` +
        `SELECT rowid, text, id, user_id, document_id FROM chunks WHERE document_id = '${id}'`,
    );
  }
  return { id, chunks: ids };
}

/**
 * Give chunk the local embedder's vector of its text: a note "term: summary"
 * whose text is the chunk's is embedded by the graph.embed job; its vector
 * is copied over.
 */
async function embedChunk(s, user, docId, chunkId, term, summary) {
  const r = await user.call('POST', '/api/v1/nodes', { body: { term, summary } });
  expectStatus(r, 201, null, `note ${term}`);
  let rows = [];
  for (let i = 0; i < 300 && rows.length === 0; i++) {
    rows = await dbQuery(s, `SELECT embedder FROM node_embeddings WHERE node_id = '${r.body.id}'`);
    if (!rows.length) await sleep(50);
  }
  assert.equal(rows.length, 1, `note ${term} was embedded`);
  await dbQuery(
    s,
    `INSERT INTO chunk_vectors (chunk_id, user_id, document_id, embedder, dims, vec) ` +
      `SELECT '${chunkId}', user_id, '${docId}', embedder, dims, vec FROM node_embeddings WHERE node_id = '${r.body.id}'`,
  );
}

function search(user, params) {
  return user.call('GET', `/api/v1/search?${new URLSearchParams(params)}`);
}

function checkHit(h, what) {
  for (const k of ['chunk_id', 'document_id', 'filename', 'snippet']) assert.equal(typeof h[k], 'string', `${what}: ${k}`);
  assert.ok(h.page === null || Number.isInteger(h.page), `${what}: page`);
  assert.ok(h.heading === null || typeof h.heading === 'string', `${what}: heading`);
  assert.equal(typeof h.score, 'number', `${what}: score`);
  assert.ok(Number.isInteger(h.ord), `${what}: ord`);
}

const PHOTO = { term: 'Photosynthesis', summary: 'Plants turn light, water and carbon dioxide into sugar and oxygen.' };
const HEART = { term: 'Heart', summary: 'The heart pumps blood through the arteries and veins of the body.' };
const textOf = (n) => `${n.term}: ${n.summary}`;

for (const backend of ['sqlite', 'postgres']) {
  describe(`search (${backend})`, () => {
    let s;
    let alice;
    let bob;
    let bio; // alice's biology notes
    let med; // alice's medicine notes
    let bobs; // bob's copy of the same words
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
      bio = await addDoc(s, alice, 'biology.pdf', [
        { text: textOf(PHOTO), page: 12 },
        { text: 'Chlorophyll <b>absorbs</b> red & blue light; photosynthesis needs it.', page: 13 },
        { text: 'Mitochondria release the energy stored in sugar.', page: 14 },
      ]);
      med = await addDoc(s, alice, 'medicine.md', [{ text: textOf(HEART), heading: 'Circulation' }]);
      bobs = await addDoc(s, bob, 'bob.md', [{ text: `${textOf(PHOTO)} Chlorophyll, mitochondria, heart.` }]);
      await embedChunk(s, alice, bio.id, bio.chunks[0], PHOTO.term, PHOTO.summary);
      await embedChunk(s, alice, med.id, med.chunks[0], HEART.term, HEART.summary);
      await embedChunk(s, bob, bobs.id, bobs.chunks[0], PHOTO.term, PHOTO.summary);
    });
    after(() => s?.stop());

    test('full text: best first, the words marked, the rest escaped, page and heading', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const r = expectStatus(await search(alice, { q: 'photosynthesis', mode: 'fts' }), 200).body;
      assert.deepEqual(Object.keys(r), ['results']);
      assert.equal(r.results.length, 2);
      r.results.forEach((h, i) => checkHit(h, `hit ${i}`));
      assert.deepEqual(new Set(r.results.map((h) => h.chunk_id)), new Set(bio.chunks.slice(0, 2)));
      assert.ok(r.results[0].score >= r.results[1].score);
      const chl = r.results.find((h) => h.chunk_id === bio.chunks[1]);
      assert.equal(chl.document_id, bio.id);
      assert.equal(chl.filename, 'biology.pdf');
      assert.equal(chl.page, 13);
      assert.equal(chl.heading, null);
      assert.equal(chl.ord, 1);
      assert.match(chl.snippet, /<mark>photosynthesis<\/mark>/);
      assert.match(chl.snippet, /&amp;/);
      assert.doesNotMatch(chl.snippet, /<b>/);

      const h = expectStatus(await search(alice, { q: 'arteries', mode: 'fts' }), 200).body.results;
      assert.equal(h.length, 1);
      assert.equal(h[0].heading, 'Circulation');
      assert.equal(h[0].page, null);
      // every word when some chunk has them all, else any of them
      const all = expectStatus(await search(alice, { q: 'sugar oxygen', mode: 'fts' }), 200).body.results;
      assert.deepEqual(all.map((x) => x.chunk_id), [bio.chunks[0]]);
      const any = expectStatus(await search(alice, { q: 'mitochondria zebra', mode: 'fts' }), 200).body.results;
      assert.deepEqual(any.map((x) => x.chunk_id), [bio.chunks[2]]);
    });

    test('vectors: the chunk whose text is the query comes first; hybrid is the default', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const v = expectStatus(await search(alice, { q: textOf(HEART), mode: 'vector' }), 200).body.results;
      assert.equal(v.length, 2, 'every chunk of alice with a vector');
      assert.equal(v[0].chunk_id, med.chunks[0]);
      assert.ok(Math.abs(v[0].score - 1) < 1e-3, `cosine ${v[0].score}`);
      assert.ok(v[1].score < v[0].score);

      const h = expectStatus(await search(alice, { q: 'photosynthesis light' }), 200).body.results;
      h.forEach((x, i) => checkHit(x, `hybrid ${i}`));
      assert.equal(h[0].chunk_id, bio.chunks[0], 'first in both lists, first fused');
      assert.ok(h.length >= 2);
      for (let i = 1; i < h.length; i++) assert.ok(h[i].score <= h[i - 1].score);
      const explicit = expectStatus(await search(alice, { q: 'photosynthesis light', mode: 'hybrid' }), 200).body.results;
      assert.deepEqual(explicit.map((x) => x.chunk_id), h.map((x) => x.chunk_id));

      const one = expectStatus(await search(alice, { q: 'photosynthesis light', limit: '1' }), 200).body.results;
      assert.equal(one.length, 1);
    });

    test('one document only; another user\'s document is 404', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      for (const mode of ['fts', 'vector', 'hybrid']) {
        const r = expectStatus(await search(alice, { q: 'photosynthesis heart', mode, document_id: med.id }), 200).body.results;
        assert.ok(r.length >= 1, mode);
        for (const h of r) assert.equal(h.document_id, med.id, mode);
        const other = await search(bob, { q: 'photosynthesis', mode, document_id: bio.id });
        expectStatus(other, 404, 'not_found', `${mode}: bob with alice's document`);
        assert.equal(other.body.error.field, 'document_id');
        expectStatus(await search(alice, { q: 'photosynthesis', mode, document_id: MISSING }), 404, 'not_found', mode);
        expectStatus(await search(alice, { q: 'photosynthesis', mode, document_id: "x' OR '1'='1" }), 404, 'not_found', mode);
      }
    });

    test('a user never sees another user\'s passages, whatever they ask', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const queries = ['photosynthesis', textOf(PHOTO), 'chlorophyll mitochondria heart', '"', '*', 'NEAR(', 'a OR', "' OR 1=1 --", 'x" OR "y', '東京 🙂'];
      const alices = new Set([...bio.chunks, ...med.chunks]);
      for (const q of queries) {
        for (const mode of ['fts', 'vector', 'hybrid']) {
          const b = expectStatus(await search(bob, { q, mode, limit: '50' }), 200, null, `bob ${mode} ${q}`).body.results;
          for (const h of b) {
            assert.ok(!alices.has(h.chunk_id), `bob ${mode} '${q}' got alice's chunk`);
            assert.equal(h.document_id, bobs.id);
          }
          const a = expectStatus(await search(alice, { q, mode, limit: '50' }), 200, null, `alice ${mode} ${q}`).body.results;
          for (const h of a) assert.ok(alices.has(h.chunk_id), `alice ${mode} '${q}' got someone else's chunk`);
        }
      }
      const b = expectStatus(await search(bob, { q: textOf(PHOTO), mode: 'vector' }), 200).body.results;
      assert.deepEqual(b.map((h) => h.chunk_id), [bobs.chunks[0]]);
    });

    test('bad input is refused, naming the field; no token is 401', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const field = async (params, status, code, name) => {
        const r = await search(alice, params);
        expectStatus(r, status, code, JSON.stringify(params));
        assert.equal(r.body.error.field, name, JSON.stringify(params));
      };
      await field({}, 422, 'validation_failed', 'q');
      await field({ q: '' }, 422, 'validation_failed', 'q');
      await field({ q: '   ' }, 422, 'validation_failed', 'q');
      await field({ q: 'a'.repeat(501) }, 422, 'validation_failed', 'q');
      await field({ q: 'photosynthesis', mode: 'semantic' }, 422, 'validation_failed', 'mode');
      await field({ q: 'photosynthesis', limit: '0' }, 400, 'bad_request', 'limit');
      await field({ q: 'photosynthesis', limit: '51' }, 400, 'bad_request', 'limit');
      await field({ q: 'photosynthesis', limit: 'ten' }, 400, 'bad_request', 'limit');
      expectStatus(await search(alice, { q: 'é'.repeat(500), limit: '50' }), 200);
      expectStatus(await call(s, 'GET', '/api/v1/search?q=photosynthesis'), 401, 'unauthorized');
    });
  });
}
