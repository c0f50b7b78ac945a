// Seeds and a dictionary for the server-params fuzz target: request bodies of both endpoints
// that exercise every field the server reads (test/fuzz/seeds.ts writes them out).

/** Each seed: a marker byte for the endpoint (even: /v1/chat/completions, odd: /v1/completions), then the body. */
export function serverParamSeeds(): Buffer[] {
  const sampling = {
    temperature: 0.7, top_p: 0.9, top_k: 40, min_p: 0.05, presence_penalty: 0.5, frequency_penalty: -0.5, repeat_penalty: 1.1,
    repeat_last_n: 64, ignore_eos: false, logit_bias: { 50256: -100, 11: 5 }, stop: ['\n\n', 'User:'], n: 2, seed: 42,
    stream: true, stream_options: { include_usage: true },
  };
  const chats: unknown[] = [
    { model: 'gpt2', messages: [{ role: 'user', content: 'Hello' }] },
    { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi' }] }, { role: 'assistant', content: null }], ...sampling, max_tokens: 16 },
    { messages: [{ role: 'developer', content: 'x', name: 'n' }], logprobs: true, top_logprobs: 3, max_completion_tokens: 5, response_format: { type: 'text' }, tool_choice: 'none', user: 'u', metadata: {}, store: false },
    { messages: [{ role: 'user', content: 'a' }], tools: [], functions: null, stop: 'x', top_p: 0 },
  ];
  const completions: unknown[] = [
    { model: 'gpt2', prompt: 'Once upon a time', max_tokens: 8 },
    { prompt: ['a', 'b'], echo: true, best_of: 2, ...sampling },
    { prompt: [464, 2068, 7586], logprobs: 2, suffix: null },
    { prompt: [[464, 2068], [50256]], max_tokens: 1, stream: false },
  ];
  return [
    ...chats.map((b) => Buffer.concat([Buffer.from([0]), Buffer.from(JSON.stringify(b))])),
    ...completions.map((b) => Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(b))])),
  ];
}

export function serverParamWords(): string[] {
  const fields = ['model', 'messages', 'role', 'content', 'name', 'type', 'text', 'system', 'developer', 'user', 'assistant', 'prompt', 'suffix',
    'echo', 'logprobs', 'top_logprobs', 'best_of', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p',
    'presence_penalty', 'frequency_penalty', 'repeat_penalty', 'repeat_last_n', 'ignore_eos', 'logit_bias', 'stop', 'n', 'seed',
    'stream', 'stream_options', 'include_usage', 'response_format', 'tools', 'functions', 'tool_choice', 'function_call', 'metadata',
    'store', 'service_tier', 'parallel_tool_calls', 'modalities', 'audio', 'prediction', 'web_search_options'];
  return [...fields.map((f) => `"${f}":`), '{', '}', '[', ']', 'null', 'true', 'false', '-1', '1e308', '9007199254740993', '"\\ud800"', '0.5', ','];
}
