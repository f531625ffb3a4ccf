// http.mjs -- the benchmarks' HTTP client: a small fetch over node:http (Node built-ins only).
// Not undici's fetch: it gives up on a response whose first byte takes more than 300 s
// (headersTimeout / bodyTimeout), and a 30k-token first prefill on 2 cores takes longer.
import http from 'node:http';

// A small fetch over node:http with a new connection per request (agent: false). Both servers
// close connections after some responses (cpp-httplib after a stream), and a pooled
// keep-alive socket closed under the client fails the next request ("other side closed").
// timeoutMs bounds the whole exchange, body included.
export function hfetch(url, { method = 'GET', headers = {}, body, timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, agent: false,
      headers: { ...(body != null ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}), ...headers } });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${u.pathname}: no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    timer.unref(); // bounds the request; never keeps the process alive by itself
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.on('response', (res) => {
      res.on('end', () => clearTimeout(timer));
      res.on('close', () => clearTimeout(timer));
      const readAll = async () => { let t = ''; for await (const c of res) t += c; return t; };
      resolve({ ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, body: res,
        text: readAll, json: async () => JSON.parse(await readAll()) });
    });
    if (body != null) req.write(body);
    req.end();
  });
}
