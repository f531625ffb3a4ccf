// Raw HTTP: every error of spec/api.md, request ids, the API key, the Host guard, the queue.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, post } from './helpers.mjs';

let srv;
before(async () => { srv = await startServer({ BELLOWS_MAX_BODY: '64K' }); });
after(async () => { await srv?.stop(); });

test('malformed JSON is a 400 naming line and column', async () => {
  const r = await post(srv.url, '/api/chat', '{"model": "demo",\n "messages": [}');
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.match(body.error, /line 2 column \d+/);
});

test('missing body and missing model are 400', async () => {
  let r = await fetch(srv.url + '/api/generate', { method: 'POST' });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error, /missing request body/);
  r = await post(srv.url, '/api/generate', { prompt: 'x' });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error, /model is required/);
});

test('unknown model is a 404', async () => {
  const r = await post(srv.url, '/api/generate', { model: 'nope', prompt: 'x' });
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error, "model 'nope' not found");
});

test('a name that tries to leave the store is a 400', async () => {
  const r = await post(srv.url, '/api/show', { model: '../../etc/passwd' });
  assert.equal(r.status, 400);
});

test('wrong method is a 405, unknown path a 404', async () => {
  let r = await fetch(srv.url + '/api/chat');
  assert.equal(r.status, 405);
  r = await fetch(srv.url + '/api/nothing');
  assert.equal(r.status, 404);
});

test('a body over BELLOWS_MAX_BODY is a 413 and the server stays up', async () => {
  const big = JSON.stringify({ model: 'demo', prompt: 'x'.repeat(100 * 1024) });
  const r = await post(srv.url, '/api/generate', big);
  assert.equal(r.status, 413);
  const ok = await fetch(srv.url + '/api/version');
  assert.equal(ok.status, 200);
});

test('bad option types are a 400 naming the option', async () => {
  const r = await post(srv.url, '/api/chat', { model: 'demo', messages: [{ role: 'user', content: 'x' }], options: { temperature: 'hot' } });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error, /temperature/);
  const r2 = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'x', options: { num_predict: 1.5 } });
  assert.equal(r2.status, 400);
  assert.match((await r2.json()).error, /num_predict/);
});

test('X-Request-Id is echoed, or generated, on every response', async () => {
  let r = await fetch(srv.url + '/api/version', { headers: { 'X-Request-Id': 'my-id-42' } });
  assert.equal(r.headers.get('x-request-id'), 'my-id-42');
  r = await fetch(srv.url + '/api/nothing');
  assert.ok(r.headers.get('x-request-id'));
  r = await post(srv.url, '/api/chat', { model: 'demo', messages: [{ role: 'user', content: 'hi' }], stream: false, options: { num_predict: 2 } }, { 'X-Request-Id': 'chat-7' });
  assert.equal(r.headers.get('x-request-id'), 'chat-7');
  assert.equal((await r.json()).request_id, 'chat-7');
});

test('push answers 501 (pull is tests/api/pull.test.mjs)', async () => {
  const r = await post(srv.url, '/api/push', { model: 'llama3' });
  assert.equal(r.status, 501);
});

test('a Host that is not local gets 403 while bound to loopback', async () => {
  const status = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path: '/api/version', headers: { Host: 'evil.example.com' } }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 403);
});

test('with BELLOWS_API_KEY every route but / and /health needs the key', async () => {
  const s = await startServer({ BELLOWS_API_KEY: 'sekret' });
  try {
    assert.equal((await fetch(s.url + '/api/tags')).status, 401);
    assert.equal((await fetch(s.url + '/api/tags', { headers: { Authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(s.url + '/api/tags', { headers: { Authorization: 'Bearer sekret' } })).status, 200);
    assert.equal((await fetch(s.url + '/health')).status, 200);
    assert.equal((await fetch(s.url + '/')).status, 200);
  } finally { await s.stop(); }
});

test('a full queue answers 503', async () => {
  const s = await startServer({ BELLOWS_MAX_QUEUE: '1' });
  try {
    assert.equal((await post(s.url, '/api/generate', { model: 'demo', prompt: '', stream: false })).status, 200); // loaded
    const abort = new AbortController();
    const long = fetch(s.url + '/api/generate', {
      method: 'POST', signal: abort.signal,
      // temperature 0: the demo model's greedy answers never end by themselves (test_demo_words)
      body: JSON.stringify({ model: 'demo', prompt: 'go', options: { num_predict: 100000, temperature: 0 } }),
    });
    const first = await long; // headers out: it holds the only place
    assert.equal(first.status, 200);
    const r = await post(s.url, '/api/generate', { model: 'demo', prompt: 'second', stream: false, options: { num_predict: 1 } });
    assert.equal(r.status, 503);
    assert.match((await r.json()).error, /server busy/);
    abort.abort(); // the client goes away: its generation is cancelled and the place is free again
    let ok;
    for (let i = 0; i < 100; i++) {
      ok = await post(s.url, '/api/generate', { model: 'demo', prompt: 'third', stream: false, options: { num_predict: 1 } });
      if (ok.status === 200) break;
      await new Promise((done) => setTimeout(done, 50));
    }
    assert.equal(ok.status, 200);
  } finally { await s.stop(); }
});

test('/metrics speaks Prometheus text', async () => {
  const r = await fetch(srv.url + '/metrics');
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.match(text, /# TYPE bellows_requests_total counter/);
  assert.match(text, /bellows_time_to_first_token_seconds_bucket/);
  assert.match(text, /bellows_requests_total\{route="\/api\/chat",status="2xx"\} \d+/);
});

test('a client that leaves a non-streamed answer cancels its generation', async () => {
  await post(srv.url, '/api/generate', { model: 'demo', prompt: '', stream: false }); // loaded
  const abort = new AbortController();
  const pending = fetch(srv.url + '/api/generate', {
    method: 'POST', signal: abort.signal,
    body: JSON.stringify({ model: 'demo', prompt: 'go on forever', stream: false, options: { num_predict: 1000000, temperature: 0 } }),
  }).catch(() => null);
  const live = async () => (await (await fetch(srv.url + '/api/ps')).json()).models.find((m) => m.name === 'demo:latest')?.context.sequences;
  for (let i = 0; i < 100 && (await live()) !== 1; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await live(), 1, 'the answer is being generated');
  abort.abort();
  await pending;
  let n;
  for (let i = 0; i < 100; i++) {
    n = await live();
    if (n === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(n, 0, 'the runner stopped generating for nobody');
  assert.match(srv.log(), /client went away; cancelling/);
});
