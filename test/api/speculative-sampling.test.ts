// Speculative sampling keeps the model's distribution: the token at the first verified position
// (the second one generated: the first comes from the prompt's own step) is drawn over thousands
// of seeds, and its joint distribution with the first token is compared with the one computed
// from the model's logits (evaluate()), by a chi-square test. Three predictors: a draft close to
// the model (the same weights in q4_0: most guesses kept), a draft unrelated to it (most guesses
// replaced by a draw from the residual), and prompt lookup (guesses made with certainty).
import test, { type ExecutionContext } from 'ava';

import { loadModel, type GenerateOptions, type Model } from '../../lib/index.js';
import { testModel } from '../support/models.js';

const RUNS = 4000;
const TOP_K = 5;
const PROMPT = 'one two three four five six seven eight nine ten one two three four five six seven eight';

let target: Model;
let near: Model;
let far: Model;
// For prompt lookup: a prompt ending in the model's own greedy loop, so that the first sampled
// token often occurs earlier in it and lookup has a guess for the second.
let looping: string;

test.before(async () => {
  target = await loadModel(await testModel('tiny', 'f16', { initScale: 4 }), { threads: 2, maxSequences: 16 });
  near = await loadModel(await testModel('tiny', 'q4_0', { initScale: 4 }), { threads: 2 });
  far = await loadModel(await testModel('tiny', 'f16', { initScale: 4, seed: 2 }), { threads: 2 });
  looping = 'The quick brown fox' + (await target.complete('The quick brown fox', { maxTokens: 48, temperature: 0, ignoreEos: true })).text;
});

test.after.always(async () => {
  for (const m of [target, near, far]) await m?.dispose();
});

// The sampler's distribution at temperature 1 with top-k: softmax over the k largest logits.
function topK(logits: Float32Array): Map<number, number> {
  const ids = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, TOP_K);
  const max = logits[ids[0]!]!;
  const w = ids.map((i) => Math.exp(logits[i]! - max));
  const sum = w.reduce((a, b) => a + b, 0);
  return new Map(ids.map((id, j) => [id, w[j]! / sum]));
}

// Upper tail of the chi-square distribution with k degrees of freedom, as a z-score
// (Wilson–Hilferty: (X/k)^(1/3) is close to normal); z > 3.72 is p < 1e-4.
function chiSquareZ(x: number, k: number): number {
  const m = 1 - 2 / (9 * k);
  return (Math.cbrt(x / k) - m) / Math.sqrt(2 / (9 * k));
}

async function expectedJoint(prompt: Uint32Array): Promise<Map<string, number>> {
  const first = topK(await target.evaluate(prompt));
  const joint = new Map<string, number>();
  for (const [t1, p1] of first) {
    const second = topK(await target.evaluate([...prompt, t1]));
    for (const [t2, p2] of second) joint.set(`${t1},${t2}`, p1 * p2);
  }
  return joint;
}

async function sampleJoint(prompt: string, speculation: GenerateOptions['speculation']) {
  const counts = new Map<string, number>();
  let drafted = 0, accepted = 0, speculated = 0;
  const batch = 32;
  for (let from = 0; from < RUNS; from += batch) {
    const runs = await Promise.all(Array.from({ length: batch }, (_, i) => target.complete(prompt, {
      maxTokens: 3, temperature: 1, topK: TOP_K, seed: from + i, ignoreEos: true, speculation,
    })));
    for (const r of runs) {
      const key = `${r.tokens[0]},${r.tokens[1]}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      drafted += r.usage.draftedTokens!;
      accepted += r.usage.acceptedTokens!;
      if (r.usage.draftedTokens! > 0) speculated++;
    }
  }
  return { counts, drafted, accepted, speculated };
}

// Pearson's chi-square over the cells expected at least 5 times (the rest pooled).
function chiSquare(t: ExecutionContext, counts: Map<string, number>, expected: Map<string, number>) {
  let x = 0, cells = 0, restObserved = 0, restExpected = 0;
  for (const [key, p] of expected) {
    const e = p * RUNS;
    const o = counts.get(key) ?? 0;
    if (e < 5) { restObserved += o; restExpected += e; continue; }
    x += (o - e) ** 2 / e;
    cells++;
  }
  for (const [key, o] of counts) if (!expected.has(key)) t.fail(`(${key}) is outside the model's top-${TOP_K} distribution (${o} times)`);
  if (restExpected > 0) { x += (restObserved - restExpected) ** 2 / restExpected; cells++; }
  return { x, df: cells - 1, z: chiSquareZ(x, cells - 1) };
}

// name, the speculation, the prompt, the share of runs whose second token must have been guessed
const cases: Array<[string, () => GenerateOptions['speculation'], () => string, number]> = [
  ['a draft close to the model', () => ({ predictor: 'draft', draft: near, minConfidence: 0 }), () => PROMPT, 0.9],
  ['a draft unrelated to the model', () => ({ predictor: 'draft', draft: far, minConfidence: 0 }), () => PROMPT, 0.9],
  ['prompt lookup', () => ({ predictor: 'lookup', ngramMin: 1 }), () => looping, 0.15],
];

for (const [name, speculation, prompt, guessed] of cases) {
  test.serial(`speculative sampling with ${name} draws from the model's distribution (chi-square, ${RUNS} seeds)`, async (t) => {
    const expected = await expectedJoint(target.tokenize(prompt()));
    const { counts, drafted, accepted, speculated } = await sampleJoint(prompt(), speculation());
    t.true(speculated > RUNS * guessed, `the second token was guessed in ${speculated} of ${RUNS} runs`);
    const { x, df, z } = chiSquare(t, counts, expected);
    t.log(`${name}: ${accepted} of ${drafted} guesses kept; chi-square ${x.toFixed(1)} on ${df} df (z ${z.toFixed(2)})`);
    t.true(z < 3.72, `chi-square ${x.toFixed(1)} on ${df} degrees of freedom: p < 1e-4`);
    // the same statistic against a wrong distribution (the first token's twice over) must fail:
    // the test has the power to see a sampler that is off
    const wrong = new Map<string, number>();
    const first = topK(await target.evaluate(target.tokenize(prompt())));
    for (const [t1, p1] of first) for (const [t2, p2] of first) wrong.set(`${t1},${t2}`, p1 * p2);
    t.true(chiSquareZ(chiSquare({ fail: () => undefined } as unknown as ExecutionContext, counts, wrong).x, df) > 10);
  });
}

test.serial('speculative sampling is reproducible: the same seed gives the same tokens', async (t) => {
  const opts = { maxTokens: 40, temperature: 0.9, topP: 0.95, seed: 7, ignoreEos: true } as const;
  for (const [, speculation] of cases) {   // (the same prompt for all: lookup guesses from its repeats)
    const a = await target.complete(PROMPT, { ...opts, speculation: speculation() });
    const b = await target.complete(PROMPT, { ...opts, speculation: speculation() });
    t.deepEqual(Array.from(a.tokens), Array.from(b.tokens));
    // and alone or among others
    const [c] = await Promise.all([
      target.complete(PROMPT, { ...opts, speculation: speculation() }),
      target.complete('something else entirely', { ...opts, seed: 8, speculation: speculation() }),
      target.complete(PROMPT, { ...opts, seed: 9 }),
    ]);
    t.deepEqual(Array.from(c.tokens), Array.from(a.tokens));
  }
});
