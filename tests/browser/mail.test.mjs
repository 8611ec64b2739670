// The pages mail links open, with mail on (an SMTP sink): sign up → the
// verification mail → /verify-email confirms → log in; forgot password →
// the reset mail → /reset-password sets a new one → log in with it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSmtp } from '../e2e/lib/mail.mjs';
import { cleanup } from '../e2e/lib/server.mjs';
import { newPassword, uniqueEmail } from '../e2e/lib/users.mjs';
import { assertClean, launch, logInInUi, newPage, screenshot, startUiServer } from './lib/browser.mjs';

after(cleanup);

/** The path and query of the link in a mail (its host is the public URL). */
function linkPath(mail, page) {
  const m = new RegExp(`https?://[^\\s/]+(/${page}\\?token=[A-Za-z0-9_-]+)`).exec(mail.text);
  assert.ok(m, `a ${page} link in:\n${mail.text}`);
  return m[1];
}

describe('mail links', () => {
  let smtp;
  let server;
  let page;
  const email = uniqueEmail('mail');
  const password = newPassword();
  before(async () => {
    smtp = await startSmtp();
    let browser;
    [server, browser] = await Promise.all([startUiServer({ args: smtp.args }), launch()]);
    page = await newPage(browser, server);
  });

  test('sign up, confirm the address from the mail, log in', async () => {
    await page.goto('/signup');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.getByText('Check your mail').waitFor();
    const mail = await smtp.waitFor((m) => m.to.includes(email) && /verify-email/.test(m.text));
    await page.goto(linkPath(mail, 'verify-email'));
    await page.getByTestId('auth-notice').filter({ hasText: 'Your email is confirmed' }).waitFor();
    await screenshot(page, 'verified');
    await logInInUi(page, email, password);
    await page.waitForURL('**/ask');
    assertClean(page);
  });

  test('a used or wrong verification link says so', async () => {
    await page.goto('/verify-email?token=not-a-real-token');
    await page.getByTestId('auth-error').waitFor();
    assertClean(page, { allow: [/status of 400/] });
  });

  test('forgot password → mail → reset → log in with the new password', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL('**/login');
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Send the reset link' }).click();
    await page.getByTestId('auth-notice').waitFor();
    const mail = await smtp.waitFor((m) => m.to.includes(email) && /reset-password/.test(m.text));
    await page.goto(linkPath(mail, 'reset-password'));
    const fresh = newPassword();
    await page.getByLabel('New password', { exact: true }).fill(fresh);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByTestId('auth-notice').filter({ hasText: 'Your password is changed' }).waitFor();
    await logInInUi(page, email, password);
    await page.getByTestId('auth-error').waitFor();
    await logInInUi(page, email, fresh);
    await page.waitForURL('**/ask');
    assertClean(page);
  });
});
