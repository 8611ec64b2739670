// The learning screens: Review (flashcards of the due queue, rated with the
// keyboard; each rating lands in the node's review history) and the learning
// settings in Settings (PATCH /api/v1/me/learning), with axe scans.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup } from '../e2e/lib/server.mjs';
import { loginAs, newPassword, uniqueEmail } from '../e2e/lib/users.mjs';
import { assertClean, axeScan, launch, newPage, screenshot, signUpInUi, startUiServer } from './lib/browser.mjs';

after(cleanup);

describe('learning screens', () => {
  let server;
  let page;
  let api;
  const ids = {};
  const terms = ['Osmosis', 'Diffusion', 'Active transport'];
  before(async () => {
    let browser;
    [server, browser] = await Promise.all([startUiServer(), launch()]);
    page = await newPage(browser, server);
    const email = uniqueEmail('learn');
    const password = newPassword();
    await signUpInUi(page, email, password);
    api = await loginAs(server, email, password);
    for (const term of terms) {
      const r = await api.call('POST', '/api/v1/nodes', { body: { term, summary: `About ${term.toLowerCase()} across a membrane.` } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids[term] = r.body.id;
    }
  });

  test('review: Space reveals, 1–4 rate, the queue advances and the history grows', async () => {
    const due = await api.call('GET', '/api/v1/reviews/due?limit=100');
    assert.equal(due.status, 200);
    const n = due.body.items.length;
    assert.equal(n, terms.length, 'each new node is a new card');

    await page.getByRole('link', { name: 'Review' }).click();
    await page.waitForURL('**/review');
    await page.getByRole('heading', { name: 'Review', level: 1 }).waitFor();
    const card = page.getByTestId('flashcard');
    const first = await card.getAttribute('data-node');
    assert.equal(first, due.body.items[0].node_id);
    await page.getByTestId('review-progress').getByText(`Card 1 of ${n} · 0 reviewed`).waitFor();
    assert.equal(await page.getByTestId('answer').count(), 0, 'the term comes first');

    await page.keyboard.press('Space');
    await page.getByTestId('answer').getByText(due.body.items[0].summary).waitFor();
    // Each rating button shows the interval that rating would give.
    for (const [k, name] of [[1, 'Again'], [2, 'Hard'], [3, 'Good'], [4, 'Easy']]) {
      const b = page.getByTestId(`rate-${k}`);
      assert.match(await b.textContent(), new RegExp(`${k} · ${name}`));
      assert.match(await b.textContent(), /\d+ (min|h|d|mo|y)|now/);
    }
    await axeScan(page, 'review (revealed)');
    await screenshot(page, 'review');
    await page.keyboard.press('3');
    await page.getByTestId('review-progress').getByText(`Card 2 of ${n} · 1 reviewed`).waitFor();
    assert.notEqual(await card.getAttribute('data-node'), first);

    const hist = await api.call('GET', `/api/v1/nodes/${first}/reviews`);
    assert.equal(hist.status, 200);
    assert.equal(hist.body.items.length, 1);
    assert.equal(hist.body.items[0].rating, 3);
    assert.equal(hist.body.items[0].source, 'review');

    // Without Space first, a digit does nothing.
    const second = await card.getAttribute('data-node');
    await page.keyboard.press('4');
    await page.getByTestId('review-progress').getByText(`Card 2 of ${n} · 1 reviewed`).waitFor();
    await page.keyboard.press('Space');
    await page.getByTestId('answer').waitFor();
    await page.keyboard.press('1');
    await page.getByTestId('review-progress').getByText(`Card 3 of ${n} · 2 reviewed`).waitFor();
    const h2 = await api.call('GET', `/api/v1/nodes/${second}/reviews`);
    assert.deepEqual(h2.body.items.map((r) => r.rating), [1]);

    await page.keyboard.press('Space');
    await page.getByTestId('rate-4').click();
    await page.getByTestId('review-empty').waitFor();
    await page.getByText('Done: 3 cards reviewed.', { exact: false }).waitFor();
    await axeScan(page, 'review (done)');
    assertClean(page);
  });

  test('settings: the learning settings are saved through PATCH /api/v1/me/learning', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    const form = page.getByRole('form', { name: 'Learning' });
    await form.waitFor();
    await form.getByLabel('Desired retention').waitFor();
    assert.equal(await form.getByLabel('Desired retention').inputValue(), '0.9');
    await form.getByLabel('Send me a review digest by mail').check();
    await form.getByLabel('Familiarity threshold').fill('0.7');
    await form.getByLabel('Desired retention').fill('0.85');
    await form.getByLabel('New cards per day').fill('5');
    await form.getByRole('button', { name: 'Save learning settings' }).click();
    await form.getByText('Saved.').waitFor();
    const r = await api.call('GET', '/api/v1/me/learning');
    assert.equal(r.body.review_mail, true);
    assert.equal(r.body.threshold, 0.7);
    assert.equal(r.body.desired_retention, 0.85);
    assert.equal(r.body.new_per_day, 5);
    // An unsaved edit is dropped by a reload; the saved values come back.
    await form.getByLabel('New cards per day').fill('3');
    await page.reload();
    await form.getByLabel('New cards per day').waitFor();
    assert.equal(await form.getByLabel('New cards per day').inputValue(), '5');
    await axeScan(page, 'settings with learning');
    assertClean(page);
  });
});
