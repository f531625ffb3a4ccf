// store.js -- conversations: their shape, the edits the page makes to them, and keeping
// them in the browser's storage (localStorage, or any object with getItem/setItem: the
// node tests pass a Map-backed one). Pure apart from that storage object.
//
// A conversation:
//   { id, title, model, system, numPredict, temperature, updated,
//     messages: [{ role: 'user'|'assistant', content, thinking?, error?, stopped?, turn? }] }
// An assistant message that a request produced has `turn`: what the final /api/chat object
// said about the context (the server's field names, unchanged), the pool from /api/ps, and
// the time to first token measured by the page:
//   { prompt_tokens, prompt_eval_count, prompt_cache_tokens, context_length, context_max,
//     truncated_messages, truncated_tokens, eval_count, pool, ttft_ms, history }
// where history is how many messages the request sent before it (to place the cut).

export const STORAGE_KEY = 'bellows.conversations';
export const MAX_CONVERSATIONS = 100; // the oldest beyond this are dropped when saving

let seq = 0;
export function newId(now = Date.now()) {
  seq = (seq + 1) % 1e6;
  return `c${now.toString(36)}${seq.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

export function newConversation(model = '', now = Date.now()) {
  return { id: newId(now), title: '', model, system: '', numPredict: '', temperature: '', updated: now, messages: [] };
}

// The title: the first user message's first line, shortened; "New chat" until there is one.
export function titleOf(conv) {
  const first = conv.messages.find((m) => m.role === 'user' && m.content.trim());
  if (!first) return 'New chat';
  const line = first.content.trim().split('\n')[0];
  return line.length > 48 ? line.slice(0, 47) + '…' : line;
}

// The messages a request sends for the conversation as it stands: the system prompt (when
// set), then each user and assistant message with content; failed answers (error, nothing
// written) are left out, stopped ones go as far as they got.
export function requestMessages(conv) {
  const out = [];
  if (conv.system && conv.system.trim()) out.push({ role: 'system', content: conv.system });
  for (const m of conv.messages) {
    if (m.role !== 'user' && m.role !== 'assistant') continue;
    if (m.role === 'assistant' && m.error && !m.content) continue;
    out.push({ role: m.role, content: m.content });
  }
  return out;
}

// The conversation up to (not including) message I: editing message I and resending, or
// regenerating the answer at I, starts from there.
export function truncateAt(conv, i) {
  conv.messages = conv.messages.slice(0, Math.max(0, i));
  return conv;
}

// For regenerate: the index of the last assistant message when it is the last message.
export function lastAnswerIndex(conv) {
  const i = conv.messages.length - 1;
  return i >= 0 && conv.messages[i].role === 'assistant' ? i : -1;
}

// The latest answer that carries context numbers (what the gauge shows), or null.
export function latestTurn(conv) {
  for (let i = conv.messages.length - 1; i >= 0; i--) if (conv.messages[i].turn) return { index: i, turn: conv.messages[i].turn };
  return null;
}

// Where the server's cut fell for the answer at INDEX (spec/context.md rule 5: it keeps the
// first non-system message M1 and the longest suffix that fits, dropping the messages right
// after M1; M1 itself goes only when even that does not fit). Returns the message indices
// [from, to) of conv.messages that the model did not see, or null when nothing was cut.
// turn.history counts the user/assistant messages the request sent, which are the
// messages before INDEX that had content (as requestMessages picks them).
export function cutRange(conv, index) {
  const turn = conv.messages[index]?.turn;
  const n = turn?.truncated_messages ?? 0;
  if (!n) return null;
  const sent = [];
  for (let i = 0; i < index; i++) {
    const m = conv.messages[i];
    if (m.role === 'user' || (m.role === 'assistant' && !(m.error && !m.content))) sent.push(i);
  }
  if (sent.length < 2) return null;
  // All but the last: M1 went too. Otherwise the n messages after M1.
  const first = n >= sent.length - 1 ? 0 : 1;
  const last = Math.min(first + n, sent.length - 1); // the message answered is always kept
  return { from: sent[first], to: sent[last - 1] + 1, count: n, tokens: turn.truncated_tokens ?? 0, m1Dropped: first === 0 };
}

// The time-to-first-token series of a conversation, one point per answer that has one.
export function ttftSeries(conv) {
  return conv.messages.filter((m) => m.turn && Number.isFinite(m.turn.ttft_ms)).map((m) => m.turn.ttft_ms);
}

// Reads every stored conversation (newest first). A missing or unreadable entry gives [].
export function loadAll(storage) {
  try {
    const raw = storage.getItem(STORAGE_KEY);
    const list = raw ? JSON.parse(raw) : [];
    if (!Array.isArray(list)) return [];
    return list.filter((c) => c && typeof c.id === 'string' && Array.isArray(c.messages)).sort((a, b) => b.updated - a.updated);
  } catch {
    return [];
  }
}

// Writes them back (newest first, at most MAX_CONVERSATIONS). Returns null, or the words of
// the failure (the storage is full or refused): the page shows them and keeps working.
export function saveAll(storage, list) {
  const keep = [...list].sort((a, b) => b.updated - a.updated).slice(0, MAX_CONVERSATIONS);
  try {
    storage.setItem(STORAGE_KEY, JSON.stringify(keep));
    return null;
  } catch (e) {
    return `Could not save the conversations in this browser's storage (${e && e.name ? e.name : e}).`;
  }
}
