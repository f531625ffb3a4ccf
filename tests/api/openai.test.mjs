// The OpenAI-compatible routes through the `openai` npm client (6.x: this machine has Node 20).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer } from './helpers.mjs';

let srv, client;
before(async () => {
  srv = await startServer();
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await srv?.stop(); });

test('chat.completions, not streamed, with usage and context fields', async () => {
  const r = await client.chat.completions.create({
    model: 'demo', messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 8, temperature: 0,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
  assert.equal(r.usage.context_length, 4096);
  assert.equal(r.usage.context_max, 32768);
});

test('chat.completions streamed equals the non-streamed answer, with include_usage', async () => {
  const params = { model: 'demo', messages: [{ role: 'user', content: 'Count to three' }], max_tokens: 10, temperature: 0, seed: 1 };
  const whole = await client.chat.completions.create(params);
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '', usage, finish;
  for await (const chunk of stream) {
    if (chunk.choices.length) {
      text += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 10);
});

test('completions', async () => {
  const r = await client.completions.create({ model: 'demo', prompt: 'Once upon a time', max_tokens: 6, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.ok(r.choices[0].text.length > 0);
  assert.equal(r.usage.completion_tokens, 6);
});

test('embeddings', async () => {
  const r = await client.embeddings.create({ model: 'demo', input: ['a', 'b c'] });
  assert.equal(r.data.length, 2);
  assert.equal(r.data[1].index, 1);
  assert.equal(r.data[0].embedding.length, 256); // the demo's n_embd
  // the SDK asked for base64; plain floats give the same vector
  const raw = await fetch(srv.url + '/v1/embeddings', { method: 'POST', body: JSON.stringify({ model: 'demo', input: 'a', encoding_format: 'float' }) });
  const floats = (await raw.json()).data[0].embedding;
  assert.equal(floats.length, 256);
  floats.forEach((x, i) => assert.ok(Math.abs(x - r.data[0].embedding[i]) < 1e-6));
});

test('models list and retrieve; unknown model is a 404 in OpenAI shape', async () => {
  const list = await client.models.list();
  assert.ok(list.data.some((m) => m.id === 'demo:latest'));
  const m = await client.models.retrieve('demo:latest');
  assert.equal(m.id, 'demo:latest');
  assert.equal(m.owned_by, 'library');
  await assert.rejects(
    client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 404 && /model 'nope' not found/.test(e.message),
  );
});

test('response_format json_object gives a JSON answer', async () => {
  const r = await client.chat.completions.create({
    model: 'demo', messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 40, seed: 1,
    response_format: { type: 'json_object' },
  });
  assert.equal(r.choices[0].message.content.trimStart()[0], '{');
  await assert.rejects( // json_schema works (structured.test.mjs); an unknown type does not
    client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } }),
    (e) => e.status === 400,
  );
});

// The model's SYSTEM layer applies on /v1 as on the native API (Ollama's /v1 converts to its
// native requests): a longer prompt than the same model without it, unless the request
// brings its own system message.
test('the SYSTEM layer applies to /v1/chat/completions and /v1/completions', async () => {
  const created = await fetch(srv.url + '/api/create', {
    method: 'POST', body: JSON.stringify({ model: 'demo-sys', from: 'demo', system: 'You answer every question in exactly one short sentence.', stream: false }),
  });
  assert.equal(created.status, 200);
  const chat = async (model, messages) => (await client.chat.completions.create({ model, messages, max_tokens: 1, temperature: 0 })).usage.prompt_tokens;
  const user = [{ role: 'user', content: 'Say hi' }];
  assert.ok(await chat('demo-sys', user) > await chat('demo', user));
  const own = [{ role: 'system', content: 'Be brief.' }, ...user];
  assert.equal(await chat('demo-sys', own), await chat('demo', own));
  const complete = async (model) => (await client.completions.create({ model, prompt: 'Say hi', max_tokens: 1, temperature: 0 })).usage.prompt_tokens;
  assert.ok(await complete('demo-sys') > await complete('demo'));
});
