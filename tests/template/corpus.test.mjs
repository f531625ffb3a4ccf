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
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { CASES, contextFor } from './cases.mjs';
import { DIFFERENCES } from './jinja2-differences.mjs';
import { NOW_UNIX } from './oracle.mjs';
import { TEMPLATES_DIR as DIR, expectedFor, firstDifference, listTemplates, summary } from './reference.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const JINJA = process.env.BELLOWS_JINJA ?? join(here, '../../build/tools/bellows-jinja');
const TOKENS = { bos_token: '<|bos|>', eos_token: '<|eos|>' };
const EXPECTED = JSON.parse(readFileSync(join(here, 'jinja2-expected.json'), 'utf8'));
const jinja2Text = (template, caseName) => EXPECTED[`${template}|${caseName}`];

const TEMPLATES = listTemplates();
const tmp = mkdtempSync(join(tmpdir(), 'bellows-corpus-'));
const results = new Map(); // template -> case -> null (match) | failure text
after(() => {
  rmSync(tmp, { recursive: true, force: true });
  report();
});

function ours(templatePath, ctx) {
  const ctxPath = join(tmp, 'context.json');
  writeFileSync(ctxPath, JSON.stringify(ctx));
  const p = spawnSync(JINJA, ['--template', templatePath, '--context', ctxPath, '--now', String(NOW_UNIX)],
    { timeout: 20000, maxBuffer: 64 << 20 });
  return { status: p.status, signal: p.signal, stdout: p.stdout, stderr: p.stderr?.toString('utf8') ?? '', error: p.error };
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
        failure = compare(expectedFor({ template, text, caseName, ctx, jinja2Text }), ours(path, ctx));
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
  const text = summary('template corpus', results, Object.keys(CASES));
  if (!text) return;
  console.log(text);
  if (process.env.BELLOWS_CORPUS_REPORT) writeFileSync(process.env.BELLOWS_CORPUS_REPORT, text);
}
