// fsrs_histories.mjs - seeded random review histories for the FSRS parity
// test and bench/learn: each history is a new card reviewed 1..40 times with
// random ratings 1-4 at random times (seconds to months apart, sometimes on
// time, sometimes the same minute), at a random desired retention.
import { fsrs, createEmptyCard, State } from 'ts-fsrs';

// mulberry32: a small, fast, seeded generator (uniform in [0, 1)).
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MIN = 60_000;
const DAY = 86_400_000;

// Histories are generated against ts-fsrs itself so that "review when due"
// gaps follow the schedule; the times are then fixed data both sides replay.
export function makeHistories(n, seed = 20261122) {
  const rand = rng(seed);
  const out = [];
  const schedulers = new Map();
  for (let i = 0; i < n; i++) {
    const retention = rand() < 0.5 ? 0.9 : Math.round((0.7 + rand() * 0.29) * 1000) / 1000;
    let f = schedulers.get(retention);
    if (!f) {
      f = fsrs({ request_retention: retention });
      schedulers.set(retention, f);
    }
    // 2000-01-01 .. 2040-01-01 at any millisecond
    const start = 946_684_800_000 + Math.floor(rand() * 40 * 365.25 * DAY);
    let card = createEmptyCard(new Date(start));
    let now = start;
    const reviews = [];
    const len = 1 + Math.floor(rand() * 40);
    for (let k = 0; k < len; k++) {
      const u = rand();
      let gap;
      if (k === 0) gap = Math.floor(rand() * 10 * MIN);
      else if (u < 0.35) gap = Math.max(0, card.due.getTime() - now + Math.floor((rand() - 0.3) * 2 * MIN));
      else if (u < 0.45) gap = Math.floor(rand() * MIN); // the same minute
      else gap = Math.floor(Math.exp(Math.log(30_000) + rand() * Math.log((240 * DAY) / 30_000)));
      now += gap;
      const rating = 1 + Math.floor(rand() * 4);
      reviews.push([now, rating]);
      card = f.next(card, new Date(now), rating).card;
    }
    out.push({ start, retention, reviews });
  }
  return out;
}

// Replays one history through ts-fsrs; returns the same rows as
// `bench_fsrs replay`.
export function replayTs(h, schedulers = new Map()) {
  let f = schedulers.get(h.retention);
  if (!f) {
    f = fsrs({ request_retention: h.retention });
    schedulers.set(h.retention, f);
  }
  let card = createEmptyCard(new Date(h.start));
  const rows = [];
  h.reviews.forEach(([at, rating], i) => {
    card = f.next(card, new Date(at), rating).card;
    const nextAt = i + 1 < h.reviews.length ? h.reviews[i + 1][0] : null;
    const r = nextAt === null ? 0 : f.get_retrievability(card, new Date(nextAt), false);
    rows.push([
      card.state, card.stability, card.difficulty, card.due.getTime(), card.last_review.getTime(),
      card.elapsed_days, card.scheduled_days, card.learning_steps, card.reps, card.lapses, r,
    ]);
  });
  return rows;
}

export { State };
