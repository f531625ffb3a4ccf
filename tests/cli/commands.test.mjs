// commands.test.mjs -- the `bellows` client commands against a real `bellows serve` on 127.0.0.1
// with a temporary store, checking what they print. The REPL runs on a pseudo-terminal
// through ptyrun (tests/cli/ptyrun.c; ctest passes BELLOWS_PTYRUN). Every wait is bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, symlinkSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, freePort, BIN, DEMO_GGUF, NO_INTERNET } from '../api/helpers.mjs';

const PTYRUN = process.env.BELLOWS_PTYRUN ?? new URL('../../build/tests/bellows_ptyrun', import.meta.url).pathname;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let srv, work, state;

// Runs `bellows ARGS` against srv; resolves { code, stdout, stderr }. Killed after timeoutMs.
function cli(args, { input, env = {}, timeoutMs = 60000, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, {
      cwd: cwd ?? work,
      env: {
        ...process.env,
        BELLOWS_HOST: `127.0.0.1:${srv.port}`,
        BELLOWS_NO_AUTOSTART: '1',
        XDG_STATE_HOME: state,
        ...NO_INTERNET, // an auto-started server inherits it: `run` of a missing model pulls
        ...env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`bellows ${args.join(' ')} timed out:\n${stdout}\n${stderr}`)); }, timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    if (input !== undefined) p.stdin.end(input); else p.stdin.end();
  });
}

async function api(path, body) {
  const r = await fetch(srv.url + path, body ? { method: 'POST', body: JSON.stringify(body) } : {});
  return r.json();
}

