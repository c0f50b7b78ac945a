// The OpenAI-compatible server over real HTTP: completions and chat (plain and streamed), n,
// seed, stop, logprobs, logit_bias, penalties, echo, tokenize/detokenize, models, health and
// metrics. Results are compared with the model's own API on the same model.
import test from 'ava';

import { loadModel, startServer, type ApiServer, type Model } from '../../lib/index.js';
import { get, parseSse, post, streamedTexts, type Target } from '../support/http.js';
import { testModel } from '../support/models.js';

let model: Model;
let server: ApiServer;
let target: Target;

test.before(async () => {
  model = await loadModel(await testModel('tiny', 'f32', { initScale: 4 }), { threads: 1, maxSequences: 4 });
  server = await startServer(model, { port: 0, modelId: 'tiny' });
  target = { url: server.url };
});

test.after.always(async () => {
  await server?.close();
  await model?.dispose();
});

const greedy = { temperature: 0, ignore_eos: true };

test('completions: the same text and usage as model.complete(), in OpenAI\'s shape', async (t) => {
  const r = await post(target, '/v1/completions', { model: 'tiny', prompt: 'The meaning of life is', max_tokens: 12, ...greedy });
  t.is(r.status, 200, r.text);
  t.regex(r.headers['content-type']!, /^application\/json/);
  const api = await model.complete('The meaning of life is', { maxTokens: 12, temperature: 0, ignoreEos: true });
  const b = r.json;
  t.regex(b.id, /^cmpl-[0-9a-f]{24}$/);
  t.is(b.object, 'text_completion');
  t.is(b.model, 'tiny');
  t.true(Number.isInteger(b.created) && Math.abs(b.created - Date.now() / 1000) < 600);
  t.deepEqual(b.choices, [{ text: api.text, index: 0, logprobs: null, finish_reason: 'length' }]);
  t.deepEqual(b.usage, { prompt_tokens: api.usage.promptTokens, completion_tokens: 12, total_tokens: api.usage.promptTokens + 12 });
  // OpenAI's default max_tokens for completions is 16
  const d = await post(target, '/v1/completions', { prompt: 'The meaning of life is', ...greedy });
  t.is(d.json.usage.completion_tokens, 16);
  t.true(d.json.choices[0].text.startsWith(api.text));
});

test('completions: token-id prompts, several prompts, and <|endoftext|> in a prompt', async (t) => {
  const ids = Array.from(model.tokenize('Once upon a time'));
  const one = await post(target, '/v1/completions', { prompt: ids, max_tokens: 6, ...greedy });
  const api = await model.complete(ids, { maxTokens: 6, temperature: 0, ignoreEos: true });
  t.is(one.json.choices[0].text, api.text);
  const many = await post(target, '/v1/completions', { prompt: ['Once upon a time', [464, 3290], 'Hello'], max_tokens: 6, n: 2, ...greedy });
  t.is(many.status, 200, many.text);
  t.deepEqual(many.json.choices.map((c: any) => c.index), [0, 1, 2, 3, 4, 5]);
  const texts = await Promise.all(['Once upon a time', [464, 3290], 'Hello'].map((p) => model.complete(p, { maxTokens: 6, temperature: 0, ignoreEos: true })));
  t.deepEqual(many.json.choices.map((c: any) => c.text), texts.flatMap((x) => [x.text, x.text]));
  const promptTokens = model.tokenize('Once upon a time').length + 2 + model.tokenize('Hello').length;
  t.deepEqual(many.json.usage, { prompt_tokens: promptTokens, completion_tokens: 36, total_tokens: promptTokens + 36 });
  // as OpenAI's and llama.cpp's servers, a completion prompt may contain the special token
  const eos = await post(target, '/v1/completions', { prompt: 'Hi<|endoftext|>', max_tokens: 4, ...greedy });
  t.is(eos.json.usage.prompt_tokens, model.tokenize('Hi').length + 1);
  const empty = await post(target, '/v1/completions', { prompt: '', max_tokens: 4, ...greedy });
  t.is(empty.json.usage.prompt_tokens, 1, 'an empty prompt starts from <|endoftext|>');
});

