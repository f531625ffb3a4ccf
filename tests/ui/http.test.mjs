// The chat page over plain HTTP: "/" for API clients and for browsers, the page's files
// with their types and caching headers, and the same Host, Origin and API-key rules as the
// API (spec/api.md "Security"; docs/ui.md says why the page's files need no key).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer } from '../api/helpers.mjs';

const KEY = 'ui-test-key';
let open, keyed;
before(async () => {
  [open, keyed] = await Promise.all([startServer(), startServer({ BELLOWS_API_KEY: KEY })]);
});
after(async () => { await Promise.all([open?.stop(), keyed?.stop()]); });

// A raw request (node's fetch will not send a Host of our choosing).
function raw(srv, path, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

test('/ answers text to API clients and redirects a browser to /ui', async () => {
  for (const srv of [open, keyed]) {
    for (const accept of [undefined, '*/*', 'application/json', 'text/html;q=0']) {
      const r = await raw(srv, '/', accept ? { Accept: accept } : {});
      assert.equal(r.status, 200, `Accept ${accept}`);
      assert.equal(r.body, 'Bellows is running');
      assert.match(r.headers['content-type'], /^text\/plain/);
    }
    const b = await raw(srv, '/', { Accept: BROWSER_ACCEPT });
    assert.equal(b.status, 303);
    assert.equal(b.headers.location, '/ui');
    assert.match(b.headers.vary ?? '', /Accept/);
    const head = await raw(srv, '/', { Accept: 'text/html' }, 'HEAD');
    assert.equal(head.status, 303);
  }
});

test('/ui and its files: types, ETag, no-cache, 304, CSP; unknown files 404', async () => {
  const page = await raw(open, '/ui');
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.match(page.body, /<title>Bellows<\/title>/);
  assert.equal(page.headers['cache-control'], 'no-cache');
  assert.match(page.headers.etag, /^"[0-9a-f]{20}"$/);
  assert.match(page.headers['content-security-policy'], /script-src 'self'/);
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.equal((await raw(open, '/ui/')).body, page.body, '/ui/ is the same page');
  assert.equal((await raw(open, '/ui/index.html')).headers.etag, page.headers.etag);

  // every file the page loads, with its type; no URL in it points off this server
  const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(refs.every((u) => u.startsWith('/ui/') || u === 'data:,'), refs.join(' '));
  const types = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
  const seen = new Set();
  const queue = refs.filter((u) => u.startsWith('/ui/'));
  while (queue.length) {
    const u = queue.shift();
    if (seen.has(u)) continue;
    seen.add(u);
    const r = await raw(open, u);
    assert.equal(r.status, 200, u);
    assert.equal(r.headers['content-type'], types[u.split('.').pop()], u);
    assert.doesNotMatch(r.body, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${u} loads nothing from elsewhere`);
    for (const m of r.body.matchAll(/from '\.\/([a-z]+\.js)'/g)) queue.push(`/ui/${m[1]}`);
  }
  assert.ok(seen.has('/ui/app.js') && seen.has('/ui/markdown.js') && seen.has('/ui/style.css'), [...seen].join(' '));

  // revalidation: the same ETag is 304 without a body; a stale one gets the file
  const again = await raw(open, '/ui/app.js', { 'If-None-Match': (await raw(open, '/ui/app.js')).headers.etag });
  assert.equal(again.status, 304);
  assert.equal(again.body, '');
  assert.ok(again.headers.etag);
  assert.equal((await raw(open, '/ui/app.js', { 'If-None-Match': 'W/"0000", *' })).status, 304);
  assert.equal((await raw(open, '/ui/app.js', { 'If-None-Match': '"0000"' })).status, 200);
  const head = await raw(open, '/ui', {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');

  assert.equal((await raw(open, '/ui/missing.js')).status, 404);
  assert.equal((await raw(open, '/ui/../api/tags')).status, 404);
  assert.equal((await raw(open, '/ui', {}, 'POST')).status, 405);
});

test('the Host guard and the Origin list hold for /ui as for the API', async () => {
  for (const path of ['/ui', '/ui/app.js', '/']) {
    const h = await raw(open, path, { Host: 'evil.example.com', Accept: 'text/html' });
    assert.equal(h.status, 403, path);
    assert.match(h.body, /host not allowed/);
    const o = await raw(open, path, { Origin: 'https://evil.example.com' });
    assert.equal(o.status, 403, path);
    assert.match(o.body, /origin not allowed/);
  }
  assert.equal((await raw(open, '/ui', { Host: `localhost:${open.port}` })).status, 200);
  // same origin (a module script's request carries Origin) and the default local origins pass
  assert.equal((await raw(open, '/ui/app.js', { Origin: `http://127.0.0.1:${open.port}` })).status, 200);
  assert.equal((await raw(open, '/ui/app.js', { Origin: 'http://localhost:3000' })).status, 200);
});

test('with an API key: the page loads without it, the API it calls does not', async () => {
  for (const path of ['/ui', '/ui/', '/ui/app.js', '/ui/style.css', '/', '/health']) {
    assert.equal((await raw(keyed, path)).status, 200, path);
  }
  assert.equal((await raw(keyed, '/ui/missing.js')).status, 401, 'only the page\'s own files are public');
  assert.equal((await raw(keyed, '/api/tags')).status, 401);
  assert.equal((await raw(keyed, '/api/tags', { Authorization: `Bearer ${KEY}` })).status, 200);
  const page = await raw(keyed, '/ui');
  assert.doesNotMatch(page.body, new RegExp(KEY), 'the page holds no secret');
});
