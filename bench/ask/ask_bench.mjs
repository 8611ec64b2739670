// bench/ask/ask_bench.mjs - the ask pipeline's figures, in one run:
//
//  1. added latency of POST /api/v1/ask (mode wait) at CONCURRENCY askers
//     against the stand-in answering every model call after DELAY_MS: an ask
//     makes two model calls (answer, key terms), so the floor is two
//     sequential stand-in calls; the baseline is measured in the same run by
//     CONCURRENCY clients making exactly those two calls straight to the
//     stand-in. Added = ask − baseline at p50 and p95.
//  2. GET /api/v1/nodes/:id throughput with a NODES-node graph (nodes and
//     edges inserted with SQL), wrk with CONNECTIONS connections over random
//     node ids.
//
// Usage: node bench/ask/ask_bench.mjs (bench/ask/run calls it)
// Environment: LOCI_BIN [build/loci], DELAY_MS [50], CONCURRENCY [64],
//   ASKS [10 per asker], NODES [10000], DURATION [10s]
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStandIn } from '../../tests/standin/server.mjs';
import { cleanup, startServer, tempDir } from '../../tests/e2e/lib/server.mjs';
import { call, signupAndLogin } from '../../tests/e2e/lib/users.mjs';

const DELAY_MS = Number(process.env.DELAY_MS ?? 50);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const ASKS = Number(process.env.ASKS ?? 10);
const NODES = Number(process.env.NODES ?? 10000);
const DURATION = process.env.DURATION ?? '10s';

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
};
const fmt = (x) => x.toFixed(1).padStart(7);

async function pool(n, iterations, fn) {
  const lat = [];
  await Promise.all(
    Array.from({ length: n }, async (_, w) => {
      for (let i = 0; i < iterations; i++) {
        const t0 = performance.now();
        await fn(w, i);
        lat.push(performance.now() - t0);
      }
    }),
  );
  return lat;
}

const standin = await startStandIn({ delayMs: DELAY_MS });
const s = await startServer({
  args: ['--ai-providers', 'openai', '--ai-base-url', `${standin.url}/v1`, '--ai-chat-model', 'standin-chat', '--ai-embed-model', '',
    '--ai-cache-ttl-s', '0', '--jobs-workers', String(CONCURRENCY), '--rate-api-burst', '1000000', '--rate-api-per-min', '1000000',
    '--rate-auth-burst', '1000', '--db-pool-size', String(CONCURRENCY + 16)],
});
const user = await signupAndLogin(s);

