// pull.test.mjs -- /api/pull against a fake Ollama-protocol registry (fake-registry.mjs) on
// 127.0.0.1: a bearer-token challenge, blob redirects to a second port, Range parts, a
// connection cut mid-blob, a stalled download given up and resumed, a corrupt blob, an
// unknown model, two clients on one pull. Pulls go through the npm `ollama` client and
// plain fetch. The server splits blobs into 4 MiB parts (BELLOWS_PULL_PART_MIN) so the
// 26 MB demo model comes in 4 parallel parts. Every loop and wait is bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { readFileSync, readdirSync, existsSync, rmSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, post, DEMO_GGUF } from './helpers.mjs';
import { startRegistry, MEDIA } from './fake-registry.mjs';

const MKMODEL = process.env.BELLOWS_MKMODEL ?? new URL('../../build/tools/bellows-mkmodel', import.meta.url).pathname;
const PART_MIN = 4 << 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let reg, srv, ollama;
const models = {}; // name -> { digests, config, model: digest of the model layer, size }

// A distinct runnable GGUF (the demo's shape, another seed): its own digest.
function mkmodel(seed) {
  const out = join(tmpdir(), `bellows-pull-${process.pid}-${seed}.gguf`);
  const r = spawnSync(MKMODEL, ['--seed', String(seed), '-o', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const data = readFileSync(out);
  rmSync(out, { force: true });
  return data;
}

function publish(name, modelData, mode) {
  const m = reg.addModel(`library/${name}`, [
    { mediaType: MEDIA.model, data: modelData, mode },
    // As Ollama's registry serves them: a Go template (kept, not rendered) and parameters.
    { mediaType: MEDIA.template, data: Buffer.from('{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ .Prompt }}') },
    { mediaType: MEDIA.params, data: Buffer.from(JSON.stringify({ stop: ['<|im_end|>'], temperature: 0.5 })) },
  ]);
  models[name] = { ...m, model: m.digests[0], size: modelData.length };
  return models[name];
}

// The part starts Bellows plans (registry/parts.c): n nearly equal parts.
function partStarts(total, n) {
  const base = Math.floor(total / n), extra = total % n, starts = [];
  for (let i = 0, off = 0; i < n; off += base + (i < extra ? 1 : 0), i++) starts.push(off);
  return starts;
}

const ref = (name) => `${reg.host}/library/${name}`;
const blobsDir = () => join(srv.store, 'blobs');
const blobFiles = () => readdirSync(blobsDir());
const hex = (digest) => digest.slice(7);

before(async () => {
  reg = await startRegistry({ auth: true });
  publish('tiny', mkmodel(101));
  publish('cut', mkmodel(102), 'cut-once');
  publish('stall', randomBytes(12 << 20), 'stall');
  publish('bad', randomBytes(9 << 20), 'corrupt');
  publish('shared', randomBytes(12 << 20), 'slow');
  publish('one', randomBytes(6 << 20), 'direct'); // served by the registry itself, behind the token
  publish('two', randomBytes(7 << 20));
  // Same model blob as the demo model the server installs: nothing to download.
  reg.addModel('someone/Demo-GGUF:Q8_0', [{ mediaType: MEDIA.model, data: readFileSync(DEMO_GGUF), mode: 'direct' }]);
  srv = await startServer({ BELLOWS_PULL_PART_MIN: String(PART_MIN) });
  ollama = new Ollama({ host: srv.url });
});

after(async () => {
  await srv?.stop();
  await reg?.close();
});

// Reads an NDJSON pull response line by line; onLine may return true to stop reading
// (the stream is cancelled when cancel is set, else left open).
async function readLines(res, onLine = () => false, { cancel = true, limitMs = 60000 } = {}) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  const lines = [];
  let buf = '';
  const t0 = Date.now();
  for (;;) {
    if (Date.now() - t0 > limitMs) throw new Error(`no end of the stream within ${limitMs} ms: ${JSON.stringify(lines.slice(-3))}`);
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      lines.push(line);
      if (onLine(line)) {
        if (cancel) await reader.cancel(); else reader.releaseLock();
        return lines;
      }
    }
  }
  return lines;
}

