// Speculative decoding (the `speculation` option): output equal to the output without it (token
// for token and logprob for logprob when greedy; the same distribution when sampling), inside
// continuous batching, with stop strings, maxTokens, backpressure and abort exact.
import test from 'ava';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Gpt2Error, loadModel, type Completion, type GenerateOptions, type Model } from '../../lib/index.js';
import { writeMicroModel } from '../support/micro-model.js';
import { testModel } from '../support/models.js';
import { until } from '../support/until.js';

const MID = { nLayer: 4, nEmbd: 256, nHead: 4, nCtx: 512 };

let tiny: Model;        // target: 2 layers, 64 wide, f16
let tinyTwin: Model;    // the same file loaded again: a draft that agrees with the target
let tinyQ4: Model;      // the target quantized to q4_0: a draft close to it but not equal
let other: Model;       // another random model with GPT-2's vocabulary: a draft that mostly disagrees
let mid8: Model;        // target: 4 layers, 256 wide, q8_0

test.before(async () => {
  const tinyPath = await testModel('tiny', 'f16', { initScale: 4 });
  tiny = await loadModel(tinyPath, { threads: 2, maxSequences: 8 });
  tinyTwin = await loadModel(tinyPath, { threads: 2 });
  tinyQ4 = await loadModel(await testModel('tiny', 'q4_0', { initScale: 4 }), { threads: 2 });
  other = await loadModel(await testModel('tiny', 'f16', { initScale: 4, seed: 2 }), { threads: 2 });
  mid8 = await loadModel(await testModel(MID, 'q8_0', { initScale: 4 }), { threads: 2, maxSequences: 4 });
});

test.after.always(async () => {
  for (const m of [tiny, tinyTwin, tinyQ4, other, mid8]) await m?.dispose();
});

const greedy = { temperature: 0, ignoreEos: true, logprobs: 3 } as const;

function same(t: import('ava').ExecutionContext, got: Completion, want: Completion, what: string): void {
  t.deepEqual(Array.from(got.tokens), Array.from(want.tokens), `${what}: tokens`);
  t.is(got.text, want.text, `${what}: text`);
  // logprobs come from each position's row of logits: equal to the bit only if verifying the
  // guesses in one step computed the rows a step per token computes
  t.deepEqual(got.logprobs, want.logprobs, `${what}: logprobs`);
  t.is(got.finishReason, want.finishReason, `${what}: finish reason`);
}

// A prompt whose greedy continuation (under these random weights) soon loops, so that prompt
// lookup finds its guesses in the output so far.
const LOOPING = 'one two three four five six seven eight nine ten one two three four five six seven eight nine ten one two';

test.serial('greedy output with prompt lookup is the output without it, token for token (f16 and q8_0)', async (t) => {
  for (const [name, model] of [['tiny f16', tiny], ['4x256 q8_0', mid8]] as const) {
    for (const prompt of [LOOPING, 'The quick brown fox', 'In 1905 Einstein published']) {
      const opts: GenerateOptions = { ...greedy, maxTokens: 96 };
      const base = await model.complete(prompt, opts);
      for (const ngram of [{ ngramMin: 1, ngramMax: 2 }, { ngramMin: 2, ngramMax: 4 }]) {
        const spec = await model.complete(prompt, { ...opts, speculation: { predictor: 'lookup', ...ngram } });
        same(t, spec, base, `${name}, ${JSON.stringify(prompt.slice(0, 12))}, ngrams ${ngram.ngramMin}-${ngram.ngramMax}`);
        t.true(spec.usage.draftedTokens! >= spec.usage.acceptedTokens!);
      }
    }
  }
});

test.serial('prompt lookup guesses and keeps tokens where the output repeats itself', async (t) => {
  const base = await tiny.complete(LOOPING, { ...greedy, maxTokens: 200 });
  const spec = await tiny.complete(LOOPING, { ...greedy, maxTokens: 200, speculation: { predictor: 'lookup', ngramMin: 1 } });
  same(t, spec, base, 'looping');
  t.true(spec.usage.acceptedTokens! > 20, `kept ${spec.usage.acceptedTokens} of ${spec.usage.draftedTokens} guesses`);
});

