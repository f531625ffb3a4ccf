// The chat page's pure modules (web/*.js) under node: the Markdown renderer's escaping,
// the conversation edits and the cut's placement, the gauge's geometry. No browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderMarkdown, renderInline, escapeHtml } from '../../web/markdown.js';
import { newConversation, requestMessages, truncateAt, lastAnswerIndex, cutRange, ttftSeries, titleOf, loadAll, saveAll, STORAGE_KEY } from '../../web/store.js';
import { layout, position, ticks, ttftChart } from '../../web/gauge.js';
import { errorWords, ndjsonLines } from '../../web/api.js';

test('markdown: model text is escaped, never markup', () => {
  for (const evil of ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '"><svg onload=alert(1)>', '<a href="javascript:x">y</a>']) {
    const html = renderMarkdown(evil);
    assert.ok(!/<(script|img|svg)\b/i.test(html), html);
    assert.ok(!/<a /i.test(html), html);
    assert.ok(html.includes('&lt;'), html);
  }
  assert.equal(escapeHtml(`<&>"'`), '&lt;&amp;&gt;&quot;&#39;');
});

test('markdown: links only to http(s) and mailto, attributes escaped', () => {
  assert.equal(renderInline('[a](javascript:alert(1))'), '[a](javascript:alert(1))');
  assert.equal(renderInline('[a](data:text/html,x)'), '[a](data:text/html,x)');
  const h = renderInline('[docs](https://x.example/?a=1&b="2")');
  assert.match(h, /^<a href="https:\/\/x\.example\/\?a=1&amp;b=&quot;2&quot;" rel="noopener noreferrer" target="_blank">docs<\/a>$/);
  assert.match(renderInline('see https://x.example/a.'), /<a href="https:\/\/x\.example\/a"[^>]*>https:\/\/x\.example\/a<\/a>\.$/);
  // a placeholder mark in the model's text does not pull a link in
  assert.ok(!renderInline('\u00000\u0000 [x](https://a.b)').startsWith('<a'));
});

test('markdown: code blocks, inline code, emphasis, lists, headings, quotes', () => {
  const code = renderMarkdown('```js\nif (a < b) { x("y") }\n```');
  assert.match(code, /<pre><code class="lang-js">if \(a &lt; b\) \{ x\(&quot;y&quot;\) \}<\/code><\/pre>/);
  assert.match(renderMarkdown('```\nstill streaming'), /class="code code-open".*still streaming/s, 'an unclosed fence runs to the end');
  assert.match(renderMarkdown('```"><script>\nx\n```'), /<code class="lang-script">/, 'the language is reduced to safe letters');
  assert.equal(renderInline('a `<b>` **c** *d* ~~e~~'), 'a <code>&lt;b&gt;</code> <strong>c</strong> <em>d</em> <del>e</del>');
  assert.equal(renderInline('snake_case_name'), 'snake_case_name');
  assert.equal(renderInline('a.__b=1 c.__d'), 'a.__b=1 c.__d');
  assert.equal(renderInline('__strong__ _em_'), '<strong>strong</strong> <em>em</em>');
  assert.equal(renderMarkdown('- a\n- b'), '<ul><li>a</li><li>b</li></ul>');
  assert.equal(renderMarkdown('1. a\n\n2. b'), '<ol><li>a</li><li>b</li></ol>');
  assert.equal(renderMarkdown('3. c'), '<ol start="3"><li>c</li></ol>');
  assert.equal(renderMarkdown('## Title #'), '<h2>Title</h2>');
  assert.equal(renderMarkdown('> **q**'), '<blockquote><p><strong>q</strong></p></blockquote>');
  assert.equal(renderMarkdown('one\ntwo\n\nthree'), '<p>one<br>two</p><p>three</p>');
  assert.equal(renderMarkdown('---'), '<hr>');
  assert.equal(renderMarkdown(''), '');
});

const conv = (...roles) => {
  const c = newConversation('m');
  c.messages = roles.map((r, i) => ({ role: r, content: `${r}${i}` }));
  return c;
};

