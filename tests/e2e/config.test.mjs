// Configuration: bad values exit 2 with a message naming the key, the value
// and what is accepted; precedence flag > env > file > default; secrets
// masked; --help and unknown commands.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanup, runLoci, tempDir } from './lib/server.mjs';

after(cleanup);

/** `loci serve` that must refuse to start: exit 2, nothing listening. */
async function refuses(args, env = {}) {
  const r = await runLoci(['serve', '--data-dir', tempDir(), '--web-dir', '', ...args], { env });
  assert.equal(r.timedOut, false, `'loci serve ${args.join(' ')}' started instead of refusing; stderr:\n${r.stderr}`);
  assert.equal(r.code, 2, `exit status 2; stderr:\n${r.stderr}`);
  assert.ok(!/"msg":"listening"/.test(r.stderr), 'it never listened');
  assert.ok(r.stderr.trim().length > 0, 'it says why on stderr');
  return r.stderr;
}

/** Every pattern occurs in text. */
function mentions(text, ...patterns) {
  for (const p of patterns) {
    if (p instanceof RegExp) assert.match(text, p);
    else assert.ok(text.includes(p), `expected ${JSON.stringify(p)} in:\n${text}`);
  }
}

/** `loci config` output as {key: {value, source}}. */
function parseConfig(stdout) {
  const out = {};
  for (const line of stdout.split('\n')) {
    const m = /^(\w+) = (.*?)\s+# (\w+)$/.exec(line);
    if (m) out[m[1]] = { value: m[2], source: m[3] };
  }
  return out;
}

