// Prefix reuse, scoring, perplexity, chat sessions and aborting a long prefill, through the
// public API.
import test from 'ava';

import { Gpt2Error, loadModel, type Model } from '../../lib/index.js';
import { testModel } from '../support/models.js';

let model: Model;
let path: string;

test.before(async () => {
  path = await testModel('tiny', 'f32', { initScale: 4 });
  model = await loadModel(path, { threads: 2, maxSequences: 2 });
});

test.after.always(async () => {
  await model?.dispose();
});

const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % 50000);

function logSoftmax(row: Float32Array, token: number): number {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  return row[token]! - max - Math.log(sum);
}

test.serial('a prompt sharing a prefix with an earlier one reuses its KV, with the same results', async (t) => {
  const shared = ids(300, 1);
  const a = [...shared, ...ids(20, 2)];
  const b = [...shared.slice(0, 270), ...ids(30, 3)];
  await model.complete(a, { maxTokens: 4, temperature: 0 });
  const before = model.stats().cachedTokens;
  const reused = await model.complete(b, { maxTokens: 16, temperature: 0, ignoreEos: true });
  t.is(model.stats().cachedTokens - before, 256, 'two whole 128-token chunks of the shared 270');
  const fresh = await loadModel(path, { threads: 2 });
  try {
    const computed = await fresh.complete(b, { maxTokens: 16, temperature: 0, ignoreEos: true });
    t.deepEqual(Array.from(reused.tokens), Array.from(computed.tokens));
    t.is(fresh.stats().cachedTokens, 0);
  } finally {
    await fresh.dispose();
  }
});

test.serial('score() gives each continuation token log p(token | before), as evaluate() does', async (t) => {
  const context = 'The capital of France is';
  const [paris, berlin] = await model.score(context, [' Paris', ' Berlin, of course']);
  t.is(paris!.logprobs.length, model.tokenize(' Paris').length);
  t.is(berlin!.logprobs.length, model.tokenize(' Berlin, of course').length);
  const all = [...model.tokenize(context), ...berlin!.tokens];
  const logits = await model.evaluate(all, { allPositions: true });
  const V = model.info.vocabSize;
  const nCtx = model.tokenize(context).length;
  let maxdiff = 0;
  berlin!.logprobs.forEach((lp, i) => {
    const row = logits.subarray((nCtx + i - 1) * V, (nCtx + i) * V);
    maxdiff = Math.max(maxdiff, Math.abs(lp - logSoftmax(row, all[nCtx + i]!)));
  });
  t.log(`score vs evaluate maxdiff = ${maxdiff}`);
  t.true(maxdiff < 1e-4);
  t.true(Math.abs(berlin!.sum - berlin!.logprobs.reduce((a, b) => a + b, 0)) < 1e-3);
  t.true(berlin!.sum < 0);
  // an empty context starts from <|endoftext|>
  const [x] = await model.score('', ['Hello']);
  t.is(x!.logprobs.length, model.tokenize('Hello').length);
});

test.serial('perplexity() with and without a sliding window', async (t) => {
  const text = ids(200, 4);
  const whole = await model.perplexity(text);
  t.is(whole.tokens, 199);
  // by hand from evaluate()
  const logits = await model.evaluate(text, { allPositions: true });
  const V = model.info.vocabSize;
  let sum = 0;
  for (let i = 1; i < text.length; i++) sum += logSoftmax(logits.subarray((i - 1) * V, i * V), text[i]!);
  t.true(Math.abs(whole.logprobSum - sum) < 1e-2);
  t.true(Math.abs(whole.perplexity - Math.exp(-sum / 199)) / whole.perplexity < 1e-4);
  const progress: number[] = [];
  const sliding = await model.perplexity(text, { window: 64, stride: 32, onProgress: (d) => progress.push(d) });
  t.is(sliding.tokens, 199, 'every token but the first is scored exactly once');
  t.is(progress.at(-1), 200);
  t.true(sliding.perplexity > 1 && Number.isFinite(sliding.perplexity));
  await t.throwsAsync(model.perplexity([1]), { instanceOf: RangeError, message: 'Expected at least 2 tokens for text but received 1' });
  await t.throwsAsync(model.perplexity(text, { window: 1 }), { instanceOf: RangeError, message: 'Expected integer between 2 and 512 for window but received 1' });
  await t.throwsAsync(model.perplexity(text, { window: 64, stride: 64 }), { instanceOf: RangeError, message: 'Expected integer between 1 and 63 for stride but received 64' });
});

