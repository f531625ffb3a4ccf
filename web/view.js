// view.js -- drawing the page from the state: the conversation list, the messages (with
// the cut notice) and the gauge. Model text enters the DOM only as textContent or through
// renderMarkdown, which escapes it (markdown.js).
import { renderMarkdown } from './markdown.js';
import { layout, ttftChart, fmtMs, fmtTokens } from './gauge.js';
import { titleOf, cutRange, latestTurn, ttftSeries } from './store.js';

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

export function renderConversations(convs, currentId) {
  const ul = $('conversations');
  ul.replaceChildren(...convs.map((c) => el('li', { class: c.id === currentId ? 'current' : '', 'data-id': c.id },
    el('button', { type: 'button', class: 'open', 'data-action': 'open', 'data-id': c.id, text: titleOf(c), title: titleOf(c),
      'aria-current': c.id === currentId ? 'true' : null }),
    el('button', { type: 'button', class: 'del', 'data-action': 'delete', 'data-id': c.id, 'aria-label': `Delete “${titleOf(c)}”`, text: '×' }))));
}

// One message's element. opts: { last, lastAnswer, streaming, editing, outOfContext }.
export function messageElement(m, i, opts) {
  const who = m.role === 'user' ? 'You' : 'Model';
  const box = el('div', { class: `msg ${m.role}${opts.outOfContext ? ' out-of-context' : ''}`, 'data-index': String(i), 'data-role': m.role });
  box.append(el('div', { class: 'who', text: who }));
  if (m.thinking) {
    const d = el('details', { class: 'thinking', 'data-testid': 'thinking', open: opts.streaming && !m.content ? true : null },
      el('summary', { text: opts.streaming && !m.content ? 'Thinking…' : `Thought (${m.thinking.length} characters)` }),
      el('div', { class: 'thinking-text', text: m.thinking }));
    box.append(d);
  }
  if (opts.editing) {
    const ta = el('textarea', { 'data-testid': 'edit-text', 'aria-label': 'Edit the message' });
    ta.value = m.content;
    box.append(el('div', { class: 'edit' }, ta,
      el('div', { class: 'actions' },
        el('button', { type: 'button', 'data-action': 'edit-save', 'data-index': String(i), 'data-testid': 'edit-save', text: 'Save and resend' }),
        el('button', { type: 'button', 'data-action': 'edit-cancel', text: 'Cancel' }))));
    return box;
  }
  const content = el('div', { class: `content${opts.streaming ? ' cursor' : ''}`, 'data-testid': opts.lastAnswer ? 'answer' : null });
  if (m.role === 'assistant') content.innerHTML = renderMarkdown(m.content); // escaped by renderMarkdown
  else content.textContent = m.content;
  box.append(content);
  if (m.error) box.append(el('div', { class: 'msg-error', 'data-testid': 'message-error', role: 'alert', text: m.error }));
  const meta = [];
  if (m.stopped) meta.push('stopped');
  if (m.turn) {
    const t = m.turn;
    meta.push(`${fmtTokens(t.eval_count)} tokens`, `first token ${fmtMs(t.ttft_ms)}`,
      `prompt ${fmtTokens(t.prompt_tokens)}${t.prompt_cache_tokens ? `, ${fmtTokens(t.prompt_cache_tokens)} from cache` : ''}`);
    if (t.done_reason && t.done_reason !== 'stop') meta.push(`ended: ${t.done_reason}`);
  }
  if (meta.length) box.append(el('div', { class: `meta${m.stopped ? ' stopped' : ''}`, text: meta.join(' · ') }));
  if (!opts.streaming) {
    const actions = el('div', { class: 'actions' });
    if (m.role === 'user') actions.append(el('button', { type: 'button', 'data-action': 'edit', 'data-index': String(i), 'data-testid': 'edit', text: 'Edit' }));
    if (m.role === 'assistant') {
      actions.append(el('button', { type: 'button', 'data-action': 'copy-message', 'data-index': String(i), text: 'Copy' }));
      if (opts.last) actions.append(el('button', { type: 'button', 'data-action': 'regenerate', 'data-testid': 'regenerate', text: 'Regenerate' }));
    }
    box.append(actions);
  }
  return box;
}

function cutNotice(cut) {
  const who = cut.m1Dropped ? 'the oldest messages' : 'messages after your first one';
  const tokens = cut.tokens ? ` (${fmtTokens(cut.tokens)} tokens)` : '';
  return el('div', { class: 'cut-notice', 'data-testid': 'cut-notice', 'data-count': String(cut.count), role: 'note',
    text: `✂ ${cut.count} message${cut.count === 1 ? '' : 's'}${tokens} left out here: the latest answer did not see ${who}, ` +
      `so that the conversation fits the model's window.` });
}

// All messages of CONV. ui: { streamingIndex, editingIndex }.
export function renderMessages(conv, ui) {
  const box = $('messages');
  if (!conv.messages.length) {
    box.replaceChildren(el('p', { class: 'empty', text: 'Pick a model and write a message. The bar above shows how much of the model’s context the chat takes, turn by turn.' }));
    return;
  }
  const latest = latestTurn(conv);
  const cut = latest ? cutRange(conv, latest.index) : null;
  let lastAnswer = -1;
  conv.messages.forEach((m, i) => { if (m.role === 'assistant') lastAnswer = i; });
  const nodes = [];
  conv.messages.forEach((m, i) => {
    if (cut && i === cut.from) nodes.push(cutNotice(cut));
    nodes.push(messageElement(m, i, {
      last: i === conv.messages.length - 1,
      lastAnswer: i === lastAnswer,
      streaming: i === ui.streamingIndex,
      editing: i === ui.editingIndex,
      outOfContext: cut && i >= cut.from && i < cut.to,
    }));
  });
  box.replaceChildren(...nodes);
}

