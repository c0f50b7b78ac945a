// Every error of the server over real HTTP: OpenAI's {"error": {message, type, param, code}}
// with the right status for malformed JSON, wrong field types and values, missing fields,
// unsupported features, prompts longer than the context, unknown routes and methods, the body
// size limit and the API key; and the server's own option validation.
import test, { type ExecutionContext } from 'ava';

import { Gpt2Error, createServer, loadModel, startServer, type ApiServer, type Model } from '../../lib/index.js';
import { get, post, send, type Response, type Target } from '../support/http.js';
import { testModel } from '../support/models.js';

let model: Model;
let server: ApiServer;
let target: Target;

test.before(async () => {
  model = await loadModel(await testModel('tiny', 'f32'), { threads: 1, maxSequences: 4 });
  server = await startServer(model, { port: 0, maxQueue: 2 });
  target = { url: server.url };
});

test.after.always(async () => {
  await server?.close();
  await model?.dispose();
});

function isError(t: ExecutionContext, r: Response, status: number, type: string, code: string | null, message: string | RegExp, param: string | null = null): void {
  t.is(r.status, status, r.text);
  t.regex(r.headers['content-type'] ?? '', /^application\/json/);
  t.deepEqual(Object.keys(r.json ?? {}), ['error']);
  const e = r.json.error;
  t.is(e.type, type);
  t.is(e.code, code);
  t.is(e.param, param);
  if (typeof message === 'string') t.is(e.message, message);
  else t.regex(e.message, message);
}

const completion = (body: unknown) => post(target, '/v1/completions', body);
const chat = (body: unknown) => post(target, '/v1/chat/completions', body);
const user = [{ role: 'user', content: 'Hi' }];

test('a body that is not a JSON object is a 400 invalid_json / invalid_type', async (t) => {
  isError(t, await completion('{"prompt": "Hi",'), 400, 'invalid_request_error', 'invalid_json',
    /^We could not parse the JSON body of your request: .+/);
  isError(t, await completion(''), 400, 'invalid_request_error', 'invalid_json', 'The request body is empty; expected a JSON object');
  isError(t, await completion('[1, 2]'), 400, 'invalid_request_error', 'invalid_type', 'Expected a JSON object as the request body but received an array');
  isError(t, await chat('"text"'), 400, 'invalid_request_error', 'invalid_type', 'Expected a JSON object as the request body but received "text"');
});