before(async () => {
  srv = await startServer();
  work = mkdtempSync(join(tmpdir(), 'bellows-cli-'));
  state = join(work, 'state');
  // A Modelfile next to (a link to) the GGUF: FROM is relative to the Modelfile's folder.
  const mfdir = join(work, 'mf');
  mkdirSync(mfdir);
  symlinkSync(DEMO_GGUF, join(mfdir, 'demo.gguf'));
  writeFileSync(join(mfdir, 'Modelfile'), [
    '# a short, greedy demo',
    'FROM ./demo.gguf',
    'parameter num_predict 8',
    'PARAMETER temperature 0',
    'PARAMETER stop "<|im_end|>"',
    'PARAMETER stop END',
    'SYSTEM """You are terse.',
    'Very terse."""',
    'MESSAGE user Hi',
    'MESSAGE assistant Hello!',
    'LICENSE MIT',
    '',
  ].join('\n'));
});
after(async () => {
  await srv?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('create from a Modelfile: progress on stderr, then success; the layers arrive', async () => {
  const r = await cli(['create', 'short', '-f', join('mf', 'Modelfile')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /copying model\s+100% ▕█+▏ 89 MB\/89 MB/);
  assert.match(r.stderr, /success\n$/);
  const show = await api('/api/show', { model: 'short' });
  assert.match(show.parameters, /num_predict\s+8/);
  assert.match(show.parameters, /temperature\s+0/);
  assert.match(show.parameters, /stop\s+"<\|im_end\|>"\nstop\s+"END"/);
  assert.equal(show.system, 'You are terse.\nVery terse.');
  assert.equal(show.license, 'MIT');
});

test('create: errors name the line and the fix', async () => {
  writeFileSync(join(work, 'Bad'), 'FROM ./demo.gguf\nPARAMETER top_k many\n');
  let r = await cli(['create', 'bad', '-f', 'Bad']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: Bad: line 2: parameter 'top_k' must be an integer, not 'many'/);
  writeFileSync(join(work, 'Bad'), 'FROM ./missing.gguf\n');
  r = await cli(['create', 'bad', '-f', 'Bad']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: FROM \.\/missing\.gguf: No such file or directory/);
  r = await cli(['create', 'bad', '-f', 'NoSuchFile']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot open NoSuchFile.*name one with -f/);
});

test('list: NAME ID SIZE MODIFIED, ids are the digests\' first 12 hex digits', async () => {
  const r = await cli(['list']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^NAME\s{4,}ID\s{4,}SIZE\s{4,}MODIFIED$/);
  const { models } = await api('/api/tags');
  for (const m of models) {
    const row = lines.find((l) => l.startsWith(m.name + ' '));
    assert.ok(row, `${m.name} in\n${r.stdout}`);
    const cols = row.split(/\s{4,}/);
    assert.equal(cols[1], m.digest.slice(0, 12));
    assert.equal(cols[2], '89 MB'); // the demo model's GGUF
    assert.match(cols[3], /ago$/);
  }
  // the columns line up: every ID starts where the header's does
  const at = lines[0].indexOf('ID');
  for (const l of lines.slice(1)) assert.match(l.slice(at), /^[0-9a-f]{12}\s/);
});

test('show: the summary, and each part on its own', async () => {
  let r = await cli(['show', 'short']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}Model\n {4}architecture\s+qwen2\n {4}parameters\s+78\.28M\n {4}context length\s+32768\n/);
  assert.match(r.stdout, /quantization\s+Q8_0/);
  assert.match(r.stdout, / {2}Capabilities\n {4}completion\n/);
  assert.match(r.stdout, / {2}Parameters\n {4}num_predict\s+8\n/);
  assert.match(r.stdout, / {2}System\n {4}You are terse\.\n {4}Very terse\.\n/);
  assert.match(r.stdout, / {2}License\n {4}MIT\n/);
  r = await cli(['show', 'short', '--system']);
  assert.equal(r.stdout, 'You are terse.\nVery terse.\n');
  r = await cli(['show', 'short', '--license']);
  assert.equal(r.stdout, 'MIT\n');
  r = await cli(['show', 'short', '--parameters']);
  assert.match(r.stdout, /^num_predict\s+8\nstop\s+"<\|im_end\|>"\nstop\s+"END"\ntemperature\s+0/);
  r = await cli(['show', 'short', '--template']);
  assert.match(r.stdout, /<\|im_start\|>/);
  r = await cli(['show', 'short', '--modelfile']);
  assert.match(r.stdout, /^# Modelfile generated by "bellows show"\nFROM \//);
  assert.match(r.stdout, /PARAMETER num_predict\s+8/);
  r = await cli(['show', 'demo', '--system']);
  assert.equal(r.stdout, 'No system message was specified for this model.\n');
});

test('run one-shot with --verbose: the answer on stdout, Ollama\'s stats plus TTFT and the context on stderr', async () => {
  const r = await cli(['run', 'short', '--verbose', 'Why', 'is', 'the', 'sky', 'blue?']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.trim().length > 0);
  assert.ok(r.stdout.endsWith('\n'));
  const e = r.stderr;
  assert.match(e, /^total duration: {7}\d[\d.]*(ns|µs|ms|s)$/m);
  assert.match(e, /^load duration: {8}\S+$/m);
  assert.match(e, /^prompt eval count: {4}\d+ token\(s\)/m);
  assert.match(e, /^prompt eval duration: \S+$/m);
  assert.match(e, /^prompt eval rate: {5}[\d.]+ tokens\/s$/m);
  assert.match(e, /^eval count: {11}8 token\(s\)$/m);
  assert.match(e, /^eval duration: {8}\S+$/m);
  assert.match(e, /^eval rate: {12}[\d.]+ tokens\/s$/m);
  assert.match(e, /^time to first token:  \d[\d.]*(ns|µs|ms|s)$/m);
  const ctx = e.match(/^context: {14}(\d+) \/ (\d+) tokens \(model maximum (\d+)\)$/m);
  assert.ok(ctx, e);
  const pec = Number(e.match(/^prompt eval count: +(\d+)/m)[1]);
  assert.equal(Number(ctx[1]), pec + 8);
  assert.equal(Number(ctx[2]), 4096);
  assert.equal(Number(ctx[3]), 32768);
  // the same prompt again: most of it comes from the prefix cache
  const again = await cli(['run', 'short', '--verbose', 'Why is the sky blue?']);
  assert.match(again.stderr, /^prompt eval count: {4}\d+ token\(s\) \(\d+ reused from cache\)$/m);
  assert.equal(again.stdout, r.stdout, 'greedy: the same answer');
});

test('run reads piped stdin: stdin, then the prompt arguments', async () => {
  const joined = await cli(['run', 'short', 'from stdin and args']);
  const piped = await cli(['run', 'short', 'and args'], { input: 'from stdin' });
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stdout, joined.stdout);
  const only = await cli(['run', 'short'], { input: 'from stdin and args' });
  assert.equal(only.code, 0, only.stderr);
  assert.equal(only.stdout, joined.stdout);
  const none = await cli(['run', 'short'], { input: '' });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^Error: nothing to send/);
});

test('run --format json answers with JSON (JSON mode); other formats are refused', async () => {
  const r = await cli(['run', '--format', 'json', 'short', 'some JSON please']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trimStart()[0], '{', JSON.stringify(r.stdout.slice(0, 40)));
  const bad = await cli(['run', '--format', 'yaml', 'short', 'x']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--format takes "json"/);
});

test('ps: CONTEXT is used/pool tokens, PID the runner', async () => {
  await cli(['run', 'short', 'hello']);
  const r = await cli(['ps']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^NAME\s{4,}ID\s{4,}SIZE\s{4,}PROCESSOR\s{4,}CONTEXT\s{4,}PID\s{4,}UNTIL$/);
  const row = lines.find((l) => l.startsWith('short:latest '));
  assert.ok(row, r.stdout);
  const cols = row.split(/\s{4,}/);
  const { models } = await api('/api/ps');
  const m = models.find((x) => x.name === 'short:latest');
  assert.equal(cols[1], m.digest.slice(0, 12));
  assert.match(cols[2], /^\d+ MB$/);
  assert.equal(cols[3], '100% CPU');
  assert.equal(cols[4], `${m.context.used_tokens}/${m.context.pool_tokens}`);
  assert.match(cols[4], /^\d+\/4096$/);
  assert.ok(m.context.used_tokens > 0);
  assert.equal(Number(cols[5]), m.runner_pid);
  process.kill(m.runner_pid, 0); // the runner is alive
  assert.match(cols[6], /^(4|5) minutes from now$/);
});

test('ps shows "Forever" for keep_alive -1', async () => {
  const r = await cli(['run', 'short', '--keepalive', '-1', 'hi']);
  assert.equal(r.code, 0, r.stderr);
  const ps = await cli(['ps']);
  assert.match(ps.stdout, /^short:latest .*\s{4,}Forever$/m);
});

test('create FROM a model name; Ctrl-C stops a one-shot answer (exit 130) and the server cancels it', async () => {
  writeFileSync(join(work, 'Long'), 'FROM short\nPARAMETER num_predict 100000\n');
  const c = await cli(['create', 'long', '-f', 'Long']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /success\n$/);
  const p = spawn(BIN, ['run', 'long', 'Tell me everything'], {
    cwd: work,
    env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${srv.port}`, BELLOWS_NO_AUTOSTART: '1', XDG_STATE_HOME: state },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  const closed = new Promise((resolve) => p.on('close', (code, signal) => resolve({ code, signal })));
  for (let i = 0; i < 400 && out.length < 40; i++) await sleep(25);
  assert.ok(out.length >= 40, 'the answer streams');
  p.kill('SIGINT');
  const r = await Promise.race([closed, sleep(10000).then(() => null)]);
  if (!r) p.kill('SIGKILL');
  assert.deepEqual(r, { code: 130, signal: null });
  let m;
  for (let i = 0; i < 100; i++) {
    m = (await api('/api/ps')).models.find((x) => x.name === 'long:latest');
    if (m && m.context.sequences === 0) break;
    await sleep(50);
  }
  assert.equal(m?.context.sequences, 0, JSON.stringify(m?.context));
  await cli(['rm', 'long']);
});

test('cp, then rm: Ollama\'s messages, and list follows', async () => {
  let r = await cli(['cp', 'short', 'short-copy']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "copied 'short' to 'short-copy'\n");
  assert.match((await cli(['list'])).stdout, /^short-copy:latest\s/m);
  r = await cli(['rm', 'short-copy']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "deleted 'short-copy'\n");
  assert.doesNotMatch((await cli(['list'])).stdout, /short-copy/);
});

test('rm unloads a loaded model first', async () => {
  await cli(['cp', 'short', 'doomed']);
  await cli(['run', 'doomed', 'hi']);
  let { models } = await api('/api/ps');
  assert.ok(models.some((m) => m.name === 'doomed:latest'));
  const r = await cli(['rm', 'doomed']);
  assert.equal(r.stdout, "deleted 'doomed'\n");
  ({ models } = await api('/api/ps'));
  assert.ok(!models.some((m) => m.name === 'doomed:latest'));
});

test('stop unloads; stopping a model that is not running says so', async () => {
  await cli(['run', 'short', 'hi']);
  let r = await cli(['stop', 'short']);
  assert.equal(r.code, 0, r.stderr);
  const { models } = await api('/api/ps');
  assert.ok(!models.some((m) => m.name === 'short:latest'), JSON.stringify(models));
  assert.doesNotMatch((await cli(['ps'])).stdout, /short/);
  r = await cli(['stop', 'short']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "Error: model 'short' is not running — `bellows ps` shows the loaded ones\n");
});

test('a missing model: the error names the fix, the exit status is 1', async () => {
  const hint = "Error: model 'nope' not found — `bellows list` shows the installed ones\n";
  for (const args of [['show', 'nope'], ['rm', 'nope'], ['cp', 'nope', 'x']]) {
    const r = await cli(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(r.stderr, hint, args.join(' '));
  }
  // run pulls a missing model first (tests/cli/pull.test.mjs); here the registry is unreachable
  const r = await cli(['run', 'nope', 'hi']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: model 'nope' not found — pulling it failed: pull model manifest: Get "https:\/\/registry\.ollama\.ai\/v2\/library\/nope\/manifests\/latest": .*\n$/);
});

test('no server and no auto-start: the error says how to start one', async () => {
  const port = await freePort();
  const r = await cli(['list'], { env: { BELLOWS_HOST: `127.0.0.1:${port}` } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^Error: no Bellows server answers at http://127\\.0\\.0\\.1:${port} — start one with \`bellows serve\``));
  const ps = await cli(['ps'], { env: { BELLOWS_HOST: `127.0.0.1:${port}`, BELLOWS_NO_AUTOSTART: '' } });
  assert.equal(ps.code, 1, 'ps never starts a server');
});

test('auto-start: run starts a server in the background and says so', async () => {
  const port = await freePort();
  const xdg = mkdtempSync(join(tmpdir(), 'bellows-xdg-'));
  const store = mkdtempSync(join(tmpdir(), 'bellows-store-'));
  const env = {
    BELLOWS_HOST: `127.0.0.1:${port}`, BELLOWS_NO_AUTOSTART: '', XDG_STATE_HOME: xdg,
    BELLOWS_MODELS: store, BELLOWS_DEMO_MODEL: DEMO_GGUF, BELLOWS_NUM_THREADS: '2',
  };
  let pid;
  try {
    const r = await cli(['run', 'nope', 'hi'], { env });
    const log = join(xdg, 'bellows', 'serve.log');
    const m = r.stderr.match(/^Started a Bellows server in the background \(pid (\d+), log: (.+)\)$/m);
    assert.ok(m, r.stderr);
    pid = Number(m[1]);
    assert.equal(m[2], log);
    assert.match(r.stderr, /Error: model 'nope' not found/);
    assert.equal(r.code, 1);
    assert.match(readFileSync(log, 'utf8'), new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`));
    // it stays up for the next command, which does not start another
    const list = await cli(['list'], { env });
    assert.equal(list.code, 0, list.stderr);
    assert.doesNotMatch(list.stderr, /Started/);
    assert.match(list.stdout, /^demo:latest\s/m);
  } finally {
    if (pid) {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100; i++) {
        try { process.kill(pid, 0); } catch { break; }
        await sleep(50);
      }
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(xdg, { recursive: true, force: true });
    rmSync(store, { recursive: true, force: true });
  }
});

// ---- the REPL, on a pseudo-terminal ------------------------------------------------------------

// Starts `bellows run ARGS` under ptyrun; returns { send, waitFor, since, exit }.
function repl(args, env = {}) {
  const p = spawn(PTYRUN, ['-t', '120', '--', BIN, 'run', ...args], {
    cwd: work,
    env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${srv.port}`, BELLOWS_NO_AUTOSTART: '1', XDG_STATE_HOME: state, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => p.on('close', (code) => resolve(code)));
  let mark = 0;
  return {
    send: (s) => p.stdin.write(s),
    // Waits for re in the output after the last match; returns the text up to and including it.
    async waitFor(re, timeoutMs = 20000) {
      const t0 = Date.now();
      for (;;) {
        const rest = out.slice(mark);
        const m = rest.match(re);
        if (m) {
          const text = rest.slice(0, m.index + m[0].length);
          mark += m.index + m[0].length;
          return text;
        }
        if (Date.now() - t0 > timeoutMs) throw new Error(`no ${re} within ${timeoutMs} ms; output:\n${out}`);
        await sleep(20);
      }
    },
    output: () => out,
    async exit(timeoutMs = 10000) {
      const code = await Promise.race([exited, sleep(timeoutMs).then(() => 'timeout')]);
      if (code === 'timeout') { p.kill('SIGKILL'); throw new Error(`the REPL did not exit:\n${out}`); }
      return code;
    },
  };
}

const PROMPT = /\n?>>> $/;

test('REPL: two turns reuse the cache, /set parameter works, Ctrl-C stops an answer, /bye exits 0', async () => {
  const r = repl(['short']);
  await r.waitFor(PROMPT);
  r.send('/set verbose\r');
  await r.waitFor(/Set 'verbose' mode\.\r?\n>>> $/);

  r.send('Hello there\r');
  const first = await r.waitFor(/context: +(\d+) \/ \d+ tokens \(model maximum 32768\)\r?\n>>> $/);
  assert.match(first, /eval count: +8 token\(s\)/);
  const used1 = Number(first.match(/context: +(\d+)/)[1]);

  r.send('And how are you?\r');
  const second = await r.waitFor(/context: +\d+ \/ \d+ tokens.*\r?\n>>> $/);
  const reused = second.match(/prompt eval count: +(\d+) token\(s\) \((\d+) reused from cache\)/);
  assert.ok(reused, second);
  assert.ok(Number(reused[2]) >= used1 - 8, `the first turn's prompt comes from the cache: ${reused[0]}`);
  const used2 = Number(second.match(/context: +(\d+)/)[1]);
  assert.ok(used2 > used1, 'the conversation grows');

  r.send('/set parameter num_predict 5\r');
  await r.waitFor(/Set parameter 'num_predict' to '5'\r?\n>>> $/);
  r.send('Count to ten\r');
  const third = await r.waitFor(/context: .*\r?\n>>> $/);
  assert.match(third, /eval count: +5 token\(s\)/);

  r.send('/show parameters\r');
  const params = await r.waitFor(PROMPT);
  assert.match(params, /User defined parameters:\r?\nnum_predict\s+5/);

  // Ctrl-C during a long answer: back at the prompt, the session goes on
  r.send('/set parameter num_predict 100000\r');
  await r.waitFor(PROMPT);
  r.send('Tell me everything\r');
  await r.waitFor(/Tell me everything\r?\n[^]{40,}/);
  const t0 = Date.now();
  r.send('\x03');
  await r.waitFor(PROMPT, 10000);
  assert.ok(Date.now() - t0 < 5000, 'the answer stopped promptly');
  // the server noticed the closed connection and cancelled the request
  let m;
  for (let i = 0; i < 100; i++) {
    m = (await api('/api/ps')).models.find((x) => x.name === 'short:latest');
    if (m && m.context.sequences === 0) break;
    await sleep(50);
  }
  assert.ok(m && m.context.sequences === 0, `no sequence still generating: ${JSON.stringify(m?.context)}`);

  r.send('/set parameter num_predict 3\r');
  await r.waitFor(PROMPT);
  r.send('Still there?\r');
  const after = await r.waitFor(/context: .*\r?\n>>> $/);
  assert.match(after, /eval count: +3 token\(s\)/);

  // Ctrl-C at the prompt drops the line and gives the hint
  r.send('half a line\x03');
  await r.waitFor(/Use Ctrl \+ d or \/bye to exit\.[^]*>>> $/);

  r.send('/clear\r');
  await r.waitFor(/Cleared session context\r?\n>>> $/);
  r.send('/bye\r');
  assert.equal(await r.exit(), 0);
  const hist = readFileSync(join(state, 'bellows', 'history'), 'utf8');
  assert.match(hist, /Hello\\040there/, 'the history persists');
});

test('REPL: multi-line input, /set system, /show, /load, unknown commands, Ctrl-D', async () => {
  const r = repl(['short', '--verbose']);
  await r.waitFor(PROMPT);
  r.send('"""first line\r');
  await r.waitFor(/\.\.\. $/);
  r.send('second line"""\r');
  const ml = await r.waitFor(/context: .*\r?\n>>> $/);
  assert.match(ml, /eval count: +8 token\(s\)/);

  r.send('/set system You are a pirate.\r');
  await r.waitFor(/Set system message\.\r?\n>>> $/);
  r.send('/show system\r');
  assert.match(await r.waitFor(PROMPT), /You are a pirate\./);
  r.send('/show info\r');
  assert.match(await r.waitFor(PROMPT), /architecture\s+qwen2/);
  r.send('/show template\r');
  assert.match(await r.waitFor(PROMPT), /im_start/);
  r.send('/set parameter stop foo bar\r');
  assert.match(await r.waitFor(PROMPT), /Set parameter 'stop' to '\["foo","bar"\]'/);
  r.send('/set parameter temperature warm\r');
  assert.match(await r.waitFor(PROMPT), /Error: parameter 'temperature' must be a number, not 'warm'/);
  r.send('/frobnicate\r');
  assert.match(await r.waitFor(PROMPT), /Unknown command '\/frobnicate'\. Type \/\? for help/);
  r.send('/?\r');
  assert.match(await r.waitFor(PROMPT), /\/bye\s+Exit/);
  r.send('/load nope\r');
  assert.match(await r.waitFor(PROMPT), /Error: model 'nope' not found — `bellows list` shows the installed ones/);
  r.send('/load demo\r');
  assert.match(await r.waitFor(PROMPT), /Loading model 'demo'/);
  r.send('\x04');
  assert.equal(await r.exit(), 0);
});

test('REPL: /exit leaves too, and a missing model fails before the prompt', async () => {
  const r = repl(['short']);
  await r.waitFor(PROMPT);
  r.send('/exit\r');
  assert.equal(await r.exit(), 0);
  const bad = repl(['nope']);
  assert.equal(await bad.exit(), 1);
  assert.match(bad.output(), /Error: model 'nope' not found/);
});
