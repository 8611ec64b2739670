// Quizzes over HTTP, as a learner takes one: built by a job from the
// learner's own material (offline engine, or the stand-in model writing
// the distractors), keys checked against their source passages, graded
// answers that are fed back, another user's quizzes and material out of
// reach, bad input refused everywhere; and the learner's stats. Runs on
// SQLite, and on PostgreSQL when one is configured.
//
// Documents come from the docs pipeline; these tests put a processed one
// in with SQL so that the text is known.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStandIn } from '../standin/server.mjs';
import { pg } from './lib/pg.mjs';
import { cleanup, sleep, startServer } from './lib/server.mjs';
import { AUTH_TEST_ARGS, dbQuery, expectNotFoundForOtherUser, expectStatus, signupAndLogin } from './lib/users.mjs';

after(cleanup);

const ARGS = [...AUTH_TEST_ARGS, '--rate-api-burst', '100000', '--rate-api-per-min', '100000'];
const MISSING = '01900000-0000-7000-8000-000000000000';

async function note(user, term, summary) {
  return expectStatus(await user.call('POST', '/api/v1/nodes', { body: { term, summary } }), 201, null, `note ${term}`).body;
}

/** A processed document with the given chunks, as the docs.process job would leave it. */
async function sqlDocument(s, user, chunks) {
  const id = crypto.randomUUID();
  await dbQuery(
    s,
    `INSERT INTO documents (id, user_id, filename, media_type, size_bytes, sha256, status, chunk_count, created_at, updated_at) ` +
      `VALUES ('${id}', '${user.id}', 'biology.md', 'text/markdown', 100, '${id.replaceAll('-', '')}', 'done', ${chunks.length}, 0, 0)`,
  );
  for (const [i, text] of chunks.entries()) {
    await dbQuery(s, `INSERT INTO chunks (id, user_id, document_id, ord, text, created_at) VALUES ('${crypto.randomUUID()}', '${user.id}', '${id}', ${i}, '${text.replaceAll("'", "''")}', 0)`);
  }
  return id;
}

const BIOLOGY = [
  'Plants capture light with chlorophyll in their leaves. Photosynthesis turns carbon dioxide and water into glucose.',
  'The mitochondria then burn glucose to release energy. Enzymes such as rubisco fix carbon dioxide in the stroma.',
];
const TERMS = [
  ['Chlorophyll', 'The green pigment that absorbs light for photosynthesis.'],
  ['Photosynthesis', 'How plants make glucose from light, water and carbon dioxide.'],
  ['Glucose', 'A simple sugar that cells burn for energy.'],
  ['Mitochondria', 'The organelles that release energy from glucose.'],
  ['Rubisco', 'The enzyme that fixes carbon dioxide.'],
];

/** Poll the quiz until it is no longer building. */
async function builtQuiz(user, id) {
  for (let i = 0; i < 600; i++) {
    const q = expectStatus(await user.call('GET', `/api/v1/quizzes/${id}`), 200).body;
    if (q.status !== 'building') return q;
    await sleep(50);
  }
  throw new Error(`quiz ${id} still building`);
}

async function answerKey(s, questionId) {
  return (await dbQuery(s, `SELECT answer_key FROM quiz_questions WHERE id = '${questionId}'`))[0];
}

