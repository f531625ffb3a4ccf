// app.js -- the chat page's controller: state, events, and one chat turn at a time.
// The API calls are api.js, the conversation edits store.js, the drawing view.js.
import { Api, ApiError } from './api.js';
import { newConversation, requestMessages, truncateAt, lastAnswerIndex, loadAll, saveAll } from './store.js';
import { renderConversations, renderMessages, renderStreaming, renderGauge, scrollToEnd, showError } from './view.js';

const KEY_STORAGE = 'bellows.apiKey';
const MODEL_STORAGE = 'bellows.model';
const $ = (id) => document.getElementById(id);

const state = {
  convs: [],
  currentId: null,
  models: [],
  run: null,          // the turn in progress: { conv, index, ctrl, pieces }
  editingIndex: -1,
};

const storage = (() => {
  try { localStorage.getItem('x'); return localStorage; } catch { return new Map(); }
})();
const get = (k) => (storage instanceof Map ? storage.get(k) : storage.getItem(k)) ?? '';
const put = (k, v) => { try { storage instanceof Map ? storage.set(k, v) : storage.setItem(k, v); } catch { /* full: the key stays for this visit */ } };
const mapStorage = storage instanceof Map ? { getItem: (k) => storage.get(k), setItem: (k, v) => storage.set(k, v) } : storage;

const api = new Api(() => get(KEY_STORAGE));

function current() {
  return state.convs.find((c) => c.id === state.currentId);
}

function save() {
  const words = saveAll(mapStorage, state.convs);
  if (words) showError(words);
}

function draw() {
  const conv = current();
  renderConversations(state.convs, state.currentId);
  renderMessages(conv, { streamingIndex: state.run?.conv === conv ? state.run.index : -1, editingIndex: state.editingIndex });
  renderGauge(conv, state.run?.conv === conv ? state.run : null);
  $('system').value = conv.system;
  $('num-predict').value = conv.numPredict;
  $('temperature').value = conv.temperature ?? '';
  syncModelSelect(conv);
  $('send').disabled = !!state.run;
  $('stop').disabled = !state.run;
}

function syncModelSelect(conv) {
  const sel = $('model');
  if (conv.model && ![...sel.options].some((o) => o.value === conv.model)) {
    sel.append(new Option(`${conv.model} (not on this server)`, conv.model));
  }
  sel.value = conv.model || sel.value;
  if (!conv.model && sel.value) conv.model = sel.value;
}

function openConversation(id) {
  if (state.run) stop();
  state.currentId = id;
  state.editingIndex = -1;
  draw();
  scrollToEnd(true);
  closeDrawer();
}

function newChat() {
  if (state.run) stop();
  const existing = current();
  if (existing && !existing.messages.length) { // reuse the empty one
    $('prompt').focus();
    return;
  }
  const conv = newConversation(get(MODEL_STORAGE) || state.models[0]?.name || '');
  if (existing) Object.assign(conv, { system: existing.system, numPredict: existing.numPredict, temperature: existing.temperature ?? '' });
  state.convs.unshift(conv);
  state.currentId = conv.id;
  state.editingIndex = -1;
  save();
  draw();
  closeDrawer();
  $('prompt').focus();
}

function deleteConversation(id) {
  if (state.run && state.run.conv.id === id) stop();
  state.convs = state.convs.filter((c) => c.id !== id);
  if (!state.convs.length) state.convs.push(newConversation(get(MODEL_STORAGE) || state.models[0]?.name || ''));
  if (state.currentId === id) state.currentId = state.convs[0].id;
  save();
  draw();
}