test.serial('score() validation', async (t) => {
  await t.throwsAsync(model.score('x', 'y' as never), { instanceOf: TypeError, message: 'Expected array for continuations but received "y" of type string' });
  await t.throwsAsync(model.score('x', ['']), { instanceOf: RangeError, message: 'Expected at least 1 token for continuations[0] but received 0' });
  await t.throwsAsync(model.score('x', [[70000]]), { instanceOf: RangeError, message: 'Expected integer between 0 and 50256 for continuations[0][0] but received 70000' });
  await t.throwsAsync(model.score(5 as never, ['a']), { instanceOf: TypeError, message: 'Expected string or token ids for context but received 5 of type number' });
});

test.serial('a chat session keeps its history and reuses its KV between turns', async (t) => {
  const chat = model.createSession();
  const long = 'Tell me a long story about a lighthouse keeper who counts the waves every night, ' +
    'writes their heights in a notebook, and one day finds a message in a bottle. '.repeat(8);
  t.true(model.tokenize(long).length > 128);
  const r1 = await chat.complete(long, { maxTokens: 12, temperature: 0, ignoreEos: true });
  t.is(chat.history.length, 2);
  t.deepEqual(chat.history.map((x) => x.role), ['user', 'model']);
  t.is(chat.history[1]!.text, r1.text);
  const before = model.stats().cachedTokens;
  const r2 = await chat.complete('And then?', { maxTokens: 12, temperature: 0, ignoreEos: true });
  t.true(model.stats().cachedTokens - before >= 128, 'the first turn was not computed again');
  // the same as a plain completion of the DialoGPT-formatted conversation
  const eos = model.info.eosTokenId;
  const manual = [...model.tokenize(long), eos, ...r1.tokens, eos, ...model.tokenize('And then?'), eos];
  const expected = await model.complete(manual, { maxTokens: 12, temperature: 0, ignoreEos: true });
  t.deepEqual(Array.from(r2.tokens), Array.from(expected.tokens));
  t.is(chat.history.length, 4);
  chat.reset();
  t.is(chat.history.length, 0);
});

test.serial('a session that outgrows the context drops its oldest turns', async (t) => {
  const small = await loadModel(path, { threads: 1, contextSize: 64 });
  try {
    const chat = small.createSession();
    for (let i = 0; i < 6; i++) {
      const r = await chat.complete(`Turn number ${i} says something.`, { maxTokens: 8, temperature: 0, ignoreEos: true });
      t.is(r.tokens.length, 8);
    }
    t.true(chat.droppedTurns > 0);
    const size = chat.history.reduce((n, x) => n + x.tokens.length + 1, 0);
    t.true(size <= 64);
    const busy = chat.generate('one', { maxTokens: 50 });
    t.throws(() => chat.generate('two'), { instanceOf: Gpt2Error, message: 'a turn of this session is still generating' });
    for await (const c of busy) void c;
    await chat.complete('three', { maxTokens: 2 });
  } finally {
    await small.dispose();
  }
});

test.serial('an abort stops a long prefill part way', async (t) => {
  const big = await loadModel(await testModel('124M', 'f32'), { threads: 2 });
  try {
    const controller = new AbortController();
    const p = big.evaluate(ids(1000, 5), { signal: controller.signal });
    const deadline = Date.now() + 20_000;
    while (big.stats().promptTokens === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    controller.abort();
    await t.throwsAsync(p, { instanceOf: Gpt2Error, message: 'evaluate aborted' });
    const done = big.stats().promptTokens;
    t.log(`prompt tokens computed before the abort took effect: ${done} of 1000`);
    t.true(done < 1000);
    t.is(big.stats().activeSequences, 0);
  } finally {
    await big.dispose();
  }
});