test('a field of the wrong type is a 400 invalid_type naming the field', async (t) => {
  const cases: [unknown, string, string][] = [
    [{ prompt: 'Hi', max_tokens: 'many' }, 'max_tokens', 'Expected integer between 1 and 1000000 for max_tokens but received "many" of type string'],
    [{ prompt: 'Hi', temperature: 'hot' }, 'temperature', 'Expected number between 0 and 2 for temperature but received "hot" of type string'],
    [{ prompt: 'Hi', stream: 'yes' }, 'stream', 'Expected boolean for stream but received "yes" of type string'],
    [{ prompt: 'Hi', stop: 5 }, 'stop', 'Expected string or array of strings for stop but received 5 of type number'],
    [{ prompt: 'Hi', stop: ['a', 1] }, 'stop', 'Expected string or array of strings for stop but received an array'],
    [{ prompt: 'Hi', logit_bias: [1] }, 'logit_bias', 'Expected object for logit_bias but received an array'],
    [{ prompt: 'Hi', logit_bias: { 5: 'up' } }, 'logit_bias.5', 'Expected number for logit_bias.5 but received "up" of type string'],
    [{ prompt: 'Hi', logprobs: true }, 'logprobs', 'Expected integer between 0 and 20 for logprobs but received true of type boolean'],
    [{ prompt: 'Hi', seed: '1' }, 'seed', `Expected integer between 0 and ${Number.MAX_SAFE_INTEGER} for seed but received "1" of type string`],
    [{ prompt: 'Hi', stream: true, stream_options: 'usage' }, 'stream_options', 'Expected object for stream_options but received "usage" of type string'],
    [{ prompt: 'Hi', stream: true, stream_options: { include_usage: 1 } }, 'stream_options.include_usage', 'Expected boolean for stream_options.include_usage but received 1 of type number'],
    [{ prompt: 5 }, 'prompt', 'Expected string, array of strings, array of token ids, or array of arrays of token ids for prompt but received 5 of type number'],
    [{ prompt: ['a', 5] }, 'prompt', 'Expected string, array of strings, array of token ids, or array of arrays of token ids for prompt but received an array'],
    [{ prompt: [[1, 'x']] }, 'prompt[0]', 'Expected integer between 0 and 50256 for prompt[0][1] but received "x" of type string'],
    [{ prompt: 'Hi', model: 5 }, 'model', 'Expected string for model but received 5 of type number'],
    // known OpenAI fields this server ignores are still type-checked
    [{ prompt: 'Hi', user: 5 }, 'user', 'Expected string for user but received 5 of type number'],
  ];
  for (const [body, param, message] of cases) isError(t, await completion(body), 400, 'invalid_request_error', 'invalid_type', message, param);
  const chatCases: [unknown, string, string][] = [
    [{ messages: 'Hi' }, 'messages', 'Expected array of messages for messages but received "Hi" of type string'],
    [{ messages: ['Hi'] }, 'messages[0]', 'Expected object for messages[0] but received "Hi" of type string'],
    [{ messages: [{ role: 5, content: 'Hi' }] }, 'messages[0].role', 'Expected string for messages[0].role but received 5 of type number'],
    [{ messages: [{ role: 'user', content: 5 }] }, 'messages[0].content', 'Expected string or array of content parts for messages[0].content but received 5 of type number'],
    [{ messages: [{ role: 'user', content: null }] }, 'messages[0].content', 'Expected string or array of content parts for messages[0].content but received null'],
    [{ messages: [{ role: 'user', content: [{ type: 'text', text: 7 }] }] }, 'messages[0].content[0].text', 'Expected string for messages[0].content[0].text but received 7 of type number'],
    [{ messages: [{ role: 'user', content: 'Hi', name: 3 }] }, 'messages[0].name', 'Expected string for messages[0].name but received 3 of type number'],
    [{ messages: user, logprobs: 1 }, 'logprobs', 'Expected boolean for logprobs but received 1 of type number'],
    [{ messages: user, max_completion_tokens: 1.5 }, 'max_completion_tokens', 'Expected integer between 1 and 1000000 for max_completion_tokens but received 1.5'],
    [{ messages: user, parallel_tool_calls: 'no' }, 'parallel_tool_calls', 'Expected boolean for parallel_tool_calls but received "no" of type string'],
  ];
  for (const [body, param, message] of chatCases) {
    const code = message.endsWith('received 1.5') ? 'invalid_value' : 'invalid_type';
    isError(t, await chat(body), 400, 'invalid_request_error', code, message, param);
  }
  // a field nobody knows is ignored, whatever it holds
  t.is((await completion({ prompt: 'Hi', max_tokens: 1, some_extension: { x: [1] } })).status, 200);
  // null is "not given"
  t.is((await completion({ prompt: 'Hi', max_tokens: 1, stop: null, seed: null, logprobs: null, user: null })).status, 200);
});

