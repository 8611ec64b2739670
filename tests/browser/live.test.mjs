// Live behaviour: answers streamed token by token from a model (the
// stand-in) and rendered as sanitised Markdown; the realtime connection's
// state shown, and after the server comes back the UI reconnects with
// ?since=OFFSET and catches up; two users in two browser contexts never see
// each other's nodes.
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

  test('two users in two contexts never see each other\'s nodes', async () => {
    const server = await startUiServer();
    const [pa, pb] = await Promise.all([newPage(browser, server), newPage(browser, server)]);
    await signUpInUi(pa, uniqueEmail('alice'), newPassword());
    await signUpInUi(pb, uniqueEmail('bob'), newPassword());
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
    assertClean(pa);
    assertClean(pb);
    await pa.context().close();
    await pb.context().close();
    await server.stop();
  });
});