test('pull through the ollama client: Ollama progress, a token, a CDN redirect, 4 Range parts', async () => {
  const tokensBefore = reg.stats.tokens;
  const parts = [];
  for await (const p of await ollama.pull({ model: ref('tiny'), insecure: true, stream: true })) parts.push(p);
  const statuses = parts.map((p) => p.status);
  assert.equal(statuses[0], 'pulling manifest');
  assert.deepEqual(statuses.slice(-3), ['verifying sha256 digest', 'writing manifest', 'success']);
  const t = models.tiny;
  for (const d of [...t.digests, t.config]) {
    const mine = parts.filter((p) => p.digest === d);
    assert.ok(mine.length >= 1, `progress for ${d}`);
    assert.equal(mine[0].status, `pulling ${hex(d).slice(0, 12)}`);
    const last = mine[mine.length - 1];
    assert.equal(last.completed, last.total);
  }
  assert.equal(parts.find((p) => p.digest === t.model).total, t.size);
  // the 401 challenge was answered with a token, which never went to the CDN
  assert.ok(reg.stats.tokens > tokensBefore);
  assert.ok(reg.stats.tokenRequests.some((r) => r.service === 'fake-registry' && r.scope[0] === 'repository:library/tiny:pull'));
  assert.equal(reg.stats.cdnAuthorization, 0, 'the bearer token must not leave the registry');
  // 4 parallel Range parts of the 26 MB model, each asked once, every byte served once
  const ranges = reg.blob(t.model).requests;
  assert.equal(ranges.length, 4, JSON.stringify(ranges));
  assert.deepEqual(ranges.map((r) => Number(/bytes=(\d+)-/.exec(r)[1])).sort((a, b) => a - b), partStarts(t.size, 4));
  assert.equal(reg.served(t.model), t.size);
  // on disk: the manifest is the registry's bytes, the blobs are in place, no partial files
  const manifest = readFileSync(join(srv.store, 'manifests', reg.host, 'library', 'tiny', 'latest'), 'utf8');
  assert.equal(manifest, t.manifest);
  assert.ok(blobFiles().includes(`sha256-${hex(t.model)}`));
  assert.deepEqual(blobFiles().filter((f) => f.includes('partial')), []);
});

test('the pulled model lists, shows and chats', async () => {
  const { models: list } = await ollama.list();
  const m = list.find((x) => x.name === `${ref('tiny')}:latest`);
  assert.ok(m, JSON.stringify(list.map((x) => x.name)));
  assert.equal(m.details.family, 'qwen2');
  assert.equal(m.digest, createHash('sha256').update(models.tiny.manifest).digest('hex'));
  const show = await ollama.show({ model: ref('tiny') });
  assert.match(show.parameters, /temperature\s+0\.5/);
  assert.equal(show.model_info['general.architecture'], 'qwen2');
  const r = await ollama.chat({ model: ref('tiny'), messages: [{ role: 'user', content: 'Hello' }], options: { num_predict: 4, temperature: 0 } });
  assert.equal(r.done, true);
  assert.ok(r.eval_count > 0);
});

test('pulling it again downloads nothing; a model sharing the demo blob skips it', async () => {
  const served = reg.served(models.tiny.model);
  const r = await post(srv.url, '/api/pull', { model: ref('tiny'), insecure: true, stream: false });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'success' });
  assert.equal(reg.served(models.tiny.model), served);

  const demo = readFileSync(DEMO_GGUF);
  const digest = 'sha256:' + createHash('sha256').update(demo).digest('hex');
  const res = await post(srv.url, '/api/pull', { model: `${reg.host}/someone/Demo-GGUF:Q8_0`, insecure: true });
  const lines = await readLines(res);
  assert.equal(lines.at(-1).status, 'success');
  const layer = lines.find((l) => l.digest === digest);
  assert.equal(layer.completed, demo.length);
  assert.equal(reg.served(digest), 0, 'the blob was already in the store');
  assert.ok((await ollama.list()).models.some((m) => m.name === `${reg.host}/someone/Demo-GGUF:Q8_0`));
});

