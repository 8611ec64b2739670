// `loci ai test` as an operator uses it: against a working model server,
// a dead one and a wrong key; the chain and breakers in /health/detailed;
// bad AI settings refused at start; the API key never printed or logged.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStandIn } from '../standin/server.mjs';
import { cleanup, runLoci, startServer, tempDir } from './lib/server.mjs';

after(cleanup);

const KEY = 'sk-e2e-secret-4711';
let standin;

before(async () => {
  standin = await startStandIn({ apiKey: KEY, dims: 16 });
});
after(async () => standin && (await standin.close()));

function aiArgs(base, { providers = 'openai,local', key = KEY } = {}) {
  return ['--ai-providers', providers, '--ai-base-url', `${base}/v1`, '--ai-api-key', key,
    '--ai-chat-model', 'standin-chat', '--ai-embed-model', 'standin-embed',
    '--ai-retries', '1', '--ai-backoff-base-ms', '10', '--ai-connect-timeout-ms', '1000',
    '--ai-first-byte-timeout-ms', '2000'];
}

async function aiTest(args, json = false) {
  return runLoci(['ai', 'test', ...(json ? ['--json'] : []), '--data-dir', tempDir(), ...args], { timeoutMs: 20000 });
}

describe('loci ai test', () => {
  test('a working chain: every check passes, each provider and the chain are timed', async () => {
    standin.reset();
    // chat, stream and the structured reply each get a scripted answer
    standin.script([
      { content: 'pong' },
      { content: 'pong' },
      { content: JSON.stringify({ terms: [{ term: 'Photosynthesis', summary: 'Light to chemical energy.' }], relations: [] }) },
      {}, // embeddings
      { content: 'Chlorophyll absorbs the light [1].' },
    ]);
    const r = await aiTest(aiArgs(standin.url));
    assert.equal(r.code, 0, `exit 0; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.match(r.stdout, /AI chain: openai,local/);
    for (const check of ['chat', 'stream', 'json', 'embed'])
      assert.match(r.stdout, new RegExp(`^openai\\s+${check}\\s+ok\\s+[\\d.]+`, 'm'), `openai ${check} ok`);
    for (const check of ['answer', 'json', 'embed'])
      assert.match(r.stdout, new RegExp(`^local\\s+${check}\\s+ok\\s+[\\d.]+`, 'm'), `local ${check} ok`);
    assert.match(r.stdout, /^chain\s+answer\s+ok\s+[\d.]+\s+answered by openai/m);
    assert.match(r.stdout, /16 dimensions \(openai:standin-embed:16\)/);
    assert.match(r.stdout, /all checks passed/);
    // the stand-in saw the configured model and the key
    const chats = standin.requests().filter((q) => q.path === '/v1/chat/completions');
    assert.equal(chats.length, 4);
    assert.equal(chats[0].body.model, 'standin-chat');
    assert.equal(chats[1].body.stream, true);
    assert.equal(chats[2].body.response_format.type, 'json_object');
    assert.equal(chats[0].headers.authorization, `Bearer ${KEY}`);
    assert.ok(!r.stdout.includes(KEY) && !r.stderr.includes(KEY), 'the key is never printed');
  });

  test('--json gives a machine-readable report', async () => {
    standin.reset();
    const r = await aiTest(aiArgs(standin.url, { providers: 'local' }), true);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout);
    assert.equal(rep.chain, 'local');
    assert.equal(rep.ok, true);
    assert.deepEqual(rep.checks.map((c) => `${c.provider}/${c.check}`), ['local/answer', 'local/json', 'local/embed', 'chain/answer']);
    for (const c of rep.checks) {
      assert.equal(c.ok, true, JSON.stringify(c));
      assert.equal(typeof c.ms, 'number');
    }
    assert.match(rep.checks[2].detail, /384 dimensions \(local:hash-v1:384\)/);
    assert.equal(standin.requests().length, 0, 'local never touches the network');
  });

  test('a dead endpoint: the openai checks fail with the reason, local still answers, exit 1', async () => {
    const r = await aiTest(aiArgs('http://127.0.0.1:9'), true);
    assert.equal(r.code, 1, r.stderr);
    const rep = JSON.parse(r.stdout);
    assert.equal(rep.ok, false);
    const chat = rep.checks.find((c) => c.provider === 'openai' && c.check === 'chat');
    assert.equal(chat.ok, false);
    assert.match(chat.detail, /^connect: /);
    const chain = rep.checks.find((c) => c.provider === 'chain');
    assert.equal(chain.ok, true);
    assert.match(chain.detail, /answered by local/);
  });

  test('a wrong key: client_error with the status, not retried', async () => {
    standin.reset();
    const r = await aiTest(aiArgs(standin.url, { key: 'sk-wrong-key-0000' }));
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^openai\s+chat\s+FAIL\s+[\d.]+\s+client_error: HTTP 401/m);
    assert.match(r.stdout, /some checks failed/);
    const chats = standin.requests().filter((q) => q.path === '/v1/chat/completions');
    assert.equal(chats.length, 4, 'one request per model check and one for the chain: a 401 is not retried');
    assert.match(r.stdout, /^chain\s+answer\s+ok\s+[\d.]+\s+answered by local/m);
    assert.ok(!r.stderr.includes('sk-wrong-key-0000'), 'the key is not logged');
  });

  test('usage errors exit 2', async () => {
    const r = await runLoci(['ai', 'frobnicate', '--data-dir', tempDir()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: loci ai test/);
  });
});

describe('AI configuration', () => {
  test('bad settings stop the server naming the key', async () => {
    for (const [args, key] of [
      [['--ai-providers', 'openai,claude'], 'ai_providers'],
      [['--ai-providers', ''], 'ai_providers'],
      [['--ai-providers', 'openai', '--ai-base-url', 'file:///etc/passwd'], 'ai_base_url'],
      [['--ai-json-mode', 'xml'], 'ai_json_mode'],
      [['--ai-retries', '-1'], 'ai_retries'],
      [['--ai-providers', 'openai', '--ai-headers', 'bad header'], 'ai_headers'],
    ]) {
      const r = await runLoci(['serve', '--port', '0', '--data-dir', tempDir(), '--web-dir', '', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')} -> exit 2; stderr: ${r.stderr}`);
      assert.ok(r.stderr.includes(key), `names ${key}: ${r.stderr}`);
    }
  });

  test('loci config masks the API key and the extra headers', async () => {
    const r = await runLoci(['config', '--data-dir', tempDir(), '--ai-api-key', KEY, '--ai-headers', 'X-Token: hush-hush']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ai_api_key = \S+\s+# flag$/m);
    assert.ok(!r.stdout.includes(KEY) && !r.stdout.includes('hush-hush'));
  });

  test('/health/detailed shows the chain and each breaker', async () => {
    const s = await startServer({ args: aiArgs(standin.url) });
    const h = await (await fetch(`${s.url}/health/detailed`)).json();
    assert.deepEqual(h.ai, { chain: 'openai,local', providers: [{ name: 'openai', breaker: 'closed' }, { name: 'local', breaker: 'closed' }] });
    const listening = s.logs().find((l) => l.msg === 'listening');
    assert.equal(listening.ai, 'openai,local');
    assert.ok(!JSON.stringify(s.logs()).includes(KEY), 'the key is not logged');
    await s.stop();
  });
});
