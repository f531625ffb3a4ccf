// corpus.test.mjs -- every chat template that ships in the pinned llama.cpp
// (models/templates/*.jinja) renders six message sets (cases.mjs) through our C renderer
// (`bellows-jinja`) byte for byte as the oracle, @huggingface/jinja, renders them (issue 10).
// Where the oracle fails with the template's own raise_exception, ours must fail too with
// that message. Where the oracle and Python's jinja2 disagree we follow jinja2: the
// allow-list in jinja2-differences.mjs names each such pair and what jinja2 does.
//
// Environment: BELLOWS_JINJA (default build/tools/bellows-jinja), BELLOWS_LLAMA_DIR (default
// build/_deps/llama.cpp); BELLOWS_CORPUS_REPORT=FILE also writes the failures to FILE.
// On a failure the test prints how many templates match on each message set.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { CASES, contextFor } from './cases.mjs';
import { DIFFERENCES, differenceFor } from './jinja2-differences.mjs';
import { NOW_UNIX, render } from './oracle.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const JINJA = process.env.BELLOWS_JINJA ?? join(here, '../../build/tools/bellows-jinja');
const LLAMA = process.env.BELLOWS_LLAMA_DIR ?? join(here, '../../build/_deps/llama.cpp');
const DIR = join(LLAMA, 'models/templates');
const TOKENS = { bos_token: '<|bos|>', eos_token: '<|eos|>' };
const EXPECTED = JSON.parse(readFileSync(join(here, 'jinja2-expected.json'), 'utf8'));

const TEMPLATES = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith('.jinja')).sort() : [];
const tmp = mkdtempSync(join(tmpdir(), 'bellows-corpus-'));
const results = new Map(); // template -> case -> null (match) | failure text
after(() => {
  rmSync(tmp, { recursive: true, force: true });
  report();
});

// What the template should give: { ok, text } or { ok: false, error, contains? }.
function expectedFor(template, text, caseName, ctx) {
  let oracle;
  try {
    oracle = { ok: true, text: render(text, ctx) };
  } catch (e) {
    oracle = { ok: false, error: e.message, raised: e.raisedByTemplate === true };
  }
  const found = differenceFor(template, caseName);
  const d = found?.jinja2 === 'oracle' ? undefined : found; /* a deliberate deviation: like the oracle */
  if (!d) {
    if (!oracle.ok && !oracle.raised)
      throw new Error(`the oracle fails with its own error (${oracle.error}), not the template's: `
        + 'check with jinja2_ref.py and list what jinja2 does in jinja2-differences.mjs');
    return oracle.ok ? oracle : { ok: false, error: oracle.error, contains: oracle.error };
  }
  const want = d.jinja2 === 'renders'
    ? { ok: true, text: EXPECTED[`${template}|${caseName}`] }
    : { ok: false, error: d.jinja2.error, contains: d.jinja2.contains };
  if (want.ok && want.text === undefined)
    throw new Error(`jinja2-expected.json has no "${template}|${caseName}": run regen-jinja2.mjs`);
  const stale = want.ok ? oracle.ok && oracle.text === want.text : !oracle.ok && oracle.error === want.error;
  if (stale)
    throw new Error('stale allow-list entry: the oracle now agrees with jinja2; remove it from jinja2-differences.mjs');
  return want;
}

function ours(templatePath, ctx) {
  const ctxPath = join(tmp, 'context.json');
  writeFileSync(ctxPath, JSON.stringify(ctx));
  const p = spawnSync(JINJA, ['--template', templatePath, '--context', ctxPath, '--now', String(NOW_UNIX)],
    { timeout: 20000, maxBuffer: 64 << 20 });
  return { status: p.status, signal: p.signal, stdout: p.stdout, stderr: p.stderr?.toString('utf8') ?? '', error: p.error };
}

// A short diff: the first differing line of each side, with its line number and byte offset.
function firstDifference(want, got) {
  const a = Buffer.from(want, 'utf8');
  let i = 0;
  while (i < a.length && i < got.length && a[i] === got[i]) i++;
  const line = a.subarray(0, i).toString('utf8').split('\n').length;
  const start = a.lastIndexOf(10, i - 1) + 1;
  const endOf = (b) => { const e = b.indexOf(10, i); return e < 0 ? b.length : e; };
  const show = (b) => JSON.stringify(b.subarray(start, Math.min(endOf(b), start + 240)).toString('utf8'));
  return `first difference at byte ${i} (line ${line}; expected ${a.length} bytes, got ${got.length}):\n`
    + `  - expected ${show(a)}\n  + got      ${show(got)}`;
}

