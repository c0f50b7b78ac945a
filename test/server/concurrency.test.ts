// The server under load, over real HTTP: 64 concurrent streaming clients on one engine (every
// stream complete and the same as alone), a slow reader stalling only its own stream, clients
// disconnecting mid-stream and while queued (slots freed at once, the server keeps serving),
// the bounded queue (503), and graceful shutdown.
//
// A client that never reads must fill the socket's buffers before the server has to wait: a Unix
// socket buffers about 200 KB (loopback TCP several MB), and these streams are longer than that
// (500 tokens with 20 alternatives each, about 450 KB), so such a stream cannot finish.
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { createServer, loadModel, startServer, type ApiServer, type Model, type ServerOptions } from '../../lib/index.js';
import { open, parseSse, post, readAll, streamedTexts, type Target } from '../support/http.js';
import { testModel } from '../support/models.js';
import { until } from '../support/until.js';

let model: Model;
let dir: string;
let sockets = 0;

test.before(async () => {
  model = await loadModel(await testModel('tiny', 'f32', { initScale: 4 }), { threads: 1, maxSequences: 8 });
  dir = await mkdtemp(join(tmpdir(), 'gpt2-node-server-'));
});

test.after.always(async () => {
  await model?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A server on its own model with `slots` sequences, listening on a Unix socket. */
async function unixServer(slots: number, options: ServerOptions = {}): Promise<{ server: ApiServer; model: Model; target: Target }> {
  const m = await loadModel(await testModel('tiny', 'f32', { initScale: 4 }), { threads: 1, maxSequences: slots });
  const server = createServer(m, options);
  const socketPath = join(dir, `s${++sockets}.sock`);
  await new Promise<void>((resolve) => server.http.listen(socketPath, resolve));
  return { server, model: m, target: { socketPath } };
}

/** A stream longer than the socket's buffers: it cannot finish while its client does not read. */
const longStream = { prompt: 'A long stream', max_tokens: 500, logprobs: 20, temperature: 0, ignore_eos: true, stream: true };

/**
 * Reports where a test waits when it takes far longer than it should (to stderr: ava's own
 * timeout gives no detail), with the engine's and the server's counters.
 */
function watchdog(t: { title: string }, server: ApiServer, m: Model, afterMs = 60_000) {
  let current = 'start';
  const timer = setInterval(() => {
    let stats: unknown;
    try { stats = m.stats(); } catch (e) { stats = String(e); }
    console.error(`[watchdog] "${t.title}" still at step "${current}"\n  engine: ${JSON.stringify(stats)}\n` +
      server.metrics().split('\n').filter((l) => l && !l.startsWith('#')).map((l) => `  ${l}`).join('\n'));
  }, afterMs);
  timer.unref();
  return { step: (name: string) => { current = name; }, stop: () => clearInterval(timer) };
}

const metric = (server: ApiServer, name: string) => Number(new RegExp(`^gpt2_node_${name} (\\S+)$`, 'm').exec(server.metrics())?.[1]);

test.serial('64 concurrent streaming clients: every stream complete and the same as alone', async (t) => {
  const server = await startServer(model, { port: 0, maxQueue: 64 });
  try {
    const target = { url: server.url };
    const requests = Array.from({ length: 64 }, (_, i) => {
      const sampling = { max_tokens: 16, temperature: 1, top_k: 40, seed: 1000 + i, ignore_eos: true, stream: true, stream_options: { include_usage: true } };
      return i % 2 === 0
        ? { path: '/v1/completions', body: { prompt: `Client number ${i} says`, ...sampling } }
        : { path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: `Hello from client ${i}` }], ...sampling } };
    });
    // each alone first
    const eos = model.info.eosTokenId;
    const expected: string[] = [];
    for (const [i, r] of requests.entries()) {
      const prompt = i % 2 === 0 ? `Client number ${i} says` : [...model.tokenize(`Hello from client ${i}`), eos];
      expected.push((await model.complete(prompt, { maxTokens: 16, temperature: 1, topK: 40, seed: 1000 + i, ignoreEos: true })).text);
      void r;
    }
    const stepsBefore = model.stats().steps;
    const responses = await Promise.all(requests.map((r) => post(target, r.path, r.body)));
    const steps = model.stats().steps - stepsBefore;
    for (const [i, r] of responses.entries()) {
      t.is(r.status, 200, r.text);
      const { events, done } = parseSse(r.text);
      t.true(done, `stream ${i} ends with [DONE]`);
      t.is(streamedTexts(events)[0], expected[i], `stream ${i}`);
      t.is(events.at(-2).choices[0].finish_reason, 'length');
      t.is(events.at(-1).usage.completion_tokens, 16);
    }
    t.log(`${64 * 16} tokens in ${steps} engine steps`);
    t.true(steps < 64 * 16 / 2, 'streams were batched together');
    t.is(metric(server, 'sequences_in_flight'), 0);
    t.is(metric(server, 'requests_active'), 0);
  } finally {
    await server.close();
  }
});

