// An accessibility scan (axe-core) of every screen, signed out and in, in
// English and French, light and dark: no serious or critical violations.
import { after, before, describe, test } from 'node:test';
import { cleanup } from '../e2e/lib/server.mjs';
import { newPassword, uniqueEmail } from '../e2e/lib/users.mjs';
import { assertClean, axeScan as scan, launch, newPage, signUpInUi, startUiServer } from './lib/browser.mjs';

after(cleanup);
for (const scheme of ['light', 'dark']) describe(`accessibility (${scheme})`, () => {
  let server;
  let page;
  before(async () => {
    let browser;
    [server, browser] = await Promise.all([startUiServer(), launch()]);
    page = await newPage(browser, server);
    await page.emulateMedia({ colorScheme: scheme });
  });

  test('signed out: log in and sign up', async () => {
    await page.goto('/login');
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    await scan(page, 'login');
    await page.goto('/signup');
    await page.getByRole('heading', { name: 'Create an account' }).waitFor();
    await scan(page, 'signup');
    await page.goto('/forgot-password');
    await page.getByRole('heading', { name: 'Forgot your password' }).waitFor();
    await scan(page, 'forgot password');
  });

  test('signed in: every screen, with content', async () => {
    await signUpInUi(page, uniqueEmail('a11y'), newPassword());
    await page.getByLabel('Your question').fill('What is photosynthesis?');
    await page.getByRole('button', { name: 'Ask', exact: true }).click();
    await page.getByTestId('answer').and(page.locator('[data-streaming="false"]')).waitFor();
    await scan(page, 'ask');
    await page.getByRole('link', { name: 'Graph' }).click();
    await page.getByTestId('node-list').getByRole('button', { name: 'photosynthesis' }).click();
    await page.getByTestId('node-panel').getByRole('heading', { name: 'photosynthesis' }).waitFor();
    await scan(page, 'graph');
    await page.getByRole('link', { name: 'Documents' }).click();
    await page.getByTestId('file-input').setInputFiles({ name: 'n.md', mimeType: 'text/markdown', buffer: Buffer.from('# Cells\n\nCells are the units of life. Mitochondria make energy.\n') });
    await page.getByTestId('doc').and(page.locator('[data-status="done"]')).waitFor({ timeout: 20000 });
    await scan(page, 'documents');
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    await scan(page, 'settings');
    await page.getByLabel('Language').first().selectOption('fr');
    await page.getByRole('heading', { name: 'Réglages' }).waitFor();
    await scan(page, 'settings (fr)');
    await page.getByLabel('Langue').first().selectOption('en');
    assertClean(page);
  });
});
