// Every chat template of the pinned llama.cpp (models/templates/*.jinja, 68) end to end
// (issue 10): one random-weight test model with the llama-spm vocabulary; for each template a
// model made through /api/create with that template as a Jinja TEMPLATE layer (which
// replaces the GGUF's: /api/show says template_source "modelfile"); each message set of
// tests/template/cases.mjs sent to /api/chat with `_debug_render_only` must come back as
// debug_info.rendered_prompt byte for byte as the reference renders the context Bellows gives
// the template (cases.mjs apiContextFor, per docs/templates.md): the oracle
// (@huggingface/jinja), or where tests/template/jinja2-differences.mjs says Python's jinja2
// differs, jinja2's text for that very context (jinja2-expected-api.json, written by
// tests/template/regen-jinja2.mjs) or jinja2's error.
//   - `think` is sent for the cases that set enable_thinking, to the models whose
//     capabilities include "thinking"; the others must refuse think:true with a 400 and
//     render the case without think.
//   - A template error (raise_exception's message included) is a 400 carrying the message.
//   - strftime_now is the server's local time: the server runs with TZ=BWT-12 or BWT+12
//     (POSIX zones, no tzdata needed), whichever puts the local day off UTC's, and the
//     oracle gets that zone's current time.
// One runner at a time (BELLOWS_MAX_LOADED_MODELS=1) and keep_alive 0 on each model's last
// request keep memory bounded. BELLOWS_TEMPLATES_REPORT=FILE also writes the report to FILE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startServer, post } from './helpers.mjs';
import { API_TOKENS, API_VOCAB, CASES, apiContextFor, argumentsAsText, thinkFor } from '../template/cases.mjs';
import { strftime } from '../template/oracle.mjs';
import { DIFFERENCES } from '../template/jinja2-differences.mjs';
import {
  LLAMA, TEMPLATES_DIR, contextId, expectedFor, firstDifference, jinja2Difference, listTemplates, summary,
} from '../template/reference.mjs';

const MKMODEL = process.env.BELLOWS_MKMODEL ?? new URL('../../build/tools/bellows-mkmodel', import.meta.url).pathname;
const EXPECTED = JSON.parse(readFileSync(new URL('../template/jinja2-expected-api.json', import.meta.url), 'utf8'));
const TEMPLATES = listTemplates();
const CASE_NAMES = Object.keys(CASES);

// The server's time zone: 12 hours from UTC, east or west so that the local day is never
// UTC's day while the test runs (a server that formats UTC fails); the oracle's
// strftime_now formats that zone's wall clock.
const EAST = new Date().getUTCHours() >= 12;
const TZ = EAST ? 'BWT-12' : 'BWT+12'; /* POSIX: the offset is west of UTC */
const TZ_OFFSET_MS = (EAST ? 12 : -12) * 3600 * 1000;
const localStrftime = (ms) => (fmt) => strftime(new Date(ms + TZ_OFFSET_MS), fmt);
const localDay = (ms) => strftime(new Date(ms + TZ_OFFSET_MS), '%Y-%m-%d');

// jinja2's text for an allow-listed pair, only for the context it was rendered with.
function jinja2Text(template, caseName, ctx) {
  const text = EXPECTED[`${template}|${caseName}|${contextId(ctx)}`];
  if (text !== undefined && readFileSync(join(TEMPLATES_DIR, template), 'utf8').includes('strftime_now'))
    throw new Error('a stored jinja2 text cannot hold the day the test runs: this template prints strftime_now');
  return text;
}

let srv, dir;
const results = new Map(); // template -> case -> null (match) | failure text
const seen = { thinking: 0, refusedThink: 0, errors: 0, jinja2: 0, dated: 0 };
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bellows-templates-all-'));
  srv = await startServer({ BELLOWS_MAX_LOADED_MODELS: '1', TZ });
  const gguf = join(dir, 'base.gguf');
  execFileSync(MKMODEL, ['--type', 'f16', '--layers', '1', '--vocab', join(LLAMA, `models/ggml-vocab-${API_VOCAB}.gguf`),
    '-o', gguf]);
  const r = await post(srv.url, '/api/create', { model: 'tpl-base', from: gguf, stream: false });
  assert.equal(r.status, 200, await r.text());
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  const text = summary('templates through /api/chat', results, CASE_NAMES);
  if (text) console.log(text);
  if (process.env.BELLOWS_TEMPLATES_REPORT) writeFileSync(process.env.BELLOWS_TEMPLATES_REPORT, text || 'all match\n');
});

