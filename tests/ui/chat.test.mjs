// The chat page in a real browser (Debian's chromium through playwright-core), against a
// real `bellows serve` with the demo model, without and with an API key: two messages with
// streamed text, the gauge's numbers against the final /api/chat objects and /api/ps, a stop
// that stops the server's generation too, regenerate, edit and resend, a conversation that
// survives a reload. Nothing depends on the words the model writes. Screenshots go to
// build/test-artifacts/ui.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../api/helpers.mjs';
import { launch, screenshot, openChat, settings, sendAndWait, gaugeData, psPool, waitIdle } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const KEY = 'a-key-for-the-page';

// Records the last answer's text length at every change of the message list.
async function recordAnswerLengths(page) {
  await page.evaluate(() => {
    window.__lengths = [];
    new MutationObserver(() => {
      const a = document.querySelector('[data-testid=answer]');
      window.__lengths.push(a ? a.textContent.length : -1);
    }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
  });
}

function assertGaugeIs(g, final, pool, what) {
  assert.equal(Number(g.promptTokens), final.prompt_tokens, `${what}: prompt tokens`);
  assert.equal(Number(g.cacheTokens), final.prompt_cache_tokens, `${what}: cache tokens`);
  assert.equal(Number(g.reserved), final.context_length, `${what}: reserved`);
  assert.equal(Number(g.max), final.context_max, `${what}: window`);
  assert.equal(Number(g.pool), pool, `${what}: pool`);
}

for (const key of [undefined, KEY]) {
  const mode = key ? 'with an API key' : 'without an API key';
  test(`chat ${mode}: two streamed turns, the gauge equals the server's numbers, stop works`, async () => {
    const srv = await startServer(key ? { BELLOWS_API_KEY: key } : {});
    try {
      const page = await openChat(browser, srv.url, { key });
      await recordAnswerLengths(page);

      // turn 1 (Enter sends)
      const f1 = await sendAndWait(page, 'Why is the sky blue?');
      const a1 = await page.textContent('[data-testid=answer]');
      assert.ok(a1.trim().length > 0, 'the answer has text');
      assert.equal(f1.model, 'demo:latest');
      const g1 = await gaugeData(page);
      assertGaugeIs(g1, f1, await psPool(srv.url, 'demo:latest', key), 'turn 1');
      assert.equal(g1.turns, '1');

      // turn 2 (the Send button): the prompt grew, and turn 1 came from the cache
      const f2 = await sendAndWait(page, 'And why are sunsets red?', { click: true });
      const g2 = await gaugeData(page);
      assertGaugeIs(g2, f2, await psPool(srv.url, 'demo:latest', key), 'turn 2');
      assert.ok(f2.prompt_tokens > f1.prompt_tokens, 'the prompt grew');
      assert.ok(Number(g2.promptTokens) > Number(g1.promptTokens), 'the gauge grew');
      assert.ok(f2.prompt_cache_tokens > 0, 'turn 1 was reused');
      assert.equal(await page.locator('.msg').count(), 4);
      assert.equal(await page.locator('#ttft svg rect').count(), 2, 'one time-to-first-token bar per turn');
      assert.ok(await page.getAttribute('[data-testid=answer]', 'data-testid'));
      await screenshot(page, key ? 'chat-key' : 'chat');

      // stop: a greedy answer with no length limit runs until stopped (Esc, or the button)
      await settings(page, { numPredict: 30000, temperature: 0 });
      const failed = page.waitForEvent('requestfailed', { predicate: (r) => r.url().endsWith('/api/chat'), timeout: 60000 });
      await page.fill('[data-testid=prompt]', 'Tell me everything.');
      await page.press('[data-testid=prompt]', 'Enter');
      await page.evaluate(() => { window.__lengths.length = 0; });
      // streamed: the answer is seen growing, in several steps, before it is stopped
      await page.waitForFunction(() => new Set(window.__lengths.filter((n) => n > 0)).size >= 3 &&
        (document.querySelector('[data-testid=answer]')?.textContent.length ?? 0) > 20, null, { timeout: 60000 });
      assert.ok(await page.isEnabled('[data-testid=stop]'));
      assert.ok(await page.isDisabled('[data-testid=send]'), 'one answer at a time');
      if (key) await page.keyboard.press('Escape');
      else await page.click('[data-testid=stop]');
      await failed; // the browser dropped the stream
      await page.waitForSelector('.msg:last-child .meta.stopped', { timeout: 30000 });
      assert.ok(await page.isDisabled('[data-testid=stop]'));
      assert.ok(await page.isEnabled('[data-testid=send]'));
      assert.ok(await waitIdle(srv.url, 'demo:latest', key), 'the server stopped generating');
      const stopped = await page.textContent('[data-testid=answer]');
      assert.ok(stopped.length > 20, 'what came before the stop stays');
      assert.equal((await gaugeData(page)).turns, '2', 'a stopped answer has no final numbers');

      // regenerate the stopped answer, with a short limit again
      await settings(page, { numPredict: 8, temperature: '' });
      const regen = page.waitForResponse((r) => r.url().endsWith('/api/chat'));
      await page.click('[data-testid=regenerate]');
      await (await regen).text();
      await page.waitForFunction(() => document.querySelector('[data-testid=gauge]').dataset.turns === '3', null, { timeout: 60000 });
      assert.equal(await page.locator('.msg').count(), 6, 'the stopped answer was replaced');
      assert.equal(await page.locator('.meta.stopped').count(), 0);

      // edit the first message and resend: the conversation restarts from it
      await page.click('.msg[data-index="0"] [data-testid=edit]');
      await page.fill('[data-testid=edit-text]', 'Why is grass green?');
      const edited = page.waitForResponse((r) => r.url().endsWith('/api/chat'));
      await page.click('[data-testid=edit-save]');
      const body = JSON.parse((await edited).request().postData());
      assert.deepEqual(body.messages.map((m) => m.content), ['Why is grass green?']);
      await page.waitForFunction(() => document.querySelectorAll('.msg').length === 2 && !document.querySelector('.content.cursor'), null, { timeout: 60000 });

      // the conversation is kept in the browser: a reload shows it again, and a new chat starts empty
      await page.reload();
      await page.waitForSelector('.msg[data-index="1"]', { timeout: 30000 });
      assert.equal(await page.textContent('.msg.user .content'), 'Why is grass green?');
      await page.click('[data-testid=new-chat]');
      assert.equal(await page.locator('.msg').count(), 0);
      assert.equal(await page.locator('[data-testid=conversations] li').count(), 2);
      assert.deepEqual(page.errors, []);
    } finally {
      await srv.stop();
    }
  });
}

test('the page on a phone, and in dark mode', async () => {
  const srv = await startServer();
  try {
    const page = await openChat(browser, srv.url, { viewport: { width: 390, height: 780 }, colorScheme: 'dark' });
    await settings(page, { numPredict: 24 });
    await sendAndWait(page, 'Hello there!');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `nothing wider than the phone (${width})`);
    assert.ok(await page.isVisible('[data-testid=gauge]'));
    assert.ok(await page.isVisible('[data-testid=prompt]'));
    assert.ok(!(await page.isVisible('[data-testid=new-chat]')) || (await page.locator('#sidebar').boundingBox()).x < 0, 'the list is a drawer');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(bg, 'rgb(255, 255, 255)', 'dark colours');
    await screenshot(page, 'phone-dark');
    await page.click('#menu');
    await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().x >= 0);
    await screenshot(page, 'phone-drawer');
    assert.deepEqual(page.errors, []);
  } finally {
    await srv.stop();
  }
});
