// api.js -- the page's calls to this server's API (spec/api.md): /api/tags, /api/ps and
// streamed /api/chat, with the API key as "Authorization: Bearer" when one is set. Errors
// become ApiError with words a person can read (errorWords); nothing here touches the DOM.

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // the HTTP status; 0 when the server could not be reached
  }
}

// Words for a failed request: the server's own message ({"error": "..."} or OpenAI's shape)
// with what it means for the person at the page.
export function errorWords(status, body) {
  let msg = '';
  try {
    const j = typeof body === 'string' ? JSON.parse(body) : body;
    msg = typeof j?.error === 'string' ? j.error : j?.error?.message ?? '';
  } catch {
    msg = typeof body === 'string' ? body.trim().slice(0, 300) : '';
  }
  const what = {
    400: 'The server refused the request',
    401: 'This server needs an API key (or the key given is wrong)',
    403: 'The server refused this page',
    404: 'Not found',
    413: 'The request is too large for this server',
    500: 'The server failed',
    503: 'The server is busy',
    507: 'The server is out of disk space',
  }[status] ?? `The server answered ${status}`;
  return msg ? `${what}: ${msg}` : `${what}.`;
}

// Reads an NDJSON body as objects, one per line, as they arrive.
export async function* ndjsonLines(body) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
  buf += dec.decode();
  if (buf.trim()) yield JSON.parse(buf);
}

export class Api {
  // getKey() returns the API key to send, or '' for none. base is '' (this origin).
  constructor(getKey, base = '') {
    this.getKey = getKey;
    this.base = base;
  }

  headers(json) {
    const h = {};
    if (json) h['Content-Type'] = 'application/json';
    const key = this.getKey();
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  async request(path, init = {}) {
    let res;
    try {
      res = await fetch(this.base + path, { ...init, headers: this.headers(init.body !== undefined) });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(`Could not reach the Bellows server (${e && e.message ? e.message : e}). Is it still running?`);
    }
    if (!res.ok) throw new ApiError(errorWords(res.status, await res.text().catch(() => '')), res.status);
    return res;
  }

  async tags() {
    return (await (await this.request('/api/tags')).json()).models ?? [];
  }

  async ps() {
    return (await (await this.request('/api/ps')).json()).models ?? [];
  }

  // The runner's pool for MODEL from /api/ps (context.pool_tokens), or null when it is not
  // loaded. Names match as the server lists them ("demo:latest" for "demo").
  async pool(model) {
    const list = await this.ps();
    const want = model.includes(':') ? model : `${model}:latest`;
    const m = list.find((x) => x.name === model || x.model === model || x.name === want || x.model === want);
    return m?.context ? { pool: m.context.pool_tokens, used: m.context.used_tokens, entry: m } : null;
  }

  // Streams one chat: yields each object of the NDJSON stream (pieces, then the final one
  // with done: true). An {"error": ...} line mid-stream throws ApiError with its words.
  async *chat(body, signal) {
    const res = await this.request('/api/chat', { method: 'POST', body: JSON.stringify({ ...body, stream: true }), signal });
    for await (const obj of ndjsonLines(res.body)) {
      if (obj.error) throw new ApiError(`The model stopped with an error: ${obj.error}`, 500);
      yield obj;
    }
  }
}
