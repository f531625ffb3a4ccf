// think.test.mjs -- `bellows run` and thinking (issue 10, item 4), as Ollama's CLI: --think,
// --think=false|low|medium|high, --hidethinking, /set think [LEVEL], /set nothink; think:true
// by default for a model whose capabilities include "thinking"; message.thinking shown
// between "Thinking..." and "...done thinking." before the answer, dimmed on a terminal.
//
// The flags and the display are checked against a small fake server (it records every request
// body and streams a fixed thinking + answer), so they do not depend on a model that really
// thinks; the server's own answer to think on a model that cannot (a 400) against a real one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, BIN } from '../api/helpers.mjs';

const PTYRUN = process.env.BELLOWS_PTYRUN ?? new URL('../../build/tests/bellows_ptyrun', import.meta.url).pathname;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the fake server ------------------------------------------------------------------------

const CAPS = { thinker: ['completion', 'thinking'], plain: ['completion', 'tools'] };
let fake, fakePort, work;
const chats = []; // bodies of /api/chat requests, in order

function startFake() {
  return new Promise((resolve) => {
    fake = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        const json = body ? JSON.parse(body) : {};
        const model = (json.model ?? '').replace(/:latest$/, '');
        if (req.url === '/health') return res.end('{"status":"ok"}');
        if (req.url === '/api/show') {
          if (!CAPS[model]) { res.statusCode = 404; return res.end(JSON.stringify({ error: `model '${model}' not found` })); }
          return res.end(JSON.stringify({ capabilities: CAPS[model], details: {}, model_info: {} }));
        }
        if (req.url === '/api/chat') {
          chats.push(json);
          const base = { model, created_at: new Date().toISOString() };
          if (!json.messages?.length)
            return res.end(JSON.stringify({ ...base, message: { role: 'assistant', content: '' }, done: true, done_reason: 'load' }));
          res.setHeader('content-type', 'application/x-ndjson');
          const thinks = model === 'thinker' && json.think !== false;
          const parts = [
            ...(thinks ? [{ thinking: 'Let me' }, { thinking: ' think.' }] : []),
            { content: 'Hi' }, { content: ' there' },
          ];
          for (const p of parts)
            res.write(JSON.stringify({ ...base, message: { role: 'assistant', content: '', ...p }, done: false }) + '\n');
          return res.end(JSON.stringify({ ...base, message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop',
            eval_count: 2, prompt_eval_count: 3 }) + '\n');
        }
        res.statusCode = 404;
        res.end('{"error":"not here"}');
      });
    });
    fake.listen(0, '127.0.0.1', () => { fakePort = fake.address().port; resolve(); });
  });
}

// Runs `bellows ARGS` against the server on port; resolves { code, stdout, stderr }.
function cli(args, port = fakePort, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, {
      cwd: work,
      env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${port}`, BELLOWS_NO_AUTOSTART: '1', XDG_STATE_HOME: join(work, 'state') },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`bellows ${args.join(' ')} timed out`)); }, timeoutMs);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    p.stdin.end();
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'bellows-think-'));
  await startFake();
});
after(async () => {
  fake?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const last = () => chats[chats.length - 1];

// ---- one-shot ---------------------------------------------------------------------------------

test('run: a thinking model gets think:true by default; its thinking comes first, plain when stdout is no terminal', async () => {
  const r = await cli(['run', 'thinker', 'hi']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(last().think, true);
  assert.equal(r.stdout, 'Thinking...\nLet me think.\n...done thinking.\n\nHi there\n');
  assert.doesNotMatch(r.stdout, /\x1b/);
});

test('run: a model without thinking gets no think at all', async () => {
  const r = await cli(['run', 'plain', 'hi']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!('think' in last()), JSON.stringify(last()));
  assert.equal(r.stdout, 'Hi there\n');
});

test('run --think, --think=false, --think=high: the value sent as Ollama\'s CLI sends it', async () => {
  let r = await cli(['run', 'plain', '--think', 'hi']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(last().think, true);
  assert.equal(last().messages.at(-1).content, 'hi', '`--think` takes no separate value');
  r = await cli(['run', 'thinker', '--think=false', 'hi']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(last().think, false);
  assert.equal(r.stdout, 'Hi there\n');
  for (const level of ['low', 'medium', 'high']) {
    r = await cli(['run', 'thinker', `--think=${level}`, 'hi']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(last().think, level);
  }
  r = await cli(['run', 'thinker', '--think=true', 'hi']);
  assert.equal(last().think, true);
  const n = chats.length;
  r = await cli(['run', 'thinker', '--think=maybe', 'hi']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: invalid value for --think: "maybe" \(must be true, false, high, medium or low\)/);
  assert.equal(chats.length, n, 'nothing was sent');
});

test('run --hidethinking: thinking is asked for but only the answer is shown', async () => {
  const r = await cli(['run', 'thinker', '--hidethinking', 'hi']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(last().think, true);
  assert.equal(r.stdout, 'Hi there\n');
});

test('run --help lists the thinking flags', async () => {
  const r = await cli(['run', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--think\[=V\]/);
  assert.match(r.stdout, /--hidethinking/);
});

// ---- the REPL, on a pseudo-terminal --------------------------------------------------------------

function repl(args) {
  const p = spawn(PTYRUN, ['-t', '60', '--', BIN, 'run', ...args], {
    cwd: work,
    env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${fakePort}`, BELLOWS_NO_AUTOSTART: '1', XDG_STATE_HOME: join(work, 'state'),
      BELLOWS_NOHISTORY: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '', mark = 0;
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => p.on('close', (code) => resolve(code)));
  return {
    send: (s) => p.stdin.write(s),
    async waitFor(re, timeoutMs = 20000) {
      const t0 = Date.now();
      for (;;) {
        const rest = out.slice(mark);
        const m = rest.match(re);
        if (m) {
          mark += m.index + m[0].length;
          return rest.slice(0, m.index + m[0].length);
        }
        if (Date.now() - t0 > timeoutMs) throw new Error(`no ${re} within ${timeoutMs} ms; output:\n${out}`);
        await sleep(20);
      }
    },
    async exit() {
      const code = await Promise.race([exited, sleep(10000).then(() => 'timeout')]);
      if (code === 'timeout') { p.kill('SIGKILL'); throw new Error(`the REPL did not exit:\n${out}`); }
      return code;
    },
  };
}