test('n choices use seed, seed + 1, ...: each equals a single request with that seed', async (t) => {
  const body = { prompt: 'Seeds', max_tokens: 10, temperature: 1, top_k: 40, ignore_eos: true };
  const r = await post(target, '/v1/completions', { ...body, n: 3, seed: 7 });
  t.is(r.status, 200, r.text);
  const singles = await Promise.all([7, 8, 9].map((seed) => post(target, '/v1/completions', { ...body, seed })));
  t.deepEqual(r.json.choices.map((c: any) => c.text), singles.map((s) => s.json.choices[0].text));
  t.true(new Set(r.json.choices.map((c: any) => c.text)).size > 1, 'different seeds, different texts');
  const api = await model.complete('Seeds', { maxTokens: 10, temperature: 1, topK: 40, ignoreEos: true, seed: 8 });
  t.is(r.json.choices[1].text, api.text);
  t.is(r.json.usage.completion_tokens, 30);
});

test('streamed completions: chunks, a finish chunk, the usage chunk, then [DONE]', async (t) => {
  const body = { prompt: 'Streaming is', max_tokens: 10, ...greedy };
  const plain = await post(target, '/v1/completions', body);
  const r = await post(target, '/v1/completions', { ...body, stream: true, stream_options: { include_usage: true } });
  t.is(r.status, 200);
  t.regex(r.headers['content-type']!, /^text\/event-stream/);
  const { events, done } = parseSse(r.text);
  t.true(done);
  const id = events[0].id;
  t.regex(id, /^cmpl-/);
  for (const e of events) {
    t.is(e.id, id);
    t.is(e.object, 'text_completion');
    t.is(e.model, 'tiny');
  }
  const usage = events.at(-1);
  t.deepEqual(usage.choices, []);
  t.deepEqual(usage.usage, plain.json.usage);
  const chunks = events.slice(0, -1);
  t.true(chunks.every((e) => e.usage === null && e.choices.length === 1));
  t.deepEqual(chunks.at(-1).choices[0], { text: '', index: 0, logprobs: null, finish_reason: 'length' });
  t.true(chunks.slice(0, -1).every((e) => e.choices[0].finish_reason === null));
  t.is(streamedTexts(events)[0], plain.json.choices[0].text);
  // without include_usage: no usage field and no usage chunk
  const bare = parseSse((await post(target, '/v1/completions', { ...body, stream: true })).text);
  t.true(bare.done);
  t.true(bare.events.every((e) => !('usage' in e) && e.choices.length === 1));
  t.is(streamedTexts(bare.events)[0], plain.json.choices[0].text);
});

test('stop strings end the text before them, streamed or not', async (t) => {
  const full = await model.complete('Stop here', { maxTokens: 20, temperature: 0, ignoreEos: true });
  const words = full.text.split(' ').filter((w) => w.length > 2);
  const stop = words[Math.min(3, words.length - 1)]!;
  const expected = full.text.slice(0, full.text.indexOf(stop));
  const body = { prompt: 'Stop here', max_tokens: 20, ...greedy, stop: [stop, 'never appears zzz'] };
  const r = await post(target, '/v1/completions', body);
  t.is(r.json.choices[0].text, expected);
  t.is(r.json.choices[0].finish_reason, 'stop');
  const s = parseSse((await post(target, '/v1/completions', { ...body, stop, stream: true })).text);
  t.is(streamedTexts(s.events)[0], expected);
  t.is(s.events.at(-1).choices[0].finish_reason, 'stop');
});

