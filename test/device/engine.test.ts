// The engine on the device: batch invariance measured (a request alone against the same request
// among 31 others), and 32 concurrent streams with every way a generation can end. The rest of
// the engine's tests run on the device too: `npm run test:vulkan` runs engine-features,
// lifecycle and sampling with GPT2_NODE_DEVICE set (loadModel's default device).
//
// Runs on GPT2_NODE_TEST_DEVICE or the first GPU (test/support/device.ts); skipped without one.
import { loadModel, setLogger } from '../../lib/index.js';
import { maxDiff, onDevice, testDevice } from '../support/device.js';
import { testModel } from '../support/models.js';

const SHAPE = { nLayer: 4, nEmbd: 256, nHead: 4, nCtx: 512 };
const N = 32;
const prompt = (i: number) => `Request ${i} of ${N}: ${'the quick brown fox jumps over the lazy dog '.repeat(1 + (i % 5))}`;

onDevice('batch invariance on the device: a request alone and among 31 others (measured; info.batchInvariant says whether it holds)', async (t) => {
  const path = await testModel(SHAPE, 'f16', { initScale: 4 });
  const warnings: string[] = [];
  setLogger((level, _source, text) => { if (level === 'warn') warnings.push(text); }, 'warn');
  const m = await loadModel(path, { device: testDevice!.id, maxSequences: N });
  setLogger(null);
  try {
    const ids = Array.from({ length: N }, (_, i) => m.tokenize(prompt(i)));
    const alone: Float32Array[] = [];
    for (const p of ids) alone.push(await m.evaluate(p));
    const together = await Promise.all(ids.map((p) => m.evaluate(p)));
    let differ = 0, worst = 0;
    for (let i = 0; i < N; i++) {
      const { diff, scale } = maxDiff(together[i]!, alone[i]!);
      if (diff > 0) differ++;
      worst = Math.max(worst, diff / scale);
    }
    // greedy generation: 24 tokens alone, then all 32 at once
    const genAlone: string[] = [];
    for (let i = 0; i < N; i++) genAlone.push((await m.complete(prompt(i), { maxTokens: 24, temperature: 0 })).text);
    const genTogether = await Promise.all(Array.from({ length: N }, async (_, i) => (await m.complete(prompt(i), { maxTokens: 24, temperature: 0 })).text));
    const genDiffer = genAlone.filter((s, i) => s !== genTogether[i]).length;
    t.log(`${testDevice!.id}: prompt logits of ${differ} of ${N} requests differ alone vs together (largest ${(100 * worst).toExponential(2)} % of max|logit|); ` +
      `greedy text differs for ${genDiffer} of ${N}; info.batchInvariant ${String(m.info.batchInvariant)}`);
    if (m.info.batchInvariant) {
      t.is(differ, 0, 'info.batchInvariant is true, so a row must not depend on the batch');
      t.is(genDiffer, 0);
    } else {
      // not a silent lie: asked for (the default) and not honoured, the load said so
      t.true(warnings.some((w) => /batch invariance/.test(w)), `a warning says batch invariance does not hold: ${warnings.join(' | ')}`);
    }
  } finally {
    await m.dispose();
  }
});

onDevice('32 concurrent streams on the device: read to the end, slow, aborted, broken off; every one settles, the slots come back', async (t) => {
  const path = await testModel(SHAPE, 'f16', { initScale: 4 });
  const m = await loadModel(path, { device: testDevice!.id, maxSequences: 16 });   // fewer slots than streams: the queue too
  try {
    const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
      const kind = i % 4;
      const controller = new AbortController();
      const tokens: number[] = [];
      let finish = '';
      try {
        for await (const chunk of m.generate(prompt(i), { maxTokens: 32, seed: i, signal: controller.signal, highWaterMark: 1 + (i % 3) })) {
          tokens.push(...chunk.tokens);
          if (chunk.finishReason) finish = chunk.finishReason;
          if (kind === 1) await new Promise((r) => setTimeout(r, 5));   // a slow reader: backpressure pauses it
          if (kind === 2 && tokens.length >= 8) controller.abort();
          if (kind === 3 && tokens.length >= 4) break;
        }
      } catch (e) {
        if ((e as Error).name !== 'AbortError') throw e;
        finish = 'abort';
      }
      return { kind, tokens, finish };
    }));
    for (const r of results) {
      if (r.kind <= 1) {
        t.true(r.finish === 'length' || r.finish === 'stop', `finish ${r.finish}`);
        t.true(r.tokens.length <= 32);
        if (r.finish === 'length') t.is(r.tokens.length, 32);
      }
      if (r.kind === 2) t.true(r.finish === 'abort' || r.finish === 'stop', `finish ${r.finish}`);
      if (r.kind === 3) t.true(r.tokens.length >= 4 || r.finish === 'stop');
    }
    const s = m.stats();
    t.is(s.activeSequences, 0);
    t.is(s.queuedSequences, 0);
    t.is(s.kvUsed, 0);
  } finally {
    await m.dispose();
  }
});

onDevice('score and perplexity on the device agree with the CPU\'s', async (t) => {
  const path = await testModel(SHAPE, 'f32', { initScale: 4 });
  const text = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness';
  const results: number[][] = [];
  const ppl: number[] = [];
  for (const device of ['cpu', testDevice!.id]) {
    const m = await loadModel(path, { device });
    try {
      const scored = await m.score(text, [' and the spring of hope', ' and the winter of despair']);
      results.push(scored.flatMap((s) => Array.from(s.logprobs)));
      ppl.push((await m.perplexity(text.repeat(8), { window: 64, stride: 32 })).perplexity);
    } finally {
      await m.dispose();
    }
  }
  const { diff } = maxDiff(results[1]!, results[0]!);
  t.log(`score: largest log-probability difference ${diff.toExponential(2)}; perplexity CPU ${ppl[0]!.toFixed(4)}, device ${ppl[1]!.toFixed(4)}`);
  // log-probabilities of a 4-layer f32 model: the device's f32 matmuls differ in summation order only
  t.true(diff <= 1e-2, `${diff}`);
  t.true(Math.abs(ppl[1]! - ppl[0]!) <= 1e-3 * ppl[0]!, `perplexity ${ppl[1]} vs ${ppl[0]}`);
});
