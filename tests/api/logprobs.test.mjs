// Log-probabilities of the generated tokens through the clients that ask for them: Ollama's
// `logprobs` / `top_logprobs` (the ollama npm client, native routes) and OpenAI's (the openai
// client: chat's logprobs / top_logprobs, completions' integer logprobs with the legacy
// arrays). The demo model writes English words, so each token's text is ASCII and the
// entries' tokens, joined, are the answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { startServer, post } from './helpers.mjs';

let srv, ollama, openai;
before(async () => {
  srv = await startServer();
  ollama = new Ollama({ host: srv.url });
  openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await srv?.stop(); });

const greedy = { temperature: 0, num_predict: 12 };
const messages = [{ role: 'user', content: 'Tell me about the river.' }];

// One entry: a token, its bytes, a log-probability; n alternatives (undefined: no field),
// most likely first, the greedy choice the first of them.
function checkEntry(e, n, { greedyChoice = true } = {}) {
  assert.equal(typeof e.token, 'string');
  assert.deepEqual(e.bytes, [...Buffer.from(e.token, 'utf8')]);
  assert.ok(e.logprob <= 0 && e.logprob > -10000, JSON.stringify(e));
  if (n === undefined) {
    assert.equal(e.top_logprobs, undefined);
    return;
  }
  assert.equal(e.top_logprobs.length, n, JSON.stringify(e));
  for (let i = 1; i < n; i++) assert.ok(e.top_logprobs[i].logprob <= e.top_logprobs[i - 1].logprob);
  for (const a of e.top_logprobs) assert.deepEqual(a.bytes, [...Buffer.from(a.token, 'utf8')]);
  if (greedyChoice && n > 0) {
    assert.equal(e.top_logprobs[0].token, e.token);
    assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6);
  }
}

const joined = (entries) => entries.map((e) => e.token).join('');

test('ollama chat: one entry per answer token, with its alternatives, streamed or not', async () => {
  const r = await ollama.chat({ model: 'demo', messages, options: greedy, logprobs: true, top_logprobs: 3 });
  assert.equal(r.done_reason, 'length');
  assert.equal(r.logprobs.length, r.eval_count);
  assert.equal(joined(r.logprobs), r.message.content);
  for (const e of r.logprobs) checkEntry(e, 3);

  const stream = await ollama.chat({ model: 'demo', messages, options: greedy, logprobs: true, top_logprobs: 3,
    stream: true });
  const got = [];
  let content = '';
  for await (const c of stream) {
    content += c.message.content;
    // a chunk's entries are those of its text (the demo model's text is never held back)
    if (c.message.content) assert.equal(joined(c.logprobs ?? []), c.message.content);
    got.push(...(c.logprobs ?? []));
  }
  assert.equal(content, r.message.content);
  assert.deepEqual(got, r.logprobs);
});

test('ollama generate: logprobs without alternatives; none unless asked', async () => {
  const r = await ollama.generate({ model: 'demo', prompt: 'The town', options: greedy, logprobs: true });
  assert.equal(r.logprobs.length, r.eval_count);
  assert.equal(joined(r.logprobs), r.response);
  for (const e of r.logprobs) checkEntry(e, undefined);

  const chunks = await ollama.generate({ model: 'demo', prompt: 'The town', options: greedy, logprobs: true,
    stream: true });
  const got = [];
  for await (const c of chunks) got.push(...(c.logprobs ?? []));
  assert.deepEqual(got, r.logprobs);

  const plain = await ollama.generate({ model: 'demo', prompt: 'The town', options: greedy });
  assert.equal(plain.response, r.response);
  assert.equal(plain.logprobs, undefined);
  // Ollama ignores top_logprobs without logprobs
  const top = await ollama.generate({ model: 'demo', prompt: 'The town', options: greedy, top_logprobs: 2 });
  assert.equal(top.logprobs, undefined);
});

test('a stop string cuts the entries with the text', async () => {
  const full = await ollama.generate({ model: 'demo', prompt: 'The town', options: { ...greedy, num_predict: 30 },
    logprobs: true });
  const words = full.response.split(' ');
  const stop = ' ' + words[Math.floor(words.length / 2)];
  const r = await ollama.generate({ model: 'demo', prompt: 'The town', logprobs: true,
    options: { ...greedy, num_predict: 30, stop: [stop] } });
  assert.equal(r.response, full.response.slice(0, full.response.indexOf(stop)));
  assert.ok(joined(r.logprobs).startsWith(r.response));
  assert.ok(joined(r.logprobs).length < r.response.length + stop.length);
  assert.ok(r.logprobs.length < full.logprobs.length);
});