test('the pinned llama.cpp ships its chat templates', () => {
  assert.ok(TEMPLATES.length >= 60, `only ${TEMPLATES.length} templates in ${TEMPLATES_DIR}`);
  const gone = DIFFERENCES.map((d) => d.template).filter((t) => !TEMPLATES.includes(t));
  assert.deepEqual(gone, [], 'the allow-list names templates that are gone');
});

async function chat(body) {
  const r = await post(srv.url, '/api/chat', body);
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, text, json };
}

// null when the answer R is what WANT says, else what differs.
function compare(want, r) {
  if (want.ok) {
    if (r.status !== 200) return `expected a rendering, got ${r.status}: ${r.text.slice(0, 400)}`;
    const got = r.json?.debug_info?.rendered_prompt;
    if (typeof got !== 'string') return `no debug_info.rendered_prompt in ${r.text.slice(0, 400)}`;
    return got === want.text ? null : firstDifference(want.text, got);
  }
  if (r.status !== 400)
    return `expected a 400 with ${JSON.stringify(want.error)}, got ${r.status}: ${r.text.slice(0, 400)}`;
  const error = r.json?.error;
  if (typeof error !== 'string' || !error.startsWith('chat template error: '))
    return `expected {"error":"chat template error: ..."}, got ${r.text.slice(0, 400)}`;
  if (want.raised && error !== `chat template error: ${want.error}`)
    return `expected the template's own message, {"error":${JSON.stringify(`chat template error: ${want.error}`)}}, got ${JSON.stringify(error)}`;
  if (want.contains && !error.includes(want.contains))
    return `expected an error containing ${JSON.stringify(want.contains)}, got ${JSON.stringify(error)}`;
  return null;
}

// Renders case CASENAME on model NAME; returns null (as the reference) or what differs.
async function renderCase({ template, text, name, thinking }, caseName, last) {
  const c = CASES[caseName];
  const think = thinkFor(c, thinking);
  if (!thinking && c.vars?.enable_thinking === true) {
    const r = await chat({ model: name, messages: c.messages, stream: false, _debug_render_only: true, think: true });
    if (r.status !== 400 || !/does not support thinking/.test(r.json?.error ?? ''))
      return `think:true on a model without "thinking": expected a 400 "does not support thinking", got ${r.status}: ${r.text.slice(0, 300)}`;
    seen.refusedThink++;
  }
  const body = { model: name, messages: c.messages, stream: false, _debug_render_only: true };
  if (c.tools) body.tools = c.tools;
  if (think !== undefined) body.think = think;
  if (last) body.keep_alive = 0;
  const ctx = apiContextFor(c, API_TOKENS, think);
  const t0 = Date.now();
  const r = await chat(body);
  const t1 = Date.now();
  // As chat_template_render does: a template that fails on tool-call arguments given as
  // objects (Functionary v3.2 concatenates them as text) is rendered once more with them as
  // JSON text.
  const want = (ms) => {
    const globals = { strftime_now: localStrftime(ms) };
    const w = expectedFor({ template, text, caseName, ctx, jinja2Text, globals });
    const textArgs = argumentsAsText(ctx);
    if (w.ok || !textArgs) return w;
    // (jinja2's text for it when the oracle cannot render the template: Functionary v3.2's
    // tuples; stored by hand from jinja2_ref.py, as the allow-listed texts are)
    const stored = jinja2Text(template, caseName, textArgs);
    if (stored !== undefined) return { ok: true, text: stored };
    const again = expectedFor({ template, text, caseName, ctx: textArgs, jinja2Text, globals });
    return again.ok ? again : w;
  };
  const w = want(t0);
  let failure = compare(w, r);
  if (failure && localDay(t0) !== localDay(t1)) failure = compare(want(t1), r); /* midnight passed during the request */
  if (!failure) {
    if (!w.ok) seen.errors++;
    if (jinja2Difference(template, caseName)) seen.jinja2++;
    if (w.ok && text.includes('strftime_now') && w.text.includes(localDay(t0))) seen.dated++;
  }
  return failure;
}

