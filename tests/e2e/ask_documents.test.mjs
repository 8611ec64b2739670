// A learner's own material answers their questions: upload a PDF, it is
// processed and searchable, and an ask cites the right document and page —
// with the offline engine and with a model (the stand-in), on SQLite and
// PostgreSQL. Another user's documents never reach their answers.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startStandIn } from '../standin/server.mjs';
import { makePdf, PAGE_TEXT, settle, upload } from './lib/docs.mjs';
import { pg } from './lib/pg.mjs';
import { cleanup, startServer } from './lib/server.mjs';
import { AUTH_TEST_ARGS, call, expectStatus, signupAndLogin } from './lib/users.mjs';

after(cleanup);

const ARGS = [...AUTH_TEST_ARGS, '--rate-api-burst', '100000', '--rate-api-per-min', '100000'];

for (const backend of ['sqlite', 'postgres']) {
  describe(`answers from documents (${backend})`, () => {
    async function server(t, args = []) {
      let dbUrl;
      if (backend === 'postgres') {
        const p = pg(t);
        if (!p) return null;
        dbUrl = (await p.createDb()).url;
      }
      return startServer({ dbUrl, args: [...ARGS, ...args] });
    }

    async function withDocument(s) {
      const alice = await signupAndLogin(s);
      const r = expectStatus(await upload(s, alice, makePdf(PAGE_TEXT), 'cells.pdf', 'application/pdf'), 202, null, 'upload');
      const doc = await settle(s, alice, r.body.id, { want: 'done' });
      assert.equal(doc.pages, 3);
      return { alice, doc };
    }

    test('offline: the answer quotes page 2 of the PDF and cites it', async (t) => {
      const s = await server(t);
      if (!s) return;
      const { alice, doc } = await withDocument(s);
      const found = expectStatus(await call(s, 'GET', '/api/v1/search?q=mitochondria%20energy&mode=hybrid', { token: alice.accessToken }), 200).body;
      assert.equal(found.results[0].document_id, doc.id);
      assert.equal(found.results[0].page, 2);
      const a = expectStatus(await call(s, 'POST', '/api/v1/ask', { token: alice.accessToken, body: { text: 'What do mitochondria produce?' } }), 200).body;
      assert.equal(a.provider, 'local');
      assert.equal(a.is_found, true);
      assert.match(a.answer_markdown, /Mitochondria produce most of the chemical energy\. \[1\]/);
      assert.equal(a.citations.length, 1);
      const c = a.citations[0];
      assert.deepEqual([c.n, c.kind, c.document_id, c.page], [1, 'document', doc.id, 2]);
      assert.match(c.label, /^cells\.pdf, p\. 2$/);
      assert.match(c.quote, /Mitochondria produce most of the chemical energy/);
      // another user asking the same finds nothing of alice's
      const bob = await signupAndLogin(s);
      const b = expectStatus(await call(s, 'POST', '/api/v1/ask', { token: bob.accessToken, body: { text: 'What do mitochondria produce?' } }), 200).body;
      assert.equal(b.is_found, false);
      assert.deepEqual(b.citations, []);
      await s.stop();
    });

    test('a model: the passages it was given are the document\'s, citations come from the server', async (t) => {
      const standin = await startStandIn({});
      t.after(() => standin.close());
      const s = await server(t, ['--ai-providers', 'openai,local', '--ai-base-url', `${standin.url}/v1`, '--ai-embed-model', '', '--ai-retries', '0']);
      if (!s) return;
      const { alice, doc } = await withDocument(s);
      standin.reset();
      standin.script([{ content: 'Ribosomes make proteins from messenger RNA [1]. They work everywhere [7].' }]);
      const a = expectStatus(await call(s, 'POST', '/api/v1/ask', { token: alice.accessToken, body: { text: 'What do ribosomes translate?' } }), 200).body;
      assert.equal(a.provider, 'openai');
      const prompt = standin.requests().find((r) => r.path === '/v1/chat/completions').body.messages[1].content;
      assert.match(prompt, /<<<DATA passage \[1\] from cells\.pdf, p\. 3>>>\nRibosomes translate messenger RNA into proteins/);
      assert.equal(a.answer_markdown, 'Ribosomes make proteins from messenger RNA [1]. They work everywhere.', 'an invented [7] is removed');
      assert.deepEqual(a.citations.map((c) => [c.n, c.kind, c.document_id, c.page]), [[1, 'document', doc.id, 3]]);
      await s.stop();
    });
  });
}
