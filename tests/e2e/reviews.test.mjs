// Spaced repetition (issue 8) as a learner meets it: the due queue offers new nodes,
// a review moves the card exactly as ts-fsrs would (same due time to the
// millisecond), the node's familiarity becomes the card's retrievability
// with a graph.updated event, a manual familiarity is a self-rating, the
// settings change retention and the new-per-day cap; bad input is refused and
// another user's node is 404. Then the scheduled work: the daily decay
// recomputes familiarity and a second run changes nothing; the review digest
// reaches the SMTP sink only for the learner who opted in, once a day.
// Runs on SQLite, and on PostgreSQL when one is configured. Jobs are started
// by inserting their row, as the scheduler's tick would.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createEmptyCard, fsrs } from 'ts-fsrs';
import { startSmtp } from './lib/mail.mjs';
import { pg } from './lib/pg.mjs';
import { cleanup, sleep, startServer } from './lib/server.mjs';
import {
  AUTH_TEST_ARGS, call, dbQuery, expectNotFoundForOtherUser, expectStatus, loginAs, lociUser, newPassword, signupAndLogin, uniqueEmail,
} from './lib/users.mjs';

after(cleanup);

const ARGS = [...AUTH_TEST_ARGS, '--rate-api-burst', '100000', '--rate-api-per-min', '100000', '--jobs-poll-ms', '50'];
const DAY = 86_400_000;
const STATES = ['new', 'learning', 'review', 'relearning'];

async function note(user, term) {
  return expectStatus(await user.call('POST', '/api/v1/nodes', { body: { term, summary: `about ${term}` } }), 201, null, `note ${term}`).body;
}

async function rate(user, node_id, rating, extra = {}) {
  return expectStatus(await user.call('POST', '/api/v1/reviews', { body: { node_id, rating, ...extra } }), 201, null, `review ${rating}`).body;
}

/** The card row as ts-fsrs's Card. */
async function tsCard(s, nodeId) {
  const [row] = await dbQuery(s, `SELECT state, stability, difficulty, due, last_review, reps, lapses, scheduled_days, elapsed_days, learning_steps FROM cards WHERE node_id = '${nodeId}'`);
  const [state, stability, difficulty, due, last, reps, lapses, sched, elapsed, steps] = row.split('|').map(Number);
  return {
    state, stability, difficulty, due: new Date(due), last_review: new Date(last), reps, lapses,
    scheduled_days: sched, elapsed_days: elapsed, learning_steps: steps,
  };
}

function assertSameCard(got, want, what) {
  assert.equal(got.state, STATES[want.state], `${what}: state`);
  assert.equal(got.due, want.due.getTime(), `${what}: due`);
  assert.equal(got.stability, want.stability, `${what}: stability`);
  assert.equal(got.difficulty, want.difficulty, `${what}: difficulty`);
  assert.equal(got.reps, want.reps, `${what}: reps`);
  assert.equal(got.lapses, want.lapses, `${what}: lapses`);
}

async function events(s, user, type) {
  const rows = await dbQuery(s, `SELECT data FROM events WHERE user_id = '${user.id}' AND type = '${type}' ORDER BY "offset"`);
  return rows.map((r) => JSON.parse(r));
}

/** Insert a job row for type (as the scheduler would) and wait for it to finish. */
async function runJob(s, type) {
  const id = randomUUID();
  const now = Date.now();
  await dbQuery(s, `INSERT INTO jobs (id, type, payload, status, run_at, created_at, updated_at) VALUES ('${id}', '${type}', '{}', 'queued', ${now}, ${now}, ${now})`);
  for (let i = 0; i < 200; i++) {
    const [status] = await dbQuery(s, `SELECT status FROM jobs WHERE id = '${id}'`);
    if (status === 'completed') return;
    if (status === 'dead') {
      const [err] = await dbQuery(s, `SELECT last_error FROM jobs WHERE id = '${id}'`);
      assert.fail(`${type} died: ${err}`);
    }
    await sleep(50);
  }
  assert.fail(`${type} did not finish`);
}

