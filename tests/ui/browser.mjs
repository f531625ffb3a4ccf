// browser.mjs -- Debian's chromium through playwright-core (no browser download): one
// headless browser per test file, and screenshots saved as test artifacts.
// BELLOWS_CHROMIUM (ctest sets it from `which chromium`) names the browser;
// BELLOWS_UI_ARTIFACTS the folder for screenshots (build/test-artifacts/ui).
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const CHROMIUM = process.env.BELLOWS_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.BELLOWS_UI_ARTIFACTS ?? new URL('../../build/test-artifacts/ui', import.meta.url).pathname;

export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (scripts/install-deps.sh does)`);
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 60000 });
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const gauge = '[data-testid=gauge]';

// Opens /ui in a fresh context (its own localStorage); with KEY, answers the page's key
// prompt. Resolves once the model list holds MODEL. Page errors fail the test at the end
// (page.errors).
export async function openChat(browser, url, { key, model = 'demo:latest', viewport = { width: 1180, height: 800 }, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport, reducedMotion: 'reduce', colorScheme });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(url + '/ui');
  if (key) {
    await page.waitForSelector('[data-testid=key-panel]:not([hidden])', { timeout: 30000 });
    await page.fill('[data-testid=api-key]', key);
    await page.click('[data-testid=api-key-save]');
    await page.waitForSelector('[data-testid=key-panel]', { state: 'hidden', timeout: 30000 });
  }
  await page.waitForSelector(`[data-testid=model] option[value="${model}"]`, { state: 'attached', timeout: 30000 });
  await page.selectOption('[data-testid=model]', model);
  return page;
}

// Sets the conversation's settings (the Settings panel's fields).
export async function settings(page, { system, numPredict, temperature } = {}) {
  await page.click('#settings summary');
  if (system !== undefined) await page.fill('[data-testid=system]', system);
  if (numPredict !== undefined) await page.fill('[data-testid=num-predict]', String(numPredict));
  if (temperature !== undefined) await page.fill('[data-testid=temperature]', String(temperature));
  await page.click('#settings summary'); // closing blurs the field: its change event saves it
}

// Types TEXT, sends it (Enter, or the Send button), and waits for the answer to finish.
// Returns the final object of that /api/chat stream, as the server sent it.
export async function sendAndWait(page, text, { click = false, timeout = 120000 } = {}) {
  const turns = Number(await page.getAttribute(gauge, 'data-turns'));
  const response = page.waitForResponse((r) => r.url().endsWith('/api/chat') && r.request().method() === 'POST', { timeout });
  await page.fill('[data-testid=prompt]', text);
  if (click) await page.click('[data-testid=send]');
  else await page.press('[data-testid=prompt]', 'Enter');
  const final = finalObject(await (await response).text());
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel).dataset.turns) > n, [gauge, turns], { timeout });
  return final;
}

export function finalObject(ndjson) {
  const lines = ndjson.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const last = lines[lines.length - 1];
  if (!last?.done) throw new Error(`the stream did not end with done: ${ndjson.slice(-300)}`);
  return last;
}

export async function gaugeData(page) {
  return page.evaluate((sel) => ({ ...document.querySelector(sel).dataset }), gauge);
}

// The runner's pool for MODEL from /api/ps, read by the test itself.
export async function psPool(url, model, key) {
  const r = await fetch(url + '/api/ps', { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  const m = (await r.json()).models.find((x) => x.name === model);
  return m?.context?.pool_tokens;
}

// Waits (bounded) until no sequence of MODEL is live in its runner: a stopped answer's
// generation was cancelled on the server too.
export async function waitIdle(url, model, key, tries = 200) {
  for (let i = 0; i < tries; i++) {
    const r = await fetch(url + '/api/ps', { headers: key ? { Authorization: `Bearer ${key}` } : {} });
    const m = (await r.json()).models.find((x) => x.name === model);
    if (m && m.context.sequences === 0) return true;
    await sleep(100);
  }
  return false;
}
