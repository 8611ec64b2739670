// /health/detailed on SQLite and PostgreSQL, and degrading to 503 when the
// database goes away (while liveness stays 200), then recovering.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { pg } from './lib/pg.mjs';
import { cleanup, sleep, startServer } from './lib/server.mjs';

after(cleanup);

async function getJson(url) {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, body: await res.json() };
}

function assertUp(d, backend) {
  assert.equal(d.status, 'ok');
  assert.equal(typeof d.version, 'string');
  assert.ok(d.version.length > 0);
  assert.ok(Number.isInteger(d.uptime_seconds) && d.uptime_seconds >= 0 && d.uptime_seconds < 120, `uptime_seconds ${d.uptime_seconds}`);
  assert.equal(d.database.backend, backend);
  assert.equal(d.database.status, 'up');
  assert.ok(Number.isInteger(d.database.schema_version) && d.database.schema_version >= 1, `schema_version ${d.database.schema_version}`);
  assert.equal(d.database.schema_version, d.database.schema_latest, 'a freshly migrated database is at the latest schema');
  assert.equal(typeof d.database.latency_ms, 'number');
}

describe('/health/detailed', () => {
  test('on SQLite: 200 with database up, schema_version, uptime_seconds and version', async () => {
    const srv = await startServer();
    const { status, headers, body } = await getJson(`${srv.url}/health/detailed`);
    assert.equal(status, 200);
    assert.match(headers.get('content-type'), /^application\/json/);
    assertUp(body, 'sqlite');
    const ver = (await getJson(`${srv.url}/api/v1/version`)).body;
    assert.equal(body.version, ver.version, 'the same version as /api/v1/version');
  });

  test('on PostgreSQL: 200; 503 degraded when the database is unreachable while /health stays 200; 200 again after', async (t) => {
    const p = pg(t);
    if (!p) return;
    const db = await p.createDb();
    const srv = await startServer({ dbUrl: db.url });

    const up = await getJson(`${srv.url}/health/detailed`);
    assert.equal(up.status, 200, JSON.stringify(up.body));
    assertUp(up.body, 'postgres');
    const tables = await p.psql("SELECT count(*) FROM schema_migrations", { url: db.url });
    assert.ok(Number(tables) >= 1, 'the server migrated the fresh database');

    // Take this database (only) away from the server.
    await p.psql(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
    await p.psql(`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '${db.name}' AND pid <> pg_backend_pid()`);

    const down = await getJson(`${srv.url}/health/detailed`);
    assert.equal(down.status, 503, `503 while the database is unreachable: ${JSON.stringify(down.body)}`);
    assert.equal(down.body.status, 'degraded');
    assert.equal(down.body.database.status, 'down');
    assert.equal(down.body.database.backend, 'postgres');
    assert.equal(typeof down.body.version, 'string');

    const live = await fetch(`${srv.url}/health`);
    assert.equal(live.status, 200, 'liveness does not depend on the database');
    assert.deepEqual(await live.json(), { status: 'ok' });

    const again = await getJson(`${srv.url}/health/detailed`);
    assert.equal(again.status, 503, 'still 503 on a second look');

    // Bring it back: the pool reconnects on its own.
    await p.psql(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);
    let back;
    for (let i = 0; i < 30; i++) {
      back = await getJson(`${srv.url}/health/detailed`);
      if (back.status === 200) break;
      await sleep(100);
    }
    assert.equal(back.status, 200, `200 again after connections are allowed: ${JSON.stringify(back.body)}`);
    assertUp(back.body, 'postgres');
    assert.equal(srv.proc.exitCode, null, 'the server is still running');
  });
});
