// Learning over HTTP: the collapsed graph (one meta-node per cluster of the
// weekly clustering, summed edges between clusters). Runs on SQLite, and on
// PostgreSQL when one is configured.
//
// The first test puts a clustering result in with SQL, as the job would
// leave it; the second runs the graph.compress job itself.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pg } from './lib/pg.mjs';
import { cleanup, sleep, startServer } from './lib/server.mjs';
import { AUTH_TEST_ARGS, dbQuery, expectStatus, signupAndLogin } from './lib/users.mjs';

after(cleanup);

const ARGS = [...AUTH_TEST_ARGS, '--rate-api-burst', '100000', '--rate-api-per-min', '100000'];

async function note(user, term, summary) {
  const body = summary === undefined ? { term } : { term, summary };
  return expectStatus(await user.call('POST', '/api/v1/nodes', { body }), 201, null, `note ${term}`).body;
}

/** Enqueue a job as the scheduler would and wait for it to complete. */
async function runJob(s, type) {
  const id = randomUUID();
  const now = Date.now();
  await dbQuery(s, `INSERT INTO jobs (id, type, payload, status, run_at, created_at, updated_at) VALUES ('${id}', '${type}', '{}', 'queued', ${now}, ${now}, ${now})`);
  for (let i = 0; i < 600; i++) {
    const [status] = await dbQuery(s, `SELECT status FROM jobs WHERE id = '${id}'`);
    if (status === 'completed') return;
    if (status === 'dead') assert.fail(`${type} died: ${(await dbQuery(s, `SELECT last_error FROM jobs WHERE id = '${id}'`))[0]}`);
    await sleep(50);
  }
  assert.fail(`${type} did not finish`);
}