test('store: what a request sends; edit and regenerate cut the conversation', () => {
  const c = conv('user', 'assistant', 'user');
  c.system = 'be brief';
  c.messages.splice(2, 0, { role: 'assistant', content: '', error: 'The server failed.' });
  assert.deepEqual(requestMessages(c).map((m) => m.role), ['system', 'user', 'assistant', 'user'], 'a failed empty answer is not sent');
  assert.equal(titleOf(c), 'user0');
  assert.equal(titleOf(newConversation()), 'New chat');
  assert.equal(lastAnswerIndex(c), -1);
  truncateAt(c, 2);
  assert.equal(c.messages.length, 2);
  assert.equal(lastAnswerIndex(c), 1);
});

test('store: the cut falls after the first message (rule 5), or takes it too', () => {
  // 7 messages sent (u a u a u a u), the answer at 7; 2 cut: messages 1 and 2 went
  const c = conv('user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant');
  c.messages[7].turn = { truncated_messages: 2, truncated_tokens: 900 };
  assert.deepEqual(cutRange(c, 7), { from: 1, to: 3, count: 2, tokens: 900, m1Dropped: false });
  // all but the last: the first went too
  c.messages[7].turn = { truncated_messages: 6 };
  assert.deepEqual(cutRange(c, 7), { from: 0, to: 6, count: 6, tokens: 0, m1Dropped: true });
  c.messages[7].turn = { truncated_messages: 0 };
  assert.equal(cutRange(c, 7), null);
  assert.deepEqual(ttftSeries(c), []);
  c.messages[7].turn.ttft_ms = 12;
  assert.deepEqual(ttftSeries(c), [12]);
});

test('store: kept in storage, newest first; bad data reads as none; a full storage is reported', () => {
  const map = new Map();
  const st = { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => map.set(k, v) };
  const a = newConversation('x', 1), b = newConversation('y', 2);
  assert.equal(saveAll(st, [a, b]), null);
  assert.deepEqual(loadAll(st).map((c) => c.model), ['y', 'x']);
  map.set(STORAGE_KEY, '{not json');
  assert.deepEqual(loadAll(st), []);
  const full = { setItem() { const e = new Error('full'); e.name = 'QuotaExceededError'; throw e; } };
  assert.match(saveAll(full, [a]), /QuotaExceededError/);
});

test('gauge: segments in order, square-root positions, markers', () => {
  const L = layout({ prompt_tokens: 900, prompt_eval_count: 900, prompt_cache_tokens: 400, eval_count: 100, context_length: 4096, context_max: 32768, pool: 8192 });
  assert.deepEqual(L.segments.map((s) => [s.kind, s.from, s.to]), [['cached', 0, 400], ['prompt', 400, 900], ['answer', 900, 1000], ['reserved', 1000, 4096]]);
  assert.equal(L.scale, 32768);
  assert.equal(position(8192, 32768), 0.5);
  assert.equal(L.markers.find((m) => m.kind === 'pool').x, 0.5);
  const cut = layout({ prompt_tokens: 5000, prompt_eval_count: 3072, context_length: 4096, context_max: 4096, eval_count: 16 });
  assert.equal(cut.markers.find((m) => m.kind === 'cut').at, 5000, 'the whole prompt before the cut is marked');
  assert.equal(cut.scale, 4096);
  assert.equal(cut.markers.find((m) => m.kind === 'cut').x, 1, 'past the window: at the end of the bar');
  assert.ok(layout({}, 5).segments.length === 1, 'live pieces before any numbers');
  assert.deepEqual(ticks(4096).map((t) => t.label), ['1k', '2k', '4k']);
  const svg = ttftChart([100, 50, 300]);
  assert.equal((svg.match(/<rect /g) || []).length, 3);
  assert.match(svg, /ttft-last/);
});

test('api: errors in words; NDJSON split across chunks', async () => {
  assert.equal(errorWords(404, '{"error":"model \'x\' not found"}'), "Not found: model 'x' not found");
  assert.match(errorWords(401, '{"error":"unauthorized"}'), /API key/);
  assert.equal(errorWords(418, ''), 'The server answered 418.');
  const enc = new TextEncoder();
  const parts = ['{"a":1}\n{"b"', ':2}\n', '{"c":3}'];
  const body = new ReadableStream({ start(c) { for (const p of parts) c.enqueue(enc.encode(p)); c.close(); } });
  const got = [];
  for await (const o of ndjsonLines(body)) got.push(o);
  assert.deepEqual(got, [{ a: 1 }, { b: 2 }, { c: 3 }]);
});
