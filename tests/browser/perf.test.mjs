// Figures for the graph screen in headless Chromium (reported as test
// diagnostics): time to the first drawn and laid-out screen of a
// 5,000-node graph (the screen draws the 500-node slice, or the clusters
// when there are clusters), and frames while 200 new nodes stream in.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup } from '../e2e/lib/server.mjs';
import { dbQuery, loginAs, newPassword, uniqueEmail } from '../e2e/lib/users.mjs';
import { assertClean, launch, newPage, signUpInUi, startUiServer } from './lib/browser.mjs';

after(cleanup);

const idOf = (expr) => `printf('01900000-0000-7000-8000-%012d', ${expr})`;

describe('graph figures', () => {
  let server;
  let page;
  let api;
  before(async () => {
    let browser;
    [server, browser] = await Promise.all([startUiServer({ args: ['--rate-api-burst', '100000', '--rate-api-per-min', '100000'] }), launch()]);
    page = await newPage(browser, server);
    const email = uniqueEmail('perf');
    const password = newPassword();
    await signUpInUi(page, email, password);
    api = await loginAs(server, email, password);
    // 5,000 nodes and 10,000 edges, written straight into the database.
    await dbQuery(
      server,
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
       INSERT INTO nodes (id, user_id, term, key, summary, familiarity, is_root, created_at, updated_at)
       SELECT ${idOf('i')}, '${api.id}', 'term ' || i, 'term ' || i, '', (i % 100) / 100.0, 0, i, i FROM n;
       WITH RECURSIVE e(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM e WHERE i < 10000)
       INSERT OR IGNORE INTO edges (user_id, src, dst, type, weight, updated_at)
       SELECT '${api.id}', ${idOf('1 + (i % 5000)')}, ${idOf('1 + ((i * 7919) % 5000)')}, 'related', 1 + (i % 5), i FROM e
       WHERE (i % 5000) <> ((i * 7919) % 5000);`,
    );
  });

  test('a 5,000-node graph: first screen drawn and laid out', async (t) => {
    const t0 = Date.now();
    await page.goto('/graph');
    await page.getByTestId('graph-stats').filter({ hasText: /500 nodes/ }).waitFor({ timeout: 30000 });
    // The layout runs on the main thread: a frame after it means it is done.
    await page.evaluate(() => new Promise((r) => setTimeout(() => requestAnimationFrame(() => r()), 100)));
    const ms = Date.now() - t0;
    t.diagnostic(`5,000-node graph (500-node slice drawn): first screen in ${ms} ms`);
    assert.ok(ms < 5000, `first screen in ${ms} ms (target 2 s; 5 s allowed on a loaded machine)`);
    assertClean(page);
  });

  test('frames while 200 nodes stream in', async (t) => {
    await page.evaluate(() => {
      window.__frames = 0;
      window.__longest = 0;
      let last = performance.now();
      const tick = (now) => {
        window.__frames++;
        window.__longest = Math.max(window.__longest, now - last);
        last = now;
        if (!window.__stop) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const t0 = Date.now();
    for (let i = 0; i < 200; i++) {
      const r = await api.call('POST', '/api/v1/nodes', { body: { term: `streamed ${i}` } });
      assert.equal(r.status, 201);
    }
    await page.getByTestId('graph-stats').filter({ hasText: /700 nodes/ }).waitFor({ timeout: 30000 });
    await page.evaluate(() => new Promise((r) => setTimeout(() => requestAnimationFrame(() => r()), 100)));
    const secs = (Date.now() - t0) / 1000;
    const { frames, longest } = await page.evaluate(() => ({ frames: window.__frames, longest: window.__longest, stop: (window.__stop = true) }));
    t.diagnostic(`200 nodes streamed in over ${secs.toFixed(1)} s: ${frames} frames (${(frames / secs).toFixed(0)} fps), longest frame ${Math.round(longest)} ms`);
    assertClean(page);
  });
});
