// helpers.mjs -- start a real `bellows serve` on 127.0.0.1 with a temporary store.
// The binary and the demo models come from the build: BELLOWS_BIN and BELLOWS_TEST_MODELS
// (ctest sets both). Every wait is bounded.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

export const BIN = process.env.BELLOWS_BIN ?? new URL('../../build/src/bellows', import.meta.url).pathname;
export const MODELS = process.env.BELLOWS_TEST_MODELS ?? new URL('../../build/models', import.meta.url).pathname;
export const DEMO_GGUF = join(MODELS, 'demo.gguf');
export const CTX4K_GGUF = join(MODELS, 'ctx4k.gguf');

// No test reaches the internet: a server's registry requests (libcurl reads these) go to a
// closed local port, except those for 127.0.0.1 (the fake registry of pull.test.mjs).
export const NO_INTERNET = { https_proxy: 'http://127.0.0.1:9', http_proxy: 'http://127.0.0.1:9', no_proxy: '127.0.0.1,localhost' };

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts a server; env adds BELLOWS_* settings. Returns { url, port, proc, store, log(), stop() }.
export async function startServer(env = {}) {
  const port = await freePort();
  // A caller's own store (env.BELLOWS_MODELS) is kept at stop, for a restart on it.
  const ownStore = env.BELLOWS_MODELS === undefined;
  const store = ownStore ? mkdtempSync(join(tmpdir(), 'bellows-api-')) : env.BELLOWS_MODELS;
  // Saved KV states go to a temporary directory unless the test names one: no test writes
  // into ~/.local/state.
  const ownKv = env.BELLOWS_KV_CACHE_DIR === undefined;
  const kvDir = ownKv ? mkdtempSync(join(tmpdir(), 'bellows-kv-')) : env.BELLOWS_KV_CACHE_DIR;
  let log = '';
  const proc = spawn(BIN, ['serve'], {
    env: {
      ...process.env,
      BELLOWS_HOST: `127.0.0.1:${port}`,
      BELLOWS_MODELS: store,
      BELLOWS_DEMO_MODEL: DEMO_GGUF,
      BELLOWS_NUM_THREADS: '2',
      BELLOWS_KV_CACHE_DIR: kvDir,
      ...NO_INTERNET,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const url = `http://127.0.0.1:${port}`;
  let up = false;
  for (let i = 0; i < 200 && !up && proc.exitCode === null; i++) {
    try {
      const r = await fetch(url + '/health');
      up = r.ok;
    } catch { await sleep(50); }
  }
  if (!up) {
    proc.kill('SIGKILL');
    if (ownKv) rmSync(kvDir, { recursive: true, force: true });
    throw new Error(`bellows serve did not start:\n${log}`);
  }
  return {
    url, port, proc, store, kvDir,
    log: () => log,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        for (let i = 0; i < 100 && proc.exitCode === null; i++) await sleep(50);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      if (ownStore) rmSync(store, { recursive: true, force: true });
      if (ownKv) rmSync(kvDir, { recursive: true, force: true });
    },
  };
}

// Reads a whole NDJSON streaming response into an array of objects.
export async function ndjson(res) {
  const text = await res.text();
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

export async function post(url, path, body, headers = {}) {
  return fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
