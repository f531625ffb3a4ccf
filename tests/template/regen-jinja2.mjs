// regen-jinja2.mjs -- by hand, not by ctest (it needs Python's jinja2: python3 -m pip install
// jinja2). Renders through jinja2_ref.py (transformers' jinja2 setup) every allow-listed pair of
// jinja2-differences.mjs and writes jinja2-expected.json; checks that the listed errors are
// jinja2's. With --survey it also renders every template and case through both the oracle and
// jinja2 and prints each disagreement the allow-list does not cover.
//   node regen-jinja2.mjs [--survey]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CASES, contextFor } from './cases.mjs';
import { DIFFERENCES, differenceFor } from './jinja2-differences.mjs';
import { NOW_UNIX, render } from './oracle.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const LLAMA = process.env.BELLOWS_LLAMA_DIR ?? join(here, '../../build/_deps/llama.cpp');
const DIR = join(LLAMA, 'models/templates');
const TOKENS = { bos_token: '<|bos|>', eos_token: '<|eos|>' };

const tmp = mkdtempSync(join(tmpdir(), 'bellows-jinja2-'));
function jinja2(template, caseName, sandbox) {
  const ctx = join(tmp, 'ctx.json');
  writeFileSync(ctx, JSON.stringify(contextFor(CASES[caseName], TOKENS)));
  const args = [join(here, 'jinja2_ref.py'), join(DIR, template), ctx, String(NOW_UNIX)];
  if (sandbox === 'mutable') args.push('--mutable');
  const p = spawnSync('python3', args, { encoding: 'utf8' });
  if (p.status === 0) return { ok: true, text: p.stdout };
  if (p.status === 1 && p.stderr.startsWith('jinja2: ')) return { ok: false, error: p.stderr.slice(8).trimEnd() };
  throw new Error(`jinja2_ref.py failed: ${p.stderr}`);
}

let bad = 0;
const expected = {};
for (const d of DIFFERENCES) {
  if (d.jinja2 === 'oracle') continue; /* a deliberate deviation: compared with the oracle */
  for (const c of d.cases) {
    const r = jinja2(d.template, c, d.sandbox);
    const key = `${d.template}|${c}`;
    if (d.jinja2 === 'renders' && r.ok) expected[key] = r.text;
    else if (d.jinja2 !== 'renders' && !r.ok && r.error === d.jinja2.error) continue;
    else {
      bad++;
      console.log(`${key}: the allow-list says ${JSON.stringify(d.jinja2)}, jinja2 ${r.ok ? 'renders' : `fails: ${r.error}`}`);
    }
  }
}
writeFileSync(join(here, 'jinja2-expected.json'), JSON.stringify(expected, null, 1) + '\n');
console.log(`jinja2-expected.json: ${Object.keys(expected).length} renderings`);

if (process.argv.includes('--survey')) {
  for (const t of readdirSync(DIR).filter((f) => f.endsWith('.jinja')).sort()) {
    const text = readFileSync(join(DIR, t), 'utf8');
    for (const c of Object.keys(CASES)) {
      let o;
      try {
        o = { ok: true, text: render(text, contextFor(CASES[c], TOKENS)) };
      } catch (e) {
        o = { ok: false, error: e.message };
      }
      const j = jinja2(t, c);
      const agree = o.ok ? j.ok && j.text === o.text : !j.ok && j.error === o.error;
      if (!agree && !differenceFor(t, c)) {
        bad++;
        console.log(`${t}|${c}: oracle ${o.ok ? 'renders' : `fails: ${o.error}`}; jinja2 ${j.ok ? 'renders' : `fails: ${j.error}`}${o.ok && j.ok ? ' (texts differ)' : ''}`);
      }
    }
  }
}
rmSync(tmp, { recursive: true, force: true });
process.exit(bad ? 1 : 0);
