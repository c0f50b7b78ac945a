// Prefix reuse, scoring, perplexity, chat sessions and aborting a long prefill, through the
// public API.
import test, { type ExecutionContext } from 'ava';

import { Gpt2Error, loadModel, type Model } from '../../lib/index.js';
import { testModel } from '../support/models.js';
import { until } from '../support/until.js';

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

test.serial('a session that outgrows the context drops its oldest turns, keeps the newest, and answers from them', async (t) => {
  const small = await loadModel(path, { threads: 1, contextSize: 64 });
  try {
    const chat = small.createSession();
    const eos = small.info.eosTokenId;
    const opts = { maxTokens: 8, temperature: 0, ignoreEos: true } as const;
    // every turn so far, as the session should remember them
    const all: { role: string, tokens: number[] }[] = [];
    let lastPrompt: number[] = [];
    for (let i = 0; i < 6; i++) {
      const text = `Turn number ${i} says something.`;
      const kept = chat.history.length;
      const r = await chat.complete(text, opts);
      t.is(r.tokens.length, 8);
      // the prompt of this turn: the turns kept of the history before it, then the user's turn
      const before = all.slice(all.length - (chat.history.length - 2));
      t.true(chat.history.length - 2 <= kept, 'turns are only ever dropped');
      lastPrompt = [...before.flatMap((x) => [...x.tokens, eos]), ...small.tokenize(text), eos];
      all.push({ role: 'user', tokens: Array.from(small.tokenize(text)) }, { role: 'model', tokens: Array.from(r.tokens) });
    }
    t.true(chat.droppedTurns > 0, 'the conversation outgrew the context');
    t.is(chat.droppedTurns + chat.history.length, all.length, 'every turn is either kept or counted as dropped');
    // the turns kept are the newest ones, in order
    t.deepEqual(chat.history.map((x) => ({ role: x.role, tokens: Array.from(x.tokens) })), all.slice(chat.droppedTurns));
    // the last prompt fits the context less the reply's room (replyReserve = maxTokens), and
    // only as many turns were dropped as needed: with the newest dropped turn it would not fit
    t.true(lastPrompt.length <= 64 - 8, `last prompt of ${lastPrompt.length} tokens`);
    const newestDropped = all[all.length - chat.history.length - 1]!;
    t.true(lastPrompt.length + newestDropped.tokens.length + 1 > 64 - 8, 'no more turns were dropped than needed');
    // the last reply is what the model says after the kept turns alone
    const expected = await small.complete(lastPrompt, opts);
    t.deepEqual(Array.from(chat.history.at(-1)!.tokens), Array.from(expected.tokens));

    const busy = chat.generate('one', { maxTokens: 50 });
    t.throws(() => chat.generate('two'), { instanceOf: Gpt2Error, code: 'ERR_BUSY', message: 'a turn of this session is still generating' } as never);
    for await (const c of busy) void c;
    await chat.complete('three', { maxTokens: 2 });
  } finally {
    await small.dispose();
  }
});

// Aborting a long prefill. The engine computes a lone prompt in steps of up to the batch (512
// positions: 128-position chunks merged while no stream is decoding), and stats().promptTokens
// counts the positions of completed steps only. An abort stops the running step (ggml's abort
// callback) and the next one never starts, so after it the counter has moved by at most one
// step: 512 positions. A 1000-token prompt takes steps of 512, 384 and 104 positions.
const BATCH = 512;

/** Starts fn(signal) on a fresh 124M model, aborts once the first prefill step is done, and checks the bound. */
async function abortDuringPrefill<T>(t: ExecutionContext, fn: (m: Model, signal: AbortSignal) => Promise<T>): Promise<T> {
  const big = await loadModel(await testModel('124M', 'f32'), { threads: 2, device: 'cpu' });
  try {
    const controller = new AbortController();
    const p = fn(big, controller.signal);
    p.catch(() => {});   // awaited below; no unhandled rejection meanwhile
    t.true(await until(() => big.stats().promptTokens > 0, 60_000), 'the prefill started');
    const atAbort = big.stats().promptTokens;
    controller.abort();
    let outcome: { value: T } | { error: unknown };
    try {
      outcome = { value: await p };
    } catch (error) {
      outcome = { error };
    }
    t.true(await until(() => big.stats().activeSequences === 0), 'the request freed its slot');
    const done = big.stats().promptTokens;
    t.log(`prompt positions computed: ${atAbort} when aborted, ${done} in the end, of 1000`);
    t.true(done - atAbort <= BATCH, `at most one more step: ${atAbort} → ${done}`);
    t.true(done < 1000, 'the prefill did not run to its end');
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  } finally {
    await big.dispose();
  }
}

test.serial('an abort stops a long evaluate() prefill within one engine step, with ERR_ABORTED', async (t) => {
  await t.throwsAsync(abortDuringPrefill(t, (m, signal) => m.evaluate(ids(1000, 5), { signal })),
    { instanceOf: Gpt2Error, code: 'ERR_ABORTED', message: 'evaluate aborted' } as never);
});

test.serial('an abort stops a long generate() / complete() prefill within one engine step', async (t) => {
  // generate(): the one chunk is the last, with no tokens and finishReason abort
  const chunks = await abortDuringPrefill(t, async (m, signal) => {
    const out = [];
    for await (const c of m.generate(ids(1000, 6), { maxTokens: 16, temperature: 0, ignoreEos: true, signal })) out.push(c);
    return out;
  });
  t.is(chunks.length, 1);
  t.is(chunks[0]!.finishReason, 'abort');
  t.deepEqual(Array.from(chunks[0]!.tokens), []);
  t.is(chunks[0]!.usage?.completionTokens, 0);
  // complete(): resolves, with no text and finishReason abort
  const out = await abortDuringPrefill(t, (m, signal) => m.complete(ids(1000, 7), { maxTokens: 16, temperature: 0, ignoreEos: true, signal }));
  t.is(out.finishReason, 'abort');
  t.is(out.text, '');
  t.is(out.tokens.length, 0);
});

test.serial('score() and perplexity() reject with ERR_ABORTED when their signal aborts', async (t) => {
  // before they start
  const aborted = AbortSignal.abort();
  await t.throwsAsync(model.score('context', [' a', ' b'], { signal: aborted }), { instanceOf: Gpt2Error, code: 'ERR_ABORTED', message: 'score aborted' } as never);
  await t.throwsAsync(model.perplexity(ids(100, 8), { signal: aborted }), { instanceOf: Gpt2Error, code: 'ERR_ABORTED', message: 'score aborted' } as never);
  // during a long context's prefill (score) and between windows (perplexity: after the first window)
  await t.throwsAsync(abortDuringPrefill(t, (m, signal) => m.score(ids(990, 9), [ids(10, 10)], { signal })),
    { instanceOf: Gpt2Error, code: 'ERR_ABORTED', message: 'score aborted' } as never);
  const controller = new AbortController();
  const windows: number[] = [];
  await t.throwsAsync(model.perplexity(ids(400, 11), {
    window: 64, stride: 32, signal: controller.signal,
    onProgress: (done) => { windows.push(done); if (windows.length === 2) controller.abort(); },
  }), { instanceOf: Gpt2Error, code: 'ERR_ABORTED', message: 'score aborted' } as never);
  t.deepEqual(windows, [64, 96], 'no window was scored after the abort');
  t.true(await until(() => model.stats().activeSequences === 0));
});
