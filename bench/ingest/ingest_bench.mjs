// bench/ingest/ingest_bench.mjs - how long a real multi-hundred-page PDF
// takes from upload to `done` through the API, against `pdftotext` alone on
// the same file.
//
// Ingest = POST /api/v1/documents (the upload) until GET
// /api/v1/documents/:id says done (polled every 2 ms): parsing in the
// sandbox (pdfinfo + pdftotext), sentence-aware chunking, full-text rows,
// embeddings (local provider), summary and key terms, the graph. The
// baseline is `pdftotext -layout -enc UTF-8 FILE -` with its output read
// through a pipe, as the parse child does. Each is run ROUNDS times,
// interleaved; the report gives medians (and min-max) and the ratio of the
// medians (target: ingest <= 2x pdftotext). The document is deleted between
// rounds so every upload is new.
//
// Usage: node bench/ingest/ingest_bench.mjs PDF (bench/ingest/run calls it)
// Environment: LOCI_BIN [build/loci], ROUNDS [7], LOCI_BENCH_PG_URL (also on
//   PostgreSQL when set)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { cleanup, startServer } from '../../tests/e2e/lib/server.mjs';
import { signupAndLogin } from '../../tests/e2e/lib/users.mjs';

const PDF = process.argv[2];
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const bytes = readFileSync(PDF);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f = (x) => x.toFixed(0).padStart(5);

function pdftotext() {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const p = spawn('pdftotext', ['-layout', '-enc', 'UTF-8', PDF, '-'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let n = 0;
    p.stdout.on('data', (d) => (n += d.length));
    p.on('error', rej);
    p.on('close', (code) => (code === 0 ? res({ ms: performance.now() - t0, bytes: n }) : rej(new Error(`pdftotext exit ${code}`))));
  });
}

async function ingestOnce(s, user) {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type: 'application/pdf' }), basename(PDF));
  const t0 = performance.now();
  const r = await fetch(`${s.url}/api/v1/documents`, { method: 'POST', headers: user.auth(), body: form });
  const up = await r.json();
  if (r.status !== 202) throw new Error(`upload: ${r.status} ${JSON.stringify(up)}`);
  const tUp = performance.now() - t0;
  for (;;) {
    const g = await fetch(`${s.url}/api/v1/documents/${up.id}`, { headers: user.auth() });
    const d = await g.json();
    if (d.status === 'done' || d.status === 'failed') {
      const ms = performance.now() - t0;
      if (d.status !== 'done') throw new Error(`document failed: ${d.error_code} ${d.error}`);
      await fetch(`${s.url}/api/v1/documents/${up.id}`, { method: 'DELETE', headers: user.auth() });
      return { ms, upload: tUp, doc: d };
    }
    await new Promise((res) => setTimeout(res, 2));
  }
}

async function backend(name, dbUrl) {
  const s = await startServer({ dbUrl, args: ['--rate-api-burst', '100000', '--rate-api-per-min', '100000', '--rate-auth-burst', '1000'] });
  const user = await signupAndLogin(s);
  await ingestOnce(s, user); // warm-up: page cache, magic database, first connections
  await pdftotext();
  const ing = [];
  const base = [];
  let last;
  for (let i = 0; i < ROUNDS; i++) {
    base.push((await pdftotext()).ms);
    last = await ingestOnce(s, user);
    ing.push(last);
  }
  await s.stop();
  const mi = median(ing.map((x) => x.ms));
  const mb = median(base);
  const d = last.doc;
  console.log(`## ${name}\n`);
  console.log('| | median ms | min–max ms |');
  console.log('|---|---:|---:|');
  console.log(`| pdftotext alone | ${f(mb)} | ${f(Math.min(...base))}–${f(Math.max(...base))} |`);
  console.log(`| ingest through the API (upload → done) | ${f(mi)} | ${f(Math.min(...ing.map((x) => x.ms)))}–${f(Math.max(...ing.map((x) => x.ms)))} |`);
  console.log(`|  of which the upload (202) | ${f(median(ing.map((x) => x.upload)))} | |`);
  console.log(`|  of which parse_ms (sandbox: pdfinfo + pdftotext), server's own | ${f(median(ing.map((x) => x.doc.timings.parse_ms)))} | |`);
  console.log(`|  of which index_ms (chunks, full text, embeddings, summary, terms, graph) | ${f(median(ing.map((x) => x.doc.timings.index_ms)))} | |`);
  console.log(`\n**ratio ingest / pdftotext: ${(mi / mb).toFixed(2)}×** (target ≤ 2×); ${d.pages} pages, ${d.chunk_count} chunks, ${ROUNDS} rounds\n`);
}

const pdfText = await pdftotext();
console.log(`${basename(PDF)}: ${bytes.length} bytes, ${pdfText.bytes} bytes of text\n`);
try {
  await backend('SQLite', undefined);
  if (process.env.LOCI_BENCH_PG_URL) {
    const { pg } = await import('../../tests/e2e/lib/pg.mjs');
    const p = pg({ skip() {} });
    if (p) await backend('PostgreSQL', (await p.createDb()).url);
  }
} finally {
  await cleanup();
}