// the baseline: the two model calls an ask makes, straight to the stand-in
const chat = (content, json) =>
  fetch(`${standin.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'standin-chat', messages: [{ role: 'user', content }], max_tokens: 1024, ...(json ? { response_format: { type: 'json_object' } } : {}) }),
  }).then((r) => r.text());
const baseline = async () => pool(CONCURRENCY, ASKS, async (w, i) => {
  await chat(`baseline ${w} ${i}`, false);
  await chat(`baseline ${w} ${i}`, true);
});
const asks = async (tag) => pool(CONCURRENCY, ASKS, async (w, i) => {
  const r = await call(s, 'POST', '/api/v1/ask', { token: user.accessToken, body: { text: `Question ${tag} ${w}-${i} about enzymes and proteins?` } });
  if (r.status !== 200) throw new Error(`ask: ${r.status} ${r.text}`);
});

await asks('warm');
await baseline();
const rows = [];
for (let round = 0; round < 3; round++) {
  const b = await baseline();
  const a = await asks(`r${round}`);
  rows.push({ b50: pct(b, 0.5), b95: pct(b, 0.95), a50: pct(a, 0.5), a95: pct(a, 0.95), n: a.length });
}
const med = (k) => [...rows.map((r) => r[k])].sort((x, y) => x - y)[1];

console.log(`## Ask (wait mode): ${CONCURRENCY} concurrent askers x ${ASKS}, stand-in ${DELAY_MS} ms per model call, 2 calls per ask`);
console.log('');
console.log('| round | baseline p50 / p95 (ms) | ask p50 / p95 (ms) | added p50 / p95 (ms) |');
console.log('|---|---|---|---|');
rows.forEach((r, i) => console.log(`| ${i + 1} | ${fmt(r.b50)} / ${fmt(r.b95)} | ${fmt(r.a50)} / ${fmt(r.a95)} | ${fmt(r.a50 - r.b50)} / ${fmt(r.a95 - r.b95)} |`));
const added = rows.map((r) => [r.a50 - r.b50, r.a95 - r.b95]);
const m50 = [...added.map((x) => x[0])].sort((x, y) => x - y)[1];
const m95 = [...added.map((x) => x[1])].sort((x, y) => x - y)[1];
console.log(`| **median** | ${fmt(med('b50'))} / ${fmt(med('b95'))} | ${fmt(med('a50'))} / ${fmt(med('a95'))} | **${fmt(m50)} / ${fmt(m95)}** (target p95 <= 5 ms) |`);
console.log('');

// a big graph for GET /api/v1/nodes/:id
const db = join(s.dataDir, 'loci.db');
const sql = [];
sql.push('BEGIN;');
const ids = [];
for (let i = 0; i < NODES; i++) {
  const id = `01900000-0000-7000-8000-${String(i).padStart(12, '0')}`;
  ids.push(id);
  sql.push(`INSERT INTO nodes (id, user_id, term, key, summary, created_at, updated_at) VALUES ('${id}', '${user.id}', 'Term ${i}', 'term ${i}', 'Summary of term ${i}.', ${i}, ${i});`);
}
for (let i = 0; i < NODES * 3; i++) {
  const a = ids[i % NODES];
  const b = ids[(i * 7919 + 13) % NODES];
  if (a === b) continue;
  const [x, y] = a < b ? [a, b] : [b, a];
  sql.push(`INSERT OR IGNORE INTO edges (user_id, src, dst, type, weight, updated_at) VALUES ('${user.id}', '${x}', '${y}', 'related', ${1 + (i % 5)}, 0);`);
}
sql.push('COMMIT;');
const sqlFile = join(tempDir(), 'graph.sql');
writeFileSync(sqlFile, sql.join('\n'));
execFileSync('sqlite3', [db, `.read ${sqlFile}`]);
const probe = await call(s, 'GET', `/api/v1/nodes/${ids[42]}`, { token: user.accessToken });
if (probe.status !== 200) throw new Error(`node: ${probe.status} ${probe.text}`);

const lua = join(tempDir(), 'nodes.lua');
writeFileSync(lua, `
local ids = {${ids.filter((_, i) => i % 10 === 0).map((x) => `"${x}"`).join(',')}}
math.randomseed(42)
request = function()
  return wrk.format("GET", "/api/v1/nodes/" .. ids[math.random(#ids)], {["Authorization"] = "Bearer ${user.accessToken}"})
end
`);
// wrk runs asynchronously: a blocked event loop would stop draining the
// server's log pipe and stall the server itself.
const wrk = await new Promise((res) => {
  const p = spawn('wrk', ['-t2', '-c64', `-d${DURATION}`, '--latency', '-s', lua, s.url]);
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  p.on('close', (status) => res({ status, stdout, stderr }));
});
if (wrk.status !== 0) throw new Error(`wrk: ${wrk.stderr}`);
const rps = /Requests\/sec:\s+([\d.]+)/.exec(wrk.stdout)?.[1];
const p50 = /^\s+50%\s+(\S+)$/m.exec(wrk.stdout)?.[1];
const p99 = /^\s+99%\s+(\S+)$/m.exec(wrk.stdout)?.[1];
const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(wrk.stdout)?.[1] ?? '0';
console.log(`## GET /api/v1/nodes/:id, ${NODES} nodes, ${NODES * 3} edges attempted, wrk -t2 -c64 -d${DURATION}`);
console.log('');
console.log(`${rps} requests/s, p50 ${p50}, p99 ${p99}, non-2xx ${non2xx} (${probe.body.neighbours.length} neighbours on the probe node)`);

await s.stop();
await standin.close();
await cleanup();
