// The demo model goes only into Bellows' own default store (issue 14 item 4): a server
// pointed at another store -- an Ollama store, whose `ollama list` would show the model too
// -- writes no `demo` into it, while ~/.bellows/models gets it on its first start, and
// BELLOWS_DEMO_MODEL (naming the GGUF) asks for it in any store. BELLOWS_DEMO_MODEL is
// emptied here so that the server falls back to the build's models/demo.gguf by itself;
// HOME is a temporary directory.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_GGUF, startServer } from './helpers.mjs';

const home = mkdtempSync(join(tmpdir(), 'bellows-home-'));
after(() => rmSync(home, { recursive: true, force: true }));

// Every file under DIR, as paths relative to it.
const files = (dir, pre = '') => readdirSync(join(dir, pre)).flatMap((n) => {
  const p = join(pre, n);
  return statSync(join(dir, p)).isDirectory() ? files(dir, p) : [p];
});
const names = async (url) => (await (await fetch(url + '/api/tags')).json()).models.map((m) => m.name);

test('a store that is not Bellows\' own (here laid out as Ollama\'s) gets no demo model', async () => {
  assert.ok(existsSync(DEMO_GGUF), 'the build made the demo model the server would add');
  const ollama = mkdtempSync(join(tmpdir(), 'bellows-ollama-store-'));
  mkdirSync(join(ollama, 'manifests', 'registry.ollama.ai', 'library'), { recursive: true });
  mkdirSync(join(ollama, 'blobs'));
  try {
    for (let start = 0; start < 2; start++) { // nor on a later start
      const srv = await startServer({ HOME: home, BELLOWS_MODELS: ollama, BELLOWS_DEMO_MODEL: '' });
      try {
        assert.deepEqual(await names(srv.url), []);
        assert.deepEqual(files(ollama), [], 'no manifest, no blob, no marker');
      } finally { await srv.stop(); }
    }
    assert.ok(!existsSync(join(home, '.bellows')), 'nor into the default store it does not use');
  } finally { rmSync(ollama, { recursive: true, force: true }); }
});

test('Bellows\' own default store, ~/.bellows/models, gets the demo model on its first start', async () => {
  const srv = await startServer({ HOME: home, BELLOWS_MODELS: '', BELLOWS_DEMO_MODEL: '' });
  const own = join(home, '.bellows', 'models');
  try {
    assert.deepEqual(await names(srv.url), ['demo:latest']);
    assert.ok(existsSync(join(own, '.bellows-demo-created')));
    assert.ok(files(own).some((f) => f === join('manifests', 'registry.ollama.ai', 'library', 'demo', 'latest')),
      files(own).join('\n'));
  } finally { await srv.stop(); }
});

test('BELLOWS_DEMO_MODEL asks for the demo model in any store', async () => {
  const srv = await startServer({ HOME: home, BELLOWS_DEMO_MODEL: DEMO_GGUF });
  try {
    assert.deepEqual(await names(srv.url), ['demo:latest']);
  } finally { await srv.stop(); }
});