async function loadModels() {
  const sel = $('model');
  try {
    state.models = await api.tags();
  } catch (e) {
    sel.replaceChildren(new Option('(no models)', ''));
    if (e instanceof ApiError && e.status === 401) showKeyPanel(e.message);
    else showError(e.message);
    return false;
  }
  const opts = state.models.map((m) => new Option(m.name, m.name));
  if (!opts.length) {
    sel.replaceChildren(new Option('(no models)', ''));
    showError('This server has no models yet: add one with `bellows pull <name>` or `bellows create`.');
    return false;
  }
  sel.replaceChildren(...opts);
  const conv = current();
  const remembered = get(MODEL_STORAGE);
  if (!conv.model) conv.model = state.models.some((m) => m.name === remembered) ? remembered : state.models[0].name;
  showError('');
  draw();
  return true;
}

function showKeyPanel(words) {
  $('key-panel').hidden = false;
  if (words) showError(words);
  $('key').focus();
}

// Sends the conversation as it stands and streams the answer into a new message.
async function generate(conv) {
  const messages = requestMessages(conv);
  const history = messages.filter((m) => m.role !== 'system').length;
  if (!conv.model) {
    showError('Pick a model first (the list is empty when the server has none, or when it needs an API key).');
    return;
  }
  const answer = { role: 'assistant', content: '', thinking: '' };
  conv.messages.push(answer);
  conv.updated = Date.now();
  const run = { conv, index: conv.messages.length - 1, ctrl: new AbortController(), pieces: 0 };
  state.run = run;
  state.editingIndex = -1;
  showError('');
  draw();
  scrollToEnd(true);
  const body = { model: conv.model, messages };
  const options = {};
  const n = parseInt(conv.numPredict, 10);
  if (n > 0) options.num_predict = n;
  const temp = parseFloat(conv.temperature);
  if (Number.isFinite(temp) && temp >= 0) options.temperature = temp;
  if (Object.keys(options).length) body.options = options;
  const t0 = performance.now();
  let ttft = NaN;
  let final = null;
  let pending = false;
  const redraw = () => {
    pending = false;
    if (state.run !== run || current() !== conv) return;
    renderStreaming(conv, run.index);
    renderGauge(conv, run);
    scrollToEnd(false);
  };
  try {
    for await (const obj of api.chat(body, run.ctrl.signal)) {
      if (obj.done) { final = obj; continue; }
      const piece = obj.message ?? {};
      if (piece.content || piece.thinking) {
        if (Number.isNaN(ttft)) ttft = performance.now() - t0;
        run.pieces++;
      }
      answer.content += piece.content ?? '';
      answer.thinking += piece.thinking ?? '';
      if (!pending) { pending = true; requestAnimationFrame(redraw); }
    }
  } catch (e) {
    if (e && e.name === 'AbortError') answer.stopped = true;
    else {
      answer.error = e instanceof ApiError ? e.message : `Something went wrong in the page: ${e}`;
      if (e instanceof ApiError && e.status === 401) showKeyPanel(e.message);
    }
  }
  if (!answer.thinking) delete answer.thinking;
  if (final) {
    // Assigned only once the pool is in: a redraw in between would show a turn without it.
    const turn = {
      prompt_tokens: final.prompt_tokens, prompt_eval_count: final.prompt_eval_count, prompt_cache_tokens: final.prompt_cache_tokens,
      context_length: final.context_length, context_max: final.context_max,
      truncated_messages: final.truncated_messages ?? 0, truncated_tokens: final.truncated_tokens ?? 0,
      eval_count: final.eval_count, done_reason: final.done_reason, ttft_ms: Number.isNaN(ttft) ? null : Math.round(ttft), history,
      pool: null,
    };
    try {
      const p = await api.pool(conv.model);
      if (p) turn.pool = p.pool;
    } catch { /* the gauge shows no pool */ }
    answer.turn = turn;
  }
  if (state.run === run) state.run = null;
  conv.updated = Date.now();
  save();
  if (current() === conv) { draw(); scrollToEnd(false); }
}

function stop() {
  if (state.run) state.run.ctrl.abort();
}

function send() {
  if (state.run) return;
  const text = $('prompt').value;
  if (!text.trim()) return;
  const conv = current();
  conv.messages.push({ role: 'user', content: text });
  $('prompt').value = '';
  autosize();
  generate(conv);
}

