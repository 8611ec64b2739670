// bench/learn/fsrs.mjs - FSRS throughput (reviews scheduled per second):
// ts-fsrs (f.next per review, default parameters) against Loci's C scheduler
// (build/bench_fsrs bench) on the same seeded histories as the parity test.
// Prints one JSON line per side and the ratio. Usage: node bench/learn/fsrs.mjs [N] [ROUNDS]
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeHistories } from '../../tests/e2e/lib/fsrs_histories.mjs';
import { fsrs, createEmptyCard } from '../../tests/node_modules/ts-fsrs/dist/index.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const N = Number(process.argv[2] || 20000);
const ROUNDS = Number(process.argv[3] || 5);
const hs = makeHistories(N, 7);
const total = hs.reduce((n, h) => n + h.reviews.length, 0);

const schedulers = new Map();
for (const h of hs) if (!schedulers.has(h.retention)) schedulers.set(h.retention, fsrs({ request_retention: h.retention }));
let best = Infinity;
let sink = 0;
for (let r = 0; r < ROUNDS; r++) {
  const t0 = process.hrtime.bigint();
  for (const h of hs) {
    const f = schedulers.get(h.retention);
    let card = createEmptyCard(new Date(h.start));
    for (const [at, rating] of h.reviews) card = f.next(card, new Date(at), rating).card;
    sink += card.stability;
  }
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}
const ts = { impl: 'ts-fsrs', reviews: total, seconds: best, reviews_per_s: Math.round(total / best) };
console.log(JSON.stringify(ts));
const input = hs.map((h) => JSON.stringify(h)).join('\n') + '\n';
const c = JSON.parse(execFileSync(resolve(root, 'build/bench_fsrs'), ['bench', String(ROUNDS)], { input, maxBuffer: 1 << 28 }).toString());
console.log(JSON.stringify({ impl: 'loci-c', ...c }));
console.log(`C/ts-fsrs throughput ratio: ${(c.reviews_per_s / ts.reviews_per_s).toFixed(1)}x (${sink > 0 ? 'ok' : ''})`);
