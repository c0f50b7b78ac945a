// The sampler's options, stop strings, logprobs, truncation and the stream adapters, through
// the public API on a generated tiny model.
import test from 'ava';

import { loadModel, type Model } from '../../lib/index.js';
import { testModel } from '../support/models.js';
import { until } from '../support/until.js';

let model: Model;

test.before(async () => {
  model = await loadModel(await testModel('tiny', 'f32', { initScale: 4 }), { threads: 2, maxSequences: 4 });
});

test.after.always(async () => {
  await model?.dispose();
});

const greedy = { temperature: 0, ignoreEos: true } as const;


test.serial('stop strings end generation before the string, across token boundaries, never emitting it', async (t) => {
  const full = await model.complete('The story begins', { ...greedy, maxTokens: 40 });
  t.true(full.text.length > 20);
  // a stop string that straddles tokens: the last 2 characters of token 3 and the first 2 of token 4
  const pieces = Array.from(full.tokens, (id) => model.detokenize([id]));
  const cut = pieces.slice(0, 3).join('').length;
  const stop = full.text.slice(cut - 2, cut + 2);
  t.true(stop.length === 4);
  const first = full.text.indexOf(stop);
  const out = await model.complete('The story begins', { ...greedy, maxTokens: 40, stop: [stop] });
  t.is(out.finishReason, 'stop');
  t.is(out.text, full.text.slice(0, first));
  t.false(out.text.includes(stop));
  // streamed chunks agree, and the final chunk carries the reason
  let text = '';
  let reason;
  for await (const c of model.generate('The story begins', { ...greedy, maxTokens: 40, stop })) {
    text += c.text;
    reason = c.finishReason ?? reason;
  }
  t.is(text, out.text);
  t.is(reason, 'stop');
  // a stop string that never appears changes nothing (held-back text is released at the end)
  const never = await model.complete('The story begins', { ...greedy, maxTokens: 40, stop: ['\u0000never'] });
  t.is(never.text, full.text);
  t.is(never.finishReason, 'length');
  // the earliest of several stop strings wins
  const two = await model.complete('The story begins', { ...greedy, maxTokens: 40, stop: ['\u0000never', stop] });
  t.is(two.text, out.text);
  // complete().tokens holds every generated token, those of the stop string included: up to the
  // one that completed it (whose text is not in .text)
  let k = 1;
  while (!model.detokenize(full.tokens.subarray(0, k)).includes(stop)) k++;
  t.deepEqual(Array.from(out.tokens), Array.from(full.tokens.subarray(0, k)));
  t.is(out.usage.completionTokens, k);
  t.true(model.detokenize(out.tokens).startsWith(out.text + stop));
});

/** The token that occurs most often in ids, and how often. */
function mostFrequent(ids: ArrayLike<number>): [number, number] {
  const counts = new Map<number, number>();
  for (const id of Array.from(ids)) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]!;
}

test.serial('logitBias: -Infinity bans a token, a large bias forces one', async (t) => {
  // ban a token the model otherwise keeps coming back to: it never appears, greedy or sampled
  // (at temperature 1 among the top 3: this random model's full distribution is too flat for any
  // token to recur in 40 draws)
  for (const opts of [{ temperature: 0 }, { temperature: 1, seed: 3, topK: 3 }]) {
    const base = await model.complete('Bias', { ...opts, ignoreEos: true, maxTokens: 40 });
    const [banned, count] = mostFrequent(base.tokens);
    t.true(count >= 2, `${JSON.stringify(opts)}: token ${banned} recurs (${count} times)`);
    const out = await model.complete('Bias', { ...opts, ignoreEos: true, maxTokens: 40, logitBias: { [banned]: -Infinity } });
    t.is(out.tokens.length, 40);
    t.false(Array.from(out.tokens).includes(banned), `${JSON.stringify(opts)}: banned token ${banned} appears`);
  }
  const forced = await model.complete('Bias', { ...greedy, maxTokens: 5, logitBias: new Map([[1234, 1000]]) });
  t.deepEqual(Array.from(forced.tokens), [1234, 1234, 1234, 1234, 1234]);
  const sampled = await model.complete('Bias', { temperature: 1, seed: 3, maxTokens: 5, ignoreEos: true, logitBias: { 4321: 1000 } });
  t.deepEqual(Array.from(sampled.tokens), [4321, 4321, 4321, 4321, 4321]);
});