async function sqlEdge(s, user, a, b, weight) {
  const [src, dst] = a > b ? [b, a] : [a, b];
  await dbQuery(s, `INSERT INTO edges (user_id, src, dst, type, weight, updated_at) VALUES ('${user.id}', '${src}', '${dst}', 'related', ${weight}, 0)`);
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

    test('the collapsed graph: meta-nodes with live counts, summed inter-cluster edges', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const n = [];
      for (const term of ['Mitosis', 'Meiosis', 'Chromosome', 'Enzyme', 'Substrate', 'Loose end']) n.push(await note(alice, term));
      await sqlEdge(s, alice, n[0].id, n[1].id, 3);
      await sqlEdge(s, alice, n[1].id, n[2].id, 2);
      await sqlEdge(s, alice, n[3].id, n[4].id, 4);
      await sqlEdge(s, alice, n[2].id, n[3].id, 1.5);
      await sqlEdge(s, alice, n[0].id, n[4].id, 0.5);
      // Before any clustering: everything is unclustered.
      assert.deepEqual(expectStatus(await alice.call('GET', '/api/v1/graph?collapsed=true'), 200).body, { clusters: [], edges: [], unclustered: 6 });

      await dbQuery(s, `UPDATE nodes SET cluster = 'k-cell', familiarity = 0.5 WHERE id IN ('${n[0].id}', '${n[1].id}', '${n[2].id}')`);
      await dbQuery(s, `UPDATE nodes SET cluster = 'k-enzyme' WHERE id IN ('${n[3].id}', '${n[4].id}')`);
      await dbQuery(
        s,
        `INSERT INTO clusters (user_id, id, label, top_terms, member_count, mean_familiarity, algorithm, modularity, updated_at) VALUES ` +
          `('${alice.id}', 'k-cell', 'Meiosis, Chromosome, Mitosis', '["Meiosis","Chromosome","Mitosis"]', 3, 0, 'leiden', 0.3, 1), ` +
          `('${alice.id}', 'k-enzyme', 'Enzyme, Substrate', '["Enzyme","Substrate"]', 2, 0, 'leiden', 0.3, 1)`,
      );
      const g = expectStatus(await alice.call('GET', '/api/v1/graph?collapsed=true'), 200).body;
      assert.deepEqual(Object.keys(g).sort(), ['clusters', 'edges', 'unclustered']);
      assert.equal(g.unclustered, 1);
      assert.deepEqual(
        g.clusters.map((c) => [c.id, c.label, c.member_count, c.mean_familiarity]),
        [
          ['k-cell', 'Meiosis, Chromosome, Mitosis', 3, 0.5],
          ['k-enzyme', 'Enzyme, Substrate', 2, 0],
        ],
      );
      assert.deepEqual(g.clusters[1].top_terms, ['Enzyme', 'Substrate']);
      assert.deepEqual(g.edges, [{ src: 'k-cell', dst: 'k-enzyme', weight: 2, count: 2 }]);

      const one = expectStatus(await alice.call('GET', '/api/v1/graph?collapsed=true&limit=1'), 200).body;
      assert.equal(one.clusters.length, 1);
      assert.deepEqual(one.edges, []);
      // collapsed=false is the ordinary slice.
      assert.equal(expectStatus(await alice.call('GET', '/api/v1/graph?collapsed=false'), 200).body.nodes.length, 6);
      // Bob sees none of it.
      assert.deepEqual(expectStatus(await bob.call('GET', '/api/v1/graph?collapsed=true'), 200).body, { clusters: [], edges: [], unclustered: 0 });
      for (const q of ['collapsed=yes', 'collapsed=', 'collapsed=true&cluster=k-cell', 'collapsed=true&limit=0']) {
        const r = expectStatus(await alice.call('GET', `/api/v1/graph?${q}`), 400, 'bad_request', q);
        assert.ok(['collapsed', 'cluster', 'limit'].includes(r.body.error.field), q);
      }
    });

    test('the graph.compress job clusters each learner\'s graph, labels clusters, announces the moves', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const carol = await signupAndLogin(s);
      const a = [];
      const b = [];
      for (const term of ['Alpha one', 'Alpha two', 'Alpha three', 'Alpha four']) a.push(await note(carol, term));
      for (const term of ['Beta one', 'Beta two', 'Beta three', 'Beta four']) b.push(await note(carol, term));
      for (const g of [a, b]) for (let i = 0; i < g.length; i++) for (let j = i + 1; j < g.length; j++) await sqlEdge(s, carol, g[i].id, g[j].id, 2 + i);
      await sqlEdge(s, carol, a[0].id, b[0].id, 0.5);
      const before = (await dbQuery(s, `SELECT COUNT(*) FROM events WHERE user_id = '${carol.id}' AND type = 'graph.updated'`))[0];

      await runJob(s, 'graph.compress');
      const g = expectStatus(await carol.call('GET', '/api/v1/graph?collapsed=true'), 200).body;
      assert.equal(g.unclustered, 0);
      assert.deepEqual(
        g.clusters.map((c) => c.member_count),
        [4, 4],
      );
      const alpha = g.clusters.find((c) => c.label.startsWith('Alpha'));
      assert.ok(alpha && alpha.label.split(', ').length === 3 && alpha.label.split(', ').every((x) => x.startsWith('Alpha')), JSON.stringify(g.clusters));
      assert.deepEqual(
        g.edges.map((e) => [e.weight, e.count]),
        [[0.5, 1]],
      );
      const node = expectStatus(await carol.call('GET', `/api/v1/nodes/${a[1].id}`), 200).body;
      assert.equal(node.cluster, alpha.id);
      const ev = (await dbQuery(s, `SELECT data FROM events WHERE user_id = '${carol.id}' AND type = 'graph.updated' ORDER BY "offset" DESC LIMIT 1`)).map((x) => JSON.parse(x))[0];
      assert.equal(ev.reason, 'graph.clustered');
      assert.equal(ev.nodes.length, 8);
      assert.equal(Number((await dbQuery(s, `SELECT COUNT(*) FROM events WHERE user_id = '${carol.id}' AND type = 'graph.updated'`))[0]), Number(before) + 1);
      // The slice by cluster draws one community.
      const slice = expectStatus(await carol.call('GET', `/api/v1/graph?cluster=${alpha.id}`), 200).body;
      assert.deepEqual(new Set(slice.nodes.map((n) => n.id)), new Set(a.map((n) => n.id)));

      // Again: same clusters, same ids, no event.
      await runJob(s, 'graph.compress');
      const again = expectStatus(await carol.call('GET', '/api/v1/graph?collapsed=true'), 200).body;
      assert.deepEqual(new Set(again.clusters.map((c) => c.id)), new Set(g.clusters.map((c) => c.id)));
      assert.equal(Number((await dbQuery(s, `SELECT COUNT(*) FROM events WHERE user_id = '${carol.id}' AND type = 'graph.updated'`))[0]), Number(before) + 1);
    });
  });
}

test('the compress_graph schedule is known by name (it can be overridden)', async () => {
  const other = await startServer({ args: [...ARGS, '--schedules', 'compress_graph=30 5 * * 0'] });
  await other.stop();
});
