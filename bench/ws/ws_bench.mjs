// bench/ws/ws_bench.mjs - WebSocket figures in one run against a real
// `loci serve` (SQLite):
//
//  1. memory: CONNECTIONS idle, authenticated sockets (FANOUT of them for
//     one user, the rest spread over USERS other users); the server's VmRSS
//     from /proc before and after, after two ping rounds, so every socket
//     has also answered pings. Per connection = (after - before) / N.
//  2. broadcast latency, one user: ROUNDS times, one PATCH /api/v1/me for
//     the fan-out user; each of its FANOUT sockets records when the event
//     arrives. Latency = arrival - the moment the PATCH was sent, so it
//     includes the request and its commit (the PATCH's own round trip is
//     shown next to it).
//  3. broadcast latency, many users: every other user PATCHes at once; each
//     of their sockets records its arrival.
// The clients run in WORKERS worker threads (one event loop cannot read
// thousands of sockets without adding its own queueing to the tail); times
// come from one monotonic clock (process.hrtime) shared by the threads.
//
// Usage: node bench/ws/ws_bench.mjs (bench/ws/run raises the fd limit and
// calls it). Environment: LOCI_BIN [build/loci], CONNECTIONS [10000],
// FANOUT [1000], USERS [90], ROUNDS [50], WORKERS [4], HANDSHAKES [100 per
// worker at once]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

// npm ws lives with the tests' packages
const WebSocket = createRequire(new URL('../../tests/package.json', import.meta.url))('ws');

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

