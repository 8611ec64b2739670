// Live behaviour: answers streamed token by token from a model (the
// stand-in) and rendered as sanitised Markdown; the realtime connection's
// state shown, and after the server comes back the UI reconnects with
// ?since=OFFSET and catches up; two users in two browser contexts never see
// each other's nodes, documents (listing, search, by id) or realtime events.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStandIn } from '../standin/server.mjs';
import { cleanup } from '../e2e/lib/server.mjs';
import { loginAs, newPassword, uniqueEmail } from '../e2e/lib/users.mjs';
import { assertClean, launch, newPage, screenshot, signUpInUi, startUiServer } from './lib/browser.mjs';

after(cleanup);

let browser;
before(async () => {
  browser = await launch();
});

describe('answers from a model stream token by token', () => {
  let standin;
  let server;
  before(async () => {
    standin = await startStandIn({});
    server = await startUiServer({
      args: ['--ai-providers', 'openai', '--ai-base-url', `${standin.url}/v1`, '--ai-chat-model', 'standin-chat', '--ai-embed-model', '', '--ai-retries', '0'],
    });
  });
  after(async () => {
    await server?.stop();
    await standin?.close();
  });

  test('tokens appear while streaming; the result is Markdown, sanitised', async () => {
    const page = await newPage(browser, server);
    await signUpInUi(page, uniqueEmail('stream'), newPassword());
    const pieces = ['Light ', 'is **absorbed** ', 'by ', 'chlorophyll. ', '<img src=x onerror="window.__pwned=1">', 'Done.'];
    standin.script([
      { tokens: pieces, token_delay_ms: 250 },
      { content: JSON.stringify({ terms: [{ term: 'Chlorophyll', summary: 'The green pigment.' }], relations: [] }) },
    ]);
    await page.getByLabel('Your question').fill('What absorbs light?');
    await page.getByRole('button', { name: 'Ask', exact: true }).click();
    const answer = page.getByTestId('answer').last();
    // Part of the answer is on screen while the rest is still coming.
    await answer.and(page.locator('[data-streaming="true"]')).locator('.md', { hasText: 'absorbed' }).waitFor();
    const partial = await answer.locator('.md').textContent();
    assert.doesNotMatch(partial, /Done\./, 'seen before the last token');
    await answer.and(page.locator('[data-streaming="false"]')).waitFor();
    const md = answer.locator('.md');
    assert.equal(await md.locator('strong').textContent(), 'absorbed', 'Markdown is rendered');
    assert.match(await md.textContent(), /Done\./);
    assert.equal(await md.locator('img[onerror]').count(), 0, 'the handler is stripped');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await answer.getByTestId('terms').getByRole('link', { name: 'Chlorophyll' }).waitFor();
    // Chromium reports the handler as a CSP violation as soon as DOMPurify
    // parses the hostile answer in its inert document; it never runs there
    // (checked above) and never reaches the page.
    assertClean(page, { allow: [/inline event handler/] });
    await page.context().close();
  });
});