test.serial('<|endoftext|> ends a generation with finishReason stop, unless ignoreEos', async (t) => {
  const eos = model.info.eosTokenId;
  // forced at the first step: nothing generated
  const stopped = await model.complete('The end', { temperature: 0, maxTokens: 8, logitBias: { [eos]: 100 } });
  t.is(stopped.finishReason, 'stop');
  t.deepEqual(Array.from(stopped.tokens), []);
  t.is(stopped.text, '');
  t.is(stopped.usage.completionTokens, 0);
  const kept = await model.complete('The end', { temperature: 0, maxTokens: 8, logitBias: { [eos]: 100 }, ignoreEos: true });
  t.is(kept.finishReason, 'length');
  t.deepEqual(Array.from(kept.tokens), new Array(8).fill(eos));
  // part way: a bias that makes the sampler draw <|endoftext|> after a few tokens (the same seed
  // draws the same tokens up to there, with ignoreEos or without)
  let found = false;
  for (let bias = 0; bias <= 16 && !found; bias += 0.5) {
    const opts = { temperature: 1, seed: 11, maxTokens: 24, logitBias: { [eos]: bias } };
    const on = await model.complete('Once there was', { ...opts, ignoreEos: true });
    const k = Array.from(on.tokens).indexOf(eos);
    if (k < 2) continue;
    found = true;
    t.log(`bias ${bias}: <|endoftext|> drawn at step ${k}`);
    t.is(on.tokens.length, 24, 'ignoreEos: it goes on after <|endoftext|>');
    t.is(on.finishReason, 'length');
    const off = await model.complete('Once there was', opts);
    t.is(off.finishReason, 'stop');
    t.deepEqual(Array.from(off.tokens), Array.from(on.tokens.subarray(0, k)), 'the tokens before <|endoftext|>, without it');
    t.is(off.text, model.detokenize(on.tokens.subarray(0, k)));
    t.is(off.usage.completionTokens, k);
  }
  t.true(found, 'some bias draws <|endoftext|> after two tokens or more');
});

test.serial('generate() chunks never end inside a UTF-8 sequence', async (t) => {
  // "’" is U+2019, bytes e2 80 99: three byte-level tokens of GPT-2's vocabulary. Biases and a
  // presence penalty over the last two tokens make greedy decoding cycle through them
  // (e2 > 80 > 99 by bias; the last two drawn are penalized below the third).
  const byteToken = (b: number) => {
    for (let id = 0; id < 256; id++) {
      const bytes = model.tokenizer.tokenBytes(id);
      if (bytes.length === 1 && bytes[0] === b) return id;
    }
    throw new Error(`no byte token for ${b}`);
  };
  const [e2, x80, x99] = [byteToken(0xe2), byteToken(0x80), byteToken(0x99)];
  const opts = { temperature: 0, ignoreEos: true, highWaterMark: 1, logitBias: { [e2]: 300, [x80]: 260, [x99]: 220 }, presencePenalty: 100, penaltyWindow: 2 };
  const run = async (maxTokens: number) => {
    const chunks: { text: string, tokens: number[] }[] = [];
    for await (const c of model.generate('Quote', { ...opts, maxTokens })) chunks.push({ text: c.text, tokens: Array.from(c.tokens) });
    return chunks;
  };
  const chunks = await run(9);
  const tokens = chunks.flatMap((c) => c.tokens);
  t.deepEqual(tokens, [e2, x80, x99, e2, x80, x99, e2, x80, x99]);
  t.is(chunks.map((c) => c.text).join(''), '’’’');
  t.is(chunks.map((c) => c.text).join(''), model.detokenize(tokens));
  for (const c of chunks) {
    t.regex(c.text, /^’*$/u, 'whole characters only');
    t.is(Buffer.from(c.text, 'utf8').toString('utf8'), c.text, 'well-formed (no lone surrogate)');
  }
  t.true(chunks.some((c) => c.tokens.length > 0 && c.text === ''), 'a chunk ended inside the character, and its bytes were held back');
  // a sequence the generation leaves unfinished is U+FFFD at the end, as detokenize() says
  const cut = await run(10);
  t.is(cut.map((c) => c.text).join(''), '’’’\ufffd');
  t.is(cut.map((c) => c.text).join(''), model.detokenize(cut.flatMap((c) => c.tokens)));
});

