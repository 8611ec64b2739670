// Start and stop a real `loci serve` for a test, and run one-shot `loci`
// commands. Every process and temp directory made here is remembered and
// cleaned up by cleanup(); each test file calls `after(cleanup)`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const LOCI_BIN = process.env.LOCI_BIN || join(REPO, 'build/loci');

const live = new Set(); // child processes not yet exited
const tempDirs = new Set();
const cleanups = [];

/** A fresh temp directory, removed by cleanup(). */
export function tempDir(prefix = 'loci-e2e-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/** Register an async clean-up step (run by cleanup(), last registered first). */
export function onCleanup(fn) {
  cleanups.push(fn);
}

/** Kill leftover processes, run registered clean-ups, remove temp dirs. */
export async function cleanup() {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await Promise.all([...live].map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', r)))));
  live.clear();
  while (cleanups.length) {
    const fn = cleanups.pop();
    try {
      await fn();
    } catch (e) {
      console.error('cleanup step failed:', e.message);
    }
  }
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

// A process that dies with the test file must not leave servers behind.
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

function checkBin() {
  if (!existsSync(LOCI_BIN)) throw new Error(`loci binary not found at ${LOCI_BIN}: run 'make build' or set LOCI_BIN`);
}

/** The environment for a child: ours without any LOCI_* configuration, plus extra. */
function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('LOCI_')) env[k] = v;
  }
  return { ...env, ...extra };
}

function parseLine(line) {
  try {
    const o = JSON.parse(line);
    return o && typeof o === 'object' ? o : { raw: line };
  } catch {
    return { raw: line };
  }
}

/**
 * Start `loci serve --port 0 --data-dir <dataDir or a fresh dir> --web-dir <webDir or ''>`
 * plus args, wait for the "listening" log line and return
 * { url, port, proc, logs(), dump(), waitLog(pred, ms, what), waitExit(ms), stop(signal) }.
 * logs() is every stderr line so far, parsed as JSON ({raw} when not JSON).
 * stdout() is everything printed on stdout so far (the first-admin setup
 * link goes there, never to the log); waitStdout(re, ms) resolves to the
 * first match of re in it. dataDir and dbUrl say where the server keeps its
 * data (for `loci` commands and direct database checks).
 * stop(signal = 'SIGTERM') resolves to the exit code (null when killed by a
 * signal); the process is SIGKILLed if it has not exited after 10 s.
 */
export async function startServer({ env = {}, args = [], dbUrl, webDir = '', dataDir = tempDir() } = {}) {
  checkBin();
  const argv = ['serve', '--port', '0', '--data-dir', dataDir, '--web-dir', webDir];
  if (dbUrl) argv.push('--database-url', dbUrl);
  argv.push(...args);
  const proc = spawn(LOCI_BIN, argv, { env: childEnv(env), cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const lines = [];
  const waiters = new Set();
  let partial = '';
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    for (const w of waiters) w();
  });
  proc.stderr.setEncoding('utf8').on('data', (d) => {
    partial += d;
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      if (!line.trim()) continue;
      lines.push(parseLine(line));
      for (const w of waiters) w();
    }
  });
  let exitInfo = null;
  const exited = new Promise((res) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      exitInfo = { code, signal };
      res(exitInfo);
      for (const w of [...waiters]) w();
    });
  });

  const logs = () => lines.slice();
  const dump = () => lines.map((l) => (l.raw !== undefined ? l.raw : JSON.stringify(l))).join('\n');

  /** Wait until a log line satisfies pred; resolves to that line. */
  function waitLog(pred, ms = 5000, what = 'a matching log line') {
    return new Promise((res, rej) => {
      const check = () => {
        const hit = lines.find(pred);
        if (hit) return done(null, hit);
        if (exitInfo) return done(new Error(`server exited (${JSON.stringify(exitInfo)}) before ${what}; stderr:\n${dump()}`));
        return undefined;
      };
      const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what}; stderr:\n${dump()}`)), ms);
      const done = (err, v) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (err) rej(err);
        else res(v);
      };
      waiters.add(check);
      check();
    });
  }

  /** Wait until stdout matches re; resolves to the match. */
  function waitStdout(re, ms = 5000) {
    return new Promise((res, rej) => {
      const check = () => {
        const m = re.exec(out);
        if (m) return done(null, m);
        if (exitInfo) return done(new Error(`server exited (${JSON.stringify(exitInfo)}) before stdout matched ${re}; stdout:\n${out}`));
        return undefined;
      };
      const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for stdout to match ${re}; stdout:\n${out}`)), ms);
      const done = (err, v) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (err) rej(err);
        else res(v);
      };
      waiters.add(check);
      check();
    });
  }

  /** The exit ({code, signal}) if it comes within ms, else 'timeout'. */
  function waitExit(ms) {
    let timer;
    const t = new Promise((r) => (timer = setTimeout(() => r('timeout'), ms)));
    return Promise.race([exited, t]).finally(() => clearTimeout(timer));
  }

  async function stop(signal = 'SIGTERM', ms = 10000) {
    if (!exitInfo) proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
    const { code } = await exited;
    clearTimeout(timer);
    return code;
  }

  let listening;
  try {
    listening = await waitLog((l) => l.msg === 'listening', 10000, 'the "listening" log line');
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  if (typeof listening.url !== 'string' || !/^https?:\/\/.+:\d+$/.test(listening.url)) {
    proc.kill('SIGKILL');
    throw new Error(`"listening" log line has no usable url: ${JSON.stringify(listening)}`);
  }
  const url = listening.url;
  const stdout = () => out;
  return { url, port: Number(new URL(url).port), proc, dataDir, dbUrl, logs, dump, stdout, waitLog, waitStdout, waitExit, stop };
}

/**
 * Run `loci ...args` to completion: resolves to { code, signal, stdout,
 * stderr, timedOut }, run in a fresh temp directory. A command
 * still running after timeoutMs (e.g. a `serve` that should have refused to
 * start) is killed and reported with timedOut: true. input, when given, is
 * written to the command's standard input (else stdin is closed).
 */
export function runLoci(args, { env = {}, timeoutMs = 5000, input } = {}) {
  checkBin();
  const cwd = tempDir();
  return new Promise((res, rej) => {
    const proc = spawn(LOCI_BIN, args, { env: childEnv(env), cwd, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (input !== undefined) {
      proc.stdin.on('error', () => {});
      proc.stdin.end(input);
    }
    live.add(proc);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    proc.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, timeoutMs);
    proc.on('error', (e) => {
      clearTimeout(timer);
      live.delete(proc);
      rej(e);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(proc);
      res({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Run any program to completion: { code, stdout, stderr }. */
export function run(cmd, args, { input, timeoutMs = 10000 } = {}) {
  return new Promise((res, rej) => {
    const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('error', (e) => {
      clearTimeout(timer);
      live.delete(proc);
      rej(e);
    });
    proc.on('close', (code) => {
      clearTimeout(timer);
      live.delete(proc);
      res({ code, stdout, stderr });
    });
    proc.stdin.on('error', () => {});
    proc.stdin.end(input ?? '');
  });
}

/** The access-log line ("msg":"request") for a request id, waiting for it. */
export function accessLog(server, requestId, ms = 3000) {
  return server.waitLog((l) => l.msg === 'request' && l.request_id === requestId, ms, `the access log line for request ${requestId}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
