// Starts the real souk binary on a temp data dir with demo data, waits until it is
// ready, and stops it afterwards. It builds nothing: the binary comes from SOUK_BIN, or
// the newer of target/release/souk and target/debug/souk in the repository.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The souk binary to test: $SOUK_BIN, else the most recently built of release/debug. */
export function soukBinary() {
  if (process.env.SOUK_BIN) {
    const p = resolve(process.env.SOUK_BIN);
    if (!existsSync(p)) throw new Error(`SOUK_BIN=${process.env.SOUK_BIN}: no such file`);
    return p;
  }
  const candidates = ['target/release/souk', 'target/debug/souk']
    .map((p) => join(REPO_ROOT, p))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (candidates.length === 0) {
    throw new Error('no souk binary: run `cargo build --bin souk` first, or set SOUK_BIN');
  }
  return candidates[0];
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GET over HTTPS, trusting only the server's own self-signed certificate. */
export function httpsGet(url, ca, timeoutMs = 5000) {
  return new Promise((ok, fail) => {
    const req = request(url, { method: 'GET', ca, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => ok({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', fail);
    req.end();
  });
}

/**
 * Generates a demo marketplace in a fresh temp dir and serves it on a free port.
 * Returns { url, dataDir, bin, demo (stdout report), ca, logPath, stop() }.
 */
export async function startSouk({ products = Number(process.env.SOUK_BROWSER_PRODUCTS || 300) } = {}) {
  const bin = soukBinary();
  const dir = mkdtempSync(join(tmpdir(), 'souk-browser-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const logPath = join(dir, 'souk.log');
  const log = createWriteStream(logPath);
  // souk reads every SOUK_* variable as a config key and refuses unknown ones, so only
  // SOUK_<SECTION>__<KEY> overrides are passed on: never the harness's own SOUK_BIN,
  // SOUK_SCREENSHOTS, SOUK_BROWSER_*, nor other tools' (.ci/run exports SOUK_TEST_SMTP_DIR).
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SOUK_') || (k.includes('__') && !k.startsWith('SOUK_BROWSER_'))),
  );
  const env = {
    ...inherited,
    // Real card payments are never possible here: the test gateway takes test numbers only.
    SOUK_PAYMENTS__TEST_GATEWAY: 'true',
    // A browser fetches a page and its assets in bursts; the limit is not under test here.
    SOUK_HTTP__RATE_LIMIT__PER_SECOND: '100000',
    SOUK_HTTP__RATE_LIMIT__BURST: '100000',
    SOUK_HTTP__SHUTDOWN_GRACE_SECS: '5',
    SOUK_TELEMETRY__LEVEL: process.env.SOUK_TELEMETRY__LEVEL || 'warn',
  };
  // cwd is the temp dir, so a developer's ./config.toml never changes what is tested.
  const args = ['--data', dataDir, 'demo', '--products', String(products), '--listen', `127.0.0.1:${port}`];
  console.log(`# souk: ${bin} ${args.join(' ')}`);
  const child = spawn(bin, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let exited = null;
  child.stdout.on('data', (c) => {
    stdout += c;
    log.write(c);
  });
  child.stderr.on('data', (c) => log.write(c));
  child.on('exit', (code, signal) => (exited = { code, signal }));
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  const logTail = () => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n');
    } catch {
      return '';
    }
  };
  const fail = async (why) => {
    child.kill('SIGKILL');
    await sleep(200);
    throw new Error(`${why}\n--- souk output (last lines of ${logPath}) ---\n${logTail()}`);
  };

  // Demo generation plus the first start: generous, a debug build on 2 busy cores is slow.
  const startDeadline = Date.now() + Number(process.env.SOUK_BROWSER_START_TIMEOUT_MS || 300000);
  while (!/souk: listening on /.test(stdout)) {
    if (exited) await fail(`souk exited (${JSON.stringify(exited)}) before listening`);
    if (Date.now() > startDeadline) await fail('souk did not start listening in time');
    await sleep(100);
  }
  const ca = readFileSync(join(dataDir, 'keys', 'tls-cert.pem'));
  const waitFor = async (path, what) => {
    let last = '';
    while (Date.now() < startDeadline) {
      if (exited) await fail(`souk exited (${JSON.stringify(exited)}) while waiting for ${what}`);
      try {
        const r = await httpsGet(url + path, ca);
        if (r.status === 200) return r;
        last = `${r.status} ${r.body.slice(0, 200)}`;
      } catch (e) {
        last = String(e.message || e);
      }
      await sleep(250);
    }
    await fail(`${what} (${path}) did not answer 200 in time; last answer: ${last}`);
  };
  await waitFor('/ready', 'readiness');
  // The search index is built from the catalog after start; pages use it.
  await waitFor('/api/v1/search?q=a&limit=1', 'the search index');

  const stop = async () => {
    process.off('exit', killOnExit);
    if (!exited) {
      child.kill('SIGTERM');
      const deadline = Date.now() + 15000;
      while (!exited && Date.now() < deadline) await sleep(100);
      if (!exited) child.kill('SIGKILL');
      while (!exited) await sleep(50);
    }
    log.end();
    if (process.env.SOUK_BROWSER_KEEP) {
      console.log(`# souk data dir kept: ${dir}`);
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
    return exited;
  };
  return { url, dir, dataDir, bin, demo: stdout, ca, logPath, logTail, stop, isRunning: () => !exited };
}
