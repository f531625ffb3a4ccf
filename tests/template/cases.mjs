// cases.mjs -- the message sets every chat template is rendered with (the corpus test here,
// tests/api/templates.test.mjs and templates-all.test.mjs through the server), and the
// contexts a template gets from them: contextFor (the corpus test's) and apiContextFor (what
// the server gives the template for the case sent to /api/chat). Conventions follow
// transformers: a tool call is {"type":"function","function":{"name","arguments":{...}}}
// (arguments an object), a tool result is {"role":"tool","content":...,"name":...}, `tools`
// is the OpenAI function list.

export const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the current weather in a city',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string', description: 'The city name, e.g. Paris' },
          unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        },
        required: ['city'],
      },
    },
  },
];

const question = { role: 'user', content: "What's the weather in Paris?" };

const thinkingChat = [
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: 'The answer is 4.', reasoning_content: '2+2 is 4.', thinking: '2+2 is 4.' },
  { role: 'user', content: 'And 3+3?' },
];

// name -> { messages, tools?, vars? (extra globals) }
export const CASES = {
  chat: {
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Hello!' },
      { role: 'assistant', content: 'Hi! How can I help you today?' },
      { role: 'user', content: 'What is the capital of France?' },
    ],
  },
  single: { messages: [{ role: 'user', content: 'Hello!' }] },
  tools: { messages: [question], tools: TOOLS },
  tool_call: {
    messages: [
      question,
      {
        role: 'assistant',
        content: '',
        tool_calls: [
          { type: 'function', id: 'call_1', function: { name: 'get_weather', arguments: { city: 'Paris' } } },
        ],
      },
      { role: 'tool', content: '{"temp": 21}', name: 'get_weather', tool_call_id: 'call_1' },
    ],
    tools: TOOLS,
  },
  thinking: { messages: thinkingChat, vars: { enable_thinking: true } },
  no_thinking: { messages: thinkingChat, vars: { enable_thinking: false } },
};

// The globals a template gets for case C: messages, add_generation_prompt, the vocabulary's
// BOS/EOS texts, `tools` only when the case has tools, and the case's switches.
// (transformers itself always passes tools=None and documents=None; we pass tools only
// when given, as Bellows does.)
export function contextFor(c, { bos_token, eos_token }) {
  const ctx = { messages: c.messages, add_generation_prompt: true, bos_token, eos_token };
  if (c.tools) ctx.tools = c.tools;
  return { ...ctx, ...(c.vars ?? {}) };
}

// ---- the context Bellows gives a template (docs/templates.md, "What a template is given") --

// A message as Bellows hands it to the template (chat_message_normalize in
// src/template/chat_template.c): role lower-cased; content always text (an OpenAI list of
// parts becomes its text parts joined, null or absent ""); images dropped; tool_calls as
// [{"type":"function","id"?,"function":{"name","arguments":{...},"index"?}}] with arguments
// an object (JSON text parsed), an empty list dropped; Ollama's tool_name also as name; an
// assistant's thinking and reasoning_content both set when either is. Keys keep the order
// the client sent them in; added ones come last.
export function normalizeMessage(m) {
  const o = structuredClone(m);
  o.role = String(o.role).toLowerCase();
  if (Array.isArray(o.content))
    o.content = o.content.map((p) => (typeof p === 'string' ? p : (p.type && p.type !== 'text' ? '' : p.text ?? ''))).join('');
  else if (o.content === undefined || o.content === null) o.content = '';
  delete o.images;
  if (Array.isArray(o.tool_calls) && o.tool_calls.length) {
    o.tool_calls = o.tool_calls.map((tc) => {
      let args = tc.function.arguments;
      if (typeof args === 'string') {
        try { args = JSON.parse(args); } catch { /* kept as the text it is */ }
      } else if (args === undefined || args === null) args = {};
      const out = { type: 'function' };
      if (typeof tc.id === 'string') out.id = tc.id;
      out.function = { name: tc.function.name, arguments: args };
      if (Number.isInteger(tc.function.index)) out.function.index = tc.function.index;
      return out;
    });
  } else delete o.tool_calls;
  if (typeof o.tool_name === 'string' && typeof o.name !== 'string') o.name = o.tool_name;
  if (typeof o.thinking === 'string' && typeof o.reasoning_content !== 'string') o.reasoning_content = o.thinking;
  else if (typeof o.reasoning_content === 'string' && typeof o.thinking !== 'string') o.thinking = o.reasoning_content;
  return o;
}

// The API tests' one vocabulary (bellows-mkmodel --vocab): llama.cpp's
// models/ggml-vocab-llama-spm.gguf, whose BOS and EOS tokens are <s> and </s>.
export const API_VOCAB = 'llama-spm';
export const API_TOKENS = { bos_token: '<s>', eos_token: '</s>' };

// The `think` the API test sends for case C to a model that can (THINKING) or cannot think:
// the case's enable_thinking, or nothing (a model that cannot think renders it without).
export function thinkFor(c, thinking) {
  return thinking && c.vars && typeof c.vars.enable_thinking === 'boolean' ? c.vars.enable_thinking : undefined;
}

// The globals Bellows gives a template for case C sent to /api/chat with `think` THINK
// (undefined: not sent): the normalized messages, `tools` only when given,
// add_generation_prompt, the vocabulary's BOS/EOS texts, and enable_thinking and thinking
// when think is a boolean. (strftime_now and raise_exception are the renderer's own.)
export function apiContextFor(c, { bos_token, eos_token }, think) {
  const ctx = { messages: c.messages.map(normalizeMessage) };
  if (c.tools && c.tools.length) ctx.tools = c.tools;
  Object.assign(ctx, { add_generation_prompt: true, bos_token, eos_token });
  if (typeof think === 'boolean') Object.assign(ctx, { enable_thinking: think, thinking: think });
  return ctx;
}

// CTX with every tool call's object arguments as compact JSON text (a copy), or null when
// there is none: what the server renders with once more when a template fails on the
// objects (chat_template_render; Functionary v3.2 adds them to a string).
export function argumentsAsText(ctx) {
  let changed = false;
  const messages = (ctx.messages ?? []).map((m) => {
    if (!Array.isArray(m.tool_calls) || !m.tool_calls.length) return m;
    return { ...m, tool_calls: m.tool_calls.map((tc) => {
      const args = tc.function?.arguments;
      if (args === null || typeof args !== 'object') return tc;
      changed = true;
      return { ...tc, function: { ...tc.function, arguments: JSON.stringify(args) } };
    }) };
  });
  return changed ? { ...ctx, messages } : null;
}
