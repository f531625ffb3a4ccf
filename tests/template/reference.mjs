// reference.mjs -- what a chat template must render for a context, shared by the corpus test
// (corpus.test.mjs, through bellows-jinja), the API test (tests/api/templates-all.test.mjs,
// through a server) and regen-jinja2.mjs: the oracle's text (@huggingface/jinja,
// oracle.mjs), except where the allow-list (jinja2-differences.mjs) says Python's jinja2
// does otherwise; then jinja2's text, stored in an expected file, or jinja2's error.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { differenceFor } from './jinja2-differences.mjs';
import { render } from './oracle.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
export const LLAMA = process.env.BELLOWS_LLAMA_DIR ?? join(here, '../../build/_deps/llama.cpp');
export const TEMPLATES_DIR = join(LLAMA, 'models/templates');

// The template files of the pinned llama.cpp, sorted ([] when it is not fetched).
export function listTemplates(dir = TEMPLATES_DIR) {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jinja')).sort() : [];
}

// The allow-list entry that applies to (template, case), or undefined. An entry with
// jinja2: 'oracle' is a deliberate deviation (Bellows renders as the oracle does): undefined.
export function jinja2Difference(template, caseName) {
  const d = differenceFor(template, caseName);
  return d?.jinja2 === 'oracle' ? undefined : d;
}

// A short name of a context, stored with each jinja2 text of an API expected file so that a
// text is used only for the very context it was rendered with.
export function contextId(ctx) {
  return createHash('sha256').update(JSON.stringify(ctx)).digest('hex').slice(0, 16);
}

// What TEMPLATE (file name; TEXT its text) should give for case CASENAME rendered with CTX:
// { ok: true, text } or { ok: false, error, contains?, raised? } (the error must contain
// `contains`; raised: it is the template's own raise_exception message).
//   jinja2Text(template, caseName, ctx): jinja2's stored text for an allow-listed pair that
//     jinja2 renders; undefined when the expected file lacks it (then this throws).
//   globals: extra callables for the oracle only (a strftime_now of another instant).
// Throws when the oracle fails with an error of its own that the allow-list does not
// explain, and when an allow-list entry is stale (the oracle now agrees with jinja2).
export function expectedFor({ template, text, caseName, ctx, jinja2Text, globals = {} }) {
  let oracle;
  try {
    oracle = { ok: true, text: render(text, { ...ctx, ...globals }) };
  } catch (e) {
    oracle = { ok: false, error: e.message, raised: e.raisedByTemplate === true };
  }
  const d = jinja2Difference(template, caseName);
  if (!d) {
    if (!oracle.ok && !oracle.raised)
      throw new Error(`the oracle fails with its own error (${oracle.error}), not the template's: `
        + 'check with jinja2_ref.py and list what jinja2 does in jinja2-differences.mjs');
    return oracle.ok ? oracle : { ok: false, error: oracle.error, contains: oracle.error, raised: true };
  }
  const want = d.jinja2 === 'renders'
    ? { ok: true, text: jinja2Text(template, caseName, ctx) }
    : { ok: false, error: d.jinja2.error, contains: d.jinja2.contains };
  if (want.ok && want.text === undefined)
    throw new Error(`no jinja2 text for "${template}|${caseName}" with this context: run tests/template/regen-jinja2.mjs`);
  const stale = want.ok ? oracle.ok && oracle.text === want.text : !oracle.ok && oracle.error === want.error;
  if (stale)
    throw new Error('stale allow-list entry: the oracle now agrees with jinja2; remove it from jinja2-differences.mjs');
  return want;
}

// A short diff: the first differing line of each side, with its line number and byte offset.
// WANT is a string, GOT a string or a Buffer.
export function firstDifference(want, got) {
  const a = Buffer.from(want, 'utf8');
  const b = Buffer.isBuffer(got) ? got : Buffer.from(got, 'utf8');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const line = a.subarray(0, i).toString('utf8').split('\n').length;
  const start = a.lastIndexOf(10, i - 1) + 1;
  const endOf = (x) => { const e = x.indexOf(10, i); return e < 0 ? x.length : e; };
  const show = (x) => JSON.stringify(x.subarray(start, Math.min(endOf(x), start + 240)).toString('utf8'));
  return `first difference at byte ${i} (line ${line}; expected ${a.length} bytes, got ${b.length}):\n`
    + `  - expected ${show(a)}\n  + got      ${show(b)}`;
}

// Python's jinja2 as transformers runs it (jinja2_ref.py; needs python3 with jinja2): renders
// TEMPLATE (a file of TEMPLATES_DIR) with CTX at NOW_UNIX. sandbox 'mutable': jinja2's plain
// SandboxedEnvironment. Returns { ok: true, text } or { ok: false, error }. By hand only.
let scratch;
export function jinja2(template, ctx, nowUnix, sandbox) {
  scratch ??= mkdtempSync(join(tmpdir(), 'bellows-jinja2-'));
  const ctxPath = join(scratch, 'ctx.json');
  writeFileSync(ctxPath, JSON.stringify(ctx));
  const args = [join(here, 'jinja2_ref.py'), join(TEMPLATES_DIR, template), ctxPath, String(nowUnix)];
  if (sandbox === 'mutable') args.push('--mutable');
  const p = spawnSync('python3', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (p.status === 0) return { ok: true, text: p.stdout };
  if (p.status === 1 && p.stderr.startsWith('jinja2: ')) return { ok: false, error: p.stderr.slice(8).trimEnd() };
  throw new Error(`jinja2_ref.py failed: ${p.stderr}`);
}
export function jinja2Done() {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

// The report of a run that had failures ('' when none): how many templates match on each
// message set, a table per template, then each failure. RESULTS: template -> case -> null
// (match) | failure text.
export function summary(title, results, cases) {
  const failures = [...results].flatMap(([t, row]) => [...row].filter(([, f]) => f).map(([c, f]) => ({ t, c, f })));
  if (!failures.length) return '';
  const lines = [`${title}: ${failures.length} of ${results.size * cases.length} renderings differ`, ''];
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
  return lines.join('\n') + '\n';
}