test('a connection cut in the middle of a blob resumes where it stopped', async () => {
  const c = models.cut;
  const r = await post(srv.url, '/api/pull', { model: ref('cut'), insecure: true, stream: false });
  assert.equal(r.status, 200, await r.clone().text());
  const served = reg.served(c.model);
  // The cut request got half its part; the retry asked for the rest only.
  const ranges = reg.blob(c.model).requests;
  assert.equal(ranges.length, 5, JSON.stringify(ranges));
  assert.ok(served >= c.size && served < c.size * 1.05, `served ${served} of ${c.size}`);
  const starts = ranges.map((x) => Number(/bytes=(\d+)-/.exec(x)[1]));
  const boundaries = partStarts(c.size, 4);
  assert.ok(starts.some((s) => !boundaries.includes(s)), `a retry from inside a part: ${JSON.stringify(ranges)}`);
  const file = readFileSync(join(blobsDir(), `sha256-${hex(c.model)}`));
  assert.equal('sha256:' + createHash('sha256').update(file).digest('hex'), c.model);
  const chat = await ollama.chat({ model: ref('cut'), messages: [{ role: 'user', content: 'Hi' }], options: { num_predict: 2 } });
  assert.equal(chat.done, true);
});

test('a pull given up by its only client stops; the next pull resumes from the partial file', async () => {
  const s = models.stall;
  const ac = new AbortController();
  const res = await fetch(`${srv.url}/api/pull`, { method: 'POST', body: JSON.stringify({ model: ref('stall'), insecure: true }), signal: ac.signal });
  assert.equal(res.status, 200);
  // Wait until the stalled parts have sent half of each range, then walk away.
  const t0 = Date.now();
  while (reg.served(s.model) < s.size / 2 && Date.now() - t0 < 20000) await sleep(50);
  assert.equal(reg.served(s.model), s.size / 2);
  ac.abort();
  // The server notices (within about a second), cancels, and closes its connections.
  const t1 = Date.now();
  while (reg.stalled() > 0 && Date.now() - t1 < 15000) await sleep(50);
  assert.equal(reg.stalled(), 0, 'the cancelled pull closed its connections');
  const progress = join(blobsDir(), `sha256-${hex(s.model)}-partial.parts`);
  const t2 = Date.now();
  let text = '';
  while (Date.now() - t2 < 10000) { // the last checkpoint records what is on disk
    text = existsSync(progress) ? readFileSync(progress, 'utf8') : '';
    const done = [...text.matchAll(/^part \d+ \d+ (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
    if (done === s.size / 2) break;
    await sleep(100);
  }
  assert.match(text, /^bellows-parts 1\n/);
  assert.ok(!(await ollama.list()).models.some((m) => m.name.includes('/stall:')), 'no manifest yet');

  reg.setMode(s.model, 'normal');
  const before = reg.served(s.model);
  const r = await post(srv.url, '/api/pull', { model: ref('stall'), insecure: true, stream: false });
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(reg.served(s.model) - before, s.size / 2, 'only the missing half was downloaded');
  assert.ok(blobFiles().includes(`sha256-${hex(s.model)}`));
  assert.ok(!existsSync(progress));
});

test('a blob whose bytes do not match its digest leaves no manifest and no blob', async () => {
  const b = models.bad;
  const before = new Set(blobFiles());
  let err;
  try {
    for await (const p of await ollama.pull({ model: ref('bad'), insecure: true, stream: true })) void p;
  } catch (e) { err = e; }
  assert.ok(err, 'the pull fails');
  assert.match(err.message, /^digest mismatch, file must be downloaded again: want sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}$/);
  assert.ok(err.message.includes(b.model));
  assert.ok(!existsSync(join(srv.store, 'manifests', reg.host, 'library', 'bad')), 'no manifest');
  const added = blobFiles().filter((f) => !before.has(f));
  assert.deepEqual(added.filter((f) => f.includes(hex(b.model))), [], 'nothing of the bad blob is kept');
  assert.deepEqual(added.filter((f) => !f.includes('partial')), [], 'no blob took its final name');
  assert.ok(!(await ollama.list()).models.some((m) => m.name.includes('/bad:')));
  // not streamed: the same words, with a status
  const r = await post(srv.url, '/api/pull', { model: ref('bad'), insecure: true, stream: false });
  assert.equal(r.status, 502);
  assert.match((await r.json()).error, /^digest mismatch/);
});

test('an unknown model is a 404 with Ollama\'s words, streamed or not', async () => {
  let err;
  try {
    for await (const p of await ollama.pull({ model: ref('nope'), insecure: true, stream: true })) void p;
  } catch (e) { err = e; }
  assert.equal(err?.status_code, 404);
  assert.equal(err.message, 'pull model manifest: file does not exist');
  const r = await post(srv.url, '/api/pull', { model: ref('nope'), insecure: true, stream: false });
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), { error: 'pull model manifest: file does not exist' });
});