test.serial('a slow reader stalls only its own stream, and loses nothing', async (t) => {
  const { server, model: m, target } = await unixServer(2);
  try {
    t.throws(() => server.port, { code: 'ERR_NOT_LISTENING', message: `the server listens on ${(target as { socketPath: string }).socketPath}, not on a TCP port` });
    const expected = await m.complete('A long stream', { maxTokens: 500, temperature: 0, ignoreEos: true, logprobs: 20 });
    const before = m.stats().generatedTokens;
    const slow = open(target, 'POST', '/v1/completions', longStream);
    const res: IncomingMessage = await slow.res;   // headers arrived; the body is not read
    t.true(await until(() => metric(server, 'stream_stalls_total') >= 1), 'the server waited for the socket');
    // another client is served meanwhile
    const other = await post(target, '/v1/completions', { prompt: 'Meanwhile', max_tokens: 20, temperature: 0, ignore_eos: true });
    t.is(other.status, 200);
    t.is(other.json.usage.completion_tokens, 20);
    // the slow stream is paused in the engine, holding its slot, not finished
    t.is(m.stats().activeSequences, 1);
    t.true(m.stats().generatedTokens - before < 500 + 20);
    // reading it now gets every token
    const { events, done } = parseSse(await readAll(res));
    t.true(done);
    t.is(streamedTexts(events)[0], expected.text);
    t.is(events.flatMap((e) => e.choices[0]?.logprobs?.tokens ?? []).length, 500);
    t.is(m.stats().activeSequences, 0);
  } finally {
    await server.close();
    await m.dispose();
  }
});

test.serial('a client that disconnects, streaming or queued, frees its slot at once; the server keeps serving', async (t) => {
  const { server, model: m, target } = await unixServer(2);
  try {
    const before = m.stats().generatedTokens;
    // two blocked streams hold both slots
    const a = open(target, 'POST', '/v1/completions', { ...longStream, n: 2 });
    await a.res;
    t.true(await until(() => metric(server, 'stream_stalls_total') >= 1));
    t.is(m.stats().activeSequences, 2);
    // b and c wait in the queue
    const b = post(target, '/v1/completions', { prompt: 'Queued', max_tokens: 8, temperature: 0, ignore_eos: true });
    t.true(await until(() => m.stats().queuedSequences === 1));
    const c = open(target, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'Queued too' }], max_tokens: 8 });
    c.res.catch(() => {});
    t.true(await until(() => m.stats().queuedSequences === 2));
    // c leaves the queue when its client goes
    c.req.destroy();
    t.true(await until(() => m.stats().queuedSequences === 1), 'a queued request is dropped when its client goes');
    t.true(await until(() => metric(server, 'requests_cancelled_total') === 1));
    // a's client goes: both its slots are freed, and b runs
    a.req.destroy();
    const done = await b;
    t.is(done.status, 200);
    t.is(done.json.choices[0].text, (await m.complete('Queued', { maxTokens: 8, temperature: 0, ignoreEos: true })).text);
    t.true(await until(() => metric(server, 'requests_cancelled_total') === 2));
    t.true(await until(() => m.stats().activeSequences === 0));
    t.true(m.stats().generatedTokens - before < 2 * 500, 'the disconnected streams did not run to their end');
    t.true(await until(() => metric(server, 'sequences_in_flight') === 0));
    // c went before its response began (nginx's 499); a's stream had begun (200)
    t.regex(server.metrics(), /^gpt2_node_requests_total\{endpoint="\/v1\/chat\/completions",status="499"\} 1$/m);
    t.regex(server.metrics(), /^gpt2_node_requests_total\{endpoint="\/v1\/completions",status="200"\} 2$/m);
    // and the server goes on serving streams
    const again = parseSse((await post(target, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Still there?' }], max_tokens: 5, stream: true })).text);
    t.true(again.done);
  } finally {
    await server.close();
    await m.dispose();
  }
});