for (const backend of ['sqlite', 'postgres']) {
  describe(`quizzes (${backend})`, () => {
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

    test('a quiz from a document, offline: built by a job, keys checked, graded, fed back', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const nodes = [];
      for (const [term, summary] of TERMS) nodes.push(await note(alice, term, summary));
      // Glucose is the weakest: it comes first.
      for (const [i, f] of [0.6, 0.4, 0.1, 0.9, 0.5].entries()) {
        await dbQuery(s, `UPDATE nodes SET familiarity = ${f}, cluster = 'k-bio' WHERE id = '${nodes[i].id}'`);
      }
      const doc = await sqlDocument(s, alice, BIOLOGY);

      const r = expectStatus(await alice.call('POST', '/api/v1/quizzes', { body: { document_id: doc, n: 5 } }), 202);
      assert.equal(r.body.status, 'building');
      assert.equal(r.headers.get('location'), `/api/v1/quizzes/${r.body.id}`);
      assert.deepEqual(r.body.scope, { document_id: doc });
      assert.deepEqual(r.body.kinds, ['cloze', 'mc', 'definition']);
      const quiz = await builtQuiz(alice, r.body.id);
      assert.equal(quiz.status, 'ready', JSON.stringify(quiz));
      assert.equal(quiz.questions.length, 5);
      assert.equal(quiz.questions[0].node_id, nodes[2].id, 'weakest node first');
      assert.deepEqual(new Set(quiz.questions.map((q) => q.kind)), new Set(['cloze', 'mc', 'definition']));
      for (const q of quiz.questions) {
        assert.equal(q.result, null);
        assert.equal(q.answer_key, undefined);
        assert.equal(q.source_passage, undefined);
        if (q.kind !== 'definition') assert.match(q.prompt, /_____/);
        if (q.kind === 'mc') {
          assert.equal(q.choices.length, 4);
          assert.equal(new Set(q.choices).size, 4);
        }
      }
      // The stored keys all occur in their stored sources (the document's sentences).
      for (const q of quiz.questions) {
        const [key, passage] = (await dbQuery(s, `SELECT answer_key || '|' || source_passage FROM quiz_questions WHERE id = '${q.id}'`))[0].split('|');
        if (q.kind !== 'definition') {
          assert.ok(passage.includes(key), `${key} in ${passage}`);
          assert.ok(BIOLOGY.some((c) => c.includes(passage)), `the passage comes from the document: ${passage}`);
        }
      }

      let answered = 0;
      for (const q of quiz.questions) {
        const key = await answerKey(s, q.id);
        let body;
        let right;
        if (q.kind === 'cloze') [body, right] = [{ question_id: q.id, answer: `  ${key.toUpperCase()} ` }, true];
        else if (q.kind === 'mc') [body, right] = [{ question_id: q.id, answer: key, duration_ms: 3000 }, true];
        else [body, right] = [{ question_id: q.id, answer: 'no idea' }, false];
        if (q.kind === 'mc') {
          const bad = expectStatus(await alice.call('POST', `/api/v1/quizzes/${quiz.id}/answers`, { body: { question_id: q.id, answer: 'Not a choice' } }), 422, 'validation_failed');
          assert.equal(bad.body.error.field, 'answer');
        }
        const a = expectStatus(await alice.call('POST', `/api/v1/quizzes/${quiz.id}/answers`, { body }), 200).body;
        answered++;
        assert.equal(a.question_id, q.id);
        assert.equal(a.is_correct, right, `${q.kind}: ${JSON.stringify(a)}`);
        assert.equal(a.rating, q.kind === 'mc' ? 4 : right ? 3 : 1);
        assert.equal(a.answer_key, key);
        assert.equal(typeof a.source_passage, 'string');
        assert.ok(a.explanation.includes(a.source_passage));
        assert.equal(a.quiz.answered, answered);
        assert.equal(a.quiz.n, 5);
        assert.equal(a.review.node_id, q.node_id, 'fed to FSRS as a review');
        // Once only.
        expectStatus(await alice.call('POST', `/api/v1/quizzes/${quiz.id}/answers`, { body }), 409, 'conflict');
      }
      const done = expectStatus(await alice.call('GET', `/api/v1/quizzes/${quiz.id}`), 200).body;
      assert.equal(done.answered, 5);
      assert.equal(done.correct, 4);
      for (const q of done.questions) assert.equal(typeof q.result.answer_key, 'string');
      // Each answer is a review of its node, from the quiz.
      const history = expectStatus(await alice.call('GET', `/api/v1/nodes/${quiz.questions[0].node_id}/reviews`), 200).body;
      assert.deepEqual(
        history.items.map((x) => x.source),
        ['quiz'],
      );
      const events = await dbQuery(s, `SELECT type FROM events WHERE user_id = '${alice.id}' AND type LIKE 'quiz.%' ORDER BY "offset"`);
      assert.deepEqual(events, ['quiz.ready', ...Array(5).fill('quiz.answered')]);

      // Stats: familiarity buckets, the quiz's score, today's activity.
      const st = expectStatus(await alice.call('GET', '/api/v1/user/stats'), 200).body;
      assert.equal(st.familiarity.nodes, 5);
      assert.equal(st.familiarity.buckets.length, 10);
      assert.equal(st.familiarity.buckets.reduce((x, y) => x + y, 0), 5);
      assert.deepEqual(st.quiz_scores.map((x) => [x.quiz_id, x.answered, x.correct, x.score]), [[quiz.id, 5, 4, 0.8]]);
      assert.equal(st.activity_per_day.length, 30);
      assert.equal(st.activity_per_day[29].quiz_answers, 5);
      assert.equal(st.activity_per_day[29].reviews, 5, 'every graded answer is a review');
      assert.deepEqual(st.streak, { current: 1, active_today: true });
      // Right 3 and wrong 1 leave a new card learning; right and fast (4) moves it to review.
      assert.deepEqual(st.nodes_by_state, { new: 0, learning: 3, review: 2, relearning: 0 });
      assert.ok(st.due.today + st.due.tomorrow >= 3, JSON.stringify(st.due));
      assert.deepEqual(st.retention, { desired: 0.9, actual: null, reviews: 0 });
      const empty = expectStatus(await bob.call('GET', '/api/v1/user/stats'), 200).body;
      assert.deepEqual(empty.quiz_scores, []);
      assert.deepEqual(empty.streak, { current: 0, active_today: false });
      assert.deepEqual(empty.nodes_by_state, { new: 0, learning: 0, review: 0, relearning: 0 });
      assert.deepEqual(empty.due, { today: 0, tomorrow: 0 });

      // Only the kinds asked for; a cluster as scope; a list of nodes.
      await dbQuery(s, `INSERT INTO clusters (user_id, id, label, member_count, algorithm, updated_at) VALUES ('${alice.id}', 'k-bio', 'Glucose', 5, 'leiden', 0)`);
      const c = expectStatus(await alice.call('POST', '/api/v1/quizzes', { body: { cluster_id: 'k-bio', n: 2, kinds: ['definition'] } }), 202).body;
      const cq = await builtQuiz(alice, c.id);
      assert.deepEqual(
        cq.questions.map((q) => q.kind),
        ['definition', 'definition'],
      );
      assert.equal(cq.questions.length, 2);
      const m = expectStatus(await alice.call('POST', '/api/v1/quizzes', { body: { node_ids: [nodes[3].id], kinds: ['mc'] } }), 202).body;
      const mq = await builtQuiz(alice, m.id);
      assert.equal(mq.questions.length, 1);
      const key = await answerKey(s, mq.questions[0].id);
      for (const choice of mq.questions[0].choices) {
        if (choice !== key) assert.ok(TERMS.some(([term]) => term === choice), `offline distractor ${choice} is one of the learner's terms`);
      }
      const byIndex = expectStatus(await alice.call('POST', `/api/v1/quizzes/${m.id}/answers`, { body: { question_id: mq.questions[0].id, answer: mq.questions[0].choices.indexOf(key) } }), 200).body;
      assert.equal(byIndex.is_correct, true);
      assert.equal(byIndex.rating, 3);

      // Another user: 404 for the quiz, its answers, and alice's material.
      await expectNotFoundForOtherUser(s, 'GET', `/api/v1/quizzes/${quiz.id}`, { owner: alice, other: bob });
      await expectNotFoundForOtherUser(s, 'POST', `/api/v1/quizzes/${quiz.id}/answers`, { owner: alice, other: bob, body: { question_id: quiz.questions[0].id, answer: 'x' } });
      for (const [field, body] of [['node_ids', { node_ids: [nodes[0].id] }], ['document_id', { document_id: doc }], ['cluster_id', { cluster_id: 'k-bio' }]]) {
        const x = expectStatus(await bob.call('POST', '/api/v1/quizzes', { body }), 404, 'not_found', field);
        assert.equal(x.body.error.field, field);
      }
      // Bob has no nodes at all: nothing to ask about.
      expectStatus(await bob.call('POST', '/api/v1/quizzes', { body: {} }), 422, 'validation_failed');
    });

    test('quizzes refuse bad input everywhere', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const n = await note(alice, 'Osmosis', 'Water moving across a membrane toward more solute.');
      const bad = [
        [{ n: 0 }, 'n'],
        [{ n: 51 }, 'n'],
        [{ n: 'five' }, 'n'],
        [{ kinds: [] }, 'kinds'],
        [{ kinds: ['essay'] }, 'kinds'],
        [{ kinds: ['cloze', 'cloze'] }, 'kinds'],
        [{ kinds: 'cloze' }, 'kinds'],
        [{ node_ids: [] }, 'node_ids'],
        [{ node_ids: [5] }, 'node_ids'],
        [{ node_ids: [n.id, n.id] }, 'node_ids'],
        [{ node_ids: Array(51).fill(n.id) }, 'node_ids'],
        [{ node_ids: [n.id], document_id: MISSING }, null],
        [{ colour: 'blue' }, 'colour'],
      ];
      for (const [body, field] of bad) {
        const r = expectStatus(await alice.call('POST', '/api/v1/quizzes', { body }), 422, 'validation_failed', JSON.stringify(body));
        if (field) assert.equal(r.body.error.field, field, JSON.stringify(body));
      }
      for (const [body, field] of [[{ node_ids: ['nope'] }, 'node_ids'], [{ node_ids: [MISSING] }, 'node_ids'], [{ document_id: 'nope' }, 'document_id'], [{ cluster_id: 'nope' }, 'cluster_id']]) {
        const r = expectStatus(await alice.call('POST', '/api/v1/quizzes', { body }), 404, 'not_found', JSON.stringify(body));
        assert.equal(r.body.error.field, field);
      }
      expectStatus(await alice.call('GET', '/api/v1/quizzes/not-a-uuid'), 404, 'not_found');
      expectStatus(await alice.call('GET', `/api/v1/quizzes/${MISSING}`), 404, 'not_found');
      const q = expectStatus(await alice.call('POST', '/api/v1/quizzes', { body: { node_ids: [n.id], kinds: ['definition'] } }), 202).body;
      const built = await builtQuiz(alice, q.id);
      const qid = built.questions[0].id;
      for (const [body, field, status] of [
        [{ question_id: qid }, 'answer', 422],
        [{ answer: 'x' }, 'question_id', 422],
        [{ question_id: qid, answer: { a: 1 } }, 'answer', 422],
        [{ question_id: qid, answer: null }, 'answer', 422],
        [{ question_id: qid, answer: 'x'.repeat(2001) }, 'answer', 422],
        [{ question_id: qid, answer: 2 }, 'answer', 422],
        [{ question_id: qid, answer: 'x', duration_ms: -1 }, 'duration_ms', 422],
        [{ question_id: qid, answer: 'x', extra: 1 }, 'extra', 422],
        [{ question_id: 'nope', answer: 'x' }, 'question_id', 404],
        [{ question_id: MISSING, answer: 'x' }, 'question_id', 404],
      ]) {
        const r = expectStatus(await alice.call('POST', `/api/v1/quizzes/${q.id}/answers`, { body }), status, null, JSON.stringify(body));
        assert.equal(r.body.error.field, field, JSON.stringify(body));
      }
      expectStatus(await alice.call('POST', `/api/v1/quizzes/${MISSING}/answers`, { body: { question_id: qid, answer: 'x' } }), 404, 'not_found');
      // The definition, answered well: half the key's content words.
      const ok = expectStatus(await alice.call('POST', `/api/v1/quizzes/${q.id}/answers`, { body: { question_id: qid, answer: 'water crossing a membrane' } }), 200).body;
      assert.equal(ok.is_correct, true);
    });
  });
}