test.serial('greedy output with a draft model is the output without it, whether the draft agrees or not', async (t) => {
  for (const [name, draft] of [['twin', tinyTwin], ['q4_0', tinyQ4], ['other', other]] as const) {
    for (const prompt of [LOOPING, 'The quick brown fox']) {
      const opts: GenerateOptions = { ...greedy, maxTokens: 80 };
      const base = await tiny.complete(prompt, opts);
      const spec = await tiny.complete(prompt, { ...opts, speculation: { predictor: 'draft', draft, minConfidence: 0 } });
      same(t, spec, base, `${name} draft`);
      t.true(spec.usage.draftedTokens! > 0, `${name}: guesses were made`);
      if (name === 'twin') t.is(spec.usage.acceptedTokens, spec.usage.draftedTokens, 'a draft equal to the target is always right');
    }
  }
  // the default minConfidence: an unsure draft sits out steps and catches up in one pass later
  const base = await tiny.complete('The quick brown fox', { ...greedy, maxTokens: 80 });
  const resting = await tiny.complete('The quick brown fox', { ...greedy, maxTokens: 80, speculation: { predictor: 'draft', draft: other } });
  same(t, resting, base, 'unsure draft');
  // a draft for a bigger target: the 4x256 q8_0 model drafted by the tiny one (same vocabulary)
  const big = await mid8.complete('The quick brown fox', { ...greedy, maxTokens: 64 });
  const spec = await mid8.complete('The quick brown fox', { ...greedy, maxTokens: 64, speculation: { predictor: 'draft', draft: tiny, minConfidence: 0 } });
  same(t, spec, big, 'tiny drafting for 4x256');
});

test.serial('maxTokens and stop strings are exact: nothing past them reaches the consumer', async (t) => {
  const draft = { predictor: 'draft', draft: tinyTwin, minConfidence: 0 } as const;
  for (const maxTokens of [1, 2, 5, 9, 10, 17]) {
    const spec = await tiny.complete(LOOPING, { ...greedy, maxTokens, speculation: draft });
    t.is(spec.tokens.length, maxTokens);
    t.is(spec.finishReason, 'length');
  }
  const base = await tiny.complete(LOOPING, { ...greedy, maxTokens: 60 });
  // a stop string from the middle of the output: the text ends right before it
  const stop = base.text.slice(Math.floor(base.text.length / 2), Math.floor(base.text.length / 2) + 6);
  const cut = base.text.indexOf(stop);
  for (const speculation of [draft, { predictor: 'lookup', ngramMin: 1 } as const]) {
    const chunks: string[] = [];
    let last: Completion['usage'] | undefined;
    for await (const c of tiny.generate(LOOPING, { ...greedy, maxTokens: 60, stop, speculation })) {
      chunks.push(c.text);
      if (c.usage) last = c.usage;
    }
    t.is(chunks.join(''), base.text.slice(0, cut), `${speculation.predictor}: the text before the stop string, nothing after`);
    t.truthy(last);
  }
});

test.serial('speculating and plain sequences share steps; each gets its solo output', async (t) => {
  const prompts = ['The quick brown fox', LOOPING, 'In 1905 Einstein published', 'Once upon a time', 'A B C D E F A B C', 'Hello'];
  const solo: Completion[] = [];
  for (const p of prompts) solo.push(await tiny.complete(p, { ...greedy, maxTokens: 48 }));
  const specs: Array<GenerateOptions['speculation']> = [
    { predictor: 'lookup', ngramMin: 1 }, { predictor: 'draft', draft: tinyTwin, minConfidence: 0 }, undefined,
    { predictor: 'draft', draft: other, minConfidence: 0 }, { predictor: 'lookup' }, undefined,
  ];
  const stepsBefore = tiny.stats().steps;
  const together = await Promise.all(prompts.map((p, i) => tiny.complete(p, { ...greedy, maxTokens: 48, speculation: specs[i] })));
  together.forEach((c, i) => same(t, c, solo[i]!, `prompt ${i}`));
  t.true(tiny.stats().steps - stepsBefore < 48 + 6, 'the sequences ran in shared steps');
  t.is(tiny.stats().activeSequences, 0);
});

test.serial('backpressure: a speculating stream never runs more than highWaterMark tokens ahead', async (t) => {
  const hwm = 6;
  const gen = tiny.generate(LOOPING, { ...greedy, maxTokens: 150, highWaterMark: hwm, speculation: { predictor: 'draft', draft: tinyTwin, minConfidence: 0 } });
  t.true(await until(() => gen.buffered === hwm));
  await new Promise((r) => setTimeout(r, 150));
  t.is(gen.buffered, hwm, 'guesses are capped by the credit left');
  const got: number[] = [];
  for await (const c of gen) {
    got.push(...c.tokens);
    t.true(gen.buffered <= hwm);
    await new Promise((r) => setTimeout(r, 1));
  }
  const base = await tiny.complete(LOOPING, { ...greedy, maxTokens: 150 });
  t.deepEqual(got, Array.from(base.tokens));
});

test.serial('abort and break end a speculating stream and free its slot', async (t) => {
  const ac = new AbortController();
  const gen = tiny.generate(LOOPING, { ...greedy, maxTokens: 400, signal: ac.signal, speculation: { predictor: 'lookup', ngramMin: 1 } });
  let n = 0;
  let reason: string | undefined;
  for await (const c of gen) {
    n += c.tokens.length;
    if (n > 10) ac.abort();
    reason = c.finishReason ?? reason;
  }
  t.is(reason, 'abort');
  for await (const c of tiny.generate(LOOPING, { ...greedy, maxTokens: 400, speculation: { predictor: 'draft', draft: other, minConfidence: 0 } })) {
    if (c.tokens.length > 0) break;
  }
  t.true(await until(() => tiny.stats().activeSequences === 0));
});

