// Thinking models (issue 10, item 4): the reasoning a model writes is split from its answer
// into message.thinking / thinking (native) and reasoning_content (/v1), streamed and not.
//
// A random-weight model never writes `</think>` on its own, so the test model's template
// opens the block in its generation prompt, as Qwen3 (enable_thinking), QwQ and DeepSeek R1
// do: everything such a model writes is reasoning, and its answer is "". With think:false the
// template closes the block itself, nothing is split and everything is answer.
// The model is made by bellows-mkmodel with the template in its GGUF (tokenizer.chat_template);
// a TEMPLATE layer given to /api/create takes the same path once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { startServer, post, ndjson, BIN, DEMO_GGUF } from './helpers.mjs';

const MKMODEL = process.env.BELLOWS_MKMODEL ?? join(dirname(BIN), '../tools/bellows-mkmodel');

// Qwen3's shape (llama.cpp models/templates/Qwen-Qwen3-0.6B.jinja), cut to what the test needs.
const TEMPLATE = `{%- for message in messages %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- if enable_thinking is defined and enable_thinking is false %}
{{- '<think>\\n\\n</think>\\n\\n' }}
{%- else %}
{{- '<think>\\n' }}
{%- endif %}
{%- endif %}`;

let srv, ollama, openai, dir;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bellows-think-'));
  writeFileSync(join(dir, 'qwen3.jinja'), TEMPLATE);
  execFileSync(MKMODEL, ['--preset', 'demo', '--chat-template', join(dir, 'qwen3.jinja'), '-o', join(dir, 'thinker.gguf')]);
  srv = await startServer();
  ollama = new Ollama({ host: srv.url });
  openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused' });
  const r = await post(srv.url, '/api/create', { model: 'thinker', from: join(dir, 'thinker.gguf'), stream: false });
  assert.equal(r.status, 200, await r.text());
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const options = { temperature: 0, num_predict: 20 };
const messages = [{ role: 'user', content: 'Why is the sky blue?' }];

test('the template opens <think> in the generation prompt (what the split relies on)', async () => {
  const r = await post(srv.url, '/api/chat', { model: 'thinker', messages, think: true, _debug_render_only: true });
  assert.equal(r.status, 200);
  const { debug_info } = await r.json();
  assert.ok(debug_info.rendered_prompt.endsWith('<|im_start|>assistant\n<think>\n'), debug_info.rendered_prompt);
});

test('chat, not streamed: the reasoning is in message.thinking, the answer is empty', async () => {
  const r = await ollama.chat({ model: 'thinker', messages, think: true, options });
  assert.equal(r.message.role, 'assistant');
  assert.equal(r.message.content, '');
  assert.ok(r.message.thinking.length > 0, JSON.stringify(r.message));
  assert.ok(!r.message.thinking.includes('<think>'));
  assert.equal(r.eval_count, 20);
  assert.equal(r.done_reason, 'length');
});

test('chat streamed: thinking pieces with empty content, concatenating to the non-streamed reasoning', async () => {
  const whole = await ollama.chat({ model: 'thinker', messages, think: true, options });
  let thinking = '', content = '', pieces = 0, last;
  for await (const part of await ollama.chat({ model: 'thinker', messages, think: true, options, stream: true })) {
    if (!part.done) {
      pieces++;
      assert.equal(part.message.content, '', JSON.stringify(part));
      assert.equal(typeof part.message.thinking, 'string', JSON.stringify(part));
      assert.ok(part.message.thinking.length > 0);
    }
    thinking += part.message.thinking ?? '';
    content += part.message.content;
    last = part;
  }
  assert.ok(pieces > 1, 'streamed in several pieces');
  assert.equal(content, '');
  assert.equal(thinking, whole.message.thinking);
  assert.equal(last.done, true);
  assert.equal(last.message.thinking, undefined, 'the final chunk repeats nothing');
});

test('think unset: the template still opens the block, so the text is still reasoning', async () => {
  const r = await ollama.chat({ model: 'thinker', messages, options });
  assert.equal(r.message.content, '');
  assert.ok(r.message.thinking.length > 0);
});

test('think:false: the template closes the block itself; nothing is split', async () => {
  const d = await post(srv.url, '/api/chat', { model: 'thinker', messages, think: false, _debug_render_only: true });
  const { debug_info } = await d.json();
  assert.ok(debug_info.rendered_prompt.endsWith('<think>\n\n</think>\n\n'), debug_info.rendered_prompt);
  const r = await ollama.chat({ model: 'thinker', messages, think: false, options });
  assert.ok(r.message.content.length > 0);
  assert.equal(r.message.thinking, undefined);
});