test('a value out of range is a 400 invalid_value naming the field', async (t) => {
  const cases: [unknown, string, string][] = [
    [{ prompt: 'Hi', max_tokens: 0 }, 'max_tokens', 'Expected integer between 1 and 1000000 for max_tokens but received 0'],
    [{ prompt: 'Hi', temperature: 2.5 }, 'temperature', 'Expected number between 0 and 2 for temperature but received 2.5'],
    [{ prompt: 'Hi', top_p: 1.1 }, 'top_p', 'Expected number between 0 and 1 for top_p but received 1.1'],
    [{ prompt: 'Hi', presence_penalty: -3 }, 'presence_penalty', 'Expected number between -2 and 2 for presence_penalty but received -3'],
    [{ prompt: 'Hi', frequency_penalty: 2.1 }, 'frequency_penalty', 'Expected number between -2 and 2 for frequency_penalty but received 2.1'],
    [{ prompt: 'Hi', n: 0 }, 'n', 'Expected integer between 1 and 128 for n but received 0'],
    [{ prompt: 'Hi', seed: -1 }, 'seed', `Expected integer between 0 and ${Number.MAX_SAFE_INTEGER} for seed but received -1`],
    [{ prompt: 'Hi', logprobs: 21 }, 'logprobs', 'Expected integer between 0 and 20 for logprobs but received 21'],
    [{ prompt: 'Hi', top_k: -1 }, 'top_k', 'Expected integer between 0 and 50257 for top_k but received -1'],
    [{ prompt: 'Hi', logit_bias: { x: 1 } }, 'logit_bias', 'Expected token ids between 0 and 50256 as keys of logit_bias but received "x"'],
    [{ prompt: 'Hi', logit_bias: { 50257: 1 } }, 'logit_bias', 'Expected token ids between 0 and 50256 as keys of logit_bias but received "50257"'],
    [{ prompt: 'Hi', logit_bias: { 5: 101 } }, 'logit_bias.5', 'Expected number between -100 and 100 for logit_bias.5 but received 101'],
    [{ prompt: 'Hi', stop: [''] }, 'stop', 'Expected non-empty strings for stop but received ""'],
    [{ prompt: 'Hi', stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }, 'stop', 'Expected at most 16 stop strings but received 17'],
    [{ prompt: 'Hi', stop: 'x'.repeat(257) }, 'stop', 'Expected stop strings of at most 256 characters but received one of 257'],
    [{ prompt: 'Hi', stop: ['a', '🙂'.repeat(129)] }, 'stop', 'Expected stop strings of at most 256 characters but received one of 258'],
    [{ prompt: [] }, 'prompt', 'Expected at least 1 prompt for prompt but received an empty array'],
    [{ prompt: [70000] }, 'prompt', 'Expected integer between 0 and 50256 for prompt[0] but received 70000'],
    [{ prompt: 'Hi', stream_options: { include_usage: true } }, 'stream_options', 'stream_options is only allowed when stream is true'],
  ];
  for (const [body, param, message] of cases) isError(t, await completion(body), 400, 'invalid_request_error', 'invalid_value', message, param);
  isError(t, await chat({ messages: [] }), 400, 'invalid_request_error', 'invalid_value', 'Expected at least 1 message for messages but received an empty array', 'messages');
  isError(t, await chat({ messages: [{ role: 'robot', content: 'Hi' }] }), 400, 'invalid_request_error', 'invalid_value',
    'Expected one of system, developer, user, assistant for messages[0].role but received "robot"', 'messages[0].role');
  isError(t, await chat({ messages: user, top_logprobs: 2 }), 400, 'invalid_request_error', 'invalid_value', 'top_logprobs requires logprobs to be true', 'top_logprobs');
  isError(t, await chat({ messages: user, logprobs: true, top_logprobs: 21 }), 400, 'invalid_request_error', 'invalid_value',
    'Expected integer between 0 and 20 for top_logprobs but received 21', 'top_logprobs');
  isError(t, await completion({ prompt: 'Hi', n: 7 }), 400, 'invalid_request_error', 'invalid_value',
    'This request needs 7 generations (prompts × n) but the server runs 4 at once and queues at most 2', 'n');
  isError(t, await completion({ prompt: ['a', 'b', 'c', 'd'], n: 2 }), 400, 'invalid_request_error', 'invalid_value',
    'This request needs 8 generations (prompts × n) but the server runs 4 at once and queues at most 2', 'n');
  isError(t, await chat({ messages: user, n: 7 }), 400, 'invalid_request_error', 'invalid_value',
    'This request needs 7 generations (prompts × n) but the server runs 4 at once and queues at most 2', 'n');
  t.is((await completion({ prompt: 'Hi', max_tokens: 1, stop: ['x'.repeat(256), '🙂'.repeat(128)] })).status, 200, 'the longest stop strings are taken');
});