/** Age every card of user by days (as if the reviews were that long ago). */
async function age(s, user, days) {
  await dbQuery(s, `UPDATE cards SET last_review = last_review - ${days * DAY}, due = due - ${days * DAY} WHERE user_id = '${user.id}'`);
}

for (const backend of ['sqlite', 'postgres']) {
  describe(`learning (${backend})`, () => {
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

    test('the queue offers new nodes; a review moves the card as ts-fsrs does', async () => {
      if (!s) return;
      const a = await note(alice, 'photosynthesis');
      const b = await note(alice, 'chlorophyll');
      await note(bob, 'bobs own term');
      const q = expectStatus(await alice.call('GET', '/api/v1/reviews/due'), 200).body;
      assert.deepEqual(q.items.map((i) => i.node_id), [a.id, b.id], 'new nodes, oldest first; only mine');
      const first = q.items[0];
      assert.equal(first.term, 'photosynthesis');
      assert.equal(first.summary, 'about photosynthesis');
      assert.equal(first.state, 'new');
      assert.equal(first.due, null);
      assert.equal(first.retrievability, 0);
      assert.deepEqual(first.intervals, { 1: 60_000, 2: 360_000, 3: 600_000, 4: 8 * DAY });

      const f = fsrs();
      const r1 = await rate(alice, a.id, 3, { duration_ms: 4200 });
      let want = f.next(createEmptyCard(new Date(r1.last_review)), new Date(r1.last_review), 3).card;
      assertSameCard(r1, want, 'first Good');
      assert.equal(r1.state, 'learning');
      assert.equal(r1.due, r1.last_review + 600_000);
      const r2 = await rate(alice, a.id, 3);
      want = f.next(want, new Date(r2.last_review), 3).card;
      assertSameCard(r2, want, 'second Good');
      assert.equal(r2.state, 'review');
      // five days on, reviewed Hard, then forgotten
      await age(s, alice, 5);
      let card = await tsCard(s, a.id);
      const r3 = await rate(alice, a.id, 2);
      want = f.next(card, new Date(r3.last_review), 2).card;
      assertSameCard(r3, want, 'Hard after 5 days');
      await age(s, alice, 40);
      card = await tsCard(s, a.id);
      const r4 = await rate(alice, a.id, 1);
      want = f.next(card, new Date(r4.last_review), 1).card;
      assertSameCard(r4, want, 'Again after 40 days');
      assert.equal(r4.state, 'relearning');
      assert.equal(r4.lapses, 1);

      const h = expectStatus(await alice.call('GET', `/api/v1/nodes/${a.id}/reviews`), 200).body;
      assert.equal(h.node_id, a.id);
      assert.deepEqual(h.items.map((i) => i.rating), [3, 3, 2, 1]);
      assert.deepEqual(h.items.map((i) => i.source), ['review', 'review', 'review', 'review']);
      assert.equal(h.items[0].duration_ms, 4200);
      assert.equal(h.items[1].duration_ms, null);
      assert.equal(h.items[0].before.state, 'new');
      assert.equal(h.items[3].before.state, 'review');
      assert.equal(h.items[3].after.state, 'relearning');
      assert.equal(h.items[3].after.due, r4.due);
    });

    test('a review sets familiarity to retrievability, with graph.updated and review.recorded', async () => {
      if (!s) return;
      const n = await note(alice, 'mitochondria');
      const beforeGraph = (await events(s, alice, 'graph.updated')).length;
      const r = await rate(alice, n.id, 4);
      assert.equal(r.retrievability, 1, 'just reviewed: R = 1');
      assert.equal(r.familiarity, 1);
      const node = expectStatus(await alice.call('GET', `/api/v1/nodes/${n.id}`), 200).body;
      assert.equal(node.familiarity, 1);
      const g = await events(s, alice, 'graph.updated');
      assert.equal(g.length, beforeGraph + 1, 'one graph.updated');
      const ev = g[g.length - 1];
      assert.equal(ev.reason, 'review.recorded');
      assert.deepEqual(ev.nodes.map((x) => [x.id, x.familiarity]), [[n.id, 1]]);
      const rec = await events(s, alice, 'review.recorded');
      assert.equal(rec[rec.length - 1].node_id, n.id);
      assert.equal(rec[rec.length - 1].rating, 4);
      // the change log a client syncs from has both
      const sync = expectStatus(await alice.call('GET', '/api/v1/sync?offset=0&limit=500'), 200).body;
      assert.ok(sync.events.some((e) => e.type === 'review.recorded' && e.data.node_id === n.id));
    });

    test('a manual familiarity is a self-rating that feeds the card; the value stays', async () => {
      if (!s) return;
      const n = await note(alice, 'ribosome');
      expectStatus(await alice.call('PATCH', `/api/v1/nodes/${n.id}/familiarity`, { body: { value: 0.3 } }), 204);
      const h = expectStatus(await alice.call('GET', `/api/v1/nodes/${n.id}/reviews`), 200).body;
      assert.equal(h.items.length, 1);
      assert.equal(h.items[0].source, 'self');
      assert.equal(h.items[0].rating, 2, '0.3 is Hard');
      assert.equal(h.items[0].after.state, 'learning');
      assert.equal(expectStatus(await alice.call('GET', `/api/v1/nodes/${n.id}`), 200).body.familiarity, 0.3);
      expectStatus(await alice.call('PATCH', `/api/v1/nodes/${n.id}/familiarity`, { body: { value: 0.9 } }), 204);
      const h2 = expectStatus(await alice.call('GET', `/api/v1/nodes/${n.id}/reviews`), 200).body;
      assert.deepEqual(h2.items.map((i) => i.rating), [2, 4]);
      // a refused value records nothing
      expectStatus(await alice.call('PATCH', `/api/v1/nodes/${n.id}/familiarity`, { body: { value: 2 } }), 422);
      assert.equal(expectStatus(await alice.call('GET', `/api/v1/nodes/${n.id}/reviews`), 200).body.items.length, 2);
    });

    test('settings: defaults, retention changes intervals, new nodes capped per day', async () => {
      if (!s) return;
      const carol = await signupAndLogin(s);
      const d = expectStatus(await carol.call('GET', '/api/v1/me/learning'), 200).body;
      assert.deepEqual(d, { desired_retention: 0.9, new_per_day: 20, review_mail: false, threshold: 0.8, last_digest_at: null });
      const p = expectStatus(await carol.call('PATCH', '/api/v1/me/learning', { body: { desired_retention: 0.8, new_per_day: 1 } }), 200).body;
      assert.equal(p.desired_retention, 0.8);
      assert.equal(p.new_per_day, 1);
      assert.equal(p.review_mail, false, 'untouched');
      const x = await note(carol, 'krebs cycle');
      await note(carol, 'glycolysis');
      const r = await rate(carol, x.id, 4);
      const want = fsrs({ request_retention: 0.8 }).next(createEmptyCard(new Date(r.last_review)), new Date(r.last_review), 4).card;
      assertSameCard(r, want, 'Easy at retention 0.8');
      assert.equal(r.scheduled_days, 28);
      // one new node studied today: glycolysis is not offered until tomorrow
      const q = expectStatus(await carol.call('GET', '/api/v1/reviews/due'), 200).body;
      assert.deepEqual(q.items, []);
      expectStatus(await carol.call('PATCH', '/api/v1/me/learning', { body: { new_per_day: 5 } }), 200);
      const q2 = expectStatus(await carol.call('GET', '/api/v1/reviews/due?limit=1'), 200).body;
      assert.deepEqual(q2.items.map((i) => i.term), ['glycolysis']);
      // a card due comes before new nodes
      await age(s, carol, 40);
      const q3 = expectStatus(await carol.call('GET', '/api/v1/reviews/due'), 200).body;
      assert.deepEqual(q3.items.map((i) => i.term), ['krebs cycle', 'glycolysis']);
      assert.equal(q3.items[0].state, 'review');
      assert.ok(q3.items[0].retrievability > 0 && q3.items[0].retrievability < 0.9);
      const iv = q3.items[0].intervals;
      assert.ok(iv[1] < iv[2] && iv[2] < iv[3] && iv[3] < iv[4], `intervals grow with the rating: ${JSON.stringify(iv)}`);
    });

    test('bad input is refused and changes nothing', async () => {
      if (!s) return;
      const n = await note(alice, 'osmosis');
      for (const [body, status, field] of [
        [{ node_id: n.id, rating: 0 }, 422, 'rating'],
        [{ node_id: n.id, rating: 5 }, 422, 'rating'],
        [{ node_id: n.id, rating: '3' }, 422, 'rating'],
        [{ node_id: n.id, rating: 2.5 }, 422, 'rating'],
        [{ node_id: n.id }, 422, 'rating'],
        [{ rating: 3 }, 422, 'node_id'],
        [{ node_id: n.id, rating: 3, duration_ms: -1 }, 422, 'duration_ms'],
        [{ node_id: n.id, rating: 3, extra: 1 }, 422, 'extra'],
        [{ node_id: 'not-a-uuid', rating: 3 }, 404, 'node_id'],
        [{ node_id: '01900000-0000-7000-8000-000000000000', rating: 3 }, 404, 'node_id'],
      ]) {
        const r = await alice.call('POST', '/api/v1/reviews', { body });
        assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
        assert.equal(r.body.error.field, field, JSON.stringify(body));
      }
      const raw = await call(s, 'POST', '/api/v1/reviews', { token: alice.accessToken, body: '{"node_id":', headers: { 'Content-Type': 'application/json' } });
      assert.equal(raw.status, 400);
      assert.deepEqual(await dbQuery(s, `SELECT COUNT(*) FROM reviews WHERE node_id = '${n.id}'`), ['0']);
      for (const [body, field] of [
        [{ desired_retention: 0.5 }, 'desired_retention'],
        [{ desired_retention: 1 }, 'desired_retention'],
        [{ desired_retention: 'high' }, 'desired_retention'],
        [{ new_per_day: -1 }, 'new_per_day'],
        [{ new_per_day: 1001 }, 'new_per_day'],
        [{ threshold: 1.5 }, 'threshold'],
        [{ review_mail: 'yes' }, 'review_mail'],
        [{ colour: 'blue' }, 'colour'],
      ]) {
        const r = await alice.call('PATCH', '/api/v1/me/learning', { body });
        assert.equal(r.status, 422, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
        assert.equal(r.body.error.field, field);
      }
      for (const q of ['limit=0', 'limit=201', 'limit=x']) {
        const r = await alice.call('GET', `/api/v1/reviews/due?${q}`);
        assert.ok(r.status === 400 || r.status === 422, `${q} → ${r.status}`);
      }
      expectStatus(await call(s, 'GET', '/api/v1/reviews/due'), 401);
      expectStatus(await call(s, 'POST', '/api/v1/reviews', { body: { node_id: n.id, rating: 3 } }), 401);
    });

    test("another user's node is 404: reviewing it, its history", async () => {
      if (!s) return;
      const n = await note(alice, 'enzyme');
      await rate(alice, n.id, 3);
      await expectNotFoundForOtherUser(s, 'GET', `/api/v1/nodes/${n.id}/reviews`, { owner: alice, other: bob });
      const r = await bob.call('POST', '/api/v1/reviews', { body: { node_id: n.id, rating: 1 } });
      expectStatus(r, 404, 'not_found');
      assert.deepEqual(await dbQuery(s, `SELECT COUNT(*) FROM reviews WHERE node_id = '${n.id}'`), ['1']);
      assert.ok(!expectStatus(await bob.call('GET', '/api/v1/reviews/due?limit=200'), 200).body.items.some((i) => i.node_id === n.id));
    });

    test('decay_familiarity recomputes familiarity from retrievability; a second run changes nothing', async () => {
      if (!s) return;
      const dave = await signupAndLogin(s);
      const n = await note(dave, 'homeostasis');
      const m = await note(dave, 'feedback loop');
      await rate(dave, n.id, 4);
      await rate(dave, m.id, 3);
      await age(s, dave, 30);
      await runJob(s, 'learn.decay_familiarity');
      const f = fsrs();
      for (const id of [n.id, m.id]) {
        const card = await tsCard(s, id);
        const want = f.get_retrievability(card, new Date(), false);
        const fam = expectStatus(await dave.call('GET', `/api/v1/nodes/${id}`), 200).body.familiarity;
        assert.equal(fam, want, 'familiarity = ts-fsrs retrievability now');
        assert.ok(fam < 1);
      }
      const dec = await events(s, dave, 'familiarity.decayed');
      assert.deepEqual(dec, [{ cards: 2, changed: 2 }]);
      const g = await events(s, dave, 'graph.updated');
      assert.equal(g[g.length - 1].reason, 'familiarity.decayed');
      assert.equal(g[g.length - 1].nodes.length, 2);
      const [count] = await dbQuery(s, `SELECT COUNT(*) FROM events WHERE user_id = '${dave.id}'`);
      await runJob(s, 'learn.decay_familiarity');
      assert.deepEqual(await dbQuery(s, `SELECT COUNT(*) FROM events WHERE user_id = '${dave.id}'`), [count], 'nothing appended');
      assert.deepEqual(await events(s, dave, 'familiarity.decayed'), [{ cards: 2, changed: 2 }]);
    });
  });
}

describe('review digest by mail', () => {
  let s;
  let smtp;
  const users = {};
  before(async () => {
    smtp = await startSmtp();
    s = await startServer({ args: [...ARGS, ...smtp.args] });
    for (const name of ['ann', 'ben', 'cid']) {
      const email = uniqueEmail(name);
      const password = newPassword();
      await lociUser(s, ['add', email], { input: `${password}\n` });
      users[name] = await loginAs(s, email, password);
    }
  });
  after(() => s?.stop());

  test('mails only learners who opted in and have nodes below their threshold, once a day', async () => {
    const { ann, ben, cid } = users;
    for (const u of [ann, ben, cid]) {
      const n = await note(u, `term of ${u.email}`);
      const n2 = await note(u, `other term of ${u.email}`);
      await rate(u, n.id, 3);
      await rate(u, n2.id, 3);
    }
    expectStatus(await ann.call('PATCH', '/api/v1/me/learning', { body: { review_mail: true, threshold: 0.95 } }), 200);
    expectStatus(await cid.call('PATCH', '/api/v1/me/learning', { body: { review_mail: true, threshold: 0.95 } }), 200);
    // ben did not opt in; cid's nodes are fresh (R = 1): neither gets mail
    await age(s, ann, 20);
    await age(s, ben, 20);
    await runJob(s, 'learn.review_digest');
    const mail = await smtp.waitFor((m) => m.to.includes(ann.email), 8000, 'the digest to ann');
    assert.match(mail.subject, /2 nodes to review/);
    assert.match(mail.text, /2 of your nodes have fallen below 95% recall/);
    assert.match(mail.text, /\/review\b/);
    await sleep(300);
    assert.deepEqual(smtp.messages().map((m) => m.to).flat(), [ann.email], 'no mail to ben or cid');
    const settings = expectStatus(await ann.call('GET', '/api/v1/me/learning'), 200).body;
    assert.ok(settings.last_digest_at > 0);
    const sent = await dbQuery(s, `SELECT data FROM events WHERE user_id = '${ann.id}' AND type = 'review.digest_sent'`);
    assert.deepEqual(sent.map((x) => JSON.parse(x).count), [2]);
    // the hour after: not again the same day
    await runJob(s, 'learn.review_digest');
    await sleep(300);
    assert.equal(smtp.messages().length, 1, 'once a day');
    // a day later (moved back by SQL): again
    await dbQuery(s, `UPDATE learning_settings SET last_digest_at = last_digest_at - ${DAY} WHERE user_id = '${ann.id}'`);
    await runJob(s, 'learn.review_digest');
    await smtp.waitFor(() => smtp.messages().length === 2, 8000, 'the next day digest');
    assert.deepEqual(smtp.messages().map((m) => m.to).flat(), [ann.email, ann.email]);
  });

  test('the schedules are known by name: decay_familiarity and review_digest can be overridden', async () => {
    const other = await startServer({ args: [...ARGS, '--schedules', 'decay_familiarity=off;review_digest=15 * * * *'] });
    await other.stop();
  });
});
