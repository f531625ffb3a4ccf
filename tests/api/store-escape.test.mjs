// Store escape over HTTP (issue 13 item 10): every route that takes a name, a path or a
// digest from the client keeps it inside the store -- copy's destination and source,
// create's name, `from` paths, `files` digests and file names, delete -- not only /api/show.
// Each is refused with a 4xx, nothing is written outside the store, no model appears.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startServer } from './helpers.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

const call = (path, body, method = 'POST') => fetch(srv.url + path, { method, body: JSON.stringify(body) });
const hex = 'a'.repeat(64);

test('names, paths and digests from the client never leave the store', async () => {
  const outside = dirname(srv.store);
  const before = new Set(readdirSync(outside));
  const cases = [
    ['/api/copy', { source: 'demo', destination: '../../escape' }, /invalid model name/],
    ['/api/copy', { source: 'demo', destination: '/tmp/escape' }, /invalid model name/],
    ['/api/copy', { source: 'demo', destination: 'a/../../escape' }, /invalid model name/],
    ['/api/copy', { source: '../../etc/passwd', destination: 'x' }, /invalid model name/],
    ['/api/create', { model: '../../escape', from: 'demo', stream: false }, /invalid model name/],
    ['/api/create', { model: 'ns/..', from: 'demo', stream: false }, /invalid model name/],
    ['/api/create', { model: 'esc1', from: '/etc/passwd', stream: false }, /not a GGUF file/],
    ['/api/create', { model: 'esc2', from: `../../../../../../${srv.store}/manifests`, stream: false }, /./],
    ['/api/create', { model: 'esc3', files: { 'a.gguf': 'sha256:../../../../etc/passwd' }, stream: false }, /invalid digest/],
    ['/api/create', { model: 'esc4', files: { 'a.gguf': `sha256:${hex}/../../x` }, stream: false }, /invalid digest/],
    ['/api/create', { model: 'esc5', files: { '../../a.gguf': `sha256:${hex}` }, stream: false }, /./],
    ['/api/delete', { model: '../../x' }, /invalid model name/, 'DELETE'],
    ['/api/show', { model: '../../etc/passwd' }, /invalid model name/],
  ];
  for (const [path, body, pattern, method] of cases) {
    const r = await call(path, body, method);
    const text = await r.text();
    assert.ok(r.status >= 400 && r.status < 500, `${path} ${JSON.stringify(body)} -> ${r.status} ${text}`);
    assert.match(text, pattern, `${path} ${JSON.stringify(body)}`);
  }
  // nothing new beside the store, nothing under /tmp/escape, and only demo inside it
  const after = readdirSync(outside).filter((n) => !before.has(n) && n.includes('escape'));
  assert.deepEqual(after, []);
  assert.ok(!existsSync('/tmp/escape'));
  assert.ok(!existsSync(join(outside, 'escape')));
  const tags = await (await fetch(srv.url + '/api/tags')).json();
  assert.deepEqual(tags.models.map((m) => m.name), ['demo:latest']);
});
