// Documents over HTTP, as a learner uses them: upload a PDF (made here, three
// pages), watch it go from queued to done with pages, chunks, a summary and
// a root node in the graph, find a passage by the page it is on, download
// the very same bytes, delete it and leave no chunk, vector, full-text row
// or blob behind. Hostile and bad files each end in a clear status while the
// server keeps answering: a truncated PDF, an encrypted PDF (qpdf), a ZIP
// named .pdf, an empty file, an over-size file, a `../` name, a parser that
// burns CPU until the timeout kills it (LOCI_TEST_PARSE_BURN=1). Another
// user gets 404 everywhere. `loci import` of a folder of notes, twice.
// Runs on SQLite, and on PostgreSQL when one is configured.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UUID_RE } from './lib/checks.mjs';
import { pg } from './lib/pg.mjs';
import { cleanup, runLoci, sleep, startServer, tempDir } from './lib/server.mjs';
import { AUTH_TEST_ARGS, call, dbFlags, dbQuery, expectNotFoundForOtherUser, expectStatus, signupAndLogin } from './lib/users.mjs';
import { makePdf, PAGE_TEXT, settle, upload } from './lib/docs.mjs';

after(cleanup);

const ARGS = [...AUTH_TEST_ARGS, '--rate-api-burst', '100000', '--rate-api-per-min', '100000', '--docs-max-bytes', '1000000'];

/** Files in the server's blob store (not its temporary files). */
function blobFiles(s) {
  const root = join(s.dataDir, 'blobs');
  const out = [];
  if (!existsSync(root)) return out;
  for (const d of readdirSync(root)) {
    if (d === 'tmp') continue;
    for (const f of readdirSync(join(root, d))) out.push(join(root, d, f));
  }
  return out;
}

async function count(s, sql) {
  return Number((await dbQuery(s, sql))[0]);
}

