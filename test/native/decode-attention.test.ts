// Decoding rows (one-token segments) attend through our own CPU op, native/kernels/decode_attention.cpp;
// prompt chunks attend through ggml's flash attention. The two must give the same distributions:
// a greedy continuation's logprobs (every token after the first decoded as a one-token segment)
// are checked against evaluate() of the prompt and the continuation at once (segments of many
// tokens: flash attention). Both of the op's paths are checked: SIMD (AVX2, on x64) and the
// portable one (GPT2_NODE_KERNELS=portable, read at every step), on head widths that take each
// branch (64: whole 64-wide value blocks; 16: 8-wide blocks; 12: not a multiple of 8, portable).
// The switch also takes the LM head's own kernel (native/kernels/dense_matmul.cpp, f32 weights here)
// to its portable path, so the portable run checks that one too.
//
// Tolerance, |Δ logprob|, about 5x what was measured (random weights at init scale 4 amplify
// rounding differences layer by layer): with an f32 KV cache 1e-3 (both sides compute in f32, in
// different orders: measured ≤ 1.8e-4); with an f16 cache 1e-2 (flash attention also rounds the
// query to f16 for its dot products, ours keeps it f32: measured ≤ 2.1e-3). A wrong cell, scale or
// head would be off by orders of magnitude more.
import test from 'ava';

import { loadModel } from '../../lib/index.js';
import { testModel } from '../support/models.js';

const V = 50257;

function logSoftmaxAt(logits: Float32Array, row: number, token: number): number {
  const r = logits.subarray(row * V, (row + 1) * V);
  let max = -Infinity;
  for (const x of r) max = Math.max(max, x);
  let sum = 0;
  for (const x of r) sum += Math.exp(x - max);
  return r[token]! - max - Math.log(sum);
}

const shapes = [
  ['head width 64', { nLayer: 2, nEmbd: 128, nHead: 2, nCtx: 512 }],
  ['head width 16', 'tiny'],
  ['head width 12', { nLayer: 2, nEmbd: 96, nHead: 8, nCtx: 512 }],
] as const;

for (const kvCacheType of ['f32', 'f16'] as const) {
  const tolerance = kvCacheType === 'f32' ? 1e-3 : 1e-2;
  test.serial(`decoding attention agrees with flash attention over a whole text (${kvCacheType} KV cache), SIMD and portable`, async (t) => {
    for (const [label, shape] of shapes) {
      const m = await loadModel(await testModel(shape, 'f32', { initScale: 4 }), { threads: 2, kvCacheType });
      try {
        // 150 prompt tokens: a whole chunk of 128 and a partial one, then 40 decoded tokens
        const prompt = Array.from({ length: 150 }, (_, i) => (i * 7919 + 13) % 50000);
        const run = async () => {
          const c = await m.complete(prompt, { maxTokens: 40, temperature: 0, ignoreEos: true, logprobs: true });
          return { tokens: Array.from(c.tokens), logprobs: c.logprobs!.map((l) => l.logprob) };
        };
        const simd = await run();
        process.env.GPT2_NODE_KERNELS = 'portable';
        let portable;
        try {
          portable = await run();
        } finally {
          delete process.env.GPT2_NODE_KERNELS;
        }
        t.deepEqual(portable.tokens, simd.tokens, `${label}: the same greedy continuation`);

        const whole = await m.evaluate([...prompt, ...simd.tokens], { allPositions: true });
        let dSimd = 0;
        let dPortable = 0;
        let dPaths = 0;
        for (let i = 0; i < simd.tokens.length; i++) {
          const ref = logSoftmaxAt(whole, prompt.length - 1 + i, simd.tokens[i]!);
          dSimd = Math.max(dSimd, Math.abs(simd.logprobs[i]! - ref));
          dPortable = Math.max(dPortable, Math.abs(portable.logprobs[i]! - ref));
          dPaths = Math.max(dPaths, Math.abs(portable.logprobs[i]! - simd.logprobs[i]!));
        }
        t.log(`${label}, ${kvCacheType} KV: max |Δ logprob| SIMD ${dSimd.toExponential(2)}, portable ${dPortable.toExponential(2)} (tolerance ${tolerance}); between the two ${dPaths.toExponential(2)}`);
        t.true(dSimd <= tolerance, `${label}: SIMD path`);
        t.true(dPortable <= tolerance, `${label}: portable path`);
        t.true(dPaths <= tolerance, `${label}: the two paths`);
        if (process.arch === 'x64' && label !== 'head width 12') {
          // the switch works: the two paths sum in different orders (head width 12 is portable on both)
          t.true(dPaths > 0, `${label}: GPT2_NODE_KERNELS=portable took the portable path`);
        } else {
          t.log(`${label}: not checked that the two paths differ (${process.arch === 'x64' ? 'this head width is portable on both' : `no SIMD path on ${process.arch}`})`);
        }
      } finally {
        await m.dispose();
      }
    }
  });
}

// With four decoding rows or more per thread, a task is a whole row (every head, the cells read in
// one sweep); with fewer, one head. A head's arithmetic is meant to be the same either way, so a
// request's logprobs must be equal to the bit alone (12 one-head tasks) and among 7 others (8 rows
// on 2 threads: whole-row tasks), on each head width (12: portable on both).
for (const kvCacheType of ['f32', 'f16'] as const) {
  test.serial(`decoding attention: a row's numbers are the same in whole-row tasks and one-head tasks (${kvCacheType} KV cache)`, async (t) => {
    for (const [label, shape] of shapes) {
      const m = await loadModel(await testModel(shape, 'f32', { initScale: 4 }), { threads: 2, kvCacheType, maxSequences: 8 });
      try {
        const prompts = Array.from({ length: 8 }, (_, s) => Array.from({ length: 20 + 3 * s }, (_, i) => (i * 7919 + 104729 * (s + 1)) % 50000));
        const run = async (prompt: number[]) => {
          const c = await m.complete(prompt, { maxTokens: 24, temperature: 0, ignoreEos: true, logprobs: true });
          return { tokens: Array.from(c.tokens), logprobs: c.logprobs!.map((l) => l.logprob) };
        };
        const alone = [];
        for (const p of prompts) alone.push(await run(p));
        const together = await Promise.all(prompts.map(run));
        let differ = 0;
        for (let s = 0; s < prompts.length; s++) {
          if (JSON.stringify(together[s]) !== JSON.stringify(alone[s])) differ++;
        }
        t.is(differ, 0, `${label}, ${kvCacheType} KV: ${differ} of 8 requests differ between alone and together`);
      } finally {
        await m.dispose();
      }
    }
  });
}
