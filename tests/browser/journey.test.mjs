// The main journey in a real browser: sign up, ask with the offline engine
// and watch the answer stream and render, see new nodes arrive in the graph
// over the WebSocket without a reload, keep the session across a reload,
// upload a Markdown note and a PDF and watch both reach "done", get answers
// that cite them (a page of the PDF), open a node and review it with the
// keyboard and see its history grow, log out and back in (the history stays).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makePdf, PAGE_TEXT } from '../e2e/lib/docs.mjs';
import { cleanup } from '../e2e/lib/server.mjs';
import { loginAs, newPassword, uniqueEmail } from '../e2e/lib/users.mjs';
import { assertClean, launch, logInInUi, newPage, screenshot, signUpInUi, startUiServer } from './lib/browser.mjs';

after(cleanup);

const NOTE = `# Photosynthesis

Photosynthesis is the process by which plants use chlorophyll to turn light, water and carbon dioxide into glucose and oxygen.
Chlorophyll absorbs red and blue light inside the chloroplast.

## Respiration

Cellular respiration releases the energy stored in glucose inside the mitochondria.
`;

describe('the main journey', () => {
  let server;
  let browser;
  let page;
  const email = uniqueEmail('web');
  const password = newPassword();

  before(async () => {
    [server, browser] = await Promise.all([startUiServer(), launch()]);
    page = await newPage(browser, server);
  });

  test('the app shell loads under the CSP and shows the login screen', async (t) => {
    const t0 = Date.now();
    const res = await page.goto('/');
    assert.match(res.headers()['content-security-policy'], /default-src 'self'/);
    await page.waitForURL('**/login');
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    const ms = Date.now() - t0;
    t.diagnostic(`app shell rendered in ${ms} ms (cold browser cache)`);
    assert.ok(ms < 3000, `app shell in ${ms} ms (target 1 s)`);
    await screenshot(page, 'login');
    assertClean(page);
  });

  test('sign up with a bad password shows the API error, then a good one signs in', async () => {
    await page.goto('/signup');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Sign up' }).click();
    const err = page.getByTestId('auth-error');
    await err.waitFor();
    assert.match(await err.textContent(), /password/i);
    await screenshot(page, 'signup-error');
    await signUpInUi(page, email, password);
    await page.getByTestId('conn').filter({ hasText: 'Live' }).waitFor();
    assertClean(page);
  });

  test('an answer streams and renders as Markdown with its terms', async () => {
    await page.getByLabel('Your question').fill('What is photosynthesis?');
    await page.getByRole('button', { name: 'Ask', exact: true }).click();
    const answer = page.getByTestId('answer').last();
    await answer.and(page.locator('[data-streaming="false"]')).waitFor();
    assert.ok((await answer.locator('.md').textContent()).trim().length > 0, 'the answer has text');
    const terms = answer.getByTestId('terms').getByRole('link');
    assert.ok((await terms.count()) >= 1, 'extracted terms are shown');
    assert.match(await terms.first().getAttribute('href'), /^\/graph\?node=/);
    await screenshot(page, 'ask');
    assertClean(page);
  });

  test('the graph shows the nodes, and new ones arrive live without a reload', async () => {
    await page.getByRole('link', { name: 'Graph' }).click();
    await page.waitForURL('**/graph');
    const list = page.getByTestId('node-list');
    await list.getByRole('button', { name: 'photosynthesis' }).waitFor();
    // Another session of the same user asks; the graph hears graph.updated.
    const other = await loginAs(server, email, password);
    const r = await other.call('POST', '/api/v1/ask', { body: { text: 'What is mitochondrial respiration?' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const fresh = r.body.extracted_terms.filter((x) => x.is_new);
    assert.ok(fresh.length > 0, 'the second question made new nodes');
    for (const term of fresh) await list.getByRole('button', { name: term.term, exact: true }).waitFor();
    // Click a node: the side panel shows its familiarity as text.
    await list.getByRole('button', { name: 'photosynthesis' }).click();
    const panel = page.getByTestId('node-panel');
    await panel.getByRole('heading', { name: 'photosynthesis' }).waitFor();
    assert.match(await panel.getByTestId('familiarity').textContent(), /Familiarity: \d+% \(/);
    await screenshot(page, 'graph');
    assertClean(page);
  });

  test('a reload keeps the session (refresh cookie) and the screen', async () => {
    await page.reload();
    await page.waitForURL('**/graph**');
    await page.getByTestId('node-list').getByRole('button', { name: 'photosynthesis' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/graph');
    assertClean(page);
  });

  let reviewedId;
  test('review the open node with the keyboard; its history grows in the panel', async () => {
    // The photosynthesis panel is open again after the reload: the address
    // names it. (Leaving the graph while an animated live layout still runs
    // throws in cytoscape; the reload's layout is not animated.)
    const panel = page.getByTestId('node-panel');
    await panel.getByRole('heading', { name: 'photosynthesis' }).waitFor();
    await page.waitForURL(/\/graph\?node=/);
    reviewedId = new URL(page.url()).searchParams.get('node');
    await panel.getByText('Not reviewed yet.').waitFor();
    assert.equal(await panel.getByTestId('reviews').count(), 0, 'no history before the review');

    // The panel offers no "review" action, so go through the nav.
    await page.getByRole('link', { name: 'Review' }).click();
    await page.waitForURL('**/review');
    await page.getByRole('heading', { name: 'Review', level: 1 }).waitFor();
    const card = page.getByTestId('flashcard');
    const progress = page.getByTestId('review-progress');
    await card.waitFor();
    const n = Number((await progress.textContent()).match(/of (\d+)/)[1]);
    // Rate cards in queue order until the opened node's card is the one shown
    // (every new node is a new card; the order is the server's).
    let found = false;
    for (let i = 0; i < n && !found; i++) {
      await progress.getByText(`Card ${i + 1} of ${n} · ${i} reviewed`).waitFor();
      found = (await card.getAttribute('data-node')) === reviewedId;
      await page.keyboard.press('Space');
      await page.getByTestId('answer').waitFor();
      await page.keyboard.press(found ? '3' : '4');
      if (i + 1 < n) await progress.getByText(`Card ${i + 2} of ${n} · ${i + 1} reviewed`).waitFor();
      else await page.getByTestId('review-empty').waitFor();
    }
    assert.ok(found, `the card of node ${reviewedId} was in the review queue of ${n}`);

    // Back in the graph, the node's panel lists the review just made.
    await page.getByRole('link', { name: 'Graph' }).click();
    await page.waitForURL('**/graph');
    await page.getByTestId('node-list').getByRole('button', { name: 'photosynthesis' }).click();
    await panel.getByRole('heading', { name: 'photosynthesis' }).waitFor();
    const history = panel.getByTestId('reviews').getByRole('listitem');
    await history.first().waitFor();
    assert.equal(await history.count(), 1, 'one review in the history');
    assert.match(await history.first().textContent(), / · good · review$/);
    await screenshot(page, 'node-reviewed');
    assertClean(page);
  });

  test('upload a Markdown note and a PDF at once and watch both reach done', async () => {
    await page.getByRole('link', { name: 'Documents' }).click();
    await page.getByRole('heading', { name: 'Documents' }).waitFor();
    await page.getByTestId('file-input').setInputFiles([
      { name: 'photosynthesis.md', mimeType: 'text/markdown', buffer: Buffer.from(NOTE) },
      { name: 'cells.pdf', mimeType: 'application/pdf', buffer: makePdf(PAGE_TEXT) },
    ]);
    const doc = page.getByTestId('doc').filter({ hasText: 'photosynthesis.md' });
    await doc.and(page.locator('[data-status="done"]')).waitFor({ timeout: 20000 });
    assert.equal((await doc.getByTestId('doc-status').textContent()).trim(), 'done');
    const pdf = page.getByTestId('doc').filter({ hasText: 'cells.pdf' });
    await pdf.and(page.locator('[data-status="done"]')).waitFor({ timeout: 20000 });
    assert.match(await pdf.textContent(), /Pages: 3/);
    await screenshot(page, 'documents');
    assertClean(page);
  });

  test('an answer cites the note; the citation opens the passage', async () => {
    await page.getByRole('link', { name: 'Ask' }).click();
    await page.getByLabel('Your question').fill('What does chlorophyll absorb?');
    await page.getByRole('button', { name: 'Ask', exact: true }).click();
    const answer = page.getByTestId('answer').last();
    await answer.and(page.locator('[data-streaming="false"]')).waitFor();
    const chip = answer.getByTestId('citations').getByRole('button').first();
    await chip.click();
    const dlg = page.getByTestId('citation-dialog');
    await dlg.getByRole('heading', { name: 'Source 1' }).waitFor();
    assert.match(await dlg.locator('blockquote').textContent(), /chlorophyll/i);
    await screenshot(page, 'citation');
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });
    assertClean(page);
  });

  test('an answer cites a page of the PDF', async () => {
    await page.getByLabel('Your question').fill('What do ribosomes translate into proteins?');
    await page.getByRole('button', { name: 'Ask', exact: true }).click();
    const answer = page.getByTestId('answer').last();
    await answer.and(page.locator('[data-streaming="false"]')).waitFor();
    await answer.getByTestId('citations').getByRole('button', { name: /cells\.pdf/ }).first().click();
    const dlg = page.getByTestId('citation-dialog');
    await dlg.getByText('Page 3').waitFor();
    assert.match(await dlg.locator('blockquote').textContent(), /Ribosomes/);
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });
    assertClean(page);
  });

  test('a conversation is kept: a new one starts empty, the old one reopens', async () => {
    const count = await page.getByTestId('answer').count();
    assert.ok(count >= 2, `${count} answers in this conversation`);
    assert.match(page.url(), /\/ask\?c=/, 'the address names the conversation');
    await page.reload();
    await page.getByTestId('answer').nth(count - 1).waitFor();
    assert.equal(await page.getByTestId('answer').count(), count, 'a reload reopens the thread');
    await page.getByRole('button', { name: 'New conversation' }).click();
    await page.getByTestId('answer').first().waitFor({ state: 'detached' });
    await page.getByRole('complementary', { name: 'Conversations' }).getByRole('button', { name: 'What does chlorophyll absorb?' }).click();
    await page.getByTestId('answer').nth(count - 1).waitFor();
    assert.equal(await page.getByTestId('answer').count(), count);
    assert.ok((await page.getByTestId('answer').last().getByTestId('citations').getByRole('button').count()) >= 1, 'citations come back too');
    assertClean(page);
  });

  test('log out, a wrong password is refused clearly, the right one signs in', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL('**/login');
    await logInInUi(page, email, 'not-the-password-at-all');
    const err = page.getByTestId('auth-error');
    await err.waitFor();
    assert.match(await err.textContent(), /email or password is wrong/);
    await logInInUi(page, email, password);
    await page.waitForURL('**/ask');
    assertClean(page);
  });

  test('after logging back in the node still shows its review', async () => {
    await page.getByRole('link', { name: 'Graph' }).click();
    await page.waitForURL('**/graph');
    await page.getByTestId('node-list').getByRole('button', { name: 'photosynthesis' }).click();
    const panel = page.getByTestId('node-panel');
    await panel.getByRole('heading', { name: 'photosynthesis' }).waitFor();
    assert.equal(new URL(page.url()).searchParams.get('node'), reviewedId);
    const history = panel.getByTestId('reviews').getByRole('listitem');
    await history.first().waitFor();
    assert.equal(await history.count(), 1);
    assert.match(await history.first().textContent(), / · good · review$/);
    assertClean(page);
  });

  test('the language switch translates the interface', async () => {
    await page.getByLabel('Language').first().selectOption('fr');
    await page.getByRole('link', { name: 'Graphe' }).waitFor();
    await page.getByLabel('Langue').first().selectOption('en');
    await page.getByRole('link', { name: 'Graph' }).waitFor();
    assertClean(page);
  });
});
