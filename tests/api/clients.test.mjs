// Tools and structured output end to end through the client libraries (issue 11): LangChain's
// ChatOllama / ChatOpenAI (bindTools, withStructuredOutput) and the openai client with
// tool_choice "required" and a named function, streamed and not. The models have random
// weights and real templates (bellows-mkmodel): whatever such a model writes, the grammar
// built from the tools' parameter schemas (or the structured-output schema) holds it, so the
// arguments and objects must validate against their schemas (ajv).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv from 'ajv';
import OpenAI from 'openai';
import { ChatOllama } from '@langchain/ollama';
import { ChatOpenAI } from '@langchain/openai';
import { HumanMessage, AIMessage, ToolMessage } from '@langchain/core/messages';
import { z } from 'zod';

import { startServer, post } from './helpers.mjs';

const MKMODEL = process.env.BELLOWS_MKMODEL ?? new URL('../../build/tools/bellows-mkmodel', import.meta.url).pathname;
const LLAMA = process.env.BELLOWS_LLAMA_DIR ?? new URL('../../build/_deps/llama.cpp', import.meta.url).pathname;

const WEATHER = {
  type: 'object',
  properties: {
    // bounded, so a random model's call always finishes within the token budget; ASCII, since
    // a cut UTF-8 sequence is repaired by the server into U+FFFD and a maxLength could then fail
    city: { type: 'string', pattern: '^[A-Za-z ]{1,24}$' },
    days: { type: 'integer', minimum: 1, maximum: 7 },
    unit: { enum: ['C', 'F'] },
  },
  required: ['city', 'days', 'unit'],
  additionalProperties: false,
};
const TIME = { type: 'object', properties: { zone: { type: 'string', pattern: '^[A-Z]{3}$' } }, required: ['zone'] };
const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: WEATHER } },
  { type: 'function', function: { name: 'get_time', description: 'The time in a zone', parameters: TIME } },
];
const SCHEMAS = { get_weather: WEATHER, get_time: TIME };
const ajv = new Ajv({ strict: false });
const validate = (schema, v) => assert.ok(ajv.validate(schema, v), `${JSON.stringify(v)}: ${ajv.errorsText()}`);

const question = { role: 'user', content: 'What is the weather in Paris?' };
let srv, dir, openai;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bellows-clients-'));
  srv = await startServer();
  openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused' });
  const gguf = join(dir, 'qwen3.gguf');
  execFileSync(MKMODEL, ['--type', 'f16', '--layers', '1', '--vocab', join(LLAMA, 'models/ggml-vocab-qwen2.gguf'),
    '--chat-template', join(LLAMA, 'models/templates/Qwen-Qwen3-0.6B.jinja'), '-o', gguf]);
  const r = await post(srv.url, '/api/create', { model: 'qwen3', from: gguf, stream: false });
  assert.equal(r.status, 200, await r.text());
  // QwQ's template opens the reasoning block in the prompt (<think>\n after the assistant header).
  const qwq = join(dir, 'qwq.gguf');
  execFileSync(MKMODEL, ['--type', 'f16', '--layers', '1', '--vocab', join(LLAMA, 'models/ggml-vocab-qwen2.gguf'),
    '--chat-template', join(LLAMA, 'models/templates/Qwen-QwQ-32B.jinja'), '-o', qwq]);
  const q = await post(srv.url, '/api/create', { model: 'qwq', from: qwq, stream: false });
  assert.equal(q.status, 200, await q.text());
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- the openai client: tool_choice required / named ---------------------------------------

for (const choice of ['required', { type: 'function', function: { name: 'get_time' } }]) {
  const label = typeof choice === 'string' ? choice : 'get_time';
  test(`openai client, tool_choice ${label}: the arguments validate against the tool's schema (streamed and not)`, async () => {
    // One call (parallel_tool_calls false): a random model given room for eight writes eight,
    // and the token limit may cut the last (tools.test.mjs tests several calls).
    const body = { model: 'qwen3', messages: [question], tools: TOOLS, tool_choice: choice, parallel_tool_calls: false,
      max_tokens: 200, temperature: 1, seed: 7 };
    const r = await openai.chat.completions.create(body);
    const calls = r.choices[0].message.tool_calls;
    assert.equal(calls?.length, 1, JSON.stringify(r.choices[0].message));
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    if (label !== 'required') assert.equal(calls[0].function.name, label);
    validate(SCHEMAS[calls[0].function.name], JSON.parse(calls[0].function.arguments));
    const acc = {};
    for await (const chunk of await openai.chat.completions.create({ ...body, stream: true }))
      for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) {
        acc[d.index] ??= { name: '', args: '' };
        acc[d.index].name += d.function?.name ?? '';
        acc[d.index].args += d.function?.arguments ?? '';
      }
    assert.equal(Object.keys(acc).length, 1);
    validate(SCHEMAS[acc[0].name], JSON.parse(acc[0].args));
  });
}