test('completions logprobs: tokens, token_logprobs, top_logprobs and text_offset', async (t) => {
  const r = await post(target, '/v1/completions', { prompt: 'Logprobs', max_tokens: 8, logprobs: 3, ...greedy });
  const api = await model.complete('Logprobs', { maxTokens: 8, temperature: 0, ignoreEos: true, logprobs: 3 });
  const lp = r.json.choices[0].logprobs;
  t.deepEqual(lp.token_logprobs, api.logprobs!.map((x) => x.logprob));
  t.deepEqual(lp.tokens, Array.from(api.tokens, (id) => model.detokenize([id])));
  t.is(lp.tokens.join(''), r.json.choices[0].text);
  let offset = 0;
  lp.tokens.forEach((tok: string, i: number) => {
    t.is(lp.text_offset[i], offset);
    offset += tok.length;
  });
  lp.top_logprobs.forEach((top: Record<string, number>, i: number) => {
    t.is(Object.keys(top).length, 3);
    // greedy: the chosen token is the most likely one
    t.is(Math.max(...Object.values(top)), lp.token_logprobs[i]);
    t.true(lp.tokens[i] in top);
  });
  const zero = await post(target, '/v1/completions', { prompt: 'Logprobs', max_tokens: 3, logprobs: 0, ...greedy });
  t.deepEqual(zero.json.choices[0].logprobs.top_logprobs, [{}, {}, {}]);
  const streamed = parseSse((await post(target, '/v1/completions', { prompt: 'Logprobs', max_tokens: 8, logprobs: 3, stream: true, ...greedy })).text);
  const tokens = streamed.events.flatMap((e) => e.choices[0].logprobs?.tokens ?? []);
  t.deepEqual(tokens, lp.tokens);
  t.deepEqual(streamed.events.flatMap((e) => e.choices[0].logprobs?.text_offset ?? []), lp.text_offset);
});

test('chat: the reply to DialoGPT-formatted turns, plain and streamed', async (t) => {
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hello there' },
    { role: 'assistant', content: [{ type: 'text', text: 'Hi' }] },
    { role: 'user', content: 'How are you?' },
  ];
  const eos = model.info.eosTokenId;
  const prompt = ['Be brief.', 'Hello there', 'Hi', 'How are you?'].flatMap((s) => [...model.tokenize(s), eos]);
  const api = await model.complete(prompt, { maxTokens: 10, temperature: 0, ignoreEos: true });
  const r = await post(target, '/v1/chat/completions', { model: 'tiny', messages, max_tokens: 10, ...greedy });
  t.is(r.status, 200, r.text);
  t.regex(r.json.id, /^chatcmpl-[0-9a-f]{24}$/);
  t.is(r.json.object, 'chat.completion');
  t.deepEqual(r.json.choices, [{ index: 0, message: { role: 'assistant', content: api.text, refusal: null }, logprobs: null, finish_reason: 'length' }]);
  t.deepEqual(r.json.usage, { prompt_tokens: prompt.length, completion_tokens: 10, total_tokens: prompt.length + 10 });

  const s = parseSse((await post(target, '/v1/chat/completions', { messages, max_tokens: 10, ...greedy, stream: true, stream_options: { include_usage: true } })).text);
  t.true(s.done);
  t.true(s.events.every((e) => e.object === 'chat.completion.chunk'));
  t.deepEqual(s.events[0].choices, [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
  t.deepEqual(s.events.at(-2).choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: 'length' }]);
  t.deepEqual(s.events.at(-1).usage, r.json.usage);
  t.is(streamedTexts(s.events)[0], api.text);
  // "<|endoftext|>" typed by a user is text, not a turn separator
  const typed = await post(target, '/v1/chat/completions', { messages: [{ role: 'user', content: 'a<|endoftext|>b' }], max_tokens: 1, ...greedy });
  t.is(typed.json.usage.prompt_tokens, model.tokenize('a<|endoftext|>b').length + 1);
  // without max_tokens a chat reply may fill the context
  const long = await post(target, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Go on' }], ...greedy });
  t.is(long.json.usage.total_tokens, model.info.contextSize);
  t.is(long.json.choices[0].finish_reason, 'length');
});

test('chat logprobs: content entries with token, logprob, bytes and top_logprobs', async (t) => {
  const messages = [{ role: 'user', content: 'Logprobs please' }];
  const r = await post(target, '/v1/chat/completions', { messages, max_tokens: 6, logprobs: true, top_logprobs: 2, ...greedy });
  const content = r.json.choices[0].logprobs.content;
  t.is(content.length, 6);
  t.is(r.json.choices[0].logprobs.refusal, null);
  t.is(content.map((c: any) => c.token).join(''), r.json.choices[0].message.content);
  for (const c of content) {
    t.is(Buffer.from(c.bytes).toString('utf8'), c.token);
    t.is(c.top_logprobs.length, 2);
    t.is(c.top_logprobs[0].token, c.token);
    t.is(c.top_logprobs[0].logprob, c.logprob);
    t.true(c.top_logprobs[1].logprob <= c.logprob);
  }
  const onlyChosen = await post(target, '/v1/chat/completions', { messages, max_tokens: 2, logprobs: true, ...greedy });
  t.deepEqual(onlyChosen.json.choices[0].logprobs.content.map((c: any) => c.top_logprobs), [[], []]);
  const s = parseSse((await post(target, '/v1/chat/completions', { messages, max_tokens: 6, logprobs: true, top_logprobs: 2, stream: true, ...greedy })).text);
  t.deepEqual(s.events.flatMap((e) => e.choices[0]?.logprobs?.content ?? []), content);
});

