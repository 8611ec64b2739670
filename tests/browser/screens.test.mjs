// The other screens: Settings (profile, API key shown once, sessions),
// the documents ledger's actions (reprocess, delete, cancel a queued one),
// and the app on a phone-sized screen driven by the keyboard alone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup } from '../e2e/lib/server.mjs';
import { newPassword, uniqueEmail } from '../e2e/lib/users.mjs';
import { assertClean, launch, newPage, screenshot, signUpInUi, startUiServer } from './lib/browser.mjs';

after(cleanup);

describe('settings and documents', () => {
  let server;
  let browser;
  let page;
  before(async () => {
    [server, browser] = await Promise.all([startUiServer(), launch()]);
    page = await newPage(browser, server);
    await signUpInUi(page, uniqueEmail('set'), newPassword());
  });

  test('settings: save the name, create an API key shown once, list sessions', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { name: 'Settings' }).waitFor();
    await page.getByRole('form', { name: 'Profile' }).getByLabel('Name').fill('Ada Lovelace');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved.').waitFor();
    await page.getByRole('region', { name: 'API keys' }).getByLabel('Name').fill('editor');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = await page.getByTestId('new-key').textContent();
    assert.match(key, /^loci_/);
    await page.getByText(/editor — /).waitFor();
    await page.getByText('(this device)').waitFor();
    await screenshot(page, 'settings');
    // Shown once: after a reload only the prefix is left.
    await page.reload();
    await page.getByText(/editor — /).waitFor();
    assert.equal(await page.getByTestId('new-key').count(), 0);
    assert.equal(await page.getByText(key).count(), 0);
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('No API keys.').waitFor();
    assertClean(page);
  });

  test('documents: reprocess, then delete with a confirmation', async () => {
    await page.getByRole('link', { name: 'Documents' }).click();
    await page.getByTestId('file-input').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('Osmosis moves water across a membrane.\nDiffusion spreads molecules evenly.\n') });
    const doc = page.getByTestId('doc').filter({ hasText: 'notes.txt' });
    await doc.and(page.locator('[data-status="done"]')).waitFor({ timeout: 20000 });
    await doc.getByRole('button', { name: 'Reprocess' }).click();
    await doc.and(page.locator('[data-status="done"]')).waitFor({ timeout: 20000 });
    await doc.getByRole('button', { name: 'Delete' }).click();
    await doc.getByText('Really delete?').waitFor();
    await doc.getByRole('button', { name: 'Delete' }).click();
    await doc.waitFor({ state: 'detached' });
    await page.getByText('No documents yet.').waitFor();
    assertClean(page);
  });

  test('an unsupported file is refused with the API\'s message', async () => {
    await page.getByTestId('file-input').setInputFiles({ name: 'x.bin', mimeType: 'application/octet-stream', buffer: Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0, 0, 7, 8]) });
    await page.getByRole('alert').filter({ hasText: 'x.bin' }).waitFor();
    // The refused upload's 415 shows in the console as a failed resource.
    assertClean(page, { allow: [/status of 415/] });
  });
});

describe('phone-sized and keyboard only', () => {
  test('the nav is reachable by Tab with a visible focus ring, and Enter follows links', async () => {
    const [server, browser] = await Promise.all([startUiServer(), launch()]);
    const page = await newPage(browser, server, { viewport: { width: 375, height: 740 } });
    await signUpInUi(page, uniqueEmail('kb'), newPassword());
    // Tab until the Graph link has the focus.
    let found = false;
    for (let i = 0; i < 12 && !found; i++) {
      await page.keyboard.press('Tab');
      found = await page.evaluate(() => document.activeElement?.textContent?.trim() === 'Graph');
    }
    assert.ok(found, 'the Graph link is reachable by Tab');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'the focus is visible');
    await page.keyboard.press('Enter');
    await page.waitForURL('**/graph');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `no horizontal scrolling on a phone (${width}px)`);
    await screenshot(page, 'graph-phone');
    assertClean(page);
  });
});

describe('documents waiting for a worker', () => {
  test('a queued document shows its progress and can be cancelled, then queued again', async () => {
    // No job workers: the upload stays queued until cancelled.
    const [server, browser] = await Promise.all([startUiServer({ args: ['--jobs-workers', '0'] }), launch()]);
    const page = await newPage(browser, server);
    await signUpInUi(page, uniqueEmail('queue'), newPassword());
    await page.getByRole('link', { name: 'Documents' }).click();
    await page.getByTestId('file-input').setInputFiles({ name: 'waiting.md', mimeType: 'text/markdown', buffer: Buffer.from('# Waiting\n\nThis note waits for a worker.\n') });
    const doc = page.getByTestId('doc').filter({ hasText: 'waiting.md' });
    await doc.and(page.locator('[data-status="queued"]')).waitFor();
    await doc.getByRole('progressbar').waitFor();
    assert.match(await doc.textContent(), /0%/);
    await doc.getByRole('button', { name: 'Cancel' }).click();
    await doc.and(page.locator('[data-status="cancelled"]')).waitFor();
    await doc.getByRole('button', { name: 'Reprocess' }).click();
    await doc.and(page.locator('[data-status="queued"]')).waitFor();
    assertClean(page);
  });
});
