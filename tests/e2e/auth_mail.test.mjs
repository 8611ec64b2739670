// Mail round trips through a real SMTP server on loopback: email
// verification, password reset, forgot for an unknown address; the jobs
// that send the mail as an admin and as their user sees them; and mail off.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { linkToken, startSmtp } from './lib/mail.mjs';
import { cleanup, sleep, startServer } from './lib/server.mjs';
import {
  AUTH_TEST_ARGS,
  assertNoSecretsInLogs,
  call,
  expectNotFoundForOtherUser,
  expectStatus,
  login,
  loginAs,
  makeAdmin,
  newPassword,
  signup,
  uniqueEmail,
} from './lib/users.mjs';

after(cleanup);

let smtp;
let srv;
let admin;
before(async () => {
  smtp = await startSmtp();
  srv = await startServer({ args: [...AUTH_TEST_ARGS, ...smtp.args] });
  admin = await makeAdmin(srv);
});

const mailTo = (email, subject) => (m) => m.to.includes(email) && subject.test(m.subject);

/** Sign up, follow the verification mail, log in. */
async function verifiedUser() {
  const { email, password } = await signup(srv);
  const mail = await smtp.waitFor(mailTo(email, /confirm/i), 8000, `the verification mail to ${email}`);
  const v = await call(srv, 'POST', '/api/v1/auth/verify-email', { body: { token: linkToken(mail, 'verify-email') } });
  expectStatus(v, 200, null, 'verify-email');
  return loginAs(srv, email, password);
}

describe('email verification', () => {
  test('sign-up → login is 403 email_not_verified → the mail arrives → verify-email with its token → login works', async () => {
    const o = await call(srv, 'GET', '/api/v1/auth/options');
    expectStatus(o, 200, null, 'options');
    assert.equal(o.body.mail_enabled, true);
    assert.equal(o.body.email_verification_required, true);

    const { email, password, response } = await signup(srv, { display_name: 'Marie' });
    assert.deepEqual(response.body, { status: 'accepted', email_verification_required: true });
    const early = await login(srv, { email, password });
    expectStatus(early, 403, 'email_not_verified', 'login before verification');
    assert.equal(early.body.access_token, undefined);

    const mail = await smtp.waitFor(mailTo(email, /confirm/i), 8000, `the verification mail to ${email}`);
    assert.deepEqual(mail.to, [email], 'sent to the new address only');
    assert.equal(mail.from, 'loci@test.local', 'envelope sender is --mail-from');
    assert.match(mail.headers.from, /loci@test\.local/);
    assert.match(mail.headers['content-type'] || '', /text\/plain/);
    assert.match(mail.text, /Hello Marie/);
    const token = linkToken(mail, 'verify-email');
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);

    expectStatus(await call(srv, 'POST', '/api/v1/auth/verify-email', { body: { token: 'x'.repeat(43) } }), 400, 'invalid_token', 'a wrong token');
    const v = await call(srv, 'POST', '/api/v1/auth/verify-email', { body: { token } });
    expectStatus(v, 200, null, 'verify-email');
    assert.deepEqual(v.body, { status: 'verified' });
    expectStatus(await call(srv, 'POST', '/api/v1/auth/verify-email', { body: { token } }), 400, 'invalid_token', 'the token is single-use');

    const ok = await login(srv, { email, password });
    expectStatus(ok, 200, null, 'login after verification');
    assert.equal(ok.body.user.email_verified, true);
  });
});

describe('password reset', () => {
  test('forgot → mail → reset: the old password fails, the new one works, every session was ended', async () => {
    const a = await verifiedUser();
    const other = await loginAs(srv, a.email, a.password);
    const f = await call(srv, 'POST', '/api/v1/auth/password/forgot', { body: { email: a.email } });
    expectStatus(f, 202, null, 'forgot');
    assert.deepEqual(f.body, { status: 'accepted' });
    const mail = await smtp.waitFor(mailTo(a.email, /reset/i), 8000, `the reset mail to ${a.email}`);
    const token = linkToken(mail, 'reset-password');

    const next = newPassword();
    const weak = await call(srv, 'POST', '/api/v1/auth/password/reset', { body: { token, password: 'short' } });
    expectStatus(weak, 422, 'validation_failed', 'a too-short new password');
    expectStatus(await call(srv, 'POST', '/api/v1/auth/password/reset', { body: { token: 'y'.repeat(43), password: next } }), 400, 'invalid_token', 'a wrong token');
    const r = await call(srv, 'POST', '/api/v1/auth/password/reset', { body: { token, password: next } });
    expectStatus(r, 200, null, 'reset');
    assert.deepEqual(r.body, { status: 'password_changed' });
    expectStatus(await call(srv, 'POST', '/api/v1/auth/password/reset', { body: { token, password: newPassword() } }), 400, 'invalid_token', 'the reset token is single-use');

    expectStatus(await login(srv, { email: a.email, password: a.password }), 401, 'invalid_credentials', 'the old password');
    expectStatus(await login(srv, { email: a.email, password: next }), 200, null, 'the new password');
    for (const [what, s] of [
      ['first', a],
      ['second', other],
    ]) {
      expectStatus(await s.call('GET', '/api/v1/me'), 401, 'unauthorized', `${what} session's access token after the reset`);
      expectStatus(await call(srv, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: s.refreshToken } }), 401, 'invalid_refresh_token', `${what} session's refresh token after the reset`);
    }
  });

  test('forgot for an unknown address answers exactly like a known one and sends no mail', async () => {
    const a = await verifiedUser();
    const unknown = uniqueEmail('ghost');
    const u = await call(srv, 'POST', '/api/v1/auth/password/forgot', { body: { email: unknown } });
    const k = await call(srv, 'POST', '/api/v1/auth/password/forgot', { body: { email: a.email } });
    assert.equal(u.status, k.status, 'same status');
    assert.deepEqual(u.body, k.body, 'same body');
    assert.equal(u.headers.get('content-type'), k.headers.get('content-type'));
    await smtp.waitFor(mailTo(a.email, /reset/i), 8000, `the reset mail to ${a.email}`);
    await sleep(500); // the unknown one, had it been queued first, would be here by now
    assert.deepEqual(
      smtp.messages().filter((m) => m.to.includes(unknown)),
      [],
      'no mail to the unknown address',
    );
  });
});

