import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startServer, post } from './helpers.mjs';
const { generate } = JSON.parse(readFileSync('../unit/json_schema_cases.json'));
const ajv = new Ajv2020({ strict: false, allErrors: true }); addFormats(ajv);
const srv = await startServer();
let bad = 0, n = 0, cut = 0;
try {
  for (let seed = 1000; seed < 1005; seed++)
  for (const { name, schema } of generate) {
    const r = await post(srv.url, '/api/chat', { model: 'demo', messages: [{ role: 'user', content: 'JSON ' + seed }], format: schema, stream: false, options: { num_predict: 512, seed, temperature: 1.5 } });
    const b = await r.json(); n++;
    if (b.done_reason === 'length') { cut++; console.log('CUT', name); continue; }
    let v; try { v = JSON.parse(b.message.content); } catch { bad++; console.log('NOTJSON', name, b.message.content); continue; }
    const val = ajv.compile(schema);
    if (!val(v)) { bad++; console.log('INVALID', name, b.message.content, ajv.errorsText(val.errors)); }
  }
} finally { await srv.stop(); }
console.log({ n, bad, cut });
