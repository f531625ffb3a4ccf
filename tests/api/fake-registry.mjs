// fake-registry.mjs -- a small Ollama-protocol registry for the pull tests, on 127.0.0.1 only.
//
// Two HTTP servers on ports the OS picks: the registry (manifests, blob redirects, a bearer
// token realm) and a "CDN" on a second port that serves the blob bytes with Range support.
// Per blob a mode makes it misbehave: 'cut-once' (the first request gets half its range, then
// the connection is cut), 'stall' (every request gets half its range, then nothing more
// until the client goes away), 'corrupt' (the bytes do not hash to the digest), 'slow'
// (16 KiB every 10 ms), 'direct' (the registry serves the bytes itself, no redirect).
// It counts the bytes it sends per digest, the requests, the tokens and any Authorization
// header that reaches the CDN (the token must not leak there).
//
// Usable from a test (startRegistry) or alone: `node fake-registry.mjs` prints its ports.
import http from 'node:http';
import { createHash } from 'node:crypto';

export const MEDIA = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  model: 'application/vnd.ollama.image.model',
  template: 'application/vnd.ollama.image.template',
  params: 'application/vnd.ollama.image.params',
  system: 'application/vnd.ollama.image.system',
  license: 'application/vnd.ollama.image.license',
};

export const sha256 = (buf) => 'sha256:' + createHash('sha256').update(buf).digest('hex');

