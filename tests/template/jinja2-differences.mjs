// jinja2-differences.mjs -- the allow-list of the corpus test: the (template, case) pairs where
// the oracle, @huggingface/jinja, and Python's jinja2 as transformers' apply_chat_template
// runs it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols) disagree.
// There we follow jinja2, and each entry says what jinja2 does:
//   jinja2: 'renders'       it renders; the text is in jinja2-expected.json under
//                           "<template>|<case>" (written by regen-jinja2.mjs with jinja2_ref.py)
//   jinja2: { error, contains? }   it fails with the message `error`; ours must fail too, and
//                           its message must contain `contains` when given
// An entry whose disagreement is gone (a newer oracle agrees with jinja2) fails the test as
// stale, so the list cannot outlive its reason. Found by running every template and case
// through both engines (regen-jinja2.mjs --survey); nothing else is skipped.

const ALL = ['chat', 'single', 'tools', 'tool_call', 'thinking', 'no_thinking'];
const NO_TOOLS = ['chat', 'single', 'thinking', 'no_thinking'];

export const DIFFERENCES = [
  {
    template: 'Apriel-1.6-15b-Thinker-fixed.jinja', cases: ['tools', 'tool_call'],
    why: "`tool|string` on a dict: jinja2 writes Python's str() of it ({'type': 'function', ...}); the oracle has no `string` filter for objects",
    jinja2: 'renders',
  },
  {
    template: 'unsloth-Apriel-1.5.jinja', cases: ['tools', 'tool_call'],
    why: "`tool|string` on a dict: jinja2 writes Python's str() of it; the oracle has no `string` filter for objects",
    jinja2: 'renders',
  },
  {
    template: 'unsloth-Apriel-1.5.jinja', cases: NO_TOOLS,
    why: '`tools is not none and tools|length > 0` with tools undefined: an undefined value is not none, and its length is 0 in jinja2; the oracle refuses `length` of undefined',
    jinja2: 'renders',
  },
  {
    template: 'ByteDance-Seed-OSS.jinja', cases: ALL,
    why: 'a dict literal with integer keys ({0: 0, 512: 128, ...}); the oracle accepts only string keys',
    jinja2: 'renders',
  },
  {
    template: 'CohereForAI-c4ai-command-r-plus-tool_use.jinja', cases: NO_TOOLS,
    why: '`for tool in tools` with tools undefined: iterating an undefined value gives nothing in jinja2; the oracle throws',
    jinja2: 'renders',
  },
  {
    template: 'CohereForAI-c4ai-command-r-plus-tool_use.jinja', cases: ['tools', 'tool_call'],
    why: "the template wants Cohere's tool format (tool.description at the top level), not OpenAI's: `'...' + tool.description` adds an undefined value; both fail, with different messages",
    jinja2: { error: "'dict object' has no attribute 'description'", contains: 'description' },
  },
  ...['NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja', 'NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja'].flatMap((template) => [
    {
      template, cases: NO_TOOLS,
      why: '`for tool in tools` with tools undefined: iterating an undefined value gives nothing in jinja2; the oracle throws',
      jinja2: 'renders',
    },
    {
      template, cases: ['tools', 'tool_call'],
      why: '`param_fields.description|trim` for a parameter without a description (`unit`): trim of an undefined value is "" in jinja2; the oracle refuses it',
      jinja2: 'renders',
    },
  ]),
  {
    template: 'fireworks-ai-llama-3-firefunction-v2.jinja', cases: ALL,
    why: 'the template reads a global `functions` that transformers never passes: adding an undefined value fails in both, with different messages',
    jinja2: { error: "'functions' is undefined", contains: 'functions' },
  },
  // Two deliberate deviations from transformers, both so that real models work at all:
  ...['Kimi-K2-Instruct.jinja', 'Kimi-K2-Thinking.jinja'].map((template) => ({
    template, cases: ['tool_call'],
    why: "`tool_response_queue.ids.append(...)`: transformers' ImmutableSandboxedEnvironment refuses to mutate a list "
      + '(so transformers cannot render any Kimi K2 tool-call history); the oracle has no `append`. Bellows allows '
      + "list and dict methods as jinja2's plain SandboxedEnvironment does: the text is jinja2's with that sandbox",
    jinja2: 'renders', sandbox: 'mutable',
  })),
  {
    template: 'llama-cpp-deepseek-r1.jinja', cases: ['tools', 'tool_call'],
    why: "`tools | map(attribute='function') | tojson(indent=2)`: jinja2's map gives a generator, which json.dumps "
      + "refuses; the template is llama.cpp's own, written for an engine whose map makes a list. Bellows' map makes a "
      + 'list too, so it renders as the oracle does (jinja2 fails with "Object of type generator is not JSON serializable")',
    jinja2: 'oracle',
  },
  {
    template: 'meetkai-functionary-medium-v3.1.jinja', cases: NO_TOOLS,
    why: "`none | selectattr(...)` (the template sets tools = none): jinja2's select, reject, selectattr, rejectattr and map give an empty sequence for a falsy value (while `for x in none` fails); the oracle throws",
    jinja2: 'renders',
  },
  {
    template: 'meetkai-functionary-medium-v3.1.jinja', cases: ['tools', 'tool_call'],
    why: "`\"...\"|safe + t | tojson()`: `safe` makes a Markup string and Markup + str HTML-escapes the str, so jinja2 writes &#34; for each quote of the tool's JSON; the oracle has no Markup",
    jinja2: 'renders',
  },
  {
    template: 'meetkai-functionary-medium-v3.2.jinja', cases: ['tools'],
    why: '`for field, field_name in [("maximum", "Maximum"), ...]` unpacks tuples; the oracle cannot',
    jinja2: 'renders',
  },
  {
    template: 'meetkai-functionary-medium-v3.2.jinja', cases: ['tool_call'],
    why: "the template adds a tool call's arguments to a string, and they are an object here (transformers' convention): both fail, jinja2 with Python's message, the oracle earlier on the tuples",
    jinja2: { error: 'can only concatenate str (not "dict") to str' },
  },
  {
    template: 'openbmb-MiniCPM5-1B.jinja', cases: ['tool_call'],
    why: '`[a, b]|min`: the oracle has no `min` filter',
    jinja2: 'renders',
  },
  {
    template: 'tencent-Hy3.jinja', cases: ALL,
    why: "`'...'.format(...)`, Python's str.format (allowed by jinja2's sandbox); the oracle has no such method",
    jinja2: 'renders',
  },
];

// "<template>|<case>" -> its entry
export function differenceFor(template, caseName) {
  return DIFFERENCES.find((d) => d.template === template && d.cases.includes(caseName));
}