test.serial('past the bounded queue requests get 503 server_overloaded', async (t) => {
  const { server, model: m, target } = await unixServer(2, { maxQueue: 1 });
  const dog = watchdog(t, server, m);
  try {
    dog.step('a');
    const a = open(target, 'POST', '/v1/completions', { ...longStream, n: 2 });
    await a.res;
    // both of a's sequences hold a slot (the engine admits them one step apart: until then the
    // second one is the queued sequence), and b's is then the one queued
    t.true(await until(() => m.stats().activeSequences === 2));
    dog.step('b');
    const b = post(target, '/v1/completions', { prompt: 'Queued', max_tokens: 4 });
    t.true(await until(() => metric(server, 'sequences_in_flight') === 3 && m.stats().queuedSequences === 1));
    dog.step('c');
    const c = await post(target, '/v1/chat/completions', { messages: [{ role: 'user', content: 'One more' }], max_tokens: 4 });
    t.is(c.status, 503);
    t.deepEqual(c.json, { error: {
      message: 'The server is overloaded: 1 generations are waiting for a slot and the queue holds 1; try again later',
      type: 'server_error', param: null, code: 'server_overloaded',
    } });
    t.is(c.headers['retry-after'], '1');
    t.is(metric(server, 'requests_rejected_total'), 1);
    dog.step('destroy a, await b');
    a.req.destroy();
    t.is((await b).status, 200);
    dog.step('one more');
    t.is((await post(target, '/v1/chat/completions', { messages: [{ role: 'user', content: 'One more' }], max_tokens: 4 })).status, 200);
    dog.step('close');
  } finally {
    await server.close();
    await m.dispose();
    dog.stop();
  }
});

test.serial('close() aborts what runs: streams end with an error event, waiting requests get 503; the model stays usable', async (t) => {
  const { server, model: m, target } = await unixServer(1);
  try {
    const a = open(target, 'POST', '/v1/completions', longStream);
    const res = await a.res;
    t.true(await until(() => metric(server, 'stream_stalls_total') >= 1), 'the stream waits for its client');
    const b = post(target, '/v1/completions', { prompt: 'Queued', max_tokens: 4 });
    t.true(await until(() => m.stats().queuedSequences === 1));
    const closing = server.close();
    const waiting = await b;
    t.is(waiting.status, 503);
    t.deepEqual(waiting.json, { error: { message: 'The server is shutting down', type: 'server_error', param: null, code: 'server_shutting_down' } });
    const { events, done } = parseSse(await readAll(res));
    t.false(done, 'no [DONE] after an aborted stream');
    t.deepEqual(events.at(-1), { error: { message: 'The server is shutting down', type: 'server_error', param: null, code: 'server_shutting_down' } });
    t.true(events.length > 1 && events.length < 500);
    await closing;
    t.false(server.http.listening);
    await t.throwsAsync(post(target, '/health'), { code: 'ENOENT' });
    t.is((await m.complete('Still usable', { maxTokens: 3 })).usage.completionTokens, 3);
  } finally {
    await server.close();
    await m.dispose();
  }
});

test.serial('close({ timeoutMs }) lets in-flight requests finish', async (t) => {
  const server = await startServer(model, { port: 0 });
  const target = { url: server.url };
  const running = post(target, '/v1/completions', { prompt: 'Finish me', max_tokens: 40, temperature: 0, ignore_eos: true });
  t.true(await until(() => metric(server, 'requests_active') === 1));
  const closing = server.close({ timeoutMs: 60_000 });
  const r = await running;
  t.is(r.status, 200);
  t.is(r.json.usage.completion_tokens, 40);
  await closing;
  await t.throwsAsync(post(target, '/health'), { code: 'ECONNREFUSED' });
});
