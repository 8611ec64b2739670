// The built UI itself: the JavaScript index.html loads on first visit stays
// within the budget (350 KB gzipped), and nothing in it needs the CSP's
// 'unsafe-inline' (no inline scripts, styles or event handlers).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { WEB_DIST, checkDist } from './lib/browser.mjs';

const BUDGET = 350 * 1024;

function indexHtml() {
  checkDist();
  return readFileSync(join(WEB_DIST, 'index.html'), 'utf8');
}

test('first-load JavaScript is within 350 KB gzipped', (t) => {
  const html = indexHtml();
  const urls = new Set();
  for (const m of html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/g)) urls.add(m[1]);
  for (const m of html.matchAll(/<link\b[^>]*\brel="modulepreload"[^>]*\bhref="([^"]+)"/g)) urls.add(m[1]);
  for (const m of html.matchAll(/<link\b[^>]*\bhref="([^"]+)"[^>]*\brel="modulepreload"/g)) urls.add(m[1]);
  assert.ok(urls.size >= 1, 'index.html loads at least one script');
  let total = 0;
  for (const u of urls) {
    assert.match(u, /^\/assets\/[\w.-]+\.js$/, `a bundled, hashed script: ${u}`);
    total += gzipSync(readFileSync(join(WEB_DIST, u)), { level: 9 }).length;
  }
  t.diagnostic(`first-load JS: ${urls.size} file(s), ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);
  assert.ok(total <= BUDGET, `${total} bytes gzipped > ${BUDGET}`);
});

test('index.html has no inline script, style or handler, and no outside URL', () => {
  const html = indexHtml();
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
    assert.match(m[1], /\bsrc="/, 'every script is a file');
    assert.equal(m[2].trim(), '', 'no inline script body');
  }
  assert.doesNotMatch(html, /<style\b/i, 'no <style> element');
  assert.doesNotMatch(html, /\sstyle="/i, 'no style attribute');
  assert.doesNotMatch(html, /\son[a-z]+="/i, 'no inline event handler');
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i, 'no CDN or outside URL');
});