function regenerate() {
  const conv = current();
  const i = lastAnswerIndex(conv);
  if (state.run || i < 0) return;
  truncateAt(conv, i);
  generate(conv);
}

function saveEdit(i) {
  const conv = current();
  const ta = document.querySelector(`#messages .msg[data-index="${i}"] textarea`);
  if (!ta || state.run || !ta.value.trim()) return;
  conv.messages[i].content = ta.value;
  truncateAt(conv, i + 1);
  generate(conv);
}

function autosize() {
  const ta = $('prompt');
  ta.style.height = 'auto';
  ta.style.height = `${Math.min(ta.scrollHeight + 2, window.innerHeight * 0.4)}px`;
}

function closeDrawer() {
  $('app').classList.remove('drawer');
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed';
  }
  setTimeout(() => { button.textContent = 'Copy'; }, 1500);
}

function bind() {
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('stop').addEventListener('click', stop);
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $('prompt').addEventListener('input', autosize);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.run) { e.preventDefault(); stop(); }
  });
  $('new-chat').addEventListener('click', newChat);
  $('menu').addEventListener('click', (e) => { e.stopPropagation(); $('app').classList.toggle('drawer'); });
  document.querySelector('.main').addEventListener('click', closeDrawer); // a tap beside the drawer closes it
  $('conversations').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    if (b.dataset.action === 'open') openConversation(b.dataset.id);
    if (b.dataset.action === 'delete') deleteConversation(b.dataset.id);
  });
  $('messages').addEventListener('click', (e) => {
    const summary = e.target.closest('details.thinking > summary');
    if (summary) summary.parentElement.dataset.userToggled = '1';
    const b = e.target.closest('button');
    if (!b) return;
    const conv = current();
    if (b.hasAttribute('data-copy')) return copyText(b.parentElement.querySelector('code').textContent, b);
    const i = Number(b.dataset.index);
    switch (b.dataset.action) {
      case 'edit': if (!state.run) { state.editingIndex = i; draw(); document.querySelector(`#messages .msg[data-index="${i}"] textarea`)?.focus(); } break;
      case 'edit-cancel': state.editingIndex = -1; draw(); break;
      case 'edit-save': saveEdit(i); break;
      case 'regenerate': regenerate(); break;
      case 'copy-message': copyText(conv.messages[i].content, b); break;
    }
  });
  $('messages').addEventListener('keydown', (e) => {
    if (e.target.matches('.edit textarea') && e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      saveEdit(state.editingIndex);
    }
    if (e.target.matches('.edit textarea') && e.key === 'Escape' && !state.run) { state.editingIndex = -1; draw(); }
  });
  $('model').addEventListener('change', (e) => {
    const conv = current();
    conv.model = e.target.value;
    put(MODEL_STORAGE, conv.model);
    save();
  });
  $('system').addEventListener('change', (e) => { current().system = e.target.value; save(); });
  $('num-predict').addEventListener('change', (e) => { current().numPredict = e.target.value; save(); });
  $('temperature').addEventListener('change', (e) => { current().temperature = e.target.value; save(); });
  $('key-open').addEventListener('click', () => { $('key').value = get(KEY_STORAGE); showKeyPanel(); });
  $('key-close').addEventListener('click', () => { $('key-panel').hidden = true; });
  $('key-forget').addEventListener('click', () => { put(KEY_STORAGE, ''); $('key').value = ''; });
  $('key-panel').addEventListener('submit', async (e) => {
    e.preventDefault();
    put(KEY_STORAGE, $('key').value.trim());
    if (await loadModels()) $('key-panel').hidden = true;
  });
}

async function main() {
  state.convs = loadAll(mapStorage);
  if (!state.convs.length) state.convs.push(newConversation(get(MODEL_STORAGE)));
  state.currentId = state.convs[0].id;
  bind();
  draw();
  scrollToEnd(true);
  await loadModels();
  $('prompt').focus();
}

main();
