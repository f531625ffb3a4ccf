// A long chat on the ctx4k model (a 4096-token window) through the page, with an API key
// set: the gauge grows turn by turn up to the window, then the server cuts the history
// (spec/context.md rule 5) and the page says where and how many messages were left out,
// with the same count as the final /api/chat object.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, CTX4K_GGUF } from '../api/helpers.mjs';
import { launch, screenshot, openChat, settings, sendAndWait, gaugeData, psPool } from './browser.mjs';

const KEY = 'cut-test-key';
let browser, srv;
before(async () => {
  [browser, srv] = await Promise.all([launch(), startServer({ BELLOWS_API_KEY: KEY })]);
  const c = await post(srv.url, '/api/create', { model: 'ctx4k', from: CTX4K_GGUF, stream: false }, { Authorization: `Bearer ${KEY}` });
  assert.equal(c.status, 200, await c.text());
});
after(async () => { await browser?.close(); await srv?.stop(); });

const words = (n, turn) => Array.from({ length: n }, (_, i) => `w${(i + turn) % 10}`).join(' ');

test('a long chat on ctx4k: the gauge grows, then a cut notice marks the messages left out', async () => {
  const page = await openChat(browser, srv.url, { key: KEY, model: 'ctx4k:latest' });
  await settings(page, { numPredict: 16, temperature: 0 });
  let final, cutAt = -1;
  const prompts = [];
  for (let turn = 0; turn < 14 && cutAt < 0; turn++) {
    final = await sendAndWait(page, turn === 0 ? 'FIRST-MESSAGE remember this' : `turn ${turn} ${words(300, turn)}`);
    const g = await gaugeData(page);
    assert.equal(Number(g.promptTokens), final.prompt_tokens, `turn ${turn}: prompt tokens`);
    assert.equal(Number(g.cacheTokens), final.prompt_cache_tokens);
    assert.equal(Number(g.reserved), final.context_length);
    assert.equal(Number(g.max), 4096);
    assert.equal(Number(g.pool), await psPool(srv.url, 'ctx4k:latest', KEY));
    prompts.push(final.prompt_tokens);
    if (final.truncated_messages) cutAt = turn;
    else assert.equal(await page.locator('[data-testid=cut-notice]').count(), 0, `turn ${turn}: no cut, no notice`);
  }
  assert.ok(cutAt > 0, `the chat outgrew 4096 tokens (prompts: ${prompts})`);
  for (let i = 1; i < prompts.length; i++) assert.ok(prompts[i] > prompts[i - 1], `the prompt grew every turn: ${prompts}`);

  const notice = page.locator('[data-testid=cut-notice]');
  assert.equal(await notice.count(), 1);
  assert.equal(Number(await notice.getAttribute('data-count')), final.truncated_messages);
  assert.match(await notice.textContent(), new RegExp(`${final.truncated_messages} messages?`));
  // where: right after the first message, which the model still saw, and before the
  // messages it did not
  const before = await notice.evaluate((n) => n.previousElementSibling?.dataset.index);
  assert.equal(before, '0');
  assert.equal(await page.locator('.msg.out-of-context').count(), final.truncated_messages);
  assert.equal(Number((await gaugeData(page)).truncatedMessages), final.truncated_messages);
  assert.ok(await page.isVisible('#bar .mark.cut'), 'the bar marks the whole prompt past the window');
  await notice.scrollIntoViewIfNeeded();
  await screenshot(page, 'cut');
  assert.deepEqual(page.errors, []);
});