describe('realtime', () => {
  test('connection state is shown; after the server comes back the UI catches up from its offset', async () => {
    let server = await startUiServer();
    const email = uniqueEmail('rt');
    const password = newPassword();
    const page = await newPage(browser, server);
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await signUpInUi(page, email, password);
    await page.getByRole('link', { name: 'Graph' }).click();
    const conn = page.getByTestId('conn');
    await conn.filter({ hasText: 'Live' }).waitFor();
    await page.getByText('Your graph is empty').waitFor();

    const { dataDir, port } = server;
    await server.stop();
    await conn.filter({ hasText: 'Reconnecting' }).waitFor();
    await screenshot(page, 'reconnecting');
    server = await startUiServer({ dataDir, args: ['--port', String(port)] });
    // Something happens while the page may still be away.
    const other = await loginAs(server, email, password);
    const r = await other.call('POST', '/api/v1/ask', { body: { text: 'What is a zeolite catalyst?' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const list = page.getByTestId('node-list');
    for (const term of r.body.extracted_terms) await list.getByRole('button', { name: term.term, exact: true }).waitFor({ timeout: 20000 });
    await conn.filter({ hasText: 'Live' }).waitFor({ timeout: 20000 });
    assert.ok(sockets.length >= 2, `reconnected: ${sockets.join(', ')}`);
    assert.match(sockets[sockets.length - 1], /\/ws\?since=\d+$/, 'the reconnect resumes from the last offset');
    // The browser may log the refused connections while the server was down.
    await page.context().close();
    await server.stop();
  });

  test('two users in two contexts never see each other\'s nodes, documents or events', async () => {
    const server = await startUiServer();
    const [pa, pb] = await Promise.all([newPage(browser, server), newPage(browser, server)]);
    // Every WebSocket frame each page receives, parsed, recorded by the
    // browser driver (below the app: nothing the app filters or drops can
    // hide a frame from this). Attached before either signs in.
    const frames = { a: [], b: [] };
    const waiters = [];
    for (const [k, p] of [['a', pa], ['b', pb]]) {
      p.on('websocket', (ws) => ws.on('framereceived', (f) => {
        let ev = null;
        try {
          ev = JSON.parse(f.payload);
        } catch {
          /* not JSON: kept raw */
        }
        frames[k].push({ raw: String(f.payload), ev });
        for (const w of waiters.splice(0)) w();
      }));
    }
    /** Resolves once a frame of `k` from index `from` on satisfies pred. */
    const frameSeen = async (k, from, pred, ms = 10000) => {
      const end = Date.now() + ms;
      while (!frames[k].slice(from).some(pred)) {
        assert.ok(Date.now() < end, `a frame of ${k} came within ${ms} ms`);
        await new Promise((res) => {
          waiters.push(res);
          setTimeout(res, 250);
        });
      }
    };
    const alice = { email: uniqueEmail('alice'), password: newPassword() };
    const bob = { email: uniqueEmail('bob'), password: newPassword() };
    await signUpInUi(pa, alice.email, alice.password);
    await signUpInUi(pb, bob.email, bob.password);
    await pb.getByRole('link', { name: 'Graph' }).click();
    await pb.getByTestId('conn').filter({ hasText: 'Live' }).waitFor();
    await pa.getByLabel('Your question').fill('What is a mitochondrion?');
    await pa.getByRole('button', { name: 'Ask', exact: true }).click();
    await pa.getByTestId('answer').and(pa.locator('[data-streaming="false"]')).waitFor();
    await pa.getByRole('link', { name: 'Graph' }).click();
    await pa.getByTestId('node-list').getByRole('button').first().waitFor();
    // Alice's graph has nodes; Bob's stays empty, live and after a reload.
    assert.equal(await pb.getByTestId('node-list').getByRole('button').count(), 0);
    await pb.reload();
    await pb.getByText('Your graph is empty').waitFor();
    assert.equal(await pb.getByTestId('node-list').getByRole('button').count(), 0);

    // Documents: Bob watches his (empty) Documents screen, live, while
    // Alice uploads a note through hers and it is indexed.
    await pb.getByRole('link', { name: 'Documents' }).click();
    await pb.getByRole('heading', { name: 'Documents' }).waitFor();
    await pb.getByTestId('conn').filter({ hasText: 'Live' }).waitFor();
    await pb.getByText('No documents yet.').waitFor();
    const word = `quokkaphyll${Date.now().toString(36)}`;
    const filename = `alice-${word}.md`;
    await pa.getByRole('link', { name: 'Documents' }).click();
    await pa.getByRole('heading', { name: 'Documents' }).waitFor();
    await pa.getByTestId('file-input').setInputFiles([
      { name: filename, mimeType: 'text/markdown', buffer: Buffer.from(`# Alice's secret\n\nThe ${word} pigment absorbs violet light in Alice's private notes.\n`) },
    ]);
    await pa.getByTestId('doc').filter({ hasText: filename }).and(pa.locator('[data-status="done"]')).waitFor({ timeout: 20000 });
    const apiA = await loginAs(server, alice.email, alice.password);
    const apiB = await loginAs(server, bob.email, bob.password);
    const docsA = (await apiA.call('GET', '/api/v1/documents?limit=50')).body.items;
    const docA = docsA.find((d) => d.filename === filename);
    assert.ok(docA, 'Alice sees her document through the API');
    // Control: the word is findable, by Alice.
    const foundA = await apiA.call('GET', `/api/v1/search?mode=fts&q=${word}`);
    assert.equal(foundA.status, 200, JSON.stringify(foundA.body));
    assert.ok(foundA.body.results.length >= 1, 'Alice\'s search finds her note');

    // Bob's search (the UI has no search screen of its own; the API it would
    // call, with Bob's session) finds nothing of it, nor does his listing.
    const foundB = await apiB.call('GET', `/api/v1/search?mode=fts&q=${word}`);
    assert.equal(foundB.status, 200, JSON.stringify(foundB.body));
    assert.equal(foundB.body.results.length, 0, 'Bob\'s search does not find Alice\'s note');
    assert.equal((await apiB.call('GET', '/api/v1/documents?limit=50')).body.items.length, 0);
    // Alice's document id is not found for Bob.
    assert.equal((await apiB.call('GET', `/api/v1/documents/${docA.id}`)).status, 404);

    // Bob's Documents screen never showed it live, nor after a reload, nor
    // at the address of Alice's document: the ledger stays empty and the
    // page's own request for the document gets 404.
    assert.equal(await pb.getByTestId('doc').count(), 0);
    await pb.reload();
    await pb.getByText('No documents yet.').waitFor();
    assert.equal(await pb.getByTestId('doc').count(), 0);
    await pb.goto(`/documents?doc=${encodeURIComponent(docA.id)}`);
    await pb.getByRole('heading', { name: 'Documents' }).waitFor();
    await pb.getByText('No documents yet.').waitFor();
    assert.equal(await pb.getByTestId('doc').count(), 0);
    assert.equal(await pb.getByText(filename).count(), 0);
    // The UI lists documents rather than fetching one by its id, so ask for
    // it from inside Bob's page, with the credentials the app holds there
    // (his refresh cookie gets an access token first).
    const inPage = await pb.evaluate(async (id) => {
      const tok = await fetch('/api/v1/auth/refresh', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      const token = tok.ok ? (await tok.json()).access_token : null;
      const r = await fetch(`/api/v1/documents/${encodeURIComponent(id)}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
      return { refreshed: tok.ok, status: r.status };
    }, docA.id);
    assert.deepEqual(inPage, { refreshed: true, status: 404 }, 'Bob\'s page gets not found for Alice\'s document id');

    // Events: Alice's socket got her document's events (the control), and
    // Bob's socket got none of hers. Bob then makes an event of his own and
    // waits for it on his socket: his frames up to that barrier are
    // complete, and none names Alice's document, her file, her nodes, nor
    // is a document event at all (Bob has no documents).
    await pb.getByTestId('conn').filter({ hasText: 'Live' }).waitFor();
    const countB = frames.b.length;
    const rb = await apiB.call('POST', '/api/v1/ask', { body: { text: 'What is a ribosome?' } });
    assert.equal(rb.status, 200, JSON.stringify(rb.body));
    await frameSeen('b', countB, (f) => f.ev?.type === 'graph.updated');
    assert.ok(frames.a.some((f) => f.ev?.type === 'document.indexed' && f.raw.includes(docA.id)), 'Alice\'s socket heard her document indexed');
    const nodesA = (await apiA.call('GET', '/api/v1/graph?collapsed=false')).body.nodes.map((n) => n.id);
    assert.ok(nodesA.length > 0);
    const leaked = frames.b.filter((f) => f.raw.includes(docA.id) || f.raw.includes(word) || nodesA.some((id) => f.raw.includes(id)) || /^document\./.test(f.ev?.type || ''));
    assert.deepEqual(leaked.map((f) => f.raw), [], 'Bob\'s socket received none of Alice\'s events');
    assert.equal(await pb.getByTestId('doc').count(), 0);
    assertClean(pa);
    assertClean(pb);
    await pa.context().close();
    await pb.context().close();
    await server.stop();
  });
});
