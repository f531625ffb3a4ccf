// Request limits as data, checked at the edge (issue 13 item 1, src/proto/limits.h): each
// violation is a 400 naming the field and the limit; counts are configurable; durations
// clamp; long model names are refused, never cut; /metrics labels stay well-formed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, post } from './helpers.mjs';

let srv;
before(async () => {
  srv = await startServer({ BELLOWS_MAX_MESSAGES: '5', BELLOWS_MAX_INPUTS: '2', BELLOWS_MAX_TOOLS: '1' });
});
after(async () => { await srv?.stop(); });

const render = (options) => post(srv.url, '/api/chat', {
  model: 'demo', messages: [{ role: 'user', content: 'hi' }], stream: false, _debug_render_only: true, options,
});

async function refused(r, pattern) {
  const text = await r.text();
  assert.equal(r.status, 400, text);
  assert.match(text, pattern);
}

test('option ranges: repeat_last_n up to the model context, integers that fit, finite floats', async () => {
  await refused(await render({ repeat_last_n: 2147483647 }),
    /options\.repeat_last_n must be between -1 and 32768 \(the model's context\)/);
  await refused(await render({ repeat_last_n: -2 }), /options\.repeat_last_n must be between -1 and 32768/);
  await refused(await render({ num_keep: 40000 }), /options\.num_keep must be between -1 and 32768/);
  await refused(await render({ num_predict: 1e12 }), /options\.num_predict must be between -2 and 2147483647/);
  await refused(await render({ top_k: 10000000 }), /options\.top_k must be between -1 and 1048576/);
  await refused(await render({ temperature: 1e39 }), /options\.temperature must be a finite number/);
  await refused(await render({ num_ctx: 1e10 }), /options\.num_ctx must be between/);
  // in range: accepted (-1 is the whole context, as in Ollama)
  for (const options of [{ repeat_last_n: -1 }, { repeat_last_n: 32768, num_keep: 0 }, { num_predict: -2, top_k: 0 },
    { seed: 9007199254740991, temperature: 0 }]) {
    const r = await render(options);
    assert.equal(r.status, 200, await r.text());
  }
  // /v1 maps onto the same options
  const v1 = await post(srv.url, '/v1/chat/completions', { model: 'demo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1e12 });
  assert.equal(v1.status, 400);
  assert.match((await v1.json()).error.message, /num_predict must be between/);
});

test('stop strings: count and length', async () => {
  await refused(await render({ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }), /options\.stop: 17 strings, at most 16/);
  await refused(await render({ stop: ['x'.repeat(1025)] }), /options\.stop\[0\] is 1025 bytes, at most 1024/);
  const ok = await render({ stop: ['x'.repeat(1024)] });
  assert.equal(ok.status, 200);
});

test('messages, inputs and tools are counted before any work, and the limits are configurable', async () => {
  const six = Array.from({ length: 6 }, () => ({ role: 'user', content: 'a' }));
  await refused(await post(srv.url, '/api/chat', { model: 'demo', messages: six, stream: false }),
    /messages: 6 messages, at most 5 \(BELLOWS_MAX_MESSAGES raises the limit\)/);
  let r = await post(srv.url, '/v1/chat/completions', { model: 'demo', messages: six });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /BELLOWS_MAX_MESSAGES/);
  // also for an unknown model: the count is checked first
  await refused(await post(srv.url, '/api/chat', { model: 'nope', messages: six }), /at most 5/);
  await refused(await post(srv.url, '/api/embed', { model: 'demo', input: ['a', 'b', 'c'] }),
    /input: 3 inputs, at most 2 \(BELLOWS_MAX_INPUTS/);
  r = await post(srv.url, '/v1/embeddings', { model: 'demo', input: ['a', 'b', 'c'] });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /at most 2/);
  r = await post(srv.url, '/v1/embeddings', { model: 'demo', input: [1, 2, 3, 4] }); // one input, as token ids
  assert.equal(r.status, 200, await r.text());
  const tool = (name) => ({ type: 'function', function: { name, parameters: { type: 'object' } } });
  await refused(await post(srv.url, '/api/chat', { model: 'demo', messages: [{ role: 'user', content: 'a' }], tools: [tool('a'), tool('b')] }),
    /tools: 2 tools, at most 1 \(BELLOWS_MAX_TOOLS/);
  const five = await post(srv.url, '/api/chat', { model: 'demo', messages: six.slice(1), stream: false, _debug_render_only: true });
  assert.equal(five.status, 200);
});

test('keep_alive: huge and negative durations are forever, never an expiry in the past', async () => {
  for (const keep_alive of ['2562047h', 9e18, '-1m', -1]) {
    const r = await post(srv.url, '/api/generate', { model: 'demo', prompt: '', keep_alive, stream: false });
    assert.equal(r.status, 200, await r.text());
    const ps = await (await fetch(srv.url + '/api/ps')).json();
    const year = Number(ps.models[0].expires_at.slice(0, 4));
    assert.ok(year >= 2318, `keep_alive ${keep_alive}: expires_at ${ps.models[0].expires_at}`);
  }
  const r = await post(srv.url, '/api/generate', { model: 'demo', prompt: '', keep_alive: '1h', stream: false });
  assert.equal(r.status, 200);
  const ps = await (await fetch(srv.url + '/api/ps')).json();
  const left = Date.parse(ps.models[0].expires_at) - Date.now();
  assert.ok(left > 3500e3 && left <= 3600e3, `1h: ${ps.models[0].expires_at}`);
});

test('model names: too long is a clear 400, a long valid one is never cut', async () => {
  const long = 'm'.repeat(700);
  await refused(await post(srv.url, '/api/generate', { model: long, prompt: 'x' }), /model: 700 bytes, at most 593/);
  await refused(await post(srv.url, '/api/show', { model: long }), /at most 593|invalid model name/);
  // 333 bytes, valid: served under its whole name (a name cut to 255 bytes
  // would be another, missing model)
  const valid = `${'h'.repeat(200)}.example/${'n'.repeat(60)}/${'m'.repeat(60)}:t`; // each part fits a file name
  let r = await post(srv.url, '/api/copy', { source: 'demo', destination: valid });
  assert.equal(r.status, 200, await r.text());
  r = await post(srv.url, '/api/generate', { model: valid, prompt: '', stream: false });
  assert.equal(r.status, 200, await r.text());
  const ps = await (await fetch(srv.url + '/api/ps')).json();
  assert.ok(ps.models.some((m) => m.name === valid), JSON.stringify(ps.models.map((m) => m.name)));
  r = await fetch(srv.url + '/api/delete', { method: 'DELETE', body: JSON.stringify({ model: valid }) });
  assert.equal(r.status, 200);
});

// A request line as a client could send it (fetch would escape the quote).
function rawRequest(port, line) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

test('/metrics: a 405 on a client-chosen path never becomes a raw label', async () => {
  const res = await rawRequest(srv.port, 'GET /api/blobs/sha256:a"b\\}{x HTTP/1.1');
  assert.match(res, /^HTTP\/1\.1 405/);
  const text = await (await fetch(srv.url + '/metrics')).text();
  assert.ok(!text.includes('a"b'), 'the path is not a label');
  assert.match(text, /bellows_requests_total\{route="\/api\/blobs\/",status="4xx"\} 1/);
  // every sample line is name{label="escaped",...} value
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#')))
    assert.match(line, /^[a-z_]+(\{([a-z_]+="([^"\\\n]|\\["\\n])*",?)*\})? [0-9.e+-]+$/, line);
});
