// The server through OpenAI's official Node client (openai 6.x): plain and streamed completions
// and chat, n, logprobs, models, errors as the client's typed exceptions, and a stream the client
// aborts half way (the server frees the slot and goes on).
import test from 'ava';
import OpenAI from 'openai';

import { loadModel, startServer, type ApiServer, type Model } from '../../lib/index.js';
import { testModel } from '../support/models.js';
import { until } from '../support/until.js';

let model: Model;
let server: ApiServer;
let client: OpenAI;

test.before(async () => {
  model = await loadModel(await testModel('tiny', 'f32', { initScale: 4 }), { threads: 1, maxSequences: 4 });
  server = await startServer(model, { port: 0, apiKey: 'sk-test', modelId: 'gpt2-tiny' });
  client = new OpenAI({ apiKey: 'sk-test', baseURL: `${server.url}/v1`, maxRetries: 0 });
});

test.after.always(async () => {
  await server?.close();
  await model?.dispose();
});

const eos = () => model.info.eosTokenId;

test('completions.create', async (t) => {
  const r = await client.completions.create({ model: 'gpt2-tiny', prompt: 'The client says', max_tokens: 10, temperature: 0 });
  const api = await model.complete('The client says', { maxTokens: 10, temperature: 0 });
  t.is(r.object, 'text_completion');
  t.is(r.model, 'gpt2-tiny');
  t.is(r.choices[0]!.text, api.text);
  t.is(r.choices[0]!.finish_reason as string, api.finishReason);
  t.deepEqual(r.usage, { prompt_tokens: api.usage.promptTokens, completion_tokens: api.usage.completionTokens, total_tokens: api.usage.totalTokens });
});

test('completions.create with stream: true', async (t) => {
  const stream = await client.completions.create({ model: 'gpt2-tiny', prompt: 'Streams', max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let usage;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text += c.text;
      finish ??= c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  const api = await model.complete('Streams', { maxTokens: 12, temperature: 0 });
  t.is(text, api.text);
  t.is(finish, api.finishReason);
  t.is(usage?.completion_tokens, api.usage.completionTokens);
});

test('chat.completions.create, with n, seed and logprobs', async (t) => {
  const r = await client.chat.completions.create({
    model: 'gpt2-tiny', messages: [{ role: 'user', content: 'Hello, bot' }], max_tokens: 8, n: 2, seed: 11, temperature: 1, logprobs: true, top_logprobs: 2,
  });
  t.is(r.object, 'chat.completion');
  t.is(r.choices.length, 2);
  const prompt = [...model.tokenize('Hello, bot'), eos()];
  for (const [i, c] of r.choices.entries()) {
    const api = await model.complete(prompt, { maxTokens: 8, seed: 11 + i, temperature: 1 });
    t.is(c.index, i);
    t.is(c.message.role, 'assistant');
    t.is(c.message.content, api.text);
    t.is(c.logprobs!.content!.length, api.tokens.length);
    t.true(c.logprobs!.content!.every((x) => x.top_logprobs.length === 2 && typeof x.logprob === 'number'));
  }
  t.is(r.usage!.prompt_tokens, prompt.length);
});

test('chat.completions.create with stream: true', async (t) => {
  const stream = await client.chat.completions.create({
    model: 'gpt2-tiny', messages: [{ role: 'system', content: 'Short answers.' }, { role: 'user', content: 'Stream to me' }],
    max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role: string | undefined;
  let finish: string | null = null;
  let usage;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      role ??= c.delta.role;
      text += c.delta.content ?? '';
      finish ??= c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  const prompt = [...model.tokenize('Short answers.'), eos(), ...model.tokenize('Stream to me'), eos()];
  const api = await model.complete(prompt, { maxTokens: 10, temperature: 0 });
  t.is(role, 'assistant');
  t.is(text, api.text);
  t.is(finish, api.finishReason);
  t.deepEqual(usage, { prompt_tokens: prompt.length, completion_tokens: api.usage.completionTokens, total_tokens: prompt.length + api.usage.completionTokens });
});

test('models.list and models.retrieve', async (t) => {
  const list = await client.models.list();
  t.deepEqual(list.data.map((m) => m.id), ['gpt2-tiny']);
  const one = await client.models.retrieve('gpt2-tiny');
  t.is(one.owned_by, 'gpt2-node');
  const missing = await t.throwsAsync(client.models.retrieve('gpt-4'), { instanceOf: OpenAI.NotFoundError });
  t.is(missing.code, 'model_not_found');
});

test('errors arrive as the client\'s typed exceptions', async (t) => {
  const bad = await t.throwsAsync(client.chat.completions.create({ model: 'gpt2-tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 'x' as never }),
    { instanceOf: OpenAI.BadRequestError });
  t.is(bad.status, 400);
  t.is(bad.type, 'invalid_request_error');
  t.is(bad.code, 'invalid_type');
  t.is(bad.param, 'max_tokens');
  t.is(bad.message, '400 Expected integer between 1 and 1000000 for max_tokens but received "x" of type string');
  const long = await t.throwsAsync(client.completions.create({ model: 'gpt2-tiny', prompt: Array.from({ length: 600 }, () => 11) }), { instanceOf: OpenAI.BadRequestError });
  t.is(long.code, 'context_length_exceeded');
  const other = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const denied = await t.throwsAsync(other.models.list(), { instanceOf: OpenAI.AuthenticationError });
  t.is(denied.status, 401);
  t.is(denied.code, 'invalid_api_key');
  t.is(denied.message, '401 Incorrect API key provided');
});

test.serial('a stream the client aborts half way ends its generation; the server keeps serving', async (t) => {
  const metric = (name: string) => Number(new RegExp(`^gpt2_node_${name} (\\S+)$`, 'm').exec(server.metrics())?.[1]);
  const cancelled = metric('requests_cancelled_total');
  const before = model.stats().generatedTokens;
  const stream = await client.completions.create({ model: 'gpt2-tiny', prompt: 'Abort me', max_tokens: 400, temperature: 0, ignore_eos: true, stream: true } as never) as unknown as AsyncIterable<OpenAI.Completion> & { controller: AbortController };
  let chunks = 0;
  for await (const chunk of stream) {
    void chunk;
    if (++chunks === 3) break;   // the client closes the connection
  }
  t.true(await until(() => metric('requests_cancelled_total') === cancelled + 1));
  t.true(await until(() => model.stats().activeSequences === 0));
  t.true(await until(() => metric('sequences_in_flight') === 0), 'the server gave the slot back');
  t.log(`tokens generated before the abort took effect: ${model.stats().generatedTokens - before} of 400`);
  // llama.cpp's extensions (ignore_eos here) pass through the client as extra body fields
  const after = await client.completions.create({ model: 'gpt2-tiny', prompt: 'Next', max_tokens: 3, temperature: 0, ignore_eos: true } as never) as OpenAI.Completion;
  t.is(after.usage!.completion_tokens, 3);
  t.is(after.choices[0]!.text, (await model.complete('Next', { maxTokens: 3, temperature: 0, ignoreEos: true })).text);
});
