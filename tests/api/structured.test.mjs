// Structured output (issue 11 item 4): a JSON schema as the native API's `format` and as
// /v1's response_format json_schema (through the npm `openai` client). The demo model has
// random weights, so whatever it writes is held only by the grammar: every answer must
// parse and validate (ajv, with ajv-formats) against its schema. The schemas are the
// "generate" list of tests/unit/json_schema_cases.json (strings and arrays bounded, so a
// random model ends them); test_json_schema checks the same list converts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startServer, post } from './helpers.mjs';

const { generate } = JSON.parse(readFileSync(new URL('../unit/json_schema_cases.json', import.meta.url)));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const MESSAGES = [{ role: 'user', content: 'Reply with JSON.' }];

let srv, client;
before(async () => {
  srv = await startServer();
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await srv?.stop(); });

function check(name, schema, text) {
  let value;
  assert.doesNotThrow(() => { value = JSON.parse(text); }, `${name}: not JSON: ${text}`);
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `${name}: ${text}\ndoes not validate: ${ajv.errorsText(validate.errors)}`);
}

// The grammar ends the answer; a random model may still use many tokens (whitespace, long
// numbers), so an answer cut by the token limit is asked for again with a larger one.
async function native(schema, seed) {
  for (const num_predict of [256, 1024]) {
    const r = await post(srv.url, '/api/chat', {
      model: 'demo', messages: MESSAGES, format: schema, stream: false, options: { num_predict, seed },
    });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    if (body.done_reason !== 'length') return body;
  }
  assert.fail('the answer did not end within 1024 tokens');
}

async function openai(schema, seed) {
  for (const max_tokens of [256, 1024]) {
    const r = await client.chat.completions.create({
      model: 'demo', messages: MESSAGES, max_tokens, seed,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
    });
    if (r.choices[0].finish_reason !== 'length') return r;
  }
  assert.fail('the answer did not end within 1024 tokens');
}

test('the corpus has at least 30 schemas', () => {
  assert.ok(generate.length >= 30, `${generate.length} schemas`);
});

test('native format: every answer validates against its schema', async () => {
  for (const [i, { name, schema }] of generate.entries()) {
    const body = await native(schema, i + 1);
    assert.equal(body.done_reason, 'stop', name);
    check(name, schema, body.message.content);
  }
});

test('/v1 response_format json_schema: every answer validates against its schema', async () => {
  for (const [i, { name, schema }] of generate.entries()) {
    const r = await openai(schema, 100 + i);
    assert.equal(r.choices[0].finish_reason, 'stop', name);
    check(name, schema, r.choices[0].message.content);
  }
});

test('/v1/completions takes response_format json_schema too', async () => {
  const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
  const r = await client.completions.create({
    model: 'demo', prompt: 'JSON:', max_tokens: 64,
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
  });
  check('completions', schema, r.choices[0].text);
});

test('an unsupported keyword is a 400 that names it, on both APIs', async () => {
  const schema = { type: 'object', properties: { a: { type: 'string', not: { const: 'x' } } } };
  const r = await post(srv.url, '/api/chat', { model: 'demo', messages: MESSAGES, format: schema, stream: false });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.match(body.error, /keyword 'not' is not supported \(at #\/properties\/a\)/);
  await assert.rejects(
    client.chat.completions.create({
      model: 'demo', messages: MESSAGES,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'integer', multipleOf: 3 } } },
    }),
    (e) => e.status === 400 && /'multipleOf'/.test(e.message),
  );
  // a schema with no end is refused before anything reaches a runner
  const endless = { $ref: '#/$defs/n', $defs: { n: { type: 'object', properties: { next: { $ref: '#/$defs/n' } }, required: ['next'] } } };
  const r2 = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'x', format: endless, stream: false });
  assert.equal(r2.status, 400);
  assert.match((await r2.json()).error, /no finite instance/);
});