// Redraws just the message being streamed (cheaper than everything, keeps scroll).
export function renderStreaming(conv, i) {
  const old = document.querySelector(`#messages .msg[data-index="${i}"]`);
  if (!old) return;
  const fresh = messageElement(conv.messages[i], i, { last: true, lastAnswer: true, streaming: true });
  // Thinking the reader opened or closed stays so while the answer streams on.
  const was = old.querySelector('details.thinking[data-user-toggled]');
  const now = fresh.querySelector('details.thinking');
  if (was && now) { now.open = was.open; now.dataset.userToggled = '1'; }
  old.replaceWith(fresh);
}

export function scrollToEnd(force) {
  const box = $('messages');
  if (force || box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
}

// The gauge for CONV: the latest turn's numbers; while an answer streams (live: the count
// of pieces so far), its tokens grow from where the previous turn ended.
export function renderGauge(conv, live) {
  const g = $('gauge');
  const latest = latestTurn(conv);
  const t = latest?.turn;
  const set = (k, v) => g.setAttribute(k, Number.isFinite(v) ? String(v) : '');
  set('data-prompt-tokens', t?.prompt_tokens);
  set('data-prompt-eval', t?.prompt_eval_count);
  set('data-cache-tokens', t?.prompt_cache_tokens);
  set('data-reserved', t?.context_length);
  set('data-max', t?.context_max);
  set('data-pool', t?.pool);
  set('data-truncated-messages', t?.truncated_messages ?? (t ? 0 : undefined));
  set('data-turns', ttftSeries(conv).length);
  g.classList.toggle('live', !!live);
  let shown = t ?? {};
  let liveTokens = 0;
  if (live) {
    // What the model holds before this answer: the last turn's prompt and answer, then
    // the new pieces as they come. The final object replaces the estimate.
    const before = t ? (t.prompt_eval_count ?? 0) + (t.eval_count ?? 0) : 0;
    shown = { ...(t ?? {}), prompt_eval_count: before, prompt_tokens: before, eval_count: 0, prompt_cache_tokens: t ? before : 0 };
    liveTokens = live.pieces;
  }
  const L = layout(shown, liveTokens);
  const bar = $('bar');
  const parts = L.segments.map((s) => el('div', { class: `seg ${s.kind}`, title: `${s.kind}: ${fmtTokens(s.to - s.from)} tokens` }));
  L.segments.forEach((s, k) => { parts[k].style.left = `${(s.x0 * 100).toFixed(2)}%`; parts[k].style.width = `${((s.x1 - s.x0) * 100).toFixed(2)}%`; });
  // Where the previous turn ended: the bar's growth since then.
  const turns = conv.messages.filter((m) => m.turn).map((m) => m.turn);
  const prev = live ? t : turns[turns.length - 2];
  if (prev) L.markers.push({ kind: 'prev', at: (prev.prompt_eval_count ?? 0) + (prev.eval_count ?? 0) });
  L.markers.forEach((m) => { m.x ??= Math.min(1, Math.sqrt(m.at / L.scale)); });
  const names = { pool: 'runner pool', cut: 'whole prompt before the cut', prev: 'where the previous turn ended' };
  const marks = L.markers.filter((m) => m.kind !== 'max').map((m) => {
    const e = el('div', { class: `mark ${m.kind}`, title: `${names[m.kind]}: ${fmtTokens(m.at)} tokens` });
    e.style.left = `calc(${(m.x * 100).toFixed(2)}% - 1px)`;
    return e;
  });
  const ticks = L.ticks.map((k) => { const e = el('span', { class: 'tick', text: k.label }); e.style.left = `${(k.x * 100).toFixed(2)}%`; return e; });
  bar.replaceChildren(...parts, ...marks, ...ticks);
  bar.title = t ? `window ${fmtTokens(t.context_max)} tokens (square-root scale)` : 'no answer yet';
  const txt = (id, v) => { $(id).textContent = v; };
  const cutWords = t && t.truncated_messages ? ` (${fmtTokens(t.prompt_eval_count)} after the cut)` : '';
  txt('n-prompt', t ? fmtTokens(t.prompt_tokens) + cutWords : '–');
  txt('n-cached', t ? fmtTokens(t.prompt_cache_tokens) : '–');
  txt('n-answer', live ? `${fmtTokens(live.pieces)}…` : t ? fmtTokens(t.eval_count) : '–');
  txt('n-reserved', t ? fmtTokens(t.context_length) : '–');
  txt('n-max', t ? fmtTokens(t.context_max) : '–');
  txt('n-pool', t && Number.isFinite(t.pool) ? fmtTokens(t.pool) : '–');
  $('ttft').innerHTML = ttftChart(ttftSeries(conv), 180, 40); // numbers only (gauge.js)
}

export function showError(words) {
  const e = $('error');
  e.textContent = words || '';
  e.hidden = !words;
}
