// The admin screen: only admins see it; an admin finds a user, makes them
// an admin and disables them (the user's session ends), and retries a job.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup } from '../e2e/lib/server.mjs';
import { makeAdmin, signupAndLogin, uniqueEmail } from '../e2e/lib/users.mjs';
import { assertClean, axeScan, launch, logInInUi, newPage, screenshot, startUiServer } from './lib/browser.mjs';

after(cleanup);

describe('admin', () => {
  let server;
  let browser;
  let admin;
  let bob;
  before(async () => {
    [server, browser] = await Promise.all([startUiServer(), launch()]);
    [admin, bob] = await Promise.all([makeAdmin(server), signupAndLogin(server, { email: uniqueEmail('bob') })]);
    const r = await bob.call('POST', '/api/v1/ask', { body: { text: 'What is osmosis?' } }); // leaves a job
    assert.equal(r.status, 200);
  });

  test('a user sees no Admin link and /admin is not theirs', async () => {
    const page = await newPage(browser, server);
    await logInInUi(page, bob.email, bob.password);
    await page.waitForURL('**/ask');
    assert.equal(await page.getByRole('link', { name: 'Admin' }).count(), 0);
    await page.goto('/admin');
    await page.waitForURL('**/ask');
    assertClean(page);
    await page.context().close();
  });

  test('an admin changes a role, disables a user and sees the jobs', async () => {
    const page = await newPage(browser, server);
    await logInInUi(page, admin.email, admin.password);
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('heading', { name: 'Admin', level: 1 }).waitFor();
    await page.getByPlaceholder('Email starts with').fill('bob');
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.getByTestId('admin-users').locator(`li[data-email="${bob.email}"]`);
    await row.waitFor();
    // bob's row is also in the unfiltered list shown first: wait for the
    // search result to replace it
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="admin-users"] li').length === 1);
    assert.equal(await page.getByTestId('admin-users').locator('li').count(), 1);
    await row.getByLabel(`Role of ${bob.email}`).selectOption('admin');
    await page.waitForFunction((email) => document.querySelector(`li[data-email="${email}"] select`)?.value === 'admin', bob.email);
    await row.getByRole('button', { name: 'Disable' }).click();
    await row.getByText('disabled', { exact: true }).waitFor();
    const list = await admin.call('GET', `/api/v1/admin/users?q=${encodeURIComponent(bob.email)}`);
    assert.deepEqual(list.body.items.map((u) => [u.email, u.role, u.disabled]), [[bob.email, 'admin', true]]);
    const me = await bob.call('GET', '/api/v1/me');
    assert.equal(me.status, 401, 'the disabled user\'s token stops working');
    await page.getByLabel('Status').selectOption('');
    await page.getByTestId('admin-jobs').locator('li').first().waitFor();
    await screenshot(page, 'admin');
    await axeScan(page, 'admin');
    assertClean(page);
    await page.context().close();
  });
});
