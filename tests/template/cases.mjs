// cases.mjs -- the message sets every chat template is rendered with (the corpus test here,
// tests/api/templates.test.mjs through the server). Conventions follow transformers: a tool
// call is {"type":"function","function":{"name","arguments":{...object...}}}, a tool result
// is {"role":"tool","content":...,"name":...}, `tools` is the OpenAI function list.

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