test('logit_bias, penalties and sampling options reach the sampler', async (t) => {
  const first = (await model.complete('Bias', { maxTokens: 1, temperature: 0 })).tokens[0]!;
  const biased = await post(target, '/v1/completions', { prompt: 'Bias', max_tokens: 5, ...greedy, logit_bias: { [first]: -100 } });
  const api = await model.complete('Bias', { maxTokens: 5, temperature: 0, ignoreEos: true, logitBias: { [first]: -100 } });
  t.is(biased.json.choices[0].text, api.text);
  t.not(model.tokenize(biased.json.choices[0].text)[0], first);
  const options = { prompt: 'Penalties', max_tokens: 12, temperature: 0.7, top_p: 0.9, top_k: 50, min_p: 0.01, seed: 3, presence_penalty: 1.5, frequency_penalty: 0.5, repeat_penalty: 1.2, repeat_last_n: 32, ignore_eos: true };
  const r = await post(target, '/v1/completions', options);
  const expected = await model.complete('Penalties', {
    maxTokens: 12, temperature: 0.7, topP: 0.9, topK: 50, minP: 0.01, seed: 3, presencePenalty: 1.5, frequencyPenalty: 0.5,
    repetitionPenalty: 1.2, penaltyWindow: 32, ignoreEos: true,
  });
  t.is(r.json.choices[0].text, expected.text);
});

test('echo puts the prompt before the completion', async (t) => {
  const r = await post(target, '/v1/completions', { prompt: 'Echo this', max_tokens: 4, echo: true, ...greedy });
  const api = await model.complete('Echo this', { maxTokens: 4, temperature: 0, ignoreEos: true });
  t.is(r.json.choices[0].text, 'Echo this' + api.text);
  const s = parseSse((await post(target, '/v1/completions', { prompt: 'Echo this', max_tokens: 4, echo: true, stream: true, ...greedy })).text);
  t.is(streamedTexts(s.events)[0], 'Echo this' + api.text);
});

test('tokenize and detokenize, as llama.cpp\'s server', async (t) => {
  const text = 'Hello world<|endoftext|> ünïcode';
  const r = await post(target, '/tokenize', { content: text });
  t.deepEqual(r.json, { tokens: Array.from(model.tokenize(text, { allowedSpecial: 'all' })) });
  const plain = await post(target, '/tokenize', { content: text, parse_special: false });
  t.deepEqual(plain.json.tokens, Array.from(model.tokenize(text)));
  const pieces = await post(target, '/tokenize', { content: 'Hi €', with_pieces: true });
  const ids = Array.from(model.tokenize('Hi €'));
  t.deepEqual(pieces.json.tokens.map((p: any) => p.id), ids);
  for (const p of pieces.json.tokens) {
    const bytes = Array.from(model.tokenizer.tokenBytes(p.id));
    if (typeof p.piece === 'string') t.deepEqual(Array.from(Buffer.from(p.piece, 'utf8')), bytes);
    else t.deepEqual(p.piece, bytes, 'a piece that is not UTF-8 alone comes as its bytes');
  }
  const back = await post(target, '/detokenize', { tokens: r.json.tokens });
  t.deepEqual(back.json, { content: text });
});

