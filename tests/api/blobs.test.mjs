// Blob uploads (POST /api/blobs/sha256:<hex>) stream to disk while they are hashed: no size
// cap beyond the disk, constant server memory, nothing left behind on a digest mismatch, a
// full disk or a client that goes away. The JSON routes keep BELLOWS_MAX_BODY.
//
// Nothing large sits in the test's memory or disk: the 200 MiB body is generated on the fly
// from a seeded PRNG (twice: once to hash it, once to send it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { createReadStream, readFileSync, readdirSync, statSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import http from 'node:http';
import net from 'node:net';
import { startServer, freePort, BIN, DEMO_GGUF } from './helpers.mjs';

const MiB = 1 << 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let srv, ollama;
before(async () => {
  // A small BELLOWS_MAX_BODY shows that the limit holds for JSON and not for blobs; no demo
  // model, so the blobs directory starts empty and holds only what the tests upload.
  srv = await startServer({ BELLOWS_MAX_BODY: '1M', BELLOWS_DEMO_MODEL: '/nonexistent/demo.gguf' });
  ollama = new Ollama({ host: srv.url });
});
after(async () => { await srv?.stop(); });

// ---- helpers ------------------------------------------------------------------------------

// n bytes from a seeded xorshift32, in 1 MiB chunks (a fresh Buffer each: the sender may
// still hold the last one).
function* seeded(seed, n) {
  let x = seed >>> 0 || 1;
  for (let done = 0; done < n;) {
    const len = Math.min(MiB, n - done);
    const buf = Buffer.allocUnsafe(len + 3 & ~3);
    const w = new Uint32Array(buf.buffer, buf.byteOffset, buf.length >> 2);
    for (let i = 0; i < w.length; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      w[i] = x;
    }
    done += len;
    yield buf.subarray(0, len);
  }
}

function digestOf(chunks) {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return 'sha256:' + h.digest('hex');
}

// POST chunks (an iterable of Buffers) with node:http: with Content-Length `length`, or
// chunked when length is null. opts.onWritten(bytes) runs after each write; returning
// 'abort' destroys the request there (a client that goes away). Resolves {status, body}.
async function upload(url, digest, chunks, length, opts = {}) {
  const u = new URL(`${url}/api/blobs/${digest}`);
  const headers = length == null ? {} : { 'Content-Length': String(length) };
  const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers });
  const res = new Promise((resolve, reject) => {
    req.on('response', (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (d) => { body += d; });
      r.on('end', () => resolve({ status: r.statusCode, body }));
      r.on('error', reject);
    });
    req.on('error', reject);
  });
  res.catch(() => {}); // observed below; an aborted request rejects on purpose
  let sent = 0;
  for (const c of chunks) {
    if (!req.write(c)) await Promise.race([once(req, 'drain'), res]);
    sent += c.length;
    if (opts.onWritten && (await opts.onWritten(sent)) === 'abort') {
      req.destroy();
      return { aborted: true, sent };
    }
  }
  req.end();
  return res;
}

const blobsDir = (store) => join(store, 'blobs');
const listBlobs = (dir) => readdirSync(dir).sort();
const temps = (dir) => listBlobs(dir).filter((f) => f.startsWith('.tmp-'));

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSafe(`/proc/${pid}/status`));
  return m ? Number(m[1]) : NaN;
}
function readFileSafe(p) {
  try { return readFileSync(p, 'utf8'); } catch { return ''; }
}

async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function fileDigest(path) {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c);
  return 'sha256:' + h.digest('hex');
}

// ---- tests --------------------------------------------------------------------------------

test('BELLOWS_MAX_BODY still holds for the JSON routes; a blob upload goes past it', async () => {
  const big = JSON.stringify({ model: 'x', prompt: 'y'.repeat(2 * MiB) });
  for (const path of ['/api/generate', '/api/chat', '/api/create', '/v1/chat/completions']) {
    const r = await fetch(srv.url + path, { method: 'POST', body: big });
    assert.equal(r.status, 413, path);
    assert.match((await r.json()).error, /request body is larger than 1048576 bytes/);
  }
  const digest = digestOf(seeded(7, 3 * MiB));
  const r = await upload(srv.url, digest, seeded(7, 3 * MiB), 3 * MiB);
  assert.equal(r.status, 201, r.body);
  assert.equal(statSync(join(blobsDir(srv.store), digest.replace(':', '-'))).size, 3 * MiB);
  // a digest that is not one is refused before the body
  const bad = await fetch(`${srv.url}/api/blobs/sha256:xyz`, { method: 'POST', body: 'abc' });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /invalid digest/);
  assert.deepEqual(temps(blobsDir(srv.store)), []);
});