describe('bad configuration exits 2 and says what is wrong', () => {
  test('--port 70000', async () => {
    mentions(await refuses(['--port', '70000']), /\bport\b/, '70000', /65535/);
  });

  test('LOCI_PORT=abc (environment)', async () => {
    mentions(await refuses([], { LOCI_PORT: 'abc' }), 'LOCI_PORT', "'abc'", /integer/);
  });

  test('--log-level loud', async () => {
    mentions(await refuses(['--port', '0', '--log-level', 'loud']), /log[_-]level/, 'loud', /debug/, /info/, /warn/);
  });

  test('--listen not-an-ip', async () => {
    mentions(await refuses(['--port', '0', '--listen', 'not-an-ip']), /\blisten\b/, 'not-an-ip', /IPv4|IPv6|address/);
  });

  test("--cors-origins '*'", async () => {
    mentions(await refuses(['--port', '0', '--cors-origins', '*']), /cors[_-]origins/, "'*'", /https?:\/\//);
  });

  test('a config file with port = -1 names the file and the line', async () => {
    const dir = tempDir();
    const file = join(dir, 'loci.conf');
    writeFileSync(file, '# e2e config\nlog_level = info\nport = -1\n');
    mentions(await refuses(['--config', file]), `${file}:3`, /\bport\b/, '-1', /65535/);
  });

  test('a config file with an unknown key names the file, the line and the key', async () => {
    const dir = tempDir();
    const file = join(dir, 'loci.conf');
    writeFileSync(file, 'port = 0\nbogus_key = 1\n');
    mentions(await refuses(['--config', file]), `${file}:2`, 'bogus_key');
  });

  test('a missing config file', async () => {
    const file = join(tempDir(), 'nope.conf');
    mentions(await refuses(['--config', file]), file);
  });

  test('an unknown flag --nope x', async () => {
    mentions(await refuses(['--port', '0', '--nope', 'x']), '--nope', /unknown/i, /--help/);
  });

  test('a flag without a value', async () => {
    mentions(await refuses(['--port']), '--port');
  });

  test('--tls-cert without --tls-key', async () => {
    const cert = join(tempDir(), 'cert.pem');
    writeFileSync(cert, 'not really a certificate\n');
    mentions(await refuses(['--port', '0', '--tls-cert', cert]), /tls[_-]cert/, /tls[_-]key/);
  });

  test('--tls-cert naming a file that does not exist', async () => {
    const dir = tempDir();
    mentions(await refuses(['--port', '0', '--tls-cert', join(dir, 'missing.pem'), '--tls-key', join(dir, 'missing.key')]), /tls[_-]cert/, 'missing.pem');
  });

  test('--max-body-bytes 0', async () => {
    mentions(await refuses(['--port', '0', '--max-body-bytes', '0']), /max_body_bytes|max-body-bytes/, "'0'");
  });
});

describe('loci config', () => {
  test('precedence: flag beats env beats file beats default', async () => {
    const dir = tempDir();
    const file = join(dir, 'loci.conf');
    writeFileSync(file, '# e2e\nport = 1111\nlog_level = warn\nmax_body_bytes = 4096\n');

    const all = await runLoci(['config', '--config', file, '--port', '3333'], { env: { LOCI_PORT: '2222', LOCI_LOG_LEVEL: 'error' } });
    assert.equal(all.code, 0, all.stderr);
    const c = parseConfig(all.stdout);
    assert.deepEqual(c.port, { value: '3333', source: 'flag' });
    assert.deepEqual(c.log_level, { value: 'error', source: 'env' });
    assert.deepEqual(c.max_body_bytes, { value: '4096', source: 'file' });
    assert.deepEqual(c.listen, { value: '127.0.0.1', source: 'default' });
    assert.match(all.stdout, new RegExp(`config file: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

    const envFile = parseConfig((await runLoci(['config', '--config', file], { env: { LOCI_PORT: '2222' } })).stdout);
    assert.deepEqual(envFile.port, { value: '2222', source: 'env' });
    assert.deepEqual(envFile.log_level, { value: 'warn', source: 'file' });

    const fileOnly = parseConfig((await runLoci(['config', '--config', file])).stdout);
    assert.deepEqual(fileOnly.port, { value: '1111', source: 'file' });

    const none = parseConfig((await runLoci(['config'])).stdout);
    assert.deepEqual(none.port, { value: '8080', source: 'default' });
    assert.deepEqual(none.log_level, { value: 'info', source: 'default' });
  });

  test('a flag given as --key=value works like --key value', async () => {
    const r = await runLoci(['config', '--port=4444', '--log-level=debug']);
    assert.equal(r.code, 0, r.stderr);
    const c = parseConfig(r.stdout);
    assert.deepEqual(c.port, { value: '4444', source: 'flag' });
    assert.deepEqual(c.log_level, { value: 'debug', source: 'flag' });
  });

  test('masks the database password (flag, environment, query parameter)', async () => {
    const runs = [
      await runLoci(['config', '--database-url', 'postgres://u:secret@h/db']),
      await runLoci(['config'], { env: { LOCI_DATABASE_URL: 'postgres://u:secret@h/db' } }),
      await runLoci(['config', '--database-url', 'postgres://h/db?user=u&password=secret&sslmode=disable']),
    ];
    for (const r of runs) {
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stdout.includes('secret') && !r.stderr.includes('secret'), `the password is printed:\n${r.stdout}${r.stderr}`);
    }
    const c = parseConfig(runs[0].stdout);
    assert.match(c.database_url.value, /^postgres:\/\/u:.+@h\/db$/, 'the rest of the URL is still shown');
    assert.equal(c.database_url.source, 'flag');
    assert.match(parseConfig(runs[2].stdout).database_url.value, /sslmode=disable/);
  });

  test('lists every key that serve --help documents', async () => {
    const help = await runLoci(['serve', '--help']);
    const cfg = await runLoci(['config']);
    const keys = Object.keys(parseConfig(cfg.stdout));
    assert.ok(keys.length >= 10, `keys: ${keys}`);
    for (const k of keys) {
      assert.ok(help.stdout.includes(`--${k.replace(/_/g, '-')}`), `serve --help documents --${k.replace(/_/g, '-')}`);
      assert.ok(help.stdout.includes(`LOCI_${k.toUpperCase()}`), `serve --help documents LOCI_${k.toUpperCase()}`);
    }
  });
});

describe('command line', () => {
  test('loci --help exits 0 and lists the commands', async () => {
    const r = await runLoci(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['serve', 'migrate', 'config', 'routes', 'version']) assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  });

  test('loci serve --help exits 0, does not start a server, and documents the keys', async () => {
    const r = await runLoci(['serve', '--help']);
    assert.equal(r.timedOut, false);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--port/);
    assert.match(r.stdout, /LOCI_PORT/);
    assert.ok(!/listening/.test(r.stderr));
  });

  test('an unknown command exits 2 and names it', async () => {
    const r = await runLoci(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /frobnicate/);
  });

  test('no command at all exits 2 with the usage', async () => {
    const r = await runLoci([]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage/i);
  });
});