test.serial('presence and frequency penalties stop repeats within the window', async (t) => {
  const prompt = model.tokenize('Penalties keep things fresh');
  const plain = await model.complete(prompt, { ...greedy, maxTokens: 40 });
  t.true(new Set(plain.tokens).size < plain.tokens.length, 'without penalties the random model repeats itself');
  for (const opts of [{ presencePenalty: 100 }, { frequencyPenalty: 100 }, { repetitionPenalty: 100, logitBias: {} }]) {
    const out = await model.complete(prompt, { ...greedy, maxTokens: 40, penaltyWindow: 1000, ...opts });
    const all = [...prompt, ...out.tokens];
    if ('repetitionPenalty' in opts) {
      t.true(new Set(out.tokens).size > new Set(plain.tokens).size, 'fewer repeats');
    } else {
      t.is(new Set(all).size, all.length, `no token repeats with ${JSON.stringify(opts)}`);
    }
  }
  // a window of 0 turns the penalties off
  const off = await model.complete(prompt, { ...greedy, maxTokens: 40, presencePenalty: 100, penaltyWindow: 0 });
  t.deepEqual(Array.from(off.tokens), Array.from(plain.tokens));
});

test.serial('logprobs: the chosen token and the top alternatives, from the model distribution', async (t) => {
  const prompt = model.tokenize('Log probabilities');
  const out = await model.complete(prompt, { ...greedy, maxTokens: 3, logprobs: 5 });
  t.is(out.logprobs!.length, 3);
  // the first token's logprob is log_softmax of the prompt's last logits
  const logits = await model.evaluate(prompt);
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const logZ = max + Math.log(sum);
  const first = out.logprobs![0]!;
  t.is(first.token, out.tokens[0]);
  t.true(Math.abs(first.logprob - (logits[first.token]! - logZ)) < 1e-4);
  for (const lp of out.logprobs!) {
    t.is(lp.top.length, 5);
    t.is(lp.top[0]!.token, lp.token, 'greedy picks the top alternative');
    t.true(lp.top.every((a, i) => i === 0 || a.logprob <= lp.top[i - 1]!.logprob));
    t.true(lp.logprob <= 0);
  }
  const chosenOnly = await model.complete(prompt, { ...greedy, maxTokens: 2, logprobs: true });
  t.deepEqual(chosenOnly.logprobs!.map((x) => x.top.length), [0, 0]);
  const none = await model.complete(prompt, { ...greedy, maxTokens: 2 });
  t.is(none.logprobs, undefined);
});