test('plain HTTP needs insecure; an unreachable registry is a 502; a bad name a 400', async () => {
  let r = await post(srv.url, '/api/pull', { model: `http://${ref('tiny')}` });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error, /^insecure protocol http/);
  // Without insecure the fake registry is spoken to in TLS, which it does not speak.
  r = await post(srv.url, '/api/pull', { model: ref('tiny'), stream: false });
  assert.equal(r.status, 502);
  assert.match((await r.json()).error, new RegExp(`^pull model manifest: Get "https://${reg.host}/v2/library/tiny/manifests/latest": `));
  r = await post(srv.url, '/api/pull', { model: '127.0.0.1:1/library/x', insecure: true });
  assert.equal(r.status, 502);
  assert.match((await r.json()).error, /^pull model manifest: Get "http:\/\/127\.0\.0\.1:1\/v2\/library\/x\/manifests\/latest": /);
  r = await post(srv.url, '/api/pull', { model: '../../etc/passwd' });
  assert.equal(r.status, 400);
  r = await post(srv.url, '/api/pull', {});
  assert.equal(r.status, 400);
});

test('two clients share one pull; the first leaving does not stop it', async () => {
  const s = models.shared;
  const acA = new AbortController();
  const a = await fetch(`${srv.url}/api/pull`, { method: 'POST', body: JSON.stringify({ model: ref('shared'), insecure: true }), signal: acA.signal });
  const seenA = await readLines(a, (l) => l.digest === s.model && l.completed > 0, { cancel: false });
  assert.ok(seenA.length >= 2);
  const b = await post(srv.url, '/api/pull', { model: ref('shared'), insecure: true });
  acA.abort();
  const linesB = await readLines(b);
  assert.equal(linesB[0].status, 'pulling manifest', 'the joining client gets the steps so far');
  assert.equal(linesB.at(-1).status, 'success');
  assert.ok(linesB.some((l) => l.digest === s.model && l.completed > 0 && l.completed < s.size), 'B saw the download going');
  assert.equal(reg.served(s.model), s.size, 'one download for both');
  assert.equal(reg.blob(s.model).requests.length, 3, 'three 4 MiB parts, asked once');
});

test('several pulls run at once', async () => {
  const [one, two] = await Promise.all(['one', 'two'].map((n) => post(srv.url, '/api/pull', { model: ref(n), insecure: true, stream: false })));
  assert.equal(one.status, 200);
  assert.equal(two.status, 200);
  const names = (await ollama.list()).models.map((m) => m.name);
  assert.ok(names.includes(`${ref('one')}:latest`) && names.includes(`${ref('two')}:latest`));
});

test('push is a 501 that says why', async () => {
  const r = await post(srv.url, '/api/push', { model: ref('tiny') });
  assert.equal(r.status, 501);
  assert.match((await r.json()).error, /^pushing is not supported: Bellows pulls models but does not publish them/);
});