describe('jobs over HTTP', () => {
  test('admin: list auth.mail jobs (status filter, bad status 400), retry a completed one, cancel is 409, unknown id 404', async () => {
    const { email } = await signup(srv);
    await smtp.waitFor(mailTo(email, /confirm/i), 8000, `the verification mail to ${email}`);
    const userId = (await admin.call('GET', `/api/v1/admin/users?q=${encodeURIComponent(email)}`)).body.items[0].id;

    let job;
    for (let i = 0; i < 50 && !job; i++) {
      const l = await admin.call('GET', '/api/v1/admin/jobs?type=auth.mail&status=completed&limit=500');
      expectStatus(l, 200, null, 'admin jobs');
      job = l.body.items.find((j) => j.user_id === userId);
      if (!job) await sleep(100);
    }
    assert.ok(job, `the completed auth.mail job of ${email} is listed`);
    assert.equal(job.type, 'auth.mail');
    assert.equal(job.status, 'completed');
    assert.deepEqual(job.payload, { user_id: userId, purpose: 'verify' }, 'the payload has no token');

    const all = await admin.call('GET', '/api/v1/admin/jobs');
    expectStatus(all, 200, null, 'all jobs');
    assert.ok(all.body.items.some((j) => j.id === job.id));
    assert.ok('next' in all.body);
    const queued = await admin.call('GET', '/api/v1/admin/jobs?status=queued&type=auth.mail');
    assert.ok(queued.body.items.every((j) => j.status === 'queued'), 'the status filter filters');
    const bad = await admin.call('GET', '/api/v1/admin/jobs?status=bogus');
    expectStatus(bad, 400, 'bad_request', 'a bad status');
    assert.equal(bad.body.error.field, 'status');
    expectStatus(await admin.call('GET', '/api/v1/admin/jobs?limit=0'), 400, 'bad_request', 'limit 0');

    const page = await admin.call('GET', '/api/v1/admin/jobs?limit=1');
    assert.equal(page.body.items.length, 1);
    assert.equal(page.body.next, page.body.items[0].id, 'a full page names the next cursor');
    const page2 = await admin.call('GET', `/api/v1/admin/jobs?limit=1&before=${page.body.next}`);
    assert.ok(page2.body.items.length === 0 || page2.body.items[0].id < page.body.next, 'before pages backwards');

    const cancel = await admin.call('POST', `/api/v1/admin/jobs/${job.id}/cancel`);
    expectStatus(cancel, 409, 'conflict', 'cancel a completed job');
    const retry = await admin.call('POST', `/api/v1/admin/jobs/${job.id}/retry`);
    expectStatus(retry, 200, null, 'retry a completed job');
    assert.equal(retry.body.id, job.id);
    // (What the answer says about the job's state is checked without workers below.)

    const missing = '01900000-0000-7000-8000-000000000000';
    expectStatus(await admin.call('POST', `/api/v1/admin/jobs/${missing}/retry`), 404, 'not_found', 'retry an unknown job');
    expectStatus(await admin.call('POST', `/api/v1/admin/jobs/${missing}/cancel`), 404, 'not_found', 'cancel an unknown job');
  });

  test('retry and cancel as the job is left by them (a server without workers on the same data): retry → queued, cancel → cancelled, 409 in the wrong state', async () => {
    // A: sends the verification mail, so the job completes.
    const mailer = await startSmtp();
    const a = await startServer({ args: [...AUTH_TEST_ARGS, ...mailer.args] });
    const boss = await makeAdmin(a);
    const { email } = await signup(a);
    await mailer.waitFor(mailTo(email, /confirm/i), 8000, `the verification mail to ${email}`);
    let done;
    for (let i = 0; i < 50 && !done; i++) {
      done = (await boss.call('GET', '/api/v1/admin/jobs?type=auth.mail&status=completed')).body.items[0];
      if (!done) await sleep(100);
    }
    assert.ok(done, 'a completed auth.mail job');
    assert.equal(await a.stop(), 0);
    // B: the same data, no job workers: nothing moves a job but the admin.
    const b = await startServer({ dataDir: a.dataDir, args: [...AUTH_TEST_ARGS, ...mailer.args, '--jobs-workers', '0'] });
    const adminB = await loginAs(b, boss.email, boss.password);
    expectStatus(await adminB.call('POST', `/api/v1/admin/jobs/${done.id}/cancel`), 409, 'conflict', 'cancel a completed job');
    const retry = await adminB.call('POST', `/api/v1/admin/jobs/${done.id}/retry`);
    expectStatus(retry, 200, null, 'retry a completed job');
    assert.equal(retry.body.status, 'queued');
    assert.equal(retry.body.attempts, 0, 'attempts start over');
    assert.equal(retry.body.finished_at, null);
    expectStatus(await adminB.call('POST', `/api/v1/admin/jobs/${done.id}/retry`), 409, 'conflict', 'retry a queued job');
    const cancel = await adminB.call('POST', `/api/v1/admin/jobs/${done.id}/cancel`);
    expectStatus(cancel, 200, null, 'cancel a queued job');
    assert.equal(cancel.body.status, 'cancelled');
    assert.equal(typeof cancel.body.finished_at, 'number');
    expectStatus(await adminB.call('POST', `/api/v1/admin/jobs/${done.id}/cancel`), 409, 'conflict', 'cancel a cancelled job');
    const again = await adminB.call('POST', `/api/v1/admin/jobs/${done.id}/retry`);
    expectStatus(again, 200, null, 'retry a cancelled job');
    assert.equal(again.body.status, 'queued');
    const listed = await adminB.call('GET', '/api/v1/admin/jobs?status=queued&type=auth.mail');
    assert.deepEqual(
      listed.body.items.map((j) => j.id),
      [done.id],
      'the queued filter shows it',
    );
    assertNoSecretsInLogs(b);
  });

  test('admin job routes: a user gets 403, no token 401', async () => {
    const u = await verifiedUser();
    const id = '01900000-0000-7000-8000-000000000000';
    for (const [m, p] of [
      ['GET', '/api/v1/admin/jobs'],
      ['POST', `/api/v1/admin/jobs/${id}/retry`],
      ['POST', `/api/v1/admin/jobs/${id}/cancel`],
    ]) {
      expectStatus(await u.call(m, p), 403, 'forbidden', `${m} ${p} as a user`);
      expectStatus(await call(srv, m, p), 401, 'unauthorized', `${m} ${p} without a token`);
    }
  });

  test('a user sees their own mail job at GET /api/v1/jobs/:id; another user gets 404', async () => {
    const a = await verifiedUser();
    const b = await verifiedUser();
    const l = await admin.call('GET', '/api/v1/admin/jobs?type=auth.mail&limit=500');
    const job = l.body.items.find((j) => j.user_id === a.id);
    assert.ok(job, 'the verification job of a');
    const own = await a.call('GET', `/api/v1/jobs/${job.id}`);
    expectStatus(own, 200, null, 'own job');
    assert.equal(own.body.id, job.id);
    assert.equal(own.body.type, 'auth.mail');
    assert.equal(own.body.user_id, undefined, 'the user view has no admin fields');
    assert.equal(own.body.lease_owner, undefined);
    await expectNotFoundForOtherUser(srv, 'GET', `/api/v1/jobs/${job.id}`, { owner: a, other: b });
    expectStatus(await call(srv, 'GET', `/api/v1/jobs/${job.id}`), 401, 'unauthorized', 'no token');
  });
});

describe('mail off', () => {
  test('/auth/options says mail_enabled false, accounts work at once, forgot is 409 mail_disabled, no mail is sent', async () => {
    const sink = await startSmtp(); // listening, but the server is not told about it
    const off = await startServer({ args: AUTH_TEST_ARGS });
    const o = await call(off, 'GET', '/api/v1/auth/options');
    assert.equal(o.body.mail_enabled, false);
    assert.equal(o.body.email_verification_required, false);
    const { email, password, response } = await signup(off);
    assert.equal(response.body.email_verification_required, false);
    const l = await login(off, { email, password });
    expectStatus(l, 200, null, 'login at once');
    assert.equal(l.body.user.email_verified, true);
    const f = await call(off, 'POST', '/api/v1/auth/password/forgot', { body: { email } });
    expectStatus(f, 409, 'mail_disabled', 'forgot with mail off');
    assert.deepEqual(sink.messages(), []);
    assertNoSecretsInLogs(off);
  });
});

describe('logs', () => {
  test('no password, token, API key or mail link token is in the log', () => {
    assertNoSecretsInLogs(srv);
  });
});