test('bad logprobs fields are 400s on both APIs', async () => {
  for (const [path, body, msg] of [
    ['/api/chat', { model: 'demo', messages, logprobs: true, top_logprobs: 21 }, /top_logprobs must be between 0 and 20/],
    ['/api/generate', { model: 'demo', prompt: 'x', logprobs: true, top_logprobs: -1 }, /top_logprobs/],
    ['/api/generate', { model: 'demo', prompt: 'x', logprobs: 'yes' }, /logprobs must be a boolean/],
    ['/api/chat', { model: 'demo', messages, logprobs: true, top_logprobs: 2.5 }, /top_logprobs/],
    ['/v1/chat/completions', { model: 'demo', messages, logprobs: true, top_logprobs: 99 }, /top_logprobs/],
    ['/v1/chat/completions', { model: 'demo', messages, top_logprobs: 2 }, /requires logprobs/],
    ['/v1/completions', { model: 'demo', prompt: 'x', logprobs: 21 }, /logprobs must be an integer/],
    ['/v1/completions', { model: 'demo', prompt: 'x', logprobs: true }, /logprobs must be an integer/],
  ]) {
    const r = await post(srv.url, path, body);
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
    const j = await r.json();
    assert.match(typeof j.error === 'string' ? j.error : j.error.message, msg);
  }
  const ok = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'x', stream: false, options: greedy });
  assert.equal(ok.status, 200); // the server is still serving
});

test('openai chat: choices[0].logprobs.content, streamed and not', async () => {
  const body = { model: 'demo', messages, temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 2 };
  const r = await openai.chat.completions.create(body);
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  assert.equal(joined(lp), r.choices[0].message.content);
  for (const e of lp) checkEntry(e, 2);

  const stream = await openai.chat.completions.create({ ...body, stream: true });
  const got = [];
  for await (const c of stream) got.push(...(c.choices[0]?.logprobs?.content ?? []));
  assert.deepEqual(got, lp);

  // no alternatives asked: an empty top_logprobs on every entry, as OpenAI sends
  const bare = await openai.chat.completions.create({ ...body, top_logprobs: undefined });
  for (const e of bare.choices[0].logprobs.content) checkEntry(e, 0);
  assert.deepEqual(bare.choices[0].logprobs.content.map((e) => e.logprob), lp.map((e) => e.logprob));
  // none asked: none given
  const none = await openai.chat.completions.create({ ...body, logprobs: undefined, top_logprobs: undefined });
  assert.equal(none.choices[0].logprobs ?? null, null);

  await assert.rejects(openai.chat.completions.create({ ...body, logprobs: false }), (e) => e.status === 400);
});

test('openai completions: the content entries and the legacy arrays, one prompt or several', async () => {
  const body = { model: 'demo', prompt: 'The town', temperature: 0, max_tokens: 10, logprobs: 3 };
  const r = await openai.completions.create(body);
  const lp = r.choices[0].logprobs;
  const text = r.choices[0].text;
  assert.equal(lp.content.length, r.usage.completion_tokens);
  assert.deepEqual(lp.tokens, lp.content.map((e) => e.token));
  assert.deepEqual(lp.token_logprobs, lp.content.map((e) => e.logprob));
  assert.equal(lp.tokens.join(''), text);
  let offset = 0;
  lp.tokens.forEach((t, i) => {
    assert.equal(lp.text_offset[i], offset);
    assert.equal(text.slice(offset, offset + t.length), t);
    offset += t.length;
    const alts = Object.entries(lp.top_logprobs[i]);
    assert.ok(alts.length >= 1 && alts.length <= 3);
    assert.equal(alts[0][0], t); // greedy: the most likely first
  });

  // streamed: the same entries, the offsets carried across chunks
  const stream = await openai.completions.create({ ...body, stream: true });
  const tokens = [], offsets = [];
  for await (const c of stream) {
    tokens.push(...(c.choices[0]?.logprobs?.tokens ?? []));
    offsets.push(...(c.choices[0]?.logprobs?.text_offset ?? []));
  }
  assert.deepEqual(tokens, lp.tokens);
  assert.deepEqual(offsets, lp.text_offset);

  // logprobs 0: each token's own value, no alternatives
  const zero = await openai.completions.create({ ...body, logprobs: 0 });
  assert.deepEqual(zero.choices[0].logprobs.token_logprobs, lp.token_logprobs);
  assert.deepEqual(zero.choices[0].logprobs.top_logprobs, lp.tokens.map(() => ({})));

  // several prompts: each choice its own entries, offsets from its own start
  const two = await openai.completions.create({ ...body, prompt: ['The town', 'A river'] });
  assert.equal(two.choices.length, 2);
  for (const c of two.choices) {
    assert.equal(c.logprobs.tokens.join(''), c.text);
    assert.equal(c.logprobs.text_offset[0], 0);
  }
  assert.deepEqual(two.choices[0].logprobs.tokens, lp.tokens);
});
