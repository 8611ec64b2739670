// `loci migrate`: applies once, is idempotent, and refuses a database whose
// schema is newer than the binary (as does `loci serve`).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pg } from './lib/pg.mjs';
import { cleanup, run, runLoci, tempDir } from './lib/server.mjs';

after(cleanup);

/** The parsed JSON log lines of a command's stderr. */
function logLines(stderr) {
  return stderr
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return { raw: l };
      }
    });
}

function ready(stderr) {
  const l = logLines(stderr).find((x) => x.msg === 'database ready');
  assert.ok(l, `"database ready" logged:\n${stderr}`);
  return l;
}

async function sqlite(db, sql) {
  const r = await run('sqlite3', [db, sql]);
  assert.equal(r.code, 0, `sqlite3 ${sql}: ${r.stderr}`);
  return r.stdout.trim();
}

describe('loci migrate on SQLite', () => {
  test('applies the migrations to a fresh data dir, then a second run applies nothing', async () => {
    const dir = tempDir();
    const db = join(dir, 'loci.db');
    const first = await runLoci(['migrate', '--data-dir', dir]);
    assert.equal(first.code, 0, first.stderr);
    const r1 = ready(first.stderr);
    assert.equal(r1.backend, 'sqlite');
    assert.ok(r1.migrations_applied >= 1, `migrations_applied ${r1.migrations_applied}`);
    assert.ok(r1.schema_version >= 1);
    const rows1 = await sqlite(db, 'SELECT count(*), max(version), group_concat(applied_at) FROM schema_migrations');
    assert.equal(rows1.split('|')[0], String(r1.migrations_applied), 'one schema_migrations row per applied migration');
    assert.equal(rows1.split('|')[1], String(r1.schema_version));

    const second = await runLoci(['migrate', '--data-dir', dir]);
    assert.equal(second.code, 0, second.stderr);
    const r2 = ready(second.stderr);
    assert.equal(r2.migrations_applied, 0, 'nothing applied the second time');
    assert.equal(r2.schema_version, r1.schema_version);
    assert.equal(await sqlite(db, 'SELECT count(*), max(version), group_concat(applied_at) FROM schema_migrations'), rows1, 'schema_migrations unchanged');
  });

  test('a schema newer than the binary makes migrate and serve refuse, and changes nothing', async () => {
    const dir = tempDir();
    const db = join(dir, 'loci.db');
    const first = await runLoci(['migrate', '--data-dir', dir]);
    assert.equal(first.code, 0, first.stderr);
    await sqlite(db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999999, 'from_the_future', 0)");
    const before = await sqlite(db, 'SELECT version, name, applied_at FROM schema_migrations ORDER BY version');

    const mig = await runLoci(['migrate', '--data-dir', dir]);
    assert.equal(mig.timedOut, false);
    assert.notEqual(mig.code, 0, `loci migrate must fail; stderr:\n${mig.stderr}`);
    assert.match(mig.stderr, /newer/i, 'the message says the schema is newer');
    assert.match(mig.stderr, /999999/, 'the message names the database version');

    const srv = await runLoci(['serve', '--port', '0', '--data-dir', dir, '--web-dir', '']);
    assert.equal(srv.timedOut, false, `loci serve started on a newer schema; stderr:\n${srv.stderr}`);
    assert.notEqual(srv.code, 0, 'loci serve must fail');
    assert.equal(srv.signal, null);
    assert.match(srv.stderr, /newer/i);
    assert.ok(!logLines(srv.stderr).some((l) => l.msg === 'listening'), 'it never listened');

    assert.equal(await sqlite(db, 'SELECT version, name, applied_at FROM schema_migrations ORDER BY version'), before, 'schema_migrations untouched');
  });
});

describe('loci migrate on PostgreSQL', () => {
  test('applies once, then nothing; a newer schema is refused', async (t) => {
    const p = pg(t);
    if (!p) return;
    const db = await p.createDb();
    const first = await runLoci(['migrate', '--database-url', db.url, '--data-dir', tempDir()]);
    assert.equal(first.code, 0, first.stderr);
    const r1 = ready(first.stderr);
    assert.equal(r1.backend, 'postgres');
    assert.ok(r1.migrations_applied >= 1);
    const second = await runLoci(['migrate', '--database-url', db.url, '--data-dir', tempDir()]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(ready(second.stderr).migrations_applied, 0);
    assert.equal((await p.psql('SELECT count(*) FROM schema_migrations', { url: db.url })).trim(), String(r1.migrations_applied));

    await p.psql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999999, 'from_the_future', 0)", { url: db.url });
    const third = await runLoci(['migrate', '--database-url', db.url, '--data-dir', tempDir()]);
    assert.notEqual(third.code, 0, `migrate must refuse a newer schema; stderr:\n${third.stderr}`);
    assert.match(third.stderr, /newer/i);
  });
});
