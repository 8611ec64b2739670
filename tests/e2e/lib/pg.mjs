// PostgreSQL for tests: the server named by LOCI_TEST_PG_URL /
// LOCI_TEST_PG_ADMIN_URL (trust auth; see scripts/services), driven with psql.
import { randomBytes } from 'node:crypto';
import { onCleanup, run } from './server.mjs';

/**
 * The test PostgreSQL, or null after skipping the test when it is not
 * configured. With LOCI_TEST_REQUIRE_PG=1 a missing configuration fails the
 * test instead. Returns { url, adminUrl, psql(sql, {url}), createDb() }.
 */
export function pg(t) {
  const url = process.env.LOCI_TEST_PG_URL;
  const adminUrl = process.env.LOCI_TEST_PG_ADMIN_URL;
  if (!url || !adminUrl) {
    const why = 'LOCI_TEST_PG_URL and LOCI_TEST_PG_ADMIN_URL are not set (start one with scripts/services start DIR; source DIR/env)';
    if (process.env.LOCI_TEST_REQUIRE_PG === '1') throw new Error(`PostgreSQL required (LOCI_TEST_REQUIRE_PG=1) but ${why}`);
    t.skip(why);
    return null;
  }

  /** Run SQL through psql (admin database unless opts.url); resolves to stdout. */
  async function psql(sql, { url: target = adminUrl } = {}) {
    const r = await run('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', target, '-c', sql]);
    if (r.code !== 0) throw new Error(`psql failed (${r.code}) on ${JSON.stringify(sql)}: ${r.stderr}`);
    return r.stdout;
  }

  /** A fresh, empty database e2e_<random>, dropped at cleanup: { name, url }. */
  async function createDb() {
    const name = `e2e_${randomBytes(6).toString('hex')}`;
    await psql(`CREATE DATABASE ${name}`);
    onCleanup(() => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    const u = new URL(url);
    u.pathname = `/${name}`;
    return { name, url: u.toString() };
  }

  return { url, adminUrl, psql, createDb };
}
