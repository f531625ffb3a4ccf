// Process hygiene (issue 13 item 5): a runner the server spawns starts with an empty signal
// mask, no inherited ignored SIGTERM/SIGINT, and only descriptors 0-3 (the server here holds
// two extra inherited descriptors without close-on-exec, 3 and 4, as a careless parent or
// library may leave them); a runner that dies is reaped, not left a zombie.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, DEMO_GGUF, NO_INTERNET, freePort, post } from './helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let proc, store;
after(async () => {
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    for (let i = 0; i < 100 && proc.exitCode === null; i++) await sleep(50);
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
  if (store) rmSync(store, { recursive: true, force: true });
});

const status = (pid) => Object.fromEntries(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')
  .filter(Boolean).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
const bit = (mask, sig) => (BigInt('0x' + mask) >> BigInt(sig - 1)) & 1n;

test('runners start with a clean signal mask and only their own descriptors; dead ones are reaped', async () => {
  const port = await freePort();
  store = mkdtempSync(join(tmpdir(), 'bellows-proc-'));
  proc = spawn(BIN, ['serve'], {
    env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${port}`, BELLOWS_MODELS: store, BELLOWS_DEMO_MODEL: DEMO_GGUF, BELLOWS_KV_CACHE_DISK: '0',
      BELLOWS_NUM_THREADS: '2', ...NO_INTERNET },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], // fds 3 and 4: inherited, not close-on-exec
  });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const url = `http://127.0.0.1:${port}`;
  let up = false;
  for (let i = 0; i < 200 && !up; i++) {
    try { up = (await fetch(url + '/health')).ok; } catch { await sleep(50); }
  }
  assert.ok(up, log);
  // the server does hold them
  const serverFds = readdirSync(`/proc/${proc.pid}/fd`);
  assert.ok(serverFds.includes('3') && serverFds.includes('4'));
  assert.match(readlinkSync(`/proc/${proc.pid}/fd/4`), /^(pipe|socket):/);

  const r = await post(url, '/api/generate', { model: 'demo', prompt: '', stream: false });
  assert.equal(r.status, 200, await r.text());
  const ps = await (await fetch(url + '/api/ps')).json();
  const pid = ps.models[0].runner_pid;
  assert.ok(pid > 0);

  const st = status(pid);
  assert.equal(st.SigBlk, '0000000000000000', 'nothing blocked (the server blocks SIGINT/SIGTERM in its threads)');
  assert.equal(bit(st.SigIgn, 15), 0n, 'SIGTERM not ignored');
  assert.equal(bit(st.SigIgn, 2), 0n, 'SIGINT not ignored');
  const fds = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
  assert.deepEqual(fds, [0, 1, 2, 3], `runner fds: ${fds.map((f) => `${f}=${readlinkSync(`/proc/${pid}/fd/${f}`)}`)}`);
  assert.match(readlinkSync(`/proc/${pid}/fd/3`), /^socket:/); // its end of the socketpair

  // A runner that dies is reaped by the server (no zombie), and the next request gets a new one.
  process.kill(pid, 'SIGKILL');
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    gone = !existsSync(`/proc/${pid}`); // a zombie keeps its /proc entry
    if (!gone) await sleep(50);
  }
  assert.ok(gone, `runner ${pid} left behind: ${existsSync(`/proc/${pid}`) ? status(pid).State : 'gone'}`);
  const again = await post(url, '/api/generate', { model: 'demo', prompt: '', stream: false });
  assert.equal(again.status, 200);
  const pid2 = (await (await fetch(url + '/api/ps')).json()).models[0].runner_pid;
  assert.notEqual(pid2, pid);

  // Unloading ends the runner and reaps it too.
  await post(url, '/api/generate', { model: 'demo', prompt: '', keep_alive: 0, stream: false });
  gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    gone = !existsSync(`/proc/${pid2}`);
    if (!gone) await sleep(50);
  }
  assert.ok(gone, `runner ${pid2} left behind after unload`);
});