if (!isMainThread) {
  // ---- a client thread: open sockets, record arrivals ----
  const { url, tokens, groups, handshakes } = workerData;
  const arrivals = tokens.map(() => []); // per socket: arrival times of user.updated
  const sockets = [];
  let failed = 0;
  const openOne = (i) =>
    new Promise((res) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token: tokens[i] })));
      ws.on('message', (data) => {
        const s = data.toString();
        if (s.startsWith('{"type":"ready"')) return res(ws);
        if (s.startsWith('{"type":"user.updated"')) arrivals[i].push(nowMs());
        return undefined;
      });
      ws.on('error', () => {
        failed++;
        res(null);
      });
      ws.on('close', () => res(null));
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: handshakes }, async () => {
      while (next < tokens.length) {
        const i = next++;
        sockets[i] = await openOne(i);
      }
    }),
  );
  parentPort.postMessage({ kind: 'ready', open: sockets.filter(Boolean).length, failed });
  parentPort.on('message', (m) => {
    if (m.cmd === 'collect') {
      parentPort.postMessage({ kind: 'arrivals', groups, arrivals });
      for (const a of arrivals) a.length = 0;
    } else if (m.cmd === 'close') {
      for (const ws of sockets) ws?.terminate();
      parentPort.postMessage({ kind: 'closed' });
    }
  });
} else {
  const { cleanup, startServer } = await import('../../tests/e2e/lib/server.mjs');
  const { call, signupAndLogin } = await import('../../tests/e2e/lib/users.mjs');

  const N = Number(process.env.CONNECTIONS ?? 10000);
  const FANOUT = Number(process.env.FANOUT ?? 1000);
  const USERS = Number(process.env.USERS ?? 90);
  const ROUNDS = Number(process.env.ROUNDS ?? 50);
  const WORKERS = Number(process.env.WORKERS ?? 4);
  const HANDSHAKES = Number(process.env.HANDSHAKES ?? 100);
  const PING_MS = 3000;

  const pct = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(s.length * p))];
  };
  const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  const fds = (pid) => Number(/FDSize:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const progress = (what) => process.env.VERBOSE && console.error(`[ws_bench] ${what}`);

  const s = await startServer({
    args: ['--rate-api-burst', '1000000', '--rate-api-per-min', '1000000', '--rate-auth-burst', '100000',
      '--rate-auth-per-min', '100000', '--login-free-failures', '100', '--ws-max-connections', String(N + 100),
      '--ws-ping-interval-ms', String(PING_MS)],
  });
  const pid = s.proc.pid;
  const wsUrl = `${s.url.replace(/^http/, 'ws')}/ws`;

  // accounts: one fan-out user, USERS others (signed up in parallel)
  const accounts = [];
  for (let i = 0; i <= USERS; i += 10) {
    accounts.push(...(await Promise.all(Array.from({ length: Math.min(10, USERS + 1 - i) }, () => signupAndLogin(s)))));
  }
  progress(`${accounts.length} accounts`);
  const fan = accounts[0];
  const others = accounts.slice(1);

  // warm up every path once (HTTP, upgrade, auth, an event, close)
  {
    const ws = new WebSocket(wsUrl);
    await new Promise((r) => ws.on('open', r));
    ws.send(JSON.stringify({ type: 'auth', token: fan.accessToken }));
    await new Promise((r) => ws.once('message', r));
    await call(s, 'PATCH', '/api/v1/me', { token: fan.accessToken, body: { display_name: 'warm' } });
    await new Promise((r) => ws.once('message', r));
    ws.terminate();
  }
  progress('warmed up');
  await sleep(1000);
  const rss0 = rssKiB(pid);

  // socket i belongs to: fan-out user for i < FANOUT, else others[(i - FANOUT) % USERS]
  const owner = (i) => (i < FANOUT ? -1 : (i - FANOUT) % others.length);
  const perWorker = Array.from({ length: WORKERS }, () => ({ tokens: [], groups: [] }));
  for (let i = 0; i < N; i++) {
    const w = perWorker[i % WORKERS];
    const o = owner(i);
    w.tokens.push(o < 0 ? fan.accessToken : others[o].accessToken);
    w.groups.push(o);
  }
  const t0 = performance.now();
  const workers = perWorker.map((w) => new Worker(new URL(import.meta.url), { workerData: { url: wsUrl, tokens: w.tokens, groups: w.groups, handshakes: HANDSHAKES } }));
  const inbox = workers.map((w) => {
    const q = [];
    const waiting = [];
    w.on('message', (m) => (waiting.length ? waiting.shift()(m) : q.push(m)));
    w.on('error', (e) => {
      console.error('worker failed:', e);
      process.exit(1);
    });
    return () => (q.length ? Promise.resolve(q.shift()) : new Promise((r) => waiting.push(r)));
  });
  const readies = await Promise.all(inbox.map((next) => next()));
  const open = readies.reduce((a, r) => a + r.open, 0);
  const failed = readies.reduce((a, r) => a + r.failed, 0);
  const openSecs = (performance.now() - t0) / 1000;
  progress(`${open} open, ${failed} failed`);
  await sleep(2 * PING_MS + 1000); // two ping rounds answered
  const rss1 = rssKiB(pid);
  const metrics = (await call(s, 'GET', '/metrics')).text;
  const gauge = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);

  const collect = async () => {
    workers.forEach((w) => w.postMessage({ cmd: 'collect' }));
    return Promise.all(inbox.map((next) => next()));
  };

  // 2. one user, FANOUT sockets
  const fanLat = [];
  const fanAfter = []; /* from the PATCH's answer (its commit is done) */
  const patchLat = [];
  for (let r = 0; r < ROUNDS; r++) {
    const sent = nowMs();
    const res = await call(s, 'PATCH', '/api/v1/me', { token: fan.accessToken, body: { display_name: `round ${r}` } });
    const answered = nowMs();
    patchLat.push(answered - sent);
    if (res.status !== 200) throw new Error(`PATCH: ${res.status}`);
    await sleep(100); // every socket has it by now (checked below)
    const got = await collect();
    let n = 0;
    for (const g of got) {
      g.arrivals.forEach((a, i) => {
        if (g.groups[i] !== -1) return;
        if (a.length !== 1) throw new Error(`round ${r}: a fan-out socket got ${a.length} events`);
        fanLat.push(a[0] - sent);
        fanAfter.push(a[0] - answered);
        n++;
      });
    }
    if (n !== Math.min(FANOUT, N)) throw new Error(`round ${r}: ${n} of ${FANOUT} sockets got the event`);
  }

  // 3. every other user at once
  const spreadLat = [];
  const spreadAfter = [];
  const spreadRounds = Math.max(1, Math.floor(ROUNDS / 10));
  for (let r = 0; r < spreadRounds; r++) {
    const sentAt = new Array(others.length);
    const answeredAt = new Array(others.length);
    await Promise.all(
      others.map(async (u, k) => {
        sentAt[k] = nowMs();
        const res = await call(s, 'PATCH', '/api/v1/me', { token: u.accessToken, body: { display_name: `spread ${r}` } });
        answeredAt[k] = nowMs();
        if (res.status !== 200) throw new Error(`PATCH: ${res.status}`);
      }),
    );
    await sleep(300);
    for (const g of await collect()) {
      g.arrivals.forEach((a, i) => {
        const o = g.groups[i];
        if (o < 0) return;
        if (a.length !== 1) throw new Error(`spread round ${r}: a socket got ${a.length} events`);
        spreadLat.push(a[0] - sentAt[o]);
        spreadAfter.push(a[0] - answeredAt[o]);
      });
    }
  }
  const rss2 = rssKiB(pid);

  workers.forEach((w) => w.postMessage({ cmd: 'close' }));
  await Promise.all(inbox.map((next) => next()));
  await Promise.all(workers.map((w) => w.terminate()));

  const f = (x) => x.toFixed(2);
  const perConn = ((rss1 - rss0) * 1024) / open;
  console.log('## WebSocket: memory per idle connection, broadcast latency');
  console.log();
  console.log(`server on SQLite; ${WORKERS} client threads in one node process on the same machine (${(await import('node:os')).cpus().length} cores)`);
  console.log();
  console.log('| figure | value |');
  console.log('|---|---|');
  console.log(`| sockets open and authenticated | ${open} of ${N} (${failed} failed), in ${openSecs.toFixed(1)} s (${Math.round(open / openSecs)}/s) |`);
  console.log(`| loci_ws_connections (server) | ${gauge('loci_ws_connections')} |`);
  console.log(`| server VmRSS before / with ${open} idle sockets | ${(rss0 / 1024).toFixed(1)} MiB / ${(rss1 / 1024).toFixed(1)} MiB |`);
  console.log(`| **memory per idle connection** | **${Math.round(perConn)} bytes** (${(perConn / 1024).toFixed(2)} KiB; target ≤ 8 KiB) |`);
  console.log(`| server fd table size | ${fds(pid)} |`);
  console.log(`| server VmRSS after the broadcasts | ${(rss2 / 1024).toFixed(1)} MiB |`);
  console.log(`| one user, ${FANOUT} sockets, ${ROUNDS} events: PATCH sent → event received, p50 / p99 / max | ${f(pct(fanLat, 0.5))} / ${f(pct(fanLat, 0.99))} / ${f(Math.max(...fanLat))} ms (${fanLat.length} arrivals) |`);
  console.log(`| … PATCH answered → event received, p50 / p99 | ${f(pct(fanAfter, 0.5))} / ${f(pct(fanAfter, 0.99))} ms (negative: the event came first) |`);
  console.log(`| … the PATCH's own round trip, p50 / p99 | ${f(pct(patchLat, 0.5))} / ${f(pct(patchLat, 0.99))} ms |`);
  console.log(`| ${others.length} users PATCH at once, ${N - FANOUT} sockets: sent → received, p50 / p99 / max | ${f(pct(spreadLat, 0.5))} / ${f(pct(spreadLat, 0.99))} / ${f(Math.max(...spreadLat))} ms (${spreadLat.length} arrivals, ${spreadRounds} rounds) |`);
  console.log(`| … each PATCH answered → its event received, p50 / p99 | ${f(pct(spreadAfter, 0.5))} / ${f(pct(spreadAfter, 0.99))} ms (the sent → received time is mostly the 90 writes queueing for SQLite) |`);
  await cleanup();
}