function listen(server) {
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

// "bytes=A-B" / "bytes=A-" against a size: [start, end] or null.
function parseRange(h, size) {
  const m = /^bytes=(\d+)-(\d*)$/.exec(h ?? '');
  if (!m) return null;
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start <= end ? [start, end] : null;
}

export async function startRegistry({ auth = true } = {}) {
  const models = new Map(); // "ns/model:tag" -> manifest text
  const blobs = new Map();  // digest -> { data, served, requests, mode, cutDone }
  const stats = { tokens: 0, tokenRequests: [], cdnAuthorization: 0, cdnRequests: [], manifestRequests: 0, unauthorized: 0 };
  const open = new Set();   // sockets of stalled responses
  const issued = new Set();
  let regPort = 0, cdnPort = 0;

  function sendBlob(req, res, digest) {
    const b = blobs.get(digest);
    if (!b) { res.writeHead(404, { 'content-type': 'application/json' }); res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}'); return; }
    b.requests.push(req.headers.range ?? '');
    const size = b.data.length;
    const range = req.headers.range ? parseRange(req.headers.range, size) : null;
    if (req.headers.range && !range) { res.writeHead(416, { 'content-range': `bytes */${size}` }); res.end(); return; }
    const [start, end] = range ?? [0, size - 1];
    const body = b.mode === 'corrupt' ? Buffer.from(b.data) : b.data;
    if (b.mode === 'corrupt') body[Math.floor(size / 2)] ^= 0xff;
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1) };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range ? 206 : 200, headers);
    const slice = body.subarray(start, end + 1);
    const write = (chunk) => { b.served += chunk.length; return res.write(chunk); };
    if (b.mode === 'cut-once' && !b.cutDone && slice.length > 1) {
      b.cutDone = true;
      write(slice.subarray(0, Math.floor(slice.length / 2)));
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    if (b.mode === 'stall' && slice.length > 1) {
      write(slice.subarray(0, Math.floor(slice.length / 2)));
      open.add(res.socket);
      res.socket.on('close', () => open.delete(res.socket));
      return; // nothing more, until the client goes away
    }
    if (b.mode === 'slow') {
      let off = 0;
      const step = () => {
        if (res.destroyed) return;
        if (off >= slice.length) { res.end(); return; }
        write(slice.subarray(off, off + 16384));
        off += 16384;
        setTimeout(step, 10);
      };
      step();
      return;
    }
    write(slice);
    res.end();
  }

  function authorized(req) {
    if (!auth) return true;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    return m && issued.has(m[1]);
  }

  function challenge(res, repo) {
    stats.unauthorized++;
    res.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate': `Bearer realm="http://127.0.0.1:${regPort}/token",service="fake-registry",scope="repository:${repo}:pull"`,
    });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  }

  const registry = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/token') {
      stats.tokens++;
      stats.tokenRequests.push({ service: url.searchParams.get('service'), scope: url.searchParams.getAll('scope') });
      const token = `tok-${stats.tokens}`;
      issued.add(token);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token }));
      return;
    }
    const m = /^\/v2\/([^/]+)\/([^/]+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m || req.method !== 'GET') { res.writeHead(404); res.end('404 page not found'); return; }
    const [, ns, model, kind, ref] = m;
    const repo = `${ns}/${model}`;
    if (!authorized(req)) { challenge(res, repo); return; }
    if (kind === 'manifests') {
      stats.manifestRequests++;
      const text = models.get(`${repo}:${ref}`);
      if (!text) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
        return;
      }
      res.writeHead(200, { 'content-type': MEDIA.manifest, 'docker-content-digest': sha256(text) });
      res.end(text);
      return;
    }
    const b = blobs.get(ref);
    if (!b) { res.writeHead(404, { 'content-type': 'application/json' }); res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}'); return; }
    if (b.mode === 'direct') { sendBlob(req, res, ref); return; }
    res.writeHead(307, { location: `http://127.0.0.1:${cdnPort}/blobs/${ref}?sig=fake` });
    res.end();
  });

  const cdn = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.headers.authorization) stats.cdnAuthorization++;
    stats.cdnRequests.push({ path: url.pathname, range: req.headers.range ?? '' });
    const m = /^\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (!m || url.searchParams.get('sig') !== 'fake') { res.writeHead(403); res.end('bad signature'); return; }
    sendBlob(req, res, m[1]);
  });

  regPort = await listen(registry);
  cdnPort = await listen(cdn);

  function addBlob(data, mode = 'normal') {
    const digest = sha256(data);
    if (!blobs.has(digest)) blobs.set(digest, { data, served: 0, requests: [], mode, cutDone: false });
    else if (mode !== 'normal') blobs.get(digest).mode = mode;
    return digest;
  }

  return {
    host: `127.0.0.1:${regPort}`,
    port: regPort,
    cdnPort,
    stats,
    // Publishes ns/model:tag with the given layers ({ mediaType, data, mode? }) and a config
    // blob. Returns { manifest, digests: [layer digests...], config }.
    addModel(repoTag, layers) {
      const ls = layers.map((l) => ({ mediaType: l.mediaType, digest: addBlob(l.data, l.mode), size: l.data.length }));
      const config = Buffer.from(JSON.stringify({
        model_format: 'gguf', model_family: 'qwen2', model_families: ['qwen2'], model_type: '494M', file_type: 'Q8_0',
        architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ls.map((l) => l.digest) },
      }));
      const cdigest = addBlob(config);
      const manifest = JSON.stringify({
        schemaVersion: 2, mediaType: MEDIA.manifest,
        config: { mediaType: MEDIA.config, digest: cdigest, size: config.length },
        layers: ls,
      });
      models.set(repoTag.includes(':') ? repoTag : `${repoTag}:latest`, manifest);
      return { manifest, digests: ls.map((l) => l.digest), config: cdigest };
    },
    blob: (digest) => blobs.get(digest),
    setMode(digest, mode) { blobs.get(digest).mode = mode; },
    served: (digest) => blobs.get(digest)?.served ?? 0,
    stalled: () => open.size,
    async close() {
      for (const s of open) s.destroy();
      registry.closeAllConnections?.();
      cdn.closeAllConnections?.();
      await Promise.all([new Promise((r) => registry.close(r)), new Promise((r) => cdn.close(r))]);
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await startRegistry({ auth: process.argv.includes('--auth') });
  console.log(JSON.stringify({ registry: r.port, cdn: r.cdnPort }));
}
