// Which template renders, and the capabilities it gives (issue 10, item 3): /api/show's
// template, template_source and capabilities; a TEMPLATE in Ollama's Go syntax is kept but
// not rendered, and /api/create says so; think on a model whose template cannot think is
// Ollama's 400 "<model>" does not support thinking, think:false is fine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, post, ndjson, DEMO_GGUF } from './helpers.mjs';

// As Ollama's registry serves qwen2.5's template (abridged).
const GO_TEMPLATE = `{{- if .Messages }}
{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
<|im_start|>{{ .Role }}
{{ .Content }}{{ if not $last }}<|im_end|>
{{ end }}
{{- end }}
{{- else }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ .Response }}`;

// A Jinja template with a thinking switch and no tools.
const THINK_TEMPLATE = `{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% if enable_thinking is defined and not enable_thinking %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}{%- endif %}`;

let srv;
const show = async (model) => {
  const r = await post(srv.url, '/api/show', { model });
  assert.equal(r.status, 200);
  return r.json();
};

before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

// The demo model's template is the one in llama.cpp's ggml-vocab-qwen2.gguf: Qwen2's first
// ChatML template, which uses neither `tools` nor thinking (Qwen2.5's added tools).
test('show: the demo model renders with its GGUF template, Qwen2\'s: no tools, no thinking', async () => {
  const s = await show('demo');
  assert.deepEqual(s.capabilities, ['completion']);
  assert.doesNotMatch(s.template, /tools|think/);
  assert.equal(s.template_source, 'gguf');
  assert.match(s.template, /<\|im_start\|>/);
  assert.match(s.template, /\{%/);
  assert.equal(s.modelfile_template, undefined);
  assert.doesNotMatch(s.modelfile, /TEMPLATE/);
});

test('think true or an effort on a model that cannot think: 400 like Ollama\'s; think:false is fine', async () => {
  const messages = [{ role: 'user', content: 'hi' }];
  for (const think of [true, 'high']) {
    let r = await post(srv.url, '/api/chat', { model: 'demo', messages, think, stream: false });
    assert.equal(r.status, 400);
    assert.deepEqual(await r.json(), { error: '"demo" does not support thinking' });
    r = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'hi', think, stream: false });
    assert.equal(r.status, 400);
    assert.deepEqual(await r.json(), { error: '"demo" does not support thinking' });
  }
  // also when loading only (what `bellows run --think` sends first)
  let r = await post(srv.url, '/api/chat', { model: 'demo', messages: [], think: true });
  assert.equal(r.status, 400);
  r = await post(srv.url, '/api/chat', { model: 'demo', messages, think: false, stream: false, options: { num_predict: 2 } });
  const body = await r.text();
  assert.equal(r.status, 200, body);
  assert.equal(JSON.parse(body).done, true);
  r = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'hi', think: false, stream: false, options: { num_predict: 2 } });
  assert.equal(r.status, 200);
});

test('create with a Go TEMPLATE: kept in the store, not rendered, and the stream says so', async () => {
  const r = await post(srv.url, '/api/create', { model: 'gotmpl', from: 'demo', template: GO_TEMPLATE });
  assert.equal(r.status, 200);
  const lines = await ndjson(r);
  const statuses = lines.map((l) => l.status);
  assert.equal(statuses.at(-1), 'success', JSON.stringify(lines));
  assert.ok(statuses.includes("using the model's own Jinja chat template: TEMPLATE is an Ollama Go template, which Bellows does not render"),
    JSON.stringify(statuses));
  const s = await show('gotmpl');
  const demo = await show('demo');
  assert.equal(s.template_source, 'gguf');
  assert.equal(s.template, demo.template, 'the template that renders is the GGUF\'s');
  assert.equal(s.modelfile_template, GO_TEMPLATE, 'the Go text is shown as it is');
  assert.match(s.template_note, /Go template/);
  assert.deepEqual(s.capabilities, demo.capabilities, 'capabilities come from the template that renders');
  assert.ok(s.modelfile.includes(`# TEMPLATE is an Ollama Go template`), s.modelfile);
  assert.ok(s.modelfile.includes(`TEMPLATE """${GO_TEMPLATE}"""`), s.modelfile);
  // the prompt is the GGUF template's rendering, not the Go text
  const d = await post(srv.url, '/api/chat', { model: 'gotmpl', messages: [{ role: 'user', content: 'hi' }], _debug_render_only: true });
  assert.equal(d.status, 200);
  const { debug_info } = await d.json();
  assert.doesNotMatch(debug_info.rendered_prompt, /\{\{/);
  // a model created from it inherits the Go layer, and is told too
  const r2 = await post(srv.url, '/api/create', { model: 'gotmpl2', from: 'gotmpl', system: 'Be brief.' });
  assert.ok((await ndjson(r2)).some((l) => /Go template/.test(l.status ?? '')));
  // a non-streamed create answers success only, as before
  const r3 = await post(srv.url, '/api/create', { model: 'gotmpl3', from: 'demo', template: GO_TEMPLATE, stream: false });
  assert.deepEqual(await r3.json(), { status: 'success' });
});

test('create with a Jinja TEMPLATE: it replaces the GGUF\'s, and its capabilities are reported', async () => {
  const r = await post(srv.url, '/api/create', { model: 'jthink', from: DEMO_GGUF, template: THINK_TEMPLATE });
  const lines = await ndjson(r);
  assert.equal(lines.at(-1).status, 'success');
  assert.ok(!lines.some((l) => /Go template/.test(l.status ?? '')), JSON.stringify(lines));
  const s = await show('jthink');
  assert.equal(s.template_source, 'modelfile');
  assert.equal(s.template, THINK_TEMPLATE);
  assert.deepEqual(s.capabilities, ['completion', 'thinking'], 'no `tools` in this template, a thinking switch');
  assert.equal(s.modelfile_template, undefined);
  assert.ok(s.modelfile.includes(`TEMPLATE """${THINK_TEMPLATE}"""`));
  assert.doesNotMatch(s.modelfile, /Go template/);
  // think is accepted on it (whatever the model then writes)
  const c = await post(srv.url, '/api/chat', { model: 'jthink', messages: [{ role: 'user', content: 'hi' }], think: true, _debug_render_only: true });
  assert.equal(c.status, 200, await c.text());
});

test('a real template from llama.cpp gives its own capabilities: QwQ thinks and has tools', async () => {
  const dir = new URL('../../build/_deps/llama.cpp/models/templates/', import.meta.url);
  let qwq;
  try { qwq = readFileSync(new URL('Qwen-QwQ-32B.jinja', dir), 'utf8'); } catch { return; } // another llama.cpp checkout
  const r = await post(srv.url, '/api/create', { model: 'qwq', from: DEMO_GGUF, template: qwq, stream: false });
  assert.equal(r.status, 200);
  const s = await show('qwq');
  assert.deepEqual(s.capabilities, ['completion', 'tools', 'thinking']);
});