test.serial("truncate: 'start' keeps the end of a long prompt and room to generate", async (t) => {
  const small = await loadModel(await testModel('tiny', 'f32', { initScale: 4 }), { threads: 1, contextSize: 32 });
  try {
    const long = Array.from({ length: 100 }, (_, i) => 1000 + i);
    t.throws(() => small.generate(long), { instanceOf: RangeError, message: 'Expected at most 32 prompt tokens (the context size) but received 100' });
    const out = await small.complete(long, { ...greedy, maxTokens: 8, truncate: 'start' });
    t.is(out.usage.promptTokens, 24);
    t.is(out.tokens.length, 8);
    const same = await small.complete(long.slice(76), { ...greedy, maxTokens: 8 });
    t.deepEqual(Array.from(out.tokens), Array.from(same.tokens));
    // the room kept for generating is at most half the context: 16 of 32 prompt tokens kept for
    // maxTokens 30, and the generation ends at the end of the context
    const capped = await small.complete(long, { ...greedy, maxTokens: 30, truncate: 'start' });
    t.is(capped.usage.promptTokens, 16);
    t.is(capped.finishReason, 'length');
    t.is(capped.tokens.length, 17, '16 tokens fill the context, the 17th is sampled from its last position');
    const sameCapped = await small.complete(long.slice(84), { ...greedy, maxTokens: 30 });
    t.deepEqual(Array.from(capped.tokens), Array.from(sameCapped.tokens));
    // a prompt that fits is not truncated, even when prompt + maxTokens do not
    const fits = await small.complete(long.slice(0, 30), { ...greedy, maxTokens: 30, truncate: 'start' });
    t.is(fits.usage.promptTokens, 30);
  } finally {
    await small.dispose();
  }
});

test.serial('Node Readable adapters: text and objectMode, with backpressure', async (t) => {
  const ref = await model.complete('Streams', { ...greedy, maxTokens: 30 });
  let text = '';
  for await (const s of model.generate('Streams', { ...greedy, maxTokens: 30 }).toReadable()) text += s;
  t.is(text, ref.text);
  const chunks = [];
  for await (const c of model.generate('Streams', { ...greedy, maxTokens: 30 }).toReadable({ objectMode: true })) chunks.push(c);
  t.is(chunks.at(-1).finishReason, 'length');
  t.deepEqual(chunks.flatMap((c) => Array.from(c.tokens as Uint32Array)), Array.from(ref.tokens));

  // an unread stream holds the engine at its high-water mark
  const before = model.stats().generatedTokens;
  const idle = model.generate('Idle stream', { ...greedy, maxTokens: 500, highWaterMark: 4 }).toReadable();
  t.true(await until(() => model.stats().generatedTokens - before >= 4), 'the stream started');
  // then it stops: more time changes nothing (an upper bound, so a slow machine cannot fail it)
  await new Promise((r) => setTimeout(r, 300));
  const produced = model.stats().generatedTokens - before;
  t.true(produced <= 4 + 2, `at most highWaterMark (+ the stream's own small read-ahead): ${produced}`);
  t.is(model.stats().activeSequences, 1, 'paused, not ended');
  idle.destroy();
  t.true(await until(() => model.stats().activeSequences === 0), 'destroying the stream cancels the generation');
});

test.serial('web ReadableStream adapter, and cancel', async (t) => {
  const ref = await model.complete('Web', { ...greedy, maxTokens: 20 });
  const reader = model.generate('Web', { ...greedy, maxTokens: 20 }).toReadableStream({ text: true }).getReader();
  let text = '';
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    text += r.value as string;
  }
  t.is(text, ref.text);
  const stream = model.generate('Web cancel', { ...greedy, maxTokens: 10_000 }).toReadableStream();
  const r2 = stream.getReader();
  await r2.read();
  await r2.cancel();
  t.true(await until(() => model.stats().activeSequences === 0));
});

