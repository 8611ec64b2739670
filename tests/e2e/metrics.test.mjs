// GET /metrics: Prometheus text format, counters that move with traffic,
// and a body that promtool accepts.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { cleanup, run, sleep, startServer } from './lib/server.mjs';

after(cleanup);

let srv;
before(async () => {
  srv = await startServer();
});

async function scrape() {
  const res = await fetch(`${srv.url}/metrics`);
  assert.equal(res.status, 200);
  return { res, text: await res.text() };
}

/** The value of the sample `series` (name{labels} exactly as rendered), or null. */
function sample(text, series) {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1).trim().split(' ')[0]);
  }
  return null;
}

/** Samples whose name starts with `name` (with or without labels). */
function samples(text, name) {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

const HEALTH_OK = 'http_requests_total{method="GET",route="/health",status="200"}';

describe('/metrics', () => {
  test('is text/plain in the Prometheus exposition format', async () => {
    const { res, text } = await scrape();
    assert.match(res.headers.get('content-type'), /^text\/plain/);
    assert.match(res.headers.get('content-type'), /version=0\.0\.4/);
    assert.match(text, /^# HELP /m);
    assert.match(text, /^# TYPE http_requests_total counter$/m);
    assert.match(text, /^# TYPE http_request_duration_seconds histogram$/m);
  });

  test('http_requests_total for GET /health 200 grows by exactly the requests made', async () => {
    const before = sample((await scrape()).text, HEALTH_OK) ?? 0;
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${srv.url}/health`);
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    // The counter is bumped when each request completes, just after the answer.
    let now;
    for (let i = 0; i < 40; i++) {
      now = sample((await scrape()).text, HEALTH_OK);
      if (now === before + 3) break;
      await sleep(50);
    }
    assert.equal(now, before + 3, `${HEALTH_OK} went from ${before} to ${now}`);
    const { text } = await scrape();
    assert.ok(
      samples(text, 'http_request_duration_seconds_bucket').some((l) => l.includes('route="/health"') && l.includes('le="+Inf"')),
      'a latency histogram bucket for /health',
    );
    const count = sample(text, 'http_request_duration_seconds_count{route="/health"}');
    assert.ok(count >= before + 3, `histogram count for /health (${count}) counts the requests`);
  });

  test('unmatched paths do not create one series per path', async () => {
    const r = await fetch(`${srv.url}/api/v1/nope-e2e-7f3a9`);
    assert.equal(r.status, 404);
    await r.arrayBuffer();
    let text;
    for (let i = 0; i < 40; i++) {
      text = (await scrape()).text;
      if (samples(text, 'http_requests_total').some((l) => l.includes('status="404"'))) break;
      await sleep(50);
    }
    assert.ok(samples(text, 'http_requests_total').some((l) => l.includes('status="404"')), 'the 404 is counted');
    assert.ok(!text.includes('nope-e2e-7f3a9'), 'the raw path is not a label value');
  });

  test('exposes in-flight, process, database and build-info metrics', async () => {
    const { text } = await scrape();
    const ver = await (await fetch(`${srv.url}/api/v1/version`)).json();
    assert.ok(samples(text, 'http_requests_in_flight').length === 1, 'http_requests_in_flight');
    assert.ok(sample(text, 'http_requests_in_flight') >= 1, 'the scrape itself is in flight');
    assert.ok(sample(text, 'process_resident_memory_bytes') > 1024 * 1024, 'process_resident_memory_bytes is plausible');
    assert.ok(sample(text, 'process_open_fds') > 2, 'process_open_fds is plausible');
    const start = sample(text, 'process_start_time_seconds');
    const nowS = Date.now() / 1000;
    assert.ok(start > nowS - 120 && start <= nowS + 1, `process_start_time_seconds ${start} is the recent start (now ${nowS})`);
    assert.ok(samples(text, 'db_query_duration_seconds_bucket').length > 0, 'db_query_duration_seconds histogram has buckets');
    assert.ok(samples(text, 'db_query_duration_seconds_count').some((l) => Number(l.split(' ').pop()) > 0), 'database statements were timed');
    const info = samples(text, 'loci_build_info');
    assert.equal(info.length, 1, 'one loci_build_info series');
    assert.ok(info[0].includes(`version="${ver.version}"`), `loci_build_info names version ${ver.version}: ${info[0]}`);
    assert.ok(info[0].includes('backend="sqlite"'), `loci_build_info names the backend: ${info[0]}`);
    assert.equal(Number(info[0].split(' ').pop()), 1);
  });

  test('promtool check metrics accepts the body with no problems', async (t) => {
    const promtool = '/usr/bin/promtool';
    if (!existsSync(promtool)) {
      if (process.env.LOCI_TEST_REQUIRE_TOOLS === '1') assert.fail('promtool is required (LOCI_TEST_REQUIRE_TOOLS=1) but /usr/bin/promtool is missing (apt-get install prometheus)');
      t.skip('promtool not installed');
      return;
    }
    // Traffic first, so that every family has series.
    for (const p of ['/health', '/api/v1/version', '/api/v1/nope', '/health/detailed']) await (await fetch(`${srv.url}${p}`)).arrayBuffer();
    const { text } = await scrape();
    const r = await run(promtool, ['check', 'metrics'], { input: text });
    const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim());
    assert.deepEqual(problems, [], `promtool reported problems:\n${problems.join('\n')}`);
    assert.equal(r.code, 0, 'promtool exit status');
  });
});