test.serial('stats() and usage count the guesses and the kept ones', async (t) => {
  const before = tiny.stats();
  const r = await tiny.complete(LOOPING, { ...greedy, maxTokens: 40, speculation: { predictor: 'draft', draft: tinyTwin, minConfidence: 0 } });
  const after = tiny.stats();
  t.true(r.usage.draftedTokens! > 0);
  t.is(after.draftedTokens - before.draftedTokens, r.usage.draftedTokens!);
  t.is(after.acceptedTokens - before.acceptedTokens, r.usage.acceptedTokens!);
  t.is(after.generatedTokens - before.generatedTokens, 40);
  t.true(after.steps - before.steps < 40, 'fewer steps than tokens');
  const plain = await tiny.complete('x', { maxTokens: 3 });
  t.is(plain.usage.draftedTokens, undefined, 'no speculation, no counts');
});

test.serial('a draft model disposed mid-generation, or with a shorter context, changes nothing in the output', async (t) => {
  const draft = await loadModel(await testModel('tiny', 'f16', { initScale: 4 }), { threads: 2 });
  const gen = tiny.generate(LOOPING, { ...greedy, maxTokens: 64, highWaterMark: 64, speculation: { predictor: 'draft', draft, minConfidence: 0 } });
  const first = await gen.next();
  await draft.dispose();
  const got = [...(first.value?.tokens ?? [])];
  for await (const c of gen) got.push(...c.tokens);
  const base = await tiny.complete(LOOPING, { ...greedy, maxTokens: 64 });
  t.deepEqual(got, Array.from(base.tokens));
  // a draft whose context (64) ends long before the target's: guesses stop there, output the same
  const short = await loadModel(await testModel({ nLayer: 1, nEmbd: 64, nHead: 4, nCtx: 64 }, 'f16', { initScale: 4 }), { threads: 2 });
  try {
    const long = await mid8.complete('The quick brown fox', { ...greedy, maxTokens: 120 });
    const spec = await mid8.complete('The quick brown fox', { ...greedy, maxTokens: 120, speculation: { predictor: 'draft', draft: short, minConfidence: 0 } });
    same(t, spec, long, 'short draft');
    t.true(spec.usage.draftedTokens! > 0);
  } finally {
    await short.dispose();
  }
});

test.serial('bad speculation options are TypeErrors and RangeErrors; a draft with another vocabulary is ERR_INCOMPATIBLE_MODEL', async (t) => {
  const g = (speculation: unknown) => () => tiny.generate('x', { speculation } as GenerateOptions);
  t.throws(g('lookup'), { instanceOf: TypeError, message: /speculation/ });
  t.throws(g({}), { instanceOf: TypeError, message: /speculation\.predictor/ });
  t.throws(g({ predictor: 'medusa' }), { instanceOf: RangeError, message: /speculation\.predictor/ });
  t.throws(g({ predictor: 'draft' }), { instanceOf: TypeError, message: /speculation\.draft/ });
  t.throws(g({ predictor: 'draft', draft: {} }), { instanceOf: TypeError, message: /speculation\.draft/ });
  t.throws(g({ predictor: 'lookup', draft: tinyTwin }), { instanceOf: RangeError, message: /speculation\.draft/ });
  t.throws(g({ predictor: 'lookup', maxDraft: 0 }), { instanceOf: RangeError, message: /speculation\.maxDraft/ });
  t.throws(g({ predictor: 'lookup', maxDraft: 1.5 }), { instanceOf: RangeError, message: /speculation\.maxDraft/ });
  t.throws(g({ predictor: 'lookup', maxDraft: '8' }), { instanceOf: TypeError, message: /speculation\.maxDraft/ });
  t.throws(g({ predictor: 'lookup', ngramMin: 3, ngramMax: 2 }), { instanceOf: RangeError, message: /speculation\.ngramMax/ });
  t.throws(g({ predictor: 'draft', draft: tinyTwin, minConfidence: 2 }), { instanceOf: RangeError, message: /speculation\.minConfidence/ });

  const gone = await loadModel(await testModel('tiny', 'f16', { initScale: 4 }), { threads: 2 });
  await gone.dispose();
  const disposed = t.throws(g({ predictor: 'draft', draft: gone }), { instanceOf: Gpt2Error });
  t.is(disposed?.code, 'ERR_DISPOSED');

  const microPath = join(tmpdir(), `gpt2-node-micro-${process.pid}.gguf`);
  await writeMicroModel(microPath);
  const micro = await loadModel(microPath);
  try {
    const e = t.throws(g({ predictor: 'draft', draft: micro }), { instanceOf: Gpt2Error });
    t.is(e?.code, 'ERR_INCOMPATIBLE_MODEL');
    t.regex(e!.message, /vocabulary/);
  } finally {
    await micro.dispose();
    await rm(microPath, { force: true });
  }
  t.is(tiny.stats().activeSequences, 0, 'nothing was started by the refused requests');
});