const PROMPT = /\n?>>> $/;

test('REPL: thinking dimmed on the terminal, /set nothink, /set think high, /load keeps an explicit choice', async () => {
  const r = repl(['thinker']);
  await r.waitFor(PROMPT);
  assert.equal(last().think, true, 'the load request carries think, so a model that cannot think fails at once');
  assert.equal(last().messages.length, 0);

  r.send('hi\r');
  const first = await r.waitFor(/Hi there\r?\n\r?\n>>> $/);
  assert.ok(first.includes('\x1b[2mThinking...\r\nLet me think.\r\n...done thinking.\r\n\r\n\x1b[0mHi there'), JSON.stringify(first));
  assert.equal(last().think, true);

  r.send('/set nothink\r');
  await r.waitFor(/Set 'nothink' mode\.\r?\n>>> $/);
  r.send('again\r');
  const second = await r.waitFor(/Hi there\r?\n\r?\n>>> $/);
  assert.doesNotMatch(second, /Thinking/);
  assert.equal(last().think, false);
  // the earlier answer goes back with its thinking, as Ollama's CLI sends it
  assert.deepEqual(last().messages.slice(0, 2), [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: 'Hi there', thinking: 'Let me think.' },
  ]);

  r.send('/set think high\r');
  await r.waitFor(/Set 'think' mode to 'high'\.\r?\n>>> $/);
  r.send('more\r');
  await r.waitFor(/Hi there\r?\n\r?\n>>> $/);
  assert.equal(last().think, 'high');

  r.send('/set think sideways\r');
  await r.waitFor(/Unknown thinking level 'sideways'.*\r?\n>>> $/);

  r.send('/? set\r');
  const help = await r.waitFor(PROMPT);
  assert.match(help, /\/set think \[LEVEL\] +Enable thinking/);
  assert.match(help, /\/set nothink +Disable thinking/);

  // /load: the user's explicit choice stays; /set think warns on a model that cannot think
  r.send('/load plain\r');
  await r.waitFor(/Loading model 'plain'\r?\n>>> $/);
  assert.equal(last().think, 'high');
  r.send('/set think\r');
  await r.waitFor(/warning: model "plain" does not support thinking output\r?\nSet 'think' mode\.\r?\n>>> $/);

  r.send('/bye\r');
  assert.equal(await r.exit(), 0);
});

test('REPL: /load re-reads the default when think was never set', async () => {
  const r = repl(['plain']);
  await r.waitFor(PROMPT);
  assert.ok(!('think' in last()));
  r.send('/load thinker\r');
  await r.waitFor(/Loading model 'thinker'\r?\n>>> $/);
  assert.equal(last().think, true);
  r.send('/bye\r');
  assert.equal(await r.exit(), 0);
});

// ---- against a real server --------------------------------------------------------------------------

test('a real server: --think on the demo model (Qwen2\'s template cannot think) is the server\'s 400; --think=false works', async () => {
  const srv = await startServer();
  try {
    let r = await cli(['run', 'demo', '--think', 'hi'], srv.port);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: "demo" does not support thinking/);
    const c = await fetch(`${srv.url}/api/create`, { method: 'POST',
      body: JSON.stringify({ model: 'short', from: 'demo', parameters: { num_predict: 4 }, stream: false }) });
    assert.equal(c.status, 200);
    r = await cli(['run', 'short', '--think=false', 'hi'], srv.port, 120000);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /Thinking/);
  } finally {
    await srv.stop();
  }
});
