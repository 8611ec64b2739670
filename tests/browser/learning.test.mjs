// The learning screens: Review (flashcards of the due queue, rated with the
// keyboard; each rating lands in the node's review history) and the learning
// settings in Settings (PATCH /api/v1/me/learning), Quiz (offline engine,
// graded answers with their source), Stats (numbers match the API), the
// mail link to /review surviving a login, with axe scans.
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
  let browser;
  let email;
  let password;
  const ids = {};
  const terms = ['Osmosis', 'Diffusion', 'Active transport'];
  before(async () => {
    [server, browser] = await Promise.all([startUiServer(), launch()]);
    page = await newPage(browser, server);
    email = uniqueEmail('learn');
    password = newPassword();
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

  test('quiz: built by the offline engine, each answer graded with its source passage, then the score', async () => {
    await page.getByRole('link', { name: 'Quiz' }).click();
    await page.waitForURL('**/quiz');
    await page.getByRole('heading', { name: 'Quiz', level: 1 }).waitFor();
    await axeScan(page, 'quiz (start)');
    await page.getByLabel('Number of questions').fill('3');
    await page.getByRole('button', { name: 'Start quiz' }).click();
    const q = page.getByTestId('question');
    await q.waitFor({ timeout: 20000 });
    const total = Number((await page.getByTestId('quiz-progress').textContent()).match(/of (\d+)/)[1]);
    assert.ok(total >= 1 && total <= 3, `questions: ${total}`);
    let answered = 0;
    for (let i = 0; i < total; i++) {
      await page.getByTestId('quiz-progress').getByText(`Question ${i + 1} of ${total}`).waitFor();
      const kind = await q.getAttribute('data-kind');
      if (kind === 'mc') {
        await q.getByRole('button').first().click();
      } else {
        // A wrong answer on purpose: the key and its source are shown.
        await q.getByLabel('Your answer').fill('photosynthesis');
        await q.getByRole('button', { name: 'Check' }).click();
      }
      const g = page.getByTestId('graded');
      await g.waitFor();
      answered++;
      await g.getByText(/Correct|Not quite/).waitFor();
      assert.ok((await page.getByTestId('source-passage').textContent()).trim().length > 0, 'the source passage is shown');
      if (i === 0) {
        await axeScan(page, 'quiz (graded)');
        await screenshot(page, 'quiz');
      }
      await g.getByRole('button', { name: /Next question|See the score/ }).click();
    }
    await page.getByTestId('quiz-score').waitFor();
    const list = await api.call('GET', '/api/v1/user/stats');
    const last = list.body.quiz_scores[0];
    assert.equal(last.answered, answered);
    await page.getByTestId('quiz-score').getByText(`${last.correct} of ${total} correct`).waitFor();
    assertClean(page);
  });

  test('stats: the numbers match GET /api/v1/user/stats', async () => {
    const s = (await api.call('GET', '/api/v1/user/stats')).body;
    await page.getByRole('link', { name: 'Stats' }).click();
    await page.waitForURL('**/stats');
    await page.getByRole('heading', { name: 'Stats', level: 1 }).waitFor();
    await page.getByTestId('stats-numbers').waitFor();
    const pct = (x) => (x == null ? '—' : `${Math.round(x * 1000) / 10}%`);
    assert.equal(await page.getByTestId('due-today').textContent(), String(s.due.today));
    assert.equal(await page.getByTestId('due-tomorrow').textContent(), String(s.due.tomorrow));
    assert.equal(await page.getByTestId('retention-desired').textContent(), pct(s.retention.desired));
    assert.equal(await page.getByTestId('retention-actual').textContent(), pct(s.retention.actual));
    assert.equal(await page.getByTestId('nodes').textContent(), String(s.familiarity.nodes));
    assert.equal(s.familiarity.nodes, terms.length);
    const reviews = s.activity_per_day.reduce((a, d) => a + d.reviews, 0);
    assert.ok(reviews >= 3, `reviews: ${reviews}`);
    await page.getByRole('img', { name: new RegExp(`${reviews} reviews`) }).waitFor();
    const text = await page.getByTestId('familiarity-text').textContent();
    s.familiarity.buckets.forEach((b, i) => assert.ok(text.includes(`${i * 10}–${i * 10 + 10}%: ${b}`)));
    await screenshot(page, 'stats');
    await axeScan(page, 'stats');
    assertClean(page);
  });

  test('signed out, the review mail\'s link to /review comes back there after logging in', async () => {
    const other = await newPage(browser, server);
    await other.goto('/review');
    await other.waitForURL('**/login?next=%2Freview');
    await other.getByLabel('Email').fill(email);
    await other.getByLabel('Password', { exact: true }).fill(password);
    await other.getByRole('button', { name: 'Log in' }).click();
    await other.waitForURL('**/review');
    await other.getByRole('heading', { name: 'Review', level: 1 }).waitFor();
    assertClean(other);
  });
});