test('prompts are counted before any is tokenized: too many for the queue, or over the limit, is a 400 at once', async (t) => {
  // the last prompt is bad: tokenizing first would report it; counting first reports the count
  isError(t, await completion({ prompt: ['a', 'b', 'c', 'd', 'e', 'f', [70000]] }), 400, 'invalid_request_error', 'invalid_value',
    'This request needs 7 generations (prompts × n) but the server runs 4 at once and queues at most 2', 'n');
  // ~250k one-letter prompts in 1 MiB: refused before any tokenization, whatever the queue
  const roomy = await startServer(model, { port: 0, maxQueue: 1_000_000 });
  try {
    const many = Array.from({ length: 250_000 }, () => 'a');
    isError(t, await post({ url: roomy.url }, '/v1/completions', { prompt: many }), 400, 'invalid_request_error', 'invalid_value',
      'Expected at most 1024 prompts for prompt but received 250000', 'prompt');
    isError(t, await post({ url: roomy.url }, '/v1/completions', { prompt: many.slice(0, 1025), max_tokens: 1 }), 400, 'invalid_request_error', 'invalid_value',
      'Expected at most 1024 prompts for prompt but received 1025', 'prompt');
    const r = await post({ url: roomy.url }, '/v1/completions', { prompt: many.slice(0, 8), max_tokens: 1 });
    t.is(r.status, 200, r.text);
    t.is(r.json.choices.length, 8);
  } finally {
    await roomy.close();
  }
});

test('a POST body must be JSON: another Content-Type is a 415, no Content-Type is read as JSON', async (t) => {
  const body = JSON.stringify({ prompt: 'Hi', max_tokens: 1 });
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp', '']) {
    const r = await post(target, '/v1/completions', body, { 'content-type': type });
    isError(t, r, 415, 'invalid_request_error', 'unsupported_media_type',
      `Expected a JSON request body (Content-Type: application/json) but received Content-Type ${JSON.stringify(type)}`);
    t.is(r.headers.connection, 'close', type);
  }
  isError(t, await post(target, '/tokenize', JSON.stringify({ content: 'Hi' }), { 'content-type': 'text/plain' }), 415, 'invalid_request_error', 'unsupported_media_type',
    'Expected a JSON request body (Content-Type: application/json) but received Content-Type "text/plain"');
  for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset=UTF-8', ' application/json ']) {
    t.is((await post(target, '/v1/completions', body, { 'content-type': type })).status, 200, type);
  }
  // no Content-Type at all (curl --data-binary without -H, some clients): accepted
  const { request } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const u = new URL('/v1/completions', server.url);
    const req = request({ hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end(body);
  });
  t.is(status, 200);
});

test('on a loopback address, a Host other than localhost, 127.0.0.1 or [::1] is a 403 (DNS rebinding)', async (t) => {
  const port = new URL(server.url).port;
  for (const host of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', '127.0.0.1.nip.io', '10.0.0.1']) {
    isError(t, await get(target, '/v1/models', { host }), 403, 'invalid_request_error', 'host_not_allowed',
      `The Host header ${JSON.stringify(host)} does not name this server: it listens on a loopback address and answers requests for localhost, 127.0.0.1, [::1] only (the allowedHosts option adds names)`);
  }
  isError(t, await post(target, '/v1/completions', { prompt: 'Hi', max_tokens: 1 }, { host: 'rebind.example' }), 403,
    'invalid_request_error', 'host_not_allowed', /^The Host header "rebind\.example" does not name this server/);
  isError(t, await get(target, '/health', { host: 'evil.example' }), 403, 'invalid_request_error', 'host_not_allowed', /does not name this server/);
  for (const host of ['localhost', `localhost:${port}`, 'LOCALHOST:1', '127.0.0.1', `127.0.0.1:${port}`, '[::1]', `[::1]:${port}`]) {
    t.is((await get(target, '/v1/models', { host })).status, 200, host);
  }

  const proxied = await startServer(model, { port: 0, allowedHosts: ['api.example.com', '::2'] });
  const open = await startServer(model, { port: 0, allowedHosts: ['*'] });
  try {
    const p = { url: proxied.url };
    t.is((await get(p, '/v1/models', { host: 'API.example.com:443' })).status, 200);
    t.is((await get(p, '/v1/models', { host: '[::2]' })).status, 200);
    t.is((await get(p, '/v1/models', { host: 'localhost' })).status, 200);
    isError(t, await get(p, '/v1/models', { host: 'other.example.com' }), 403, 'invalid_request_error', 'host_not_allowed',
      'The Host header "other.example.com" does not name this server: it listens on a loopback address and answers requests for localhost, 127.0.0.1, [::1], api.example.com, [::2] only (the allowedHosts option adds names)');
    t.is((await get({ url: open.url }, '/v1/models', { host: 'anything.example' })).status, 200);
  } finally {
    await proxied.close();
    await open.close();
  }
  t.throws(() => createServer(model, { allowedHosts: 'example.com' as never }), { instanceOf: TypeError, message: 'Expected array of strings for allowedHosts but received "example.com" of type string' });
  t.throws(() => createServer(model, { allowedHosts: ['example.com:8080'] }), { instanceOf: RangeError, message: `Expected host names without port (or '*') for allowedHosts but received "example.com:8080" of type string` });
  t.throws(() => createServer(model, { allowedHosts: [''] }), { instanceOf: RangeError, message: `Expected host names without port (or '*') for allowedHosts but received "" of type string` });
});