for (const [i, template] of TEMPLATES.entries()) {
  test(template, async () => {
    const row = new Map();
    results.set(template, row);
    const text = readFileSync(join(TEMPLATES_DIR, template), 'utf8');
    const name = `tpl-${i}`;
    const made = await post(srv.url, '/api/create', { model: name, from: 'tpl-base', template: text, stream: false });
    assert.equal(made.status, 200, await made.text());
    const show = await (await post(srv.url, '/api/show', { model: name })).json();
    assert.equal(show.template_source, 'modelfile');
    assert.equal(show.template, text, "/api/show's template is not the TEMPLATE layer's text");
    assert.ok(show.capabilities.includes('completion'), JSON.stringify(show.capabilities));
    const m = { template, text, name, thinking: show.capabilities.includes('thinking') };
    seen.thinking += m.thinking;
    for (const [k, caseName] of CASE_NAMES.entries()) {
      let failure;
      try {
        failure = await renderCase(m, caseName, k === CASE_NAMES.length - 1);
      } catch (e) {
        failure = e.message;
      }
      row.set(caseName, failure);
    }
    const failed = [...row].filter(([, f]) => f);
    if (failed.length)
      throw new Error(failed.map(([c, f]) => `${c}: ${f}`).join('\n'));
  });
}

// The native call formats added for issue 11 (src/template/toolcall*.c): a tool_choice naming
// get_time holds even this random model to the call in the template's own format (the call
// grammar, with the format's markers as plain text in this vocabulary), and the format's
// parser reads it back: message.tool_calls with the call, no content, streamed and not.
const NATIVE_CALLS = [
  'MiniMax-M2.jinja', 'MiniMax-M3.jinja', 'deepseek-ai-DeepSeek-V3.2.jinja', 'ByteDance-Seed-OSS.jinja',
  'LFM2.5-8B-A1B.jinja',
  'ibm-granite-granite-3.3-2B-Instruct.jinja', 'unsloth-Apriel-1.5.jinja', 'MiniMax-M1.jinja',
  'NVIDIA-Nemotron-Nano-v2.jinja', 'meetkai-functionary-medium-v3.2.jinja', 'Apertus-8B-Instruct.jinja',
];
// (FireFunction v2's template reads its tools from a `functions` variable, which no request
// sets: with tools it is a template error, so its format is tested in the unit tests only.)
const GET_TIME = [{ type: 'function', function: { name: 'get_time', description: 'The time now',
  parameters: { type: 'object', properties: {} } } }];
for (const [i, template] of NATIVE_CALLS.entries()) {
  test(`${template}: a named tool_choice makes a native call that is read back`, async () => {
    const name = `call-${i}`;
    const text = readFileSync(join(TEMPLATES_DIR, template), 'utf8');
    const made = await post(srv.url, '/api/create', { model: name, from: 'tpl-base', template: text, stream: false });
    assert.equal(made.status, 200, await made.text());
    const show = await (await post(srv.url, '/api/show', { model: name })).json();
    // think:false where the model thinks; where the prompt opens a reasoning block anyway
    // (MiniMax M2, Nemotron Nano v2), the forced call comes after it, which the engine bounds
    // to 1000 pieces: the token limit leaves room for both (the grammar ends the answer
    // after the call)
    const body = { model: name, messages: [{ role: 'user', content: 'What time is it?' }], tools: GET_TIME,
      tool_choice: { type: 'function', function: { name: 'get_time' } }, options: { temperature: 0, num_predict: 1300 },
      ...(show.capabilities.includes('thinking') ? { think: false } : {}) };
    const r = await chat({ ...body, stream: false });
    assert.equal(r.status, 200, r.text);
    const m = r.json.message;
    assert.equal(m.content, '', r.text);
    assert.equal(m.tool_calls?.length, 1, r.text);
    assert.deepEqual(m.tool_calls[0].function, { index: 0, name: 'get_time', arguments: {} });
    const parts = (await (await post(srv.url, '/api/chat', { ...body, keep_alive: 0 })).text())
      .split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const calls = parts.flatMap((p) => p.message?.tool_calls ?? []);
    assert.deepEqual(calls.map((c) => c.function), [{ index: 0, name: 'get_time', arguments: {} }], JSON.stringify(parts));
    assert.equal(parts.map((p) => p.message?.content ?? '').join(''), '');
  });
}

test('every template x message set renders through /api/chat as the reference does', async () => {
  const ps = await (await fetch(`${srv.url}/api/ps`)).json();
  assert.ok(ps.models.length <= 1, `runners left loaded: ${ps.models.map((x) => x.name).join(', ')}`);
  const all = [...results.values()].flatMap((row) => [...row.values()]);
  const ok = all.filter((f) => f === null).length;
  console.log(`# ${ok} of ${all.length} template x message set renderings match (${seen.errors} of them the template's `
    + `error as a 400, ${seen.jinja2} jinja2's text or error, ${seen.dated} with today's date in ${TZ}); `
    + `${seen.thinking} of ${TEMPLATES.length} models can think, ${seen.refusedThink} refused think:true`);
  assert.equal(all.length, TEMPLATES.length * CASE_NAMES.length);
  assert.equal(ok, all.length);
});