function hasQpdf() {
  try {
    execFileSync('qpdf', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function health(s) {
  const t0 = Date.now();
  const r = await fetch(`${s.url}/health`);
  await r.arrayBuffer();
  return { status: r.status, ms: Date.now() - t0 };
}

for (const backend of ['sqlite', 'postgres']) {
  describe(`documents (${backend})`, () => {
    let s;
    let alice;
    let bob;
    let pgServer;
    before(async (t) => {
      let dbUrl;
      if (backend === 'postgres') {
        pgServer = pg(t);
        if (!pgServer) return;
        dbUrl = (await pgServer.createDb()).url;
      }
      s = await startServer({ args: ARGS, dbUrl });
      alice = await signupAndLogin(s);
      bob = await signupAndLogin(s);
    });
    after(() => s?.stop());

    test('a PDF: uploaded, processed, found by page, downloaded byte for byte, deleted without a trace', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const pdf = makePdf(PAGE_TEXT);
      const r = expectStatus(await upload(s, alice, pdf, 'cells.pdf', 'application/pdf'), 202, null, 'upload');
      const { id } = r.body;
      assert.match(id, UUID_RE);
      assert.match(r.body.job_id, UUID_RE);
      assert.ok(['queued', 'parsing', 'indexing', 'done'].includes(r.body.status), r.body.status);
      assert.equal(r.headers.get('location'), `/api/v1/documents/${id}`);
      assert.equal(r.body.filename, 'cells.pdf');
      assert.equal(r.body.media_type, 'application/pdf');
      assert.equal(r.body.size_bytes, pdf.length);

      const doc = await settle(s, alice, id);
      assert.equal(doc.status, 'done', JSON.stringify(doc));
      assert.equal(doc.pages, 3);
      assert.ok(doc.chunk_count >= 1);
      assert.equal(doc.title, 'Cell Biology Notes');
      assert.equal(doc.progress, 1);
      assert.equal(doc.error_code, null);
      assert.ok(doc.summary && doc.summary.length > 20, `summary: ${doc.summary}`);
      assert.match(doc.root_node_id, UUID_RE);
      assert.equal(typeof doc.timings.parse_ms, 'number');
      assert.equal(typeof doc.timings.index_ms, 'number');
      const root = expectStatus(await alice.call('GET', `/api/v1/nodes/${doc.root_node_id}`), 200).body;
      assert.equal(root.term, 'Cell Biology Notes');
      assert.equal(root.is_root, true);

      // the ledger and its events
      const list = expectStatus(await alice.call('GET', '/api/v1/documents?status=done'), 200).body;
      assert.deepEqual(list.items.map((d) => d.id), [id]);
      const types = await dbQuery(s, `SELECT type FROM events WHERE user_id = '${alice.id}' AND type LIKE 'document.%' ORDER BY "offset"`);
      assert.deepEqual(types, ['document.created', 'document.indexed']);
      assert.ok((await count(s, `SELECT COUNT(*) FROM events WHERE user_id = '${alice.id}' AND type = 'job.progress'`)) >= 3);
      const chunks = await count(s, `SELECT COUNT(*) FROM chunks WHERE document_id = '${id}'`);
      assert.equal(chunks, doc.chunk_count);
      assert.equal(await count(s, `SELECT COUNT(*) FROM chunk_vectors WHERE document_id = '${id}'`), chunks);

      // searchable, by the page the words are on
      const hits = expectStatus(await alice.call('GET', `/api/v1/search?q=ribosomes%20proteins&mode=fts`), 200).body.results;
      assert.ok(hits.length >= 1);
      assert.equal(hits[0].document_id, id);
      assert.ok([1, 2, 3].includes(hits[0].page));
      const pages = await dbQuery(s, `SELECT page FROM chunks WHERE document_id = '${id}' ORDER BY ord`);
      assert.equal(Number(pages[0]), 1);

      // the very same bytes, as an attachment
      const res = await fetch(`${s.url}/api/v1/documents/${id}/file`, { headers: alice.auth() });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/pdf');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.match(res.headers.get('content-disposition'), /^attachment; filename="cells\.pdf"/);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(pdf), 'downloaded bytes equal the upload');

      // the same bytes again: the existing document
      const dup = expectStatus(await upload(s, alice, pdf, 'again.pdf'), 409, 'duplicate', 'duplicate');
      assert.equal(dup.body.error.existing_id, id);

      // reprocess; cancel only while processing
      expectStatus(await alice.call('POST', `/api/v1/documents/${id}/cancel`), 409, 'not_processing');
      const again = expectStatus(await alice.call('POST', `/api/v1/documents/${id}/reprocess`), 202).body;
      assert.notEqual(again.job_id, doc.job_id);
      assert.equal((await settle(s, alice, id)).status, 'done');

      // delete: nothing left
      assert.equal(blobFiles(s).length, 1);
      expectStatus(await alice.call('DELETE', `/api/v1/documents/${id}`), 204);
      expectStatus(await alice.call('GET', `/api/v1/documents/${id}`), 404, 'not_found');
      expectStatus(await alice.call('GET', `/api/v1/documents/${id}/file`), 404, 'not_found');
      for (const table of ['chunks', 'chunk_vectors', 'documents']) {
        const col = table === 'documents' ? 'id' : 'document_id';
        assert.equal(await count(s, `SELECT COUNT(*) FROM ${table} WHERE ${col} = '${id}'`), 0, `${table} rows left`);
      }
      if (backend === 'sqlite') assert.equal(await count(s, `SELECT COUNT(*) FROM chunks_fts WHERE document_id = '${id}'`), 0, 'chunks_fts rows left');
      assert.deepEqual(blobFiles(s), [], 'the blob is gone');
      assert.equal(expectStatus(await alice.call('GET', `/api/v1/search?q=ribosomes&mode=fts`), 200).body.results.length, 0);
      const last = await dbQuery(s, `SELECT type FROM events WHERE user_id = '${alice.id}' AND type LIKE 'document.%' ORDER BY "offset" DESC LIMIT 1`);
      assert.deepEqual(last, ['document.deleted']);
    });

    test('another user gets 404 on every document route, and never sees it in search', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const text = 'Photosynthesis turns light into chemical energy in chloroplasts.\n';
      const { id } = expectStatus(await upload(s, alice, Buffer.from(text), 'light.txt'), 202).body;
      await settle(s, alice, id);
      const opts = { owner: alice, other: bob };
      await expectNotFoundForOtherUser(s, 'GET', `/api/v1/documents/${id}`, opts);
      await expectNotFoundForOtherUser(s, 'GET', `/api/v1/documents/${id}/file`, opts);
      await expectNotFoundForOtherUser(s, 'POST', `/api/v1/documents/${id}/cancel`, { ...opts, ownerStatus: 409 });
      await expectNotFoundForOtherUser(s, 'POST', `/api/v1/documents/${id}/reprocess`, opts);
      await settle(s, alice, id);
      await expectNotFoundForOtherUser(s, 'GET', `/api/v1/search?q=photosynthesis&document_id=${id}`, { ...opts, ownerStatus: undefined });
      assert.equal(expectStatus(await bob.call('GET', '/api/v1/search?q=photosynthesis'), 200).body.results.length, 0);
      assert.equal(expectStatus(await bob.call('GET', '/api/v1/documents'), 200).body.items.length, 0);
      await expectNotFoundForOtherUser(s, 'DELETE', `/api/v1/documents/${id}`, { ...opts, ownerStatus: 204 });
      for (const bad of ['not-a-uuid', '123']) expectStatus(await alice.call('GET', `/api/v1/documents/${bad}`), 404, 'not_found');
      expectStatus(await call(s, 'GET', '/api/v1/documents'), 401, 'unauthorized');
      expectStatus(await upload(s, null, Buffer.from('hello'), 'a.txt'), 401, 'unauthorized');
    });

    test('Markdown and HTML keep their headings; the title comes from the file', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const md = '---\ntitle: Genetics Primer\ntags: [bio]\n---\n# Genes\nGenes are stretches of DNA.\n\n## Alleles\nAlleles are versions of a gene. See [[Mendel]].\n';
      const a = expectStatus(await upload(s, alice, Buffer.from(md), 'genetics.md', 'text/markdown'), 202).body;
      const html = '<html><head><title>Enzymes</title><script>alert(1)</script></head><body><h1>Catalysts</h1><p>Enzymes speed up reactions &amp; lower activation energy.</p></body></html>';
      const b = expectStatus(await upload(s, alice, Buffer.from(html), 'enzymes.html', 'text/html'), 202).body;
      assert.equal(a.media_type, 'text/markdown');
      assert.equal(b.media_type, 'text/html');
      const da = await settle(s, alice, a.id);
      const db = await settle(s, alice, b.id);
      assert.equal(da.status, 'done');
      assert.equal(da.title, 'Genetics Primer');
      assert.equal(db.title, 'Enzymes');
      assert.equal(da.pages, null);
      const headings = await dbQuery(s, `SELECT heading FROM chunks WHERE document_id = '${a.id}' ORDER BY ord`);
      assert.equal(headings[0], 'Genes');
      const text = (await dbQuery(s, `SELECT text FROM chunks WHERE document_id = '${b.id}'`)).join('\n');
      assert.match(text, /Enzymes speed up reactions & lower activation energy\./);
      assert.doesNotMatch(text, /alert/);
      for (const d of [a, b]) expectStatus(await alice.call('DELETE', `/api/v1/documents/${d.id}`), 204);
    });

    test('hostile and bad files each end in a clear status; the server keeps serving', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const pdf = makePdf(['Truncated documents say little.', 'Nothing here.']);
      const trunc = expectStatus(await upload(s, alice, pdf.subarray(0, Math.floor(pdf.length / 2)), 'half.pdf'), 202).body;
      assert.equal((await health(s)).status, 200);
      const dt = await settle(s, alice, trunc.id);
      assert.equal(dt.status, 'failed');
      assert.equal(dt.error_code, 'parse_failed');
      assert.ok(dt.error.length > 0);
      assert.equal(dt.chunk_count, 0);
      assert.equal(await count(s, `SELECT COUNT(*) FROM events WHERE user_id = '${alice.id}' AND type = 'document.failed' AND CAST(data AS TEXT) LIKE '%${trunc.id}%'`), 1);

      if (hasQpdf()) {
        const dir = tempDir();
        writeFileSync(join(dir, 'plain.pdf'), makePdf(['Secret words.']));
        execFileSync('qpdf', ['--encrypt', 'user-pw', 'owner-pw', '256', '--', join(dir, 'plain.pdf'), join(dir, 'locked.pdf')]);
        const enc = expectStatus(await upload(s, alice, readFileSync(join(dir, 'locked.pdf')), 'locked.pdf'), 202).body;
        const de = await settle(s, alice, enc.id);
        assert.equal(de.status, 'failed');
        assert.equal(de.error_code, 'encrypted_pdf');
      } else {
        t.diagnostic('qpdf not installed: the encrypted PDF is not tried (scripts/install-deps installs it)');
      }

      const zip = Buffer.concat([Buffer.from('PK\x03\x04\x14\x00\x00\x00\x08\x00', 'latin1'), Buffer.alloc(200, 7)]);
      expectStatus(await upload(s, alice, zip, 'paper.pdf', 'application/pdf'), 415, 'type_mismatch', 'zip named .pdf');
      expectStatus(await upload(s, alice, zip, 'archive.zip', 'application/zip'), 415, 'unsupported_type', 'zip');
      const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
      expectStatus(await upload(s, alice, png, 'photo.png', 'image/png'), 415, 'unsupported_type', 'png');
      expectStatus(await upload(s, alice, Buffer.alloc(0), 'empty.txt'), 422, 'empty_file', 'empty');
      const big = Buffer.alloc(1200000, 'a');
      expectStatus(await upload(s, alice, big, 'big.txt'), 413, 'payload_too_large', 'over docs_max_bytes');
      expectStatus(await call(s, 'POST', '/api/v1/documents', { token: alice.accessToken, body: { file: 'x' } }), 415, 'unsupported_media_type', 'JSON');
      const evil = expectStatus(await upload(s, alice, Buffer.from('Escaping the folder is not possible.\n'), '../../etc/passwd.md'), 202).body;
      assert.equal(evil.filename, 'passwd.md');
      assert.equal((await settle(s, alice, evil.id)).status, 'done');
      const res = await fetch(`${s.url}/api/v1/documents/${evil.id}/file`, { headers: alice.auth() });
      assert.match(res.headers.get('content-disposition'), /filename="passwd\.md"/);
      assert.match(res.headers.get('content-type'), /^text\/markdown/);
      await res.arrayBuffer();
      for (const f of blobFiles(s)) assert.match(f, /\/blobs\/[0-9a-f]{2}\/[0-9a-f]{62}$/);
      assert.equal(existsSync(join(s.dataDir, 'etc')), false);
      // refused uploads leave no rows and no temporary files
      assert.equal(await count(s, `SELECT COUNT(*) FROM documents WHERE user_id = '${alice.id}' AND filename IN ('paper.pdf', 'archive.zip', 'photo.png', 'empty.txt', 'big.txt')`), 0);
      assert.deepEqual(readdirSync(join(s.dataDir, 'blobs', 'tmp')), []);
      assert.equal((await health(s)).status, 200);
    });

    test('a parser that burns CPU is killed at parse_timeout_ms while the server keeps answering; cancel stops one', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      // its own database: the other server's workers must not take its jobs
      const dbUrl = pgServer ? (await pgServer.createDb()).url : undefined;
      const b = await startServer({ args: [...ARGS, '--parse-timeout-ms', '1500', '--docs-quota-bytes', '5000'], dbUrl, env: { LOCI_TEST_PARSE_BURN: '1' } });
      try {
        const carol = await signupAndLogin(b);
        const t0 = Date.now();
        const d = expectStatus(await upload(b, carol, Buffer.from('# Loop\nThis would never end.\n'), 'loop.md'), 202).body;
        await settle(b, carol, d.id, { want: 'parsing', ms: 5000 });
        for (let i = 0; i < 5; i++) {
          const h = await health(b);
          assert.equal(h.status, 200);
          assert.ok(h.ms < 500, `/health took ${h.ms} ms while a parse burns`);
          await sleep(100);
        }
        const done = await settle(b, carol, d.id);
        const took = Date.now() - t0;
        assert.equal(done.status, 'failed');
        assert.equal(done.error_code, 'parse_timeout');
        assert.ok(took >= 1400 && took < 15000, `failed after ${took} ms`);

        // cancel one while its child burns
        const c = expectStatus(await upload(b, carol, Buffer.from('# Again\nStill endless.\n'), 'again.md'), 202).body;
        await settle(b, carol, c.id, { want: 'parsing', ms: 5000 });
        const cancelled = expectStatus(await carol.call('POST', `/api/v1/documents/${c.id}/cancel`), 202).body;
        assert.equal(cancelled.status, 'cancelled');
        assert.equal(cancelled.error_code, 'cancelled');
        await sleep(2000); /* past the timeout: nothing may bring it back */
        const after = expectStatus(await carol.call('GET', `/api/v1/documents/${c.id}`), 200).body;
        assert.equal(after.status, 'cancelled');
        const job = expectStatus(await carol.call('GET', `/api/v1/jobs/${c.job_id}`), 200).body;
        assert.equal(job.status, 'cancelled');

        // the per-user quota (5000 bytes here; the two above hold 50)
        expectStatus(await upload(b, carol, Buffer.alloc(6000, 'q'), 'fat.txt'), 413, 'quota_exceeded');
      } finally {
        await b.stop();
      }
    });

    test('loci import: a folder of notes with wikilinks; again, only what changed', async (t) => {
      if (!s) return t.skip('no PostgreSQL');
      const vault = tempDir('loci-vault-');
      mkdirSync(join(vault, 'biology'));
      mkdirSync(join(vault, '.obsidian'));
      writeFileSync(join(vault, 'Photosynthesis.md'), '---\ntitle: Photosynthesis\n---\nPlants make sugar from light using [[Chlorophyll]] inside the [[biology/Chloroplast|chloroplast]].\n');
      writeFileSync(join(vault, 'biology', 'Chloroplast.md'), '# Chloroplast\nThe organelle where [[Photosynthesis]] happens.\n');
      writeFileSync(join(vault, '.obsidian', 'app.md'), 'settings\n');
      const dave = await signupAndLogin(s);
      const args = ['import', vault, '--user', dave.email, ...dbFlags(s)];
      const first = await runLoci(args, { timeoutMs: 60000 });
      assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
      assert.match(first.stdout, /imported 2, unchanged 0, failed 0; [3-9]\d* links/);
      const docs = expectStatus(await dave.call('GET', '/api/v1/documents'), 200).body.items;
      assert.deepEqual(docs.map((d) => d.source_path).sort(), ['Photosynthesis.md', 'biology/Chloroplast.md']);
      for (const d of docs) {
        assert.equal(d.source, 'import');
        assert.equal(d.status, 'done');
      }
      const byPath = Object.fromEntries(docs.map((d) => [d.source_path, d]));
      const photo = expectStatus(await dave.call('GET', `/api/v1/nodes/${byPath['Photosynthesis.md'].root_node_id}`), 200).body;
      const chloro = byPath['biology/Chloroplast.md'].root_node_id;
      assert.ok(photo.neighbours.some((n) => n.node.id === chloro), 'the two notes are linked');
      assert.ok(photo.neighbours.some((n) => /chlorophyll/i.test(n.node.term)), 'an unresolved link becomes a node');

      const second = await runLoci(args, { timeoutMs: 60000 });
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /imported 0, unchanged 2, failed 0; 0 links/);
      writeFileSync(join(vault, 'biology', 'Chloroplast.md'), '# Chloroplast\nGreen, with [[Thylakoid]] stacks.\n');
      const third = await runLoci(args, { timeoutMs: 60000 });
      assert.equal(third.code, 0, third.stderr);
      assert.match(third.stdout, /imported 1, unchanged 1, failed 0/);
      assert.equal(expectStatus(await dave.call('GET', '/api/v1/documents'), 200).body.items.length, 2);
      const bad = await runLoci(['import', vault, '--user', 'nobody@example.test', ...dbFlags(s)], { timeoutMs: 30000 });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /no user/);
      assert.ok(statSync(vault).isDirectory());
    });
  });
}