test('a 200 MiB upload streams to disk: the server RSS stays flat, the blob exists afterwards', async () => {
  const N = 200 * MiB, SEED = 0x5eed;
  const digest = digestOf(seeded(SEED, N));
  const pid = srv.proc.pid;
  assert.equal((await fetch(`${srv.url}/api/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  const before = rssKiB(pid);
  assert.ok(before > 0, 'VmRSS readable');
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, rssKiB(pid)); }, 25);
  const t0 = Date.now();
  let r;
  try {
    r = await upload(srv.url, digest, seeded(SEED, N), N, { onWritten: () => { peak = Math.max(peak, rssKiB(pid)); } });
  } finally {
    clearInterval(sampler);
  }
  const secs = (Date.now() - t0) / 1000;
  const afterRss = rssKiB(pid);
  console.log(`# 200 MiB upload: ${secs.toFixed(1)} s; server VmRSS before ${before} KiB, peak ${peak} KiB, after ${afterRss} KiB`);
  assert.equal(r.status, 201, r.body);
  assert.ok(peak - before < 20 * 1024, `RSS grew by ${peak - before} KiB while streaming`);
  assert.ok(afterRss - before < 20 * 1024, `RSS grew by ${afterRss - before} KiB`);
  assert.equal((await fetch(`${srv.url}/api/blobs/${digest}`, { method: 'HEAD' })).status, 200);
  assert.equal(statSync(join(blobsDir(srv.store), digest.replace(':', '-'))).size, N);
  assert.deepEqual(temps(blobsDir(srv.store)), []);

  // the same blob again, chunked this time: kept as it was (same inode), 200
  const ino = statSync(join(blobsDir(srv.store), digest.replace(':', '-'))).ino;
  const again = await upload(srv.url, digest, seeded(SEED, 8 * MiB), null);
  assert.equal(again.status, 200, again.body);
  assert.equal(statSync(join(blobsDir(srv.store), digest.replace(':', '-'))).ino, ino);
});

test('a GGUF uploaded this way (streamed, chunked) becomes a model through ollama.create({files}) that chats', async () => {
  const digest = await fileDigest(DEMO_GGUF);
  const url = `${srv.url}/api/blobs/${digest}`;
  assert.equal((await fetch(url, { method: 'HEAD' })).status, 404);
  const r = await fetch(url, { method: 'POST', body: Readable.toWeb(createReadStream(DEMO_GGUF)), duplex: 'half' });
  assert.equal(r.status, 201, await r.text());
  assert.equal((await fetch(url, { method: 'HEAD' })).status, 200);
  const statuses = [];
  for await (const p of await ollama.create({ model: 'uploaded', files: { 'model.gguf': digest }, stream: true })) statuses.push(p.status);
  assert.equal(statuses.at(-1), 'success', JSON.stringify(statuses));
  const chat = await ollama.chat({ model: 'uploaded', messages: [{ role: 'user', content: 'Hello' }], options: { temperature: 0, num_predict: 4 } });
  assert.equal(chat.done, true);
  assert.equal(chat.message.role, 'assistant');
  assert.ok(chat.eval_count > 0);
  assert.ok((await ollama.list()).models.some((m) => m.name === 'uploaded:latest'));
});

test('a digest mismatch is a 400 and leaves no file (no blob, no temporary)', async () => {
  const dir = blobsDir(srv.store);
  const before = listBlobs(dir);
  const wrong = digestOf(seeded(99, 1000)); // the digest of other bytes
  for (const length of [5 * MiB, null]) { // with Content-Length and chunked
    const r = await upload(srv.url, wrong, seeded(98, 5 * MiB), length);
    assert.equal(r.status, 400, r.body);
    assert.match(JSON.parse(r.body).error, /digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/);
    assert.deepEqual(listBlobs(dir), before);
  }
  assert.equal((await fetch(`${srv.url}/api/blobs/${wrong}`, { method: 'HEAD' })).status, 404);
});

test('a client that disconnects mid-upload leaves nothing behind and the server keeps serving', async () => {
  const dir = blobsDir(srv.store);
  const before = listBlobs(dir);
  const N = 64 * MiB;
  const digest = digestOf(seeded(5, N));
  const r = await upload(srv.url, digest, seeded(5, N), N, {
    onWritten: async (sent) => {
      if (sent < 8 * MiB) return;
      // the server is writing a temporary file: go away now
      await waitFor(() => temps(dir).some((f) => statSync(join(dir, f)).size > 0), 5000, 'the temporary file');
      return 'abort';
    },
  });
  assert.ok(r.aborted);
  await waitFor(() => temps(dir).length === 0, 5000, 'the temporary file to go');
  assert.deepEqual(listBlobs(dir), before);
  assert.equal((await fetch(`${srv.url}/api/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  assert.equal((await fetch(srv.url + '/api/version')).status, 200);
  const small = digestOf(seeded(6, 100000));
  assert.equal((await upload(srv.url, small, seeded(6, 100000), 100000)).status, 201);
});

test('a Content-Length beyond the free disk is refused before the body (507)', async () => {
  const digest = digestOf(seeded(11, 10));
  // raw socket: the answer comes before any body is sent, then the server closes
  const sock = net.connect(srv.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(`POST /api/blobs/${digest} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${2 ** 60}\r\nExpect: 100-continue\r\n\r\n`);
  let text = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => { text += d; });
  await Promise.race([once(sock, 'end'), sleep(5000)]);
  sock.destroy();
  assert.match(text, /^HTTP\/1\.1 507/);
  assert.doesNotMatch(text, /100 Continue/);
  assert.match(text, /not enough disk space/);
  assert.deepEqual(temps(blobsDir(srv.store)), []);
});

// A server whose store is a 40 MiB tmpfs in its own mount namespace (unshare), so that
// the disk really fills. Skipped where unprivileged namespaces are not allowed.
function canUnshare() {
  const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c',
    'd=$(mktemp -d) && mount -t tmpfs -o size=1m none "$d" && umount "$d"; rc=$?; rmdir "$d"; exit $rc'], { timeout: 10000 });
  return r.status === 0;
}

test('a full disk: 507 up front from Content-Length, 507 on ENOSPC mid-stream, nothing left', { skip: !canUnshare() && 'no unprivileged mount namespaces (unshare)' }, async () => {
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'bellows-full-'));
  const proc = spawn('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c',
    'mount -t tmpfs -o size=40m bellows-test "$0" && exec "$@"', store, BIN, 'serve'], {
    env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${port}`, BELLOWS_MODELS: store, BELLOWS_DEMO_MODEL: '/nonexistent/demo.gguf',
      BELLOWS_KV_CACHE_DISK: '0' /* never into ~ */ },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(async () => { try { return (await fetch(url + '/health')).ok; } catch { return false; } }, 10000, `the server:\n${log}`);
    const dir = join(`/proc/${proc.pid}/root`, store, 'blobs'); // the tmpfs, seen from outside
    assert.ok(existsSync(dir), dir);
    const N = 60 * MiB;
    const digest = digestOf(seeded(21, N));
    const up = await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.write(`POST /api/blobs/${digest} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${N}\r\nExpect: 100-continue\r\n\r\n`));
      let text = '';
      sock.setEncoding('utf8');
      sock.on('data', (d) => { text += d; });
      sock.on('close', () => resolve(text));
      setTimeout(() => sock.destroy(), 5000);
    });
    assert.match(up, /^HTTP\/1\.1 507/);
    assert.match(up, /not enough disk space: the blob is 62914560 bytes/);

    // chunked: no size up front, the disk fills while writing
    const r = await upload(url, digest, seeded(21, N), null);
    assert.equal(r.status, 507, r.body);
    assert.match(JSON.parse(r.body).error, /no space left on device/);
    assert.deepEqual(listBlobs(dir), [], 'no blob and no temporary on the full disk');
    // the space is back: a small upload works
    const small = digestOf(seeded(22, 4 * MiB));
    assert.equal((await upload(url, small, seeded(22, 4 * MiB), null)).status, 201);
  } finally {
    proc.kill('SIGTERM');
    await Promise.race([once(proc, 'exit'), sleep(5000)]);
    if (proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(store, { recursive: true, force: true });
  }
});
