// regen-jinja2.mjs -- by hand, not by ctest (it needs Python's jinja2: python3 -m pip install
// jinja2). Renders through jinja2_ref.py (transformers' jinja2 setup) every allow-listed pair of
// jinja2-differences.mjs and writes
//   jinja2-expected.json      for the corpus test's contexts (cases.mjs contextFor), keyed
//                             "<template>|<case>";
//   jinja2-expected-api.json  for the contexts the server gives the template in
//                             tests/api/templates-all.test.mjs (cases.mjs apiContextFor: the
//                             API vocabulary's BOS/EOS, `think` sent or not), keyed
//                             "<template>|<case>|<contextId>" so that a text serves only the
//                             context it was rendered with;
// and checks that the listed errors are jinja2's. With --survey it also renders every
// template and case (both sets of contexts) through both the oracle and jinja2 and prints
// each disagreement the allow-list does not cover.
//   node regen-jinja2.mjs [--survey]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { API_TOKENS, CASES, apiContextFor, argumentsAsText, contextFor } from './cases.mjs';
import { DIFFERENCES, differenceFor } from './jinja2-differences.mjs';
import { NOW_UNIX, render } from './oracle.mjs';
import { TEMPLATES_DIR, contextId, jinja2, jinja2Done, listTemplates } from './reference.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const TOKENS = { bos_token: '<|bos|>', eos_token: '<|eos|>' };

// The API contexts of case C: without think, and with it when the case sets enable_thinking
// (which one the test uses depends on the model's "thinking" capability).
function apiContexts(c) {
  const think = c.vars && typeof c.vars.enable_thinking === 'boolean' ? [undefined, c.vars.enable_thinking] : [undefined];
  return think.map((t) => apiContextFor(c, API_TOKENS, t));
}

let bad = 0;
const expected = {};
const expectedApi = {};
for (const d of DIFFERENCES) {
  if (d.jinja2 === 'oracle') continue; /* a deliberate deviation: compared with the oracle */
  for (const c of d.cases) {
    const runs = [{ ctx: contextFor(CASES[c], TOKENS), key: `${d.template}|${c}`, into: expected }];
    for (const ctx of apiContexts(CASES[c])) {
      runs.push({ ctx, key: `${d.template}|${c}|${contextId(ctx)}`, into: expectedApi });
      /* where jinja2 fails on object arguments, the server renders them as text once more */
      const textArgs = d.jinja2 !== 'renders' && argumentsAsText(ctx);
      const again = textArgs && jinja2(d.template, textArgs, NOW_UNIX, d.sandbox);
      if (again?.ok) expectedApi[`${d.template}|${c}|${contextId(textArgs)}`] = again.text;
    }
    for (const { ctx, key, into } of runs) {
      const r = jinja2(d.template, ctx, NOW_UNIX, d.sandbox);
      if (d.jinja2 === 'renders' && r.ok) into[key] = r.text;
      else if (d.jinja2 !== 'renders' && !r.ok && r.error === d.jinja2.error) continue;
      else {
        bad++;
        console.log(`${key}: the allow-list says ${JSON.stringify(d.jinja2)}, jinja2 ${r.ok ? 'renders' : `fails: ${r.error}`}`);
      }
    }
  }
}
writeFileSync(join(here, 'jinja2-expected.json'), JSON.stringify(expected, null, 1) + '\n');
writeFileSync(join(here, 'jinja2-expected-api.json'), JSON.stringify(expectedApi, null, 1) + '\n');
console.log(`jinja2-expected.json: ${Object.keys(expected).length} renderings; `
  + `jinja2-expected-api.json: ${Object.keys(expectedApi).length}`);

if (process.argv.includes('--survey')) {
  for (const t of listTemplates()) {
    const text = readFileSync(join(TEMPLATES_DIR, t), 'utf8');
    for (const c of Object.keys(CASES)) {
      const contexts = [['corpus', contextFor(CASES[c], TOKENS)], ...apiContexts(CASES[c]).map((x) => ['api', x])];
      for (const [which, ctx] of contexts) {
        let o;
        try {
          o = { ok: true, text: render(text, ctx) };
        } catch (e) {
          o = { ok: false, error: e.message };
        }
        const j = jinja2(t, ctx, NOW_UNIX);
        const agree = o.ok ? j.ok && j.text === o.text : !j.ok && j.error === o.error;
        if (!agree && !differenceFor(t, c)) {
          bad++;
          console.log(`${t}|${c} (${which}${'enable_thinking' in ctx ? `, think ${ctx.enable_thinking}` : ''}): `
            + `oracle ${o.ok ? 'renders' : `fails: ${o.error}`}; jinja2 ${j.ok ? 'renders' : `fails: ${j.error}`}`
            + `${o.ok && j.ok ? ' (texts differ)' : ''}`);
        }
      }
    }
  }
}
jinja2Done();
process.exit(bad ? 1 : 0);
