// What the page does with what a model writes, with /api/chat answered by the test
// (playwright's request routing) so the content is exactly what we choose: thinking shown
// folded, Markdown and code blocks rendered, HTML in the answer shown as text and never
// run, a copy button on code, errors from the server and mid-stream shown in words.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../api/helpers.mjs';
import { launch, screenshot, openChat } from './browser.mjs';

let browser, srv;
before(async () => { [browser, srv] = await Promise.all([launch(), startServer()]); });
after(async () => { await browser?.close(); await srv?.stop(); });

const chunk = (message) => JSON.stringify({ model: 'demo:latest', message: { role: 'assistant', content: '', ...message }, done: false });
const final = (extra = {}) => JSON.stringify({ model: 'demo:latest', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop',
  prompt_eval_count: 30, eval_count: 9, prompt_tokens: 30, prompt_cache_tokens: 0, context_length: 4096, context_max: 32768, ...extra });

async function answerWith(page, status, lines) {
  await page.route('**/api/chat', (route) => route.fulfill({ status, contentType: 'application/x-ndjson', body: lines.join('\n') + '\n' }));
}

async function send(page, text) {
  await page.fill('[data-testid=prompt]', text);
  await page.press('[data-testid=prompt]', 'Enter');
  await page.waitForFunction(() => !document.querySelector('.content.cursor') && document.querySelector('[data-testid=send]').disabled === false, null, { timeout: 30000 });
}

test('thinking folded, Markdown rendered, HTML in an answer stays text', async () => {
  const page = await openChat(browser, srv.url);
  await answerWith(page, 200, [
    chunk({ thinking: 'Let me think about ' }), chunk({ thinking: 'colours.' }),
    chunk({ content: '## Sky\nThe sky is **blue** because of `scattering`.\n\n' }),
    chunk({ content: '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>\n\n' }),
    chunk({ content: '- one\n- two\n\n```python\nprint("<b>hi</b>")\n```\n[link](javascript:window.__xss=3)' }),
    final(),
  ]);
  await send(page, 'Why is the sky blue?');
  const answer = page.locator('[data-testid=answer]');
  assert.equal(await answer.locator('h2').textContent(), 'Sky');
  assert.equal(await answer.locator('strong').textContent(), 'blue');
  assert.equal(await answer.locator('code').first().textContent(), 'scattering');
  assert.equal(await answer.locator('li').count(), 2);
  assert.equal(await answer.locator('pre code.lang-python').textContent(), 'print("<b>hi</b>")');
  assert.equal(await answer.locator('img, script, b, a').count(), 0, 'no element from the model\'s HTML');
  assert.match(await answer.textContent(), /<img src=x onerror=/);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  const thinking = page.locator('[data-testid=thinking]');
  assert.equal(await thinking.count(), 1);
  assert.equal(await thinking.getAttribute('open'), null, 'folded once the answer is there');
  assert.equal(await thinking.locator('.thinking-text').textContent(), 'Let me think about colours.');
  await thinking.locator('summary').click();
  assert.equal(await thinking.getAttribute('open'), '');
  await screenshot(page, 'render');
  assert.deepEqual(page.errors, []);
});

test('errors in words: a refused request, and an error in the middle of the stream', async () => {
  const page = await openChat(browser, srv.url);
  await answerWith(page, 404, [JSON.stringify({ error: "model 'gone' not found" })]);
  await send(page, 'hello');
  assert.equal(await page.textContent('[data-testid=message-error]'), "Not found: model 'gone' not found");
  await page.unroute('**/api/chat');
  await answerWith(page, 200, [chunk({ content: 'Half an ans' }), JSON.stringify({ error: 'model runner stopped: killed by signal 9 (Killed)' })]);
  await page.click('[data-testid=regenerate]');
  await page.waitForSelector('[data-testid=message-error]', { timeout: 30000 });
  assert.match(await page.textContent('[data-testid=message-error]'), /^The model stopped with an error: model runner stopped/);
  assert.equal(await page.textContent('[data-testid=answer]'), 'Half an ans', 'what came before the error stays');
  // a server that is gone
  await page.unroute('**/api/chat');
  await page.route('**/api/chat', (route) => route.abort('connectionrefused'));
  await page.click('[data-testid=regenerate]');
  await page.waitForFunction(() => /Could not reach the Bellows server/.test(document.querySelector('[data-testid=message-error]')?.textContent ?? ''), null, { timeout: 30000 });
  assert.deepEqual(page.errors, []);
});