test('generate: the reasoning is in `thinking`, streamed and not; raw prompts are not split', async () => {
  const prompt = 'Why is the sky blue?';
  const whole = await ollama.generate({ model: 'thinker', prompt, think: true, options });
  assert.equal(whole.response, '');
  assert.ok(whole.thinking.length > 0, JSON.stringify(whole));
  let thinking = '', response = '';
  for await (const p of await ollama.generate({ model: 'thinker', prompt, think: true, options, stream: true })) {
    thinking += p.thinking ?? '';
    response += p.response;
  }
  assert.equal(response, '');
  assert.equal(thinking, whole.thinking);
  // raw: the prompt is the caller's, no template opened anything.
  const raw = await ollama.generate({ model: 'thinker', prompt: '<think>\nabc', raw: true, options });
  assert.ok(raw.response.length > 0);
  assert.equal(raw.thinking, undefined);
});

test('/v1 chat: reasoning_content, streamed as delta.reasoning_content and not', async () => {
  const params = { model: 'thinker', messages, max_tokens: 20, temperature: 0, reasoning_effort: 'high' };
  const whole = await openai.chat.completions.create(params);
  const m = whole.choices[0].message;
  assert.equal(m.content, '');
  assert.ok(m.reasoning_content.length > 0, JSON.stringify(m));
  assert.equal(whole.choices[0].finish_reason, 'length');
  let reasoning = '', content = '', chunks = 0;
  for await (const c of await openai.chat.completions.create({ ...params, stream: true })) {
    const d = c.choices[0]?.delta ?? {};
    if (d.reasoning_content !== undefined) chunks++;
    reasoning += d.reasoning_content ?? '';
    content += d.content ?? '';
  }
  assert.ok(chunks > 1);
  assert.equal(content, '');
  assert.equal(reasoning, m.reasoning_content);
  // Without reasoning_effort the template decides, and it opens the block.
  const plain = await openai.chat.completions.create({ ...params, reasoning_effort: undefined });
  assert.equal(plain.choices[0].message.content, '');
  assert.equal(plain.choices[0].message.reasoning_content, m.reasoning_content);
});

test('a Jinja TEMPLATE layer (/api/create template) that opens <think> is split the same way', async () => {
  const c = await post(srv.url, '/api/create', { model: 'layered', from: DEMO_GGUF, template: TEMPLATE, stream: false });
  assert.equal(c.status, 200, await c.text());
  const r = await ollama.chat({ model: 'layered', messages, think: true, options });
  assert.equal(r.message.content, '');
  assert.ok(r.message.thinking.length > 0, JSON.stringify(r.message));
  const g = await ollama.generate({ model: 'layered', prompt: 'Why?', think: true, options, stream: false });
  assert.equal(g.response, '');
  assert.ok(g.thinking.length > 0);
});

test('think and reasoning_effort values are checked', async () => {
  for (const think of ['maybe', 5, 'max', {}]) {
    const r = await post(srv.url, '/api/chat', { model: 'thinker', messages, think });
    assert.equal(r.status, 400, JSON.stringify(think));
    assert.equal((await r.json()).error, 'think must be a boolean or one of low, medium, high');
  }
  for (const think of ['low', 'medium', 'high']) {
    const r = await post(srv.url, '/api/chat', { model: 'thinker', messages, think, stream: false, options: { num_predict: 2 } });
    assert.equal(r.status, 200, think);
  }
  const r = await post(srv.url, '/v1/chat/completions', { model: 'thinker', messages, reasoning_effort: 'extreme' });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /reasoning_effort/);
});

test('a model without thinking answers as before: no thinking field', async () => {
  const r = await post(srv.url, '/api/chat', { model: 'demo', messages, stream: true, options });
  const lines = await ndjson(r);
  assert.ok(lines.length > 2);
  for (const l of lines) assert.equal(l.message.thinking, undefined);
  assert.ok(lines.map((l) => l.message.content).join('').length > 0);
});

test('logprobs: the reasoning tokens have entries too, on the chunks that carry them', async () => {
  const r = await ollama.chat({ model: 'thinker', messages, think: true, options, logprobs: true, top_logprobs: 1 });
  assert.equal(r.done_reason, 'length');
  assert.equal(r.logprobs.length, r.eval_count);
  const joined = r.logprobs.map((e) => e.token).join('');
  assert.ok(r.message.thinking.length > 0 && joined.includes(r.message.thinking.trim()), joined);
  const stream = await ollama.chat({ model: 'thinker', messages, think: true, options, logprobs: true, top_logprobs: 1,
    stream: true });
  const got = [];
  for await (const c of stream) {
    if (c.message.thinking) assert.ok((c.logprobs ?? []).length > 0, JSON.stringify(c));
    got.push(...(c.logprobs ?? []));
  }
  assert.deepEqual(got, r.logprobs);
});