function compare(want, got) {
  if (got.error) return `bellows-jinja did not run: ${got.error.message}`;
  if (got.signal) return `bellows-jinja died of ${got.signal}: ${got.stderr.trim()}`;
  if (want.ok) {
    if (got.status !== 0) return `expected a rendering, bellows-jinja exited ${got.status}: ${got.stderr.trim()}`;
    return Buffer.from(want.text, 'utf8').equals(got.stdout) ? null : firstDifference(want.text, got.stdout);
  }
  if (got.status !== 1)
    return `expected the error ${JSON.stringify(want.error)}, bellows-jinja exited ${got.status}`
      + (got.status === 0 ? ` and printed ${JSON.stringify(got.stdout.toString('utf8').slice(0, 200))}` : '');
  if (!got.stderr.startsWith('bellows-jinja: '))
    return `the error is not on stderr as "bellows-jinja: <message>": ${JSON.stringify(got.stderr)}`;
  if (want.contains && !got.stderr.includes(want.contains))
    return `expected an error containing ${JSON.stringify(want.contains)}, got ${JSON.stringify(got.stderr.trim())}`;
  return null;
}

test('the pinned llama.cpp ships its chat templates', () => {
  if (TEMPLATES.length < 60) throw new Error(`only ${TEMPLATES.length} templates in ${DIR}`);
  if (!existsSync(JINJA)) throw new Error(`${JINJA} is not built`);
  const listed = new Set(DIFFERENCES.map((d) => d.template));
  const unknown = [...listed].filter((t) => !TEMPLATES.includes(t));
  if (unknown.length) throw new Error(`the allow-list names templates that are gone: ${unknown.join(', ')}`);
});

for (const template of TEMPLATES) {
  test(template, () => {
    const path = join(DIR, template);
    const text = readFileSync(path, 'utf8');
    const row = new Map();
    results.set(template, row);
    for (const [caseName, c] of Object.entries(CASES)) {
      const ctx = contextFor(c, TOKENS);
      let failure;
      try {
        failure = compare(expectedFor(template, text, caseName, ctx), ours(path, ctx));
      } catch (e) {
        failure = e.message;
      }
      row.set(caseName, failure);
    }
    const failed = [...row].filter(([, f]) => f);
    if (failed.length)
      throw new Error(failed.map(([c, f]) => `${c}: ${f}`).join('\n'));
  });
}

function report() {
  const cases = Object.keys(CASES);
  const failures = [...results].flatMap(([t, row]) => [...row].filter(([, f]) => f).map(([c, f]) => ({ t, c, f })));
  if (!failures.length) return;
  const lines = [`template corpus: ${failures.length} of ${results.size * cases.length} renderings differ`, ''];
  lines.push('matches per message set (templates rendered right / templates run):');
  for (const c of cases) {
    const ok = [...results.values()].filter((row) => row.get(c) === null).length;
    lines.push(`  ${c.padEnd(12)} ${ok}/${results.size}`);
  }
  const all = [...results.values()].filter((row) => [...row.values()].every((f) => f === null)).length;
  lines.push(`  ${'every set'.padEnd(12)} ${all}/${results.size}`, '',
    `per template (. match, X differs; columns: ${cases.map((c, i) => `${i + 1} ${c}`).join(', ')}):`);
  lines.push(`  ${cases.map((c, i) => String(i + 1).padEnd(2)).join(' ')}`);
  for (const [t, row] of results)
    lines.push(`  ${cases.map((c) => (row.get(c) === null ? '. ' : 'X ')).join(' ')} ${t}`);
  lines.push('', 'failures:');
  for (const { t, c, f } of failures) lines.push(`--- ${t} [${c}]`, f);
  const text = lines.join('\n') + '\n';
  console.log(text);
  if (process.env.BELLOWS_CORPUS_REPORT) writeFileSync(process.env.BELLOWS_CORPUS_REPORT, text);
}
