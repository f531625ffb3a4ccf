// pull.test.mjs -- `bellows pull` and `bellows run` of a missing model, against a real
// `bellows serve` and the fake registry of tests/api (fake-registry.mjs) on 127.0.0.1:
// plain lines when stderr is not a terminal, Ollama-style bars (size, speed, ETA) on a
// pseudo-terminal (tests/cli/ptyrun.c), Ollama's errors. Every wait is bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, BIN, NO_INTERNET } from '../api/helpers.mjs';
import { startRegistry, MEDIA } from '../api/fake-registry.mjs';

const PTYRUN = process.env.BELLOWS_PTYRUN ?? new URL('../../build/tests/bellows_ptyrun', import.meta.url).pathname;
const MKMODEL = process.env.BELLOWS_MKMODEL ?? new URL('../../build/tools/bellows-mkmodel', import.meta.url).pathname;

let srv, reg, work;
const layers = {};

function publish(name, data, mode) {
  const m = reg.addModel(`library/${name}`, [
    { mediaType: MEDIA.model, data, mode },
    { mediaType: MEDIA.params, data: Buffer.from('{"num_predict":4,"temperature":0}') },
  ]);
  layers[name] = m;
  return m;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'bellows-cli-pull-'));
  reg = await startRegistry({ auth: true });
  publish('plain', randomBytes(5 << 20));
  publish('bars', randomBytes(12 << 20), 'slow'); // 4 parts at ~1.6 MB/s each: 2 s, a speed and a time left
  const gguf = join(work, 'run.gguf');
  const mk = spawnSync(MKMODEL, ['--seed', '301', '-o', gguf], { encoding: 'utf8' });
  assert.equal(mk.status, 0, mk.stderr);
  publish('runme', readFileSync(gguf));
  srv = await startServer({ BELLOWS_PULL_PART_MIN: String(1 << 20) });
});

after(async () => {
  await srv?.stop();
  await reg?.close();
  rmSync(work, { recursive: true, force: true });
});

const ref = (name) => `${reg.host}/library/${name}`;

function cli(args, { timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, {
      cwd: work,
      env: { ...process.env, ...NO_INTERNET, BELLOWS_HOST: `127.0.0.1:${srv.port}`, BELLOWS_NO_AUTOSTART: '1', XDG_STATE_HOME: join(work, 'state') },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`bellows ${args.join(' ')} timed out:\n${stderr}`)); }, timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    p.stdin.end();
  });
}

const short = (digest) => digest.slice(7, 19);

test('bellows pull prints one plain line per step and per layer when not on a terminal', async () => {
  const r = await cli(['pull', '--insecure', ref('plain')]);
  assert.equal(r.code, 0, r.stderr);
  const m = layers.plain;
  const params = Buffer.byteLength('{"num_predict":4,"temperature":0}');
  const lines = r.stderr.split('\n');
  assert.deepEqual(lines.slice(0, 3), [
    'pulling manifest',
    `pulling ${short(m.digests[0])}: 100% 5.2 MB`,
    `pulling ${short(m.digests[1])}: 100% ${params} B`,
  ]);
  assert.match(lines[3], new RegExp(`^pulling ${short(m.config)}: 100% \\d+ B$`));
  assert.deepEqual(lines.slice(4), ['verifying sha256 digest', 'writing manifest', 'success', '']);
  assert.equal(r.stdout, '');
  const list = await cli(['list']);
  assert.match(list.stdout, new RegExp(`^${reg.host.replace(/\./g, '\\.')}/library/plain:latest\\s`, 'm'));
});

test('bellows pull draws Ollama-style bars with speed and time left on a terminal', async () => {
  const p = spawn(PTYRUN, ['-c', '100', '-t', '60', '--', BIN, 'pull', '--insecure', ref('bars')], {
    cwd: work,
    env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${srv.port}`, BELLOWS_NO_AUTOSTART: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const code = await new Promise((resolve) => p.on('close', resolve));
  assert.equal(code, 0, out);
  const m = layers.bars;
  // redrawn in place while it downloads, with a speed and a time left ...
  assert.match(out, new RegExp(`\\r\\x1b\\[Kpulling ${short(m.digests[0])}:\\s+\\d+% ▕█*\\s*▏\\s+[\\d.]+ [KM]?B/\\s*13 MB\\s+[\\d.]+ [KM]?B/s\\s+\\d+s`));
  // ... and left at 100% with the size alone
  assert.match(out, new RegExp(`\\r\\x1b\\[Kpulling ${short(m.digests[0])}: 100% ▕█+▏\\s+13 MB\\r?\\n`));
  assert.match(out, /verifying sha256 digest\r?\nwriting manifest\r?\nsuccess\r?\n/);
});

test('bellows pull of an unknown model fails with Ollama\'s words', async () => {
  const r = await cli(['pull', '--insecure', ref('nope')]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'Error: pull model manifest: file does not exist\n');
  const usage = await cli(['pull']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^usage: bellows pull \[--insecure\] MODEL/);
  const plain = await cli(['pull', `http://${ref('plain')}`]);
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, /^Error: insecure protocol http/);
});

test('bellows run of a missing model pulls it first, then answers', async () => {
  const r = await cli(['run', '--insecure', ref('runme'), 'Hello']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^pulling manifest\n/);
  assert.match(r.stderr, /\nsuccess\n/);
  assert.ok(r.stdout.trim().length > 0, 'an answer');
  // the second time it is there: no pull
  const again = await cli(['run', ref('runme'), 'Hello']);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /pulling/);
  const nope = await cli(['run', '--insecure', ref('nope'), 'Hello']);
  assert.equal(nope.code, 1);
  assert.equal(nope.stderr, `Error: model '${ref('nope')}' not found, here or in the registry (pull model manifest: file does not exist) — \`bellows list\` shows the installed ones\n`);
});
