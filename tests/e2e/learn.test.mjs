// Learning over HTTP: the collapsed graph (one meta-node per cluster of the
// weekly clustering, summed edges between clusters). Runs on SQLite, and on
// PostgreSQL when one is configured.
//
// Clustering itself is a weekly job (unit-tested in tests/unit/learn);
// here its result is put in with SQL, as the job would leave it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pg } from './lib/pg.mjs';
import { cleanup, startServer } from './lib/server.mjs';
import { AUTH_TEST_ARGS, dbQuery, expectStatus, signupAndLogin } from './lib/users.mjs';

after(cleanup);

const ARGS = [...AUTH_TEST_ARGS, '--rate-api-burst', '100000', '--rate-api-per-min', '100000'];

async function note(user, term, summary) {
  const body = summary === undefined ? { term } : { term, summary };
  return expectStatus(await user.call('POST', '/api/v1/nodes', { body }), 201, null, `note ${term}`).body;
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
  });
}