describe('quizzes with a model (the stand-in writes the distractors)', () => {
  let standin;
  let s;
  let alice;
  before(async () => {
    standin = await startStandIn({});
    s = await startServer({
      args: [...ARGS, '--ai-providers', 'openai,local', '--ai-base-url', `${standin.url}/v1`, '--ai-chat-model', 'standin-chat',
        '--ai-embed-model', '', '--ai-retries', '0', '--ai-breaker-failures', '1000'],
    });
    alice = await signupAndLogin(s);
  });
  after(async () => {
    await s?.stop();
    await standin?.close();
  });

  test('scripted distractors become the choices; an unusable reply falls back to the graph', async () => {
    const nodes = [];
    for (const [term, summary] of TERMS) nodes.push(await note(alice, term, summary));
    await sqlDocument(s, alice, BIOLOGY);
    standin.reset();
    standin.script([{ content: '```json\n{"distractors": ["Xylem", "Phloem", "Stomata"]}\n```' }]);
    const q = expectStatus(await alice.call('POST', '/api/v1/quizzes', { body: { node_ids: [nodes[0].id], kinds: ['mc'] } }), 202).body;
    const built = await builtQuiz(alice, q.id);
    assert.equal(built.status, 'ready');
    const mc = built.questions[0];
    const key = await answerKey(s, mc.id);
    assert.equal(key.toLowerCase(), 'chlorophyll');
    assert.deepEqual(new Set(mc.choices), new Set([key, 'Xylem', 'Phloem', 'Stomata']));
    const chats = standin.requests().filter((r) => r.path === '/v1/chat/completions');
    assert.equal(chats.length, 1);
    assert.match(JSON.stringify(chats[0].body.messages), /distractors/);
    const wrong = expectStatus(await alice.call('POST', `/api/v1/quizzes/${q.id}/answers`, { body: { question_id: mc.id, answer: 'Xylem' } }), 200).body;
    assert.equal(wrong.is_correct, false);
    assert.equal(wrong.rating, 1);
    assert.match(wrong.explanation, /chlorophyll/i);

    // A reply that names the key itself and too few others: the graph's terms instead.
    standin.reset();
    standin.script([{ content: '{"distractors": ["Photosynthesis", "Xylem"]}' }]);
    const q2 = expectStatus(await alice.call('POST', '/api/v1/quizzes', { body: { node_ids: [nodes[1].id], kinds: ['mc'] } }), 202).body;
    const b2 = await builtQuiz(alice, q2.id);
    assert.equal(b2.questions.length, 1);
    const key2 = await answerKey(s, b2.questions[0].id);
    for (const choice of b2.questions[0].choices) {
      if (choice !== key2) assert.ok(TERMS.some(([term]) => term === choice), `graph distractor ${choice}`);
    }
  });
});