test.serial('validation messages of the sampling options', (t) => {
  t.throws(() => model.generate('x', { stop: [''] }), { instanceOf: RangeError, message: 'Expected non-empty strings for stop but received ""' });
  t.throws(() => model.generate('x', { stop: 5 as never }), { instanceOf: TypeError, message: 'Expected string or array of strings for stop but received 5 of type number' });
  t.throws(() => model.generate('x', { logitBias: { 50257: 1 } }), { instanceOf: RangeError, message: 'Expected integer between 0 and 50256 for logitBias key but received 50257' });
  t.throws(() => model.generate('x', { logitBias: { 5: 'a' as never } }), { instanceOf: TypeError, message: 'Expected number for logitBias[5] but received "a" of type string' });
  t.throws(() => model.generate('x', { logitBias: [1] as never }), { instanceOf: TypeError, message: 'Expected object or Map of token id to bias for logitBias but received an array' });
  t.throws(() => model.generate('x', { logprobs: 21 }), { instanceOf: RangeError, message: 'Expected integer between 0 and 20 for logprobs but received 21' });
  t.throws(() => model.generate('x', { repetitionPenalty: 0 }), { instanceOf: RangeError, message: 'Expected number between 0.01 and 100 for repetitionPenalty but received 0' });
  t.throws(() => model.generate('x', { penaltyWindow: -1 }), { instanceOf: RangeError, message: 'Expected integer between 0 and 1048576 for penaltyWindow but received -1' });
  t.throws(() => model.generate('x', { truncate: 'end' as never }), { instanceOf: RangeError, message: `Expected 'error' or 'start' for truncate but received "end" of type string` });
});

// topK, topP and minP keep the right candidates: every sampled token is checked against its
// step's top-20 alternatives (logprobs at temperature 1, the temperature sampled at here). On a
// model with a large init scale, whose next-token distributions are peaked enough that the
// top 20 hold most of the mass.
test.serial('topK, topP and minP only ever sample from the candidates they keep', async (t) => {
  const model = await loadModel(await testModel('tiny', 'f32', { initScale: 24 }), { threads: 2 });
  t.teardown(() => model.dispose());
  const prompts = ['Once upon a time', 'The results show', 'In 1887 the', 'She said that'];
  const steps = async (opts: Record<string, number>): Promise<Array<{ logprob: number; token: number; top: { token: number; logprob: number }[] }>> => {
    const out = [];
    for (const [i, p] of prompts.entries()) {
      const r = await model.complete(p, { maxTokens: 24, temperature: 1, ignoreEos: true, seed: 100 + i, logprobs: 20, ...opts });
      out.push(...r.logprobs!);
    }
    return out;
  };
  for (const k of [1, 3, 8]) {
    for (const s of await steps({ topK: k })) {
      const rank = s.top.findIndex((x) => x.token === s.token);
      t.true(rank >= 0 && rank < k, `topK ${k}: sampled rank ${rank}`);
    }
  }
  for (const p of [0.05, 0.3, 0.6]) {
    let checked = 0;
    for (const s of await steps({ topP: p })) {
      const rank = s.top.findIndex((x) => x.token === s.token);
      const massBefore = (r: number) => s.top.slice(0, r).reduce((a, x) => a + Math.exp(x.logprob), 0);
      if (rank >= 0) {
        t.true(massBefore(rank) < p + 1e-6, `topP ${p}: ${massBefore(rank)} of mass ranked before the sampled token`);
        checked++;
      } else {
        t.true(massBefore(20) < p + 1e-6, `topP ${p}: sampled past the top 20, which hold ${massBefore(20)}`);
      }
    }
    t.true(checked > 0, `topP ${p}: some samples fall in the top 20`);
  }
  for (const m of [0.2, 0.5, 0.9]) {
    for (const s of await steps({ minP: m })) {
      t.true(s.logprob >= s.top[0]!.logprob + Math.log(m) - 1e-5, `minP ${m}: p ${Math.exp(s.logprob)} vs top ${Math.exp(s.top[0]!.logprob)}`);
    }
  }
  // the three together, and a tiny topP is greedy
  for (const s of await steps({ topK: 10, topP: 0.5, minP: 0.1 })) t.true(s.top.findIndex((x) => x.token === s.token) < 10);
  const greedyRun = await model.complete('Once upon a time', { ...greedy, maxTokens: 16 });
  const tinyP = await model.complete('Once upon a time', { maxTokens: 16, temperature: 1, ignoreEos: true, topP: 1e-9, seed: 5 });
  t.deepEqual(Array.from(tinyP.tokens), Array.from(greedyRun.tokens));
});