// ---- LangChain ---------------------------------------------------------------------------------

const lcTools = TOOLS.map((t) => ({ type: 'function', function: t.function }));

test('ChatOpenAI.bindTools with a named tool_choice returns tool calls whose args validate', async () => {
  const llm = new ChatOpenAI({ model: 'qwen3', apiKey: 'unused', configuration: { baseURL: `${srv.url}/v1` },
    temperature: 1, maxTokens: 200 });
  const m = await llm.bindTools(lcTools, { tool_choice: 'get_weather' }).invoke([new HumanMessage('Weather in Paris?')]);
  assert.equal(m.tool_calls.length, 1);
  assert.equal(m.tool_calls[0].name, 'get_weather');
  validate(WEATHER, m.tool_calls[0].args);
});

test('ChatOllama.bindTools: the tools reach the model and any calls come back as tool_calls that validate', async () => {
  const llm = new ChatOllama({ model: 'qwen3', baseUrl: srv.url, temperature: 0, numPredict: 40, think: false });
  const m = await llm.bindTools(lcTools).invoke([new HumanMessage('Weather in Paris?')]);
  assert.equal(typeof m.content, 'string');
  for (const c of m.tool_calls ?? []) validate(SCHEMAS[c.name], c.args);
});

const PERSON = z.object({ name: z.string().max(20), age: z.number().int().min(0).max(150), tags: z.array(z.enum(['a', 'b'])).max(3) });
const { $schema: _draft, ...PERSON_JSON } = z.toJSONSchema(PERSON);

test('ChatOllama.withStructuredOutput(zod) returns an object that validates', async () => {
  const llm = new ChatOllama({ model: 'qwen3', baseUrl: srv.url, temperature: 1, numPredict: 300, think: false });
  const out = await llm.withStructuredOutput(PERSON).invoke('A person, please.');
  assert.ok(PERSON.safeParse(out).success, JSON.stringify(out));
  validate(PERSON_JSON, out);
});

test('ChatOpenAI.withStructuredOutput(JSON schema) returns an object that validates', async () => {
  const llm = new ChatOpenAI({ model: 'qwen3', apiKey: 'unused', configuration: { baseURL: `${srv.url}/v1` },
    temperature: 1, maxTokens: 300 });
  const schema = { title: 'person', ...PERSON_JSON };
  const out = await llm.withStructuredOutput(schema, { method: 'jsonSchema' }).invoke('A person, please.');
  validate(PERSON_JSON, out);
});

test('a LangChain tool result fed back renders in the next turn\'s prompt', async () => {
  const msgs = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris', days: 1, unit: 'C' } } }] },
    { role: 'tool', content: '18 C and sunny', tool_name: 'get_weather' },
  ];
  // The same history as LangChain messages reaches /api/chat in this shape; check it renders.
  void new AIMessage({ content: '', tool_calls: [{ name: 'get_weather', args: { city: 'Paris' }, id: 'x' }] });
  void new ToolMessage({ content: '18 C and sunny', tool_call_id: 'x' });
  const r = await post(srv.url, '/api/chat', { model: 'qwen3', messages: msgs, tools: TOOLS, think: false, stream: false,
    _debug_render_only: true });
  const p = (await r.json()).debug_info.rendered_prompt;
  assert.ok(p.includes('<tool_response>\n18 C and sunny\n</tool_response>'), p);
  assert.ok(p.includes('"name": "get_weather", "arguments": {"city": "Paris"'), p);
});

// ---- thinking models: the grammar lets the reasoning finish first -----------------------------

test('structured output on a thinking prompt: the reasoning closes, then the answer validates', async () => {
  const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };
  const d = await post(srv.url, '/api/chat', { model: 'qwq', stream: false, think: true, _debug_render_only: true,
    messages: [{ role: 'user', content: 'A number.' }] });
  assert.ok((await d.json()).debug_info.rendered_prompt.endsWith('<think>\n'));
  for (const seed of [3, 4]) {
    const r = await post(srv.url, '/api/chat', { model: 'qwq', stream: false, think: true, format: schema,
      messages: [{ role: 'user', content: 'A number.' }], options: { temperature: 1, seed, num_predict: 1500 } });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.done_reason, 'stop', JSON.stringify(body));
    assert.ok(!body.message.content.includes('</think>'));
    validate(schema, JSON.parse(body.message.content));
  }
});

test('a tool whose parameters the converter refuses is a 400 naming the tool and the keyword', async () => {
  const bad = [{ type: 'function', function: { name: 'odd', parameters: { type: 'object', not: { required: ['x'] } } } }];
  const r = await post(srv.url, '/v1/chat/completions', { model: 'qwen3', messages: [question], tools: bad });
  assert.equal(r.status, 400);
  const t = await r.text();
  assert.match(t, /odd/);
  assert.match(t, /'not'/);
});
