// Browser tests: Debian's Chromium driven by playwright-core against a real
// `loci serve` (started by ../e2e/lib/server.mjs) serving the built UI from
// web/dist. Every page is watched for console errors, uncaught exceptions
// and CSP violations; a test calls assertClean(page) to fail on any.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { onCleanup, startServer, tempDir } from '../../e2e/lib/server.mjs';
import { AUTH_TEST_ARGS } from '../../e2e/lib/users.mjs';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const WEB_DIST = process.env.LOCI_WEB_DIST || join(REPO, 'web/dist');
export const CHROMIUM = process.env.LOCI_CHROMIUM || '/usr/bin/chromium';
/** Screenshots of each screen land here (git-ignored) for a reviewer to look at. */
export const SHOTS = process.env.LOCI_SCREENSHOTS || join(REPO, 'tests/browser/.screenshots');

export function checkDist() {
  if (!existsSync(join(WEB_DIST, 'index.html'))) {
    throw new Error(`no built UI at ${WEB_DIST}: run 'npm ci && npm run build' in web/ (make test does)`);
  }
}

/** A `loci serve` with the built UI and relaxed auth rate limits. */
export function startUiServer({ args = [], ...rest } = {}) {
  checkDist();
  return startServer({ webDir: WEB_DIST, args: [...AUTH_TEST_ARGS, ...args], ...rest });
}

/** Launch headless Chromium with a fresh profile; closed by cleanup(). */
export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: scripts/install-deps installs the chromium package`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives each launch a fresh temporary --user-data-dir.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    env: { ...process.env, HOME: tempDir('loci-chromium-home-') },
    timeout: 30000,
  });
  onCleanup(() => browser.close());
  return browser;
}

const problemsOf = new WeakMap();

/** A new context (its own cookies) and page at server.url; problems are recorded. */
export async function newPage(browser, server, { viewport = { width: 1280, height: 850 } } = {}) {
  const context = await browser.newContext({ baseURL: server.url, viewport });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const problems = [];
  problemsOf.set(page, problems);
  page.on('console', (m) => {
    const text = m.text();
    if (m.type() === 'error' && !/status of (401|404|409|422)/.test(text)) problems.push(`console: ${text}`);
    if (/Content Security Policy/i.test(text)) problems.push(`csp: ${text}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return page;
}

/**
 * Fail when the page logged errors, threw, or violated the CSP since the
 * last call; `allow` lists patterns of expected messages.
 */
export function assertClean(page, { allow = [] } = {}) {
  const problems = problemsOf.get(page) || [];
  const seen = problems.splice(0).filter((p) => !allow.some((re) => re.test(p)));
  assert.deepEqual(seen, [], 'the page logged no errors and no CSP violations');
}

export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Sign up and land on the Ask screen, through the UI. */
export async function signUpInUi(page, email, password) {
  await page.goto('/signup');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL('**/ask');
  await page.getByRole('heading', { name: 'Ask', level: 1 }).waitFor();
}

/** Log in through the UI. */
export async function logInInUi(page, email, password) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

const axeSource = createRequire(import.meta.url)('axe-core').source;

/** Run axe-core on the page; fail on serious or critical violations. */
export async function axeScan(page, what) {
  // Runtime evaluation by the driver is not subject to the page's CSP.
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(axeSource);
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const report = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n  ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('\n  ')}`);
  assert.deepEqual(report, [], `${what}: no serious or critical accessibility violations`);
}
