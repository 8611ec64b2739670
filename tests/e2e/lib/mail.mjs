// A real SMTP server on loopback (the smtp-server package) that keeps every
// message it receives, for mail round trips: the server under test sends,
// the test reads the link out of the mail and follows it.
import { SMTPServer } from 'smtp-server';
import { rememberSecret } from './users.mjs';
import { onCleanup } from './server.mjs';

/** Split a raw RFC 5322 message (8bit text/plain, as Loci sends) into headers and text. */
export function parseMessage(raw) {
  const end = raw.indexOf('\r\n\r\n');
  const head = end >= 0 ? raw.slice(0, end) : raw;
  const body = end >= 0 ? raw.slice(end + 4) : '';
  const headers = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, subject: headers.subject || '', text: body.replace(/\r\n/g, '\n') };
}

/**
 * Start an SMTP server on 127.0.0.1, port 0 (no AUTH, no STARTTLS, so
 * curl's opportunistic STARTTLS is skipped). Resolves to
 *   { url, port, messages(), waitFor(pred, ms, what), args }
 * where each message is { from, to: [addresses], headers, subject, text, raw }
 * and args are the `loci serve` flags that send mail through it.
 * Closed by cleanup().
 */
export async function startSmtp() {
  const messages = [];
  const waiters = new Set();
  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true, // a reverse DNS lookup per connection can stall for seconds here
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          ...parseMessage(raw),
        });
        for (const w of [...waiters]) w();
        callback();
      });
    },
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', () => {});
  const port = server.server.address().port;
  onCleanup(() => new Promise((r) => server.close(() => r())));

  /** Wait for a message satisfying pred (resolves to it). */
  function waitFor(pred, ms = 8000, what = 'a matching mail') {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = messages.find(pred);
        if (hit) done(null, hit);
      };
      const timer = setTimeout(
        () => done(new Error(`no ${what} within ${ms} ms; got ${messages.length} mail(s): ${JSON.stringify(messages.map((m) => ({ to: m.to, subject: m.subject })))}`)),
        ms,
      );
      const done = (err, v) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (err) reject(err);
        else resolve(v);
      };
      waiters.add(check);
      check();
    });
  }

  const url = `smtp://127.0.0.1:${port}`;
  return {
    url,
    port,
    messages: () => messages.slice(),
    waitFor,
    args: ['--smtp-url', url, '--mail-from', 'loci@test.local', '--jobs-poll-ms', '50'],
  };
}

/** The token of the link in a mail: .../verify-email?token=T or .../reset-password?token=T. */
export function linkToken(mail, kind) {
  const m = new RegExp(`/${kind}\\?token=([A-Za-z0-9_-]+)`).exec(mail.text);
  if (!m) throw new Error(`no /${kind}?token= link in the mail:\n${mail.text}`);
  return rememberSecret(m[1]);
}
