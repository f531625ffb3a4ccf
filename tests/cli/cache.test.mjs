// cache.test.mjs -- `bellows cache` (list) and `bellows cache clear [MODEL]` against a real
// `bellows serve` on 127.0.0.1 with a temporary store and KV directory (issue 15): after a
// conversation and an unload the list shows the model's saved state with its tokens;
// clear by model removes it; an unknown model is an error. Every wait is bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, post, BIN, NO_INTERNET } from '../api/helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let srv, work;

function cli(args, { timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, {
      cwd: work,
      env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${srv.port}`, BELLOWS_NO_AUTOSTART: '1',
        XDG_STATE_HOME: join(work, 'state'), ...NO_INTERNET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`bellows ${args.join(' ')} timed out`)); }, timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

before(async () => {
  srv = await startServer();
  work = mkdtempSync(join(tmpdir(), 'bellows-cli-cache-'));
});
after(async () => {
  await srv?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('bellows cache lists a saved conversation by model and tokens; clear MODEL removes it', async () => {
  let r = await cli(['cache']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAME\s+ID\s+KV\s+TOKENS\s+SIZE\s+MODIFIED\s*\n\n0 states, 0 B of \S+ \S+ in /);

  const prompt = Array.from({ length: 60 }, (_, i) => `The bellows ${i % 9} breathe on the forge.`).join(' ');
  const res = await post(srv.url, '/api/chat', { model: 'demo', messages: [{ role: 'user', content: prompt }],
    options: { temperature: 0, num_predict: 8 }, stream: false });
  const a = JSON.parse(await res.text());
  assert.equal(res.status, 200);
  assert.ok(a.prompt_eval_count > 64, `${a.prompt_eval_count} prompt tokens`);
  await post(srv.url, '/api/generate', { model: 'demo', prompt: '', keep_alive: 0, stream: false }); // unload: saves
  for (let i = 0; i < 100 && !readdirSync(srv.kvDir).some((f) => f.endsWith('.kv')); i++) await sleep(100);

  r = await cli(['cache', 'list']);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.split('\n');
  assert.match(rows[0], /^NAME\s+ID\s+KV\s+TOKENS\s+SIZE\s+MODIFIED/);
  const row = rows[1].split(/\s{2,}/);
  assert.equal(row[0], 'demo:latest', r.stdout);
  assert.match(row[1], /^[0-9a-f]{12}$/);
  assert.equal(row[2], 'f16');
  const tokens = Number(row[3]);
  assert.ok(tokens >= a.prompt_eval_count && tokens <= a.prompt_eval_count + a.eval_count, r.stdout);
  assert.match(row[4], /^\d+(\.\d)? [KMGT]?B$/);
  assert.match(row[5], /seconds? ago|Less than a second ago/);
  assert.match(r.stdout, /\n\n1 state, \S+ \S+ of \S+ \S+ in /);

  r = await cli(['cache', 'clear', 'nope']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: model 'nope' not found/);

  r = await cli(['cache', 'clear', 'demo']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^removed 1 saved state of 'demo' \(\d+(\.\d)? [KMGT]?B\)\n$/);
  assert.deepEqual(readdirSync(srv.kvDir).filter((f) => f.endsWith('.kv')), []);
  r = await cli(['cache', 'clear']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'removed 0 saved states (0 B)\n');

  r = await cli(['cache', 'bogus']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^usage: bellows cache/);
});