test.serial('models, health and metrics', async (t) => {
  const models = await get(target, '/v1/models');
  t.is(models.status, 200);
  t.is(models.json.object, 'list');
  t.is(models.json.data.length, 1);
  t.like(models.json.data[0], { id: 'tiny', object: 'model', owned_by: 'gpt2-node', meta: { vocab_size: 50257, context_size: 512, max_sequences: 4 } });
  const one = await get(target, '/v1/models/tiny');
  t.deepEqual(one.json, models.json.data[0]);
  t.deepEqual((await get(target, '/health')).json, { status: 'ok' });

  const before = server.metrics();
  const value = (text: string, name: string) => Number(new RegExp(`^gpt2_node_${name} (\\S+)$`, 'm').exec(text)?.[1]);
  const r = await post(target, '/v1/completions', { prompt: 'Count me', max_tokens: 5, ...greedy });
  const m = await get(target, '/metrics');
  t.is(m.status, 200);
  t.regex(m.headers['content-type']!, /^text\/plain; version=0\.0\.4/);
  t.true(value(m.text, 'prompt_tokens_total') - value(before, 'prompt_tokens_total') >= r.json.usage.prompt_tokens);
  t.true(value(m.text, 'completion_tokens_total') - value(before, 'completion_tokens_total') >= 5);
  t.regex(m.text, /^# TYPE gpt2_node_requests_total counter$/m);
  t.regex(m.text, /^gpt2_node_requests_total\{endpoint="\/v1\/completions",status="200"\} \d+$/m);
  t.regex(m.text, /^gpt2_node_engine_slots 4$/m);
  t.regex(m.text, /^gpt2_node_engine_generated_tokens_total \d+$/m);
  t.regex(m.text, /^gpt2_node_requests_active 0$/m);
  // every sample line belongs to a declared metric
  const declared = new Set([...m.text.matchAll(/^# TYPE (\S+) (counter|gauge)$/gm)].map((x) => x[1]));
  for (const line of m.text.split('\n').filter((l) => l && !l.startsWith('#'))) t.true(declared.has(line.split(/[{ ]/)[0]!), line);
});

test('a configured chat format: role prefixes and a newline separator, which also stops the reply', async (t) => {
  const custom = await startServer(model, { port: 0, chatFormat: { turnSeparator: '\n', rolePrefixes: { user: 'User: ', assistant: 'Bot:' } } });
  try {
    const r = await post({ url: custom.url }, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: ' Hello' }, { role: 'user', content: 'Bye' }], max_tokens: 30, temperature: 0 });
    t.is(r.status, 200, r.text);
    // each piece is tokenized on its own (a user's text never merges with the format's)
    const prompt = ['User: ', 'Hi', '\n', 'Bot:', ' Hello', '\n', 'User: ', 'Bye', '\n', 'Bot:'].flatMap((s) => Array.from(model.tokenize(s)));
    const api = await model.complete(prompt, { maxTokens: 30, temperature: 0, stop: ['\n'] });
    t.is(r.json.usage.prompt_tokens, prompt.length);
    t.is(r.json.choices[0].message.content, api.text);
    t.false(r.json.choices[0].message.content.includes('\n'));
    t.is(r.json.model, 'gpt2-tiny-f32-s1-x4-v1', 'the model id defaults to the file name');
  } finally {
    await custom.close();
  }
});

test('a server with speculation gives the same responses, with the prediction counts in usage', async (t) => {
  const draft = await loadModel(model.info.path, { threads: 1 });
  const spec = await startServer(model, { port: 0, modelId: 'tiny', speculation: { predictor: 'draft', draft, minConfidence: 0 } });
  try {
    const body = { prompt: 'one two three one two three', max_tokens: 20, ...greedy };
    const plain = await post(target, '/v1/completions', body);
    const r = await post({ url: spec.url }, '/v1/completions', body);
    t.is(r.status, 200, r.text);
    t.deepEqual(r.json.choices, plain.json.choices);
    const details = r.json.usage.completion_tokens_details;
    t.true(details.accepted_prediction_tokens > 0, 'the model drafting for itself is always right');
    t.is(details.rejected_prediction_tokens, 0);
    t.is(plain.json.usage.completion_tokens_details, undefined);
    const chat = await post({ url: spec.url }, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi there' }], max_tokens: 8, ...greedy });
    t.is(chat.status, 200, chat.text);
    t.is(typeof chat.json.usage.completion_tokens_details.accepted_prediction_tokens, 'number');
  } finally {
    await spec.close();
    await draft.dispose();
  }
  await t.throwsAsync(startServer(model, { speculation: { predictor: 'draft' } } as never), { instanceOf: TypeError, message: /speculation\.draft/ });
});
