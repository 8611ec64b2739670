// The README is part of the product: every configuration key the binary
// accepts and every route it serves must be documented there, so the docs
// cannot silently fall behind the code.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanup, runLoci } from './lib/server.mjs';

after(cleanup);

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(resolve(REPO, 'README.md'), 'utf8');

test('README documents every configuration key (flag and environment name)', async () => {
  const help = await runLoci(['serve', '--help']);
  assert.equal(help.code, 0);
  const envs = [...help.stdout.matchAll(/\b(LOCI_[A-Z0-9_]+)\b/g)].map((m) => m[1]);
  const flags = [...help.stdout.matchAll(/^\s+(--[a-z0-9-]+)\s/gm)].map((m) => m[1]).filter((f) => f !== '--config');
  assert.ok(envs.length >= 30, `expected many keys, found ${envs.length}`);
  const missingEnv = envs.filter((e) => !readme.includes(e));
  const missingFlags = flags.filter((f) => !readme.includes('`' + f));
  assert.deepEqual(missingEnv, [], 'environment names missing from README');
  assert.deepEqual(missingFlags, [], 'flags missing from README');
});

test('README lists every route of the API', async () => {
  const out = await runLoci(['routes']);
  assert.equal(out.code, 0);
  const routes = JSON.parse(out.stdout);
  const missing = routes.filter((r) => !readme.includes('`' + r.path + '`') && !readme.includes('`' + r.path.replace(/\/(retry|cancel)$/, '') + '/:id/'));
  // The retry/cancel pair is written as one row: `/api/v1/admin/jobs/:id/retry`, `/cancel`.
  const reallyMissing = missing.filter((r) => !(r.path.endsWith('/cancel') && readme.includes('/retry`, `/cancel`')));
  assert.deepEqual(reallyMissing.map((r) => `${r.method} ${r.path}`), []);
});
