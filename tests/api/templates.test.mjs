// Chat templates end to end (issue 10): random-weight models made with real vocabularies and
// real templates (`bellows-mkmodel --vocab --chat-template`) render /api/chat's messages,
// through `_debug_render_only`, byte for byte as the oracle (@huggingface/jinja, see
// tests/template/oracle.mjs) renders the same context with that vocabulary's BOS/EOS texts.
// The message sets are tests/template/cases.mjs; a template's raise_exception is a 400
// carrying its message; a template that prints bos_token gets one BOS. Every template, with
// every message set, is tests/api/templates-all.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startServer, post } from './helpers.mjs';
import { CASES, contextFor } from '../template/cases.mjs';
import { render } from '../template/oracle.mjs';

const MKMODEL = process.env.BELLOWS_MKMODEL ?? new URL('../../build/tools/bellows-mkmodel', import.meta.url).pathname;
const LLAMA = process.env.BELLOWS_LLAMA_DIR ?? new URL('../../build/_deps/llama.cpp', import.meta.url).pathname;

// The BOS/EOS texts are those of the vocabulary files (tokenizer.ggml.bos_token_id and
// eos_token_id in models/ggml-vocab-*.gguf of the pinned llama.cpp), not the HF repos' own.
const MODELS = {
  llama31: {
    vocab: 'llama-bpe', template: 'meta-llama-Llama-3.1-8B-Instruct.jinja',
    tokens: { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' },
    cases: ['chat', 'single', 'tools', 'tool_call'],
  },
  qwen3: {
    vocab: 'qwen2', template: 'Qwen-Qwen3-0.6B.jinja',
    tokens: { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' },
    cases: ['chat', 'single', 'tools', 'tool_call', 'thinking', 'no_thinking'],
  },
  gemma2: {
    vocab: 'gemma-4', template: 'google-gemma-2-2b-it.jinja',
    tokens: { bos_token: '<bos>', eos_token: '<eos>' },
    cases: ['single'],
  },
};

let srv, dir;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bellows-templates-'));
  srv = await startServer();
  for (const [name, m] of Object.entries(MODELS)) {
    const gguf = join(dir, `${name}.gguf`);
    execFileSync(MKMODEL, ['--type', 'f16', '--layers', '1', '--vocab', join(LLAMA, `models/ggml-vocab-${m.vocab}.gguf`),
      '--chat-template', join(LLAMA, 'models/templates', m.template), '-o', gguf]);
    const r = await post(srv.url, '/api/create', { model: name, from: gguf, stream: false });
    assert.equal(r.status, 200, await r.text());
  }
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// The /api/chat body for case C: its messages and tools as they are, `think` for the cases
// that set enable_thinking (Bellows maps it onto the template's switch).
function chatBody(model, c) {
  const body = { model, messages: c.messages, stream: false, _debug_render_only: true };
  if (c.tools) body.tools = c.tools;
  if (c.vars && 'enable_thinking' in c.vars) body.think = c.vars.enable_thinking;
  return body;
}

for (const [name, m] of Object.entries(MODELS)) {
  for (const caseName of m.cases) {
    test(`${m.template} with the ${m.vocab} vocabulary renders '${caseName}' as the oracle does`, async () => {
      const c = CASES[caseName];
      const want = render(readFileSync(join(LLAMA, 'models/templates', m.template), 'utf8'), contextFor(c, m.tokens));
      const r = await post(srv.url, '/api/chat', chatBody(name, c));
      const text = await r.text();
      assert.equal(r.status, 200, text);
      assert.equal(JSON.parse(text).debug_info?.rendered_prompt, want);
    });
  }
}

test("Gemma 2's template refuses a system message with its own words, as a 400", async () => {
  const r = await post(srv.url, '/api/chat', chatBody('gemma2', CASES.chat));
  const text = await r.text();
  assert.equal(r.status, 400, text);
  assert.match(JSON.parse(text).error, /System role not supported/);
});

// One BOS (docs/templates.md): llama-bpe's tokenizer adds BOS by itself, so a template that
// prints bos_token must not get a second one. Two models on the same GGUF and messages, one
// template printing bos_token and one not, must count the same prompt tokens.
test('a template that prints bos_token gets one BOS in the token stream, not two', async () => {
  const loop = '{% for m in messages %}{{ m.content }}{% endfor %}';
  const messages = [{ role: 'user', content: 'Hello there' }, { role: 'assistant', content: ' and you' }];
  const info = {};
  for (const [name, template] of [['bos-printed', `{{ bos_token }}${loop}`], ['bos-not-printed', loop]]) {
    const made = await post(srv.url, '/api/create', { model: name, from: 'llama31', template, stream: false });
    assert.equal(made.status, 200, await made.text());
    const r = await post(srv.url, '/api/chat', { model: name, messages, stream: false, _debug_render_only: true, keep_alive: 0 });
    const text = await r.text();
    assert.equal(r.status, 200, text);
    info[name] = JSON.parse(text).debug_info;
  }
  const bos = MODELS.llama31.tokens.bos_token;
  assert.equal(info['bos-printed'].rendered_prompt, `${bos}Hello there and you`);
  assert.equal(info['bos-not-printed'].rendered_prompt, 'Hello there and you');
  assert.ok(info['bos-not-printed'].prompt_tokens > 1);
  assert.equal(info['bos-printed'].prompt_tokens, info['bos-not-printed'].prompt_tokens,
    'the template that prints bos_token has more prompt tokens: a double BOS');
});