test('missing required fields', async (t) => {
  isError(t, await completion({ max_tokens: 3 }), 400, 'invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'prompt'", 'prompt');
  isError(t, await chat({ model: 'x' }), 400, 'invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'messages'", 'messages');
  isError(t, await chat({ messages: [{ content: 'Hi' }] }), 400, 'invalid_request_error', 'missing_required_parameter',
    "Missing required parameter: 'messages[0].role'", 'messages[0].role');
  isError(t, await chat({ messages: [{ role: 'user' }] }), 400, 'invalid_request_error', 'missing_required_parameter',
    "Missing required parameter: 'messages[0].content'", 'messages[0].content');
  t.is((await chat({ messages: [{ role: 'assistant', content: null }, ...user], max_tokens: 1 })).status, 200, 'an assistant turn may have no content');
  isError(t, await post(target, '/tokenize', {}), 400, 'invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'content'", 'content');
  isError(t, await post(target, '/detokenize', {}), 400, 'invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'tokens'", 'tokens');
  isError(t, await post(target, '/tokenize', { content: 5 }), 400, 'invalid_request_error', 'invalid_type', 'Expected string for content but received 5 of type number', 'content');
  isError(t, await post(target, '/detokenize', { tokens: [1, 99999] }), 400, 'invalid_request_error', 'invalid_value',
    'Expected integer between 0 and 50256 for tokens[1] but received 99999', 'tokens');
});

test('features this server does not have are a 400 unsupported_parameter', async (t) => {
  const unsupported = (r: Response, param: string, message: string) => isError(t, r, 400, 'invalid_request_error', 'unsupported_parameter', message, param);
  unsupported(await chat({ messages: user, tools: [{ type: 'function', function: { name: 'f' } }] }), 'tools', "Unsupported parameter: 'tools' is not supported by this server");
  unsupported(await chat({ messages: user, tool_choice: { type: 'function' } }), 'tool_choice', "Unsupported parameter: 'tool_choice' is not supported by this server");
  unsupported(await chat({ messages: user, response_format: { type: 'json_object' } }), 'response_format',
    'Unsupported value: response_format of type "json_object" is not supported by this server; only "text" is');
  unsupported(await chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }), 'messages[0].content[0].type',
    'Unsupported value: content parts of type "image_url" are not supported by this server; only "text" is');
  unsupported(await completion({ prompt: 'Hi', suffix: 'end' }), 'suffix', "Unsupported parameter: 'suffix' is not supported by this server");
  unsupported(await completion({ prompt: 'Hi', best_of: 3 }), 'best_of', "Unsupported parameter: 'best_of' other than n is not supported by this server");
  unsupported(await completion({ prompt: 'Hi', echo: true, logprobs: 1 }), 'echo', "Unsupported parameter: 'echo' together with 'logprobs' is not supported by this server");
  // asking for nothing is fine
  t.is((await chat({ messages: user, max_tokens: 1, tools: [], tool_choice: 'none', response_format: { type: 'text' } })).status, 200);
});

test('a prompt that does not fit the context is a 400 context_length_exceeded', async (t) => {
  const long = Array.from({ length: 600 }, (_, i) => i + 100);
  isError(t, await completion({ prompt: long }), 400, 'invalid_request_error', 'context_length_exceeded',
    "This model's maximum context length is 512 tokens, however your prompt has 600 tokens (at least 1 must remain for the completion). Please reduce the length of the prompt.", 'prompt');
  isError(t, await completion({ prompt: long.slice(0, 512) }), 400, 'invalid_request_error', 'context_length_exceeded',
    "This model's maximum context length is 512 tokens, however your prompt has 512 tokens (at least 1 must remain for the completion). Please reduce the length of the prompt.", 'prompt');
  isError(t, await completion({ prompt: long.slice(0, 100), max_tokens: 500 }), 400, 'invalid_request_error', 'context_length_exceeded',
    "This model's maximum context length is 512 tokens, however you requested 600 tokens (100 in your prompt; 500 for the completion). Please reduce the length of the prompt or of the completion.", 'max_tokens');
  const words = 'word '.repeat(600);
  isError(t, await chat({ messages: [{ role: 'user', content: words }] }), 400, 'invalid_request_error', 'context_length_exceeded',
    `This model's maximum context length is 512 tokens, however your messages resulted in ${model.tokenize(words).length + 1} tokens (at least 1 must remain for the completion). Please reduce the length of the messages.`, 'messages');
  // exactly full is fine
  const fits = await completion({ prompt: long.slice(0, 100), max_tokens: 412, temperature: 0 });
  t.is(fits.status, 200);
});

test('unknown routes are 404, wrong methods 405', async (t) => {
  isError(t, await get(target, '/v1/nothing'), 404, 'invalid_request_error', 'not_found', 'Invalid URL (GET /v1/nothing)');
  isError(t, await post(target, '/v1/engines/x/completions', {}), 404, 'invalid_request_error', 'not_found', 'Invalid URL (POST /v1/engines/x/completions)');
  isError(t, await get(target, '/v1/models/gpt-4'), 404, 'invalid_request_error', 'model_not_found', "The model 'gpt-4' does not exist", 'model');
  const wrong = await get(target, '/v1/completions');
  isError(t, wrong, 405, 'invalid_request_error', 'method_not_allowed', 'Method GET is not allowed for /v1/completions; use POST');
  t.is(wrong.headers.allow, 'POST');
  isError(t, await send(target, 'DELETE', '/health'), 405, 'invalid_request_error', 'method_not_allowed', 'Method DELETE is not allowed for /health; use GET');
  // a trailing slash and a query string do not matter
  t.is((await get(target, '/health/?x=1')).status, 200);
});

test('a body over the limit is a 413, with or without Content-Length, and the server keeps serving', async (t) => {
  const small = await startServer(model, { port: 0, maxBodyBytes: 1024 });
  try {
    const s = { url: small.url };
    const big = JSON.stringify({ prompt: 'x'.repeat(2000) });
    const message = "The request body is larger than the server's limit of 1024 bytes";
    const declared = await post(s, '/v1/completions', big);
    isError(t, declared, 413, 'invalid_request_error', 'request_too_large', message);
    t.is(declared.headers.connection, 'close');
    const chunked = await post(s, '/v1/completions', big, { 'transfer-encoding': 'chunked' });
    isError(t, chunked, 413, 'invalid_request_error', 'request_too_large', message);
    const ok = await post(s, '/v1/completions', { prompt: 'x'.repeat(900), max_tokens: 1 });
    t.is(ok.status, 200, ok.text);
  } finally {
    await small.close();
  }
});

test('with an API key every endpoint but /health wants "Authorization: Bearer <key>"', async (t) => {
  const locked = await startServer(model, { port: 0, apiKey: 'sk-secret' });
  try {
    const s = { url: locked.url };
    const body = { prompt: 'Hi', max_tokens: 1 };
    const missing = await post(s, '/v1/completions', body);
    isError(t, missing, 401, 'invalid_request_error', 'invalid_api_key', 'Missing API key: send it as "Authorization: Bearer <key>"');
    t.is(missing.headers['www-authenticate'], 'Bearer');
    isError(t, await post(s, '/v1/completions', body, { authorization: 'Bearer sk-wrong' }), 401, 'invalid_request_error', 'invalid_api_key', 'Incorrect API key provided');
    isError(t, await post(s, '/v1/completions', body, { authorization: 'Basic c2stc2VjcmV0' }), 401, 'invalid_request_error', 'invalid_api_key',
      'Missing API key: send it as "Authorization: Bearer <key>"');
    isError(t, await get(s, '/metrics'), 401, 'invalid_request_error', 'invalid_api_key', 'Missing API key: send it as "Authorization: Bearer <key>"');
    isError(t, await get(s, '/v1/models'), 401, 'invalid_request_error', 'invalid_api_key', 'Missing API key: send it as "Authorization: Bearer <key>"');
    t.is((await post(s, '/v1/completions', body, { authorization: 'Bearer sk-secret' })).status, 200);
    t.is((await get(s, '/v1/models', { authorization: 'bearer sk-secret' })).status, 200);
    t.deepEqual((await get(s, '/health')).json, { status: 'ok' });
  } finally {
    await locked.close();
  }
});

test('server options are validated', (t) => {
  t.throws(() => createServer(model, { port: -1 }), { instanceOf: RangeError, message: 'Expected integer between 0 and 65535 for port but received -1' });
  t.throws(() => createServer(model, { port: '80' as never }), { instanceOf: TypeError, message: 'Expected integer between 0 and 65535 for port but received "80" of type string' });
  t.throws(() => createServer(model, { apiKey: '' }), { instanceOf: RangeError, message: 'Expected non-empty string for apiKey but received ""' });
  t.throws(() => createServer(model, { maxQueue: -1 }), { instanceOf: RangeError, message: 'Expected integer between 0 and 1000000 for maxQueue but received -1' });
  t.throws(() => createServer(model, { maxBodyBytes: 0 }), { instanceOf: RangeError, message: 'Expected integer between 1 and 2147483647 for maxBodyBytes but received 0' });
  t.throws(() => createServer(model, { chatFormat: { turnSeparator: 5 as never } }), { instanceOf: TypeError, message: 'Expected string for chatFormat.turnSeparator but received 5 of type number' });
  t.throws(() => createServer(model, { chatFormat: { rolePrefixes: { user: [] as never } } }), { instanceOf: TypeError, message: 'Expected string for chatFormat.rolePrefixes.user but received an array' });
  t.throws(() => createServer(model, { chatFormat: { turnSeparator: `\n${'='.repeat(256)}<|endoftext|>` } }), { instanceOf: RangeError,
    message: 'Expected at most 256 characters for chatFormat.turnSeparator (it also stops the reply) but received 257' });
  t.throws(() => createServer({} as never), { instanceOf: TypeError, message: 'Expected Model for model but received an object of type Object' });
  t.throws(() => createServer(model, 'x' as never), { instanceOf: TypeError, message: 'Expected object for options but received "x" of type string' });
  t.throws(() => createServer(model).url, { instanceOf: Gpt2Error, code: 'ERR_NOT_LISTENING', message: 'the server is not listening' });
});

test('a model disposed under the server: 503 model_unavailable, /health included', async (t) => {
  const m = await loadModel(await testModel('tiny', 'f32'), { threads: 1 });
  const s = await startServer(m, { port: 0 });
  try {
    const u = { url: s.url };
    t.is((await get(u, '/health')).status, 200);
    await m.dispose();
    const unavailable = 'The model has been unloaded';
    isError(t, await get(u, '/health'), 503, 'server_error', 'model_unavailable', unavailable);
    isError(t, await post(u, '/v1/completions', { prompt: 'Hi' }), 503, 'server_error', 'model_unavailable', unavailable);
    isError(t, await post(u, '/v1/chat/completions', { messages: user, stream: true }), 503, 'server_error', 'model_unavailable', unavailable);
    const metrics = await get(u, '/metrics');
    t.is(metrics.status, 200);
    t.notRegex(metrics.text, /gpt2_node_engine_/, 'no engine statistics without a model');
  } finally {
    await s.close();
  }
});
