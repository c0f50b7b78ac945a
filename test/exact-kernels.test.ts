// Two of our CPU ops promise ggml's numbers to the bit, so that parity with llama.cpp (which uses
// ggml's) is untouched: GELU (native/gpt/gelu.cpp: ggml's rounding to f16 and its lookup table,
// eight at a time) and the quantized matmul (native/gpt/quant_matmul.cpp, q8_0, q4_0 and q4_K: ggml's
// per-block integer dot products and summation order, its work handed out first come first
// served, and for q4_K each weight block unpacked once for up to three rows).
// GPT2_NODE_PORTABLE_KERNELS=1 (read at every step) puts ggml's ops back for both.
//
// On a q8_0 model a prompt's logits depend on no other kernel of ours: prompt rows attend through
// ggml's flash attention. So every logit of every position must be equal to the bit with and
// without the switch. A 300-token prompt covers both matmul routes: two whole chunks of 128 rows
// (tinyBLAS), a last chunk of 44 rows (ours: 64 rows and fewer), and all 300 rows through the LM
// head (ours). One GELU output or one dot product one ulp off anywhere would show. On q4_K (as
// stored: batch invariance keeps it so) every row of every block matmul goes through ours.
import test, { type ExecutionContext } from 'ava';

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadModel, quantize } from '../lib/index.js';
import { testModel } from './support/models.js';

async function withPortableKernels<T>(f: () => Promise<T>): Promise<T> {
  process.env.GPT2_NODE_PORTABLE_KERNELS = '1';
  try {
    return await f();
  } finally {
    delete process.env.GPT2_NODE_PORTABLE_KERNELS;
  }
}

async function samePromptLogits(t: ExecutionContext, path: string): Promise<void> {
  const m = await loadModel(path, { threads: 2 });
  try {
    const prompt = Array.from({ length: 300 }, (_, i) => (i * 7919 + 5) % 50000);
    const ours = await m.evaluate(prompt, { allPositions: true });
    const ggml = await withPortableKernels(() => m.evaluate(prompt, { allPositions: true }));
    t.is(ours.length, 300 * 50257);
    let differ = 0;
    for (let i = 0; i < ours.length; i++) if (!Object.is(ours[i], ggml[i])) differ++;
    t.is(differ, 0, `${differ} of ${ours.length} logits differ`);
  } finally {
    await m.dispose();
  }
}

test('our GELU and q8_0 matmul give ggml\'s numbers to the bit (every logit of a 300-token prompt, 124M q8_0)', async (t) => {
  // init scale 4: activations reach GELU's ±10 cut-offs, not only the table's middle
  await samePromptLogits(t, await testModel('124M', 'q8_0', { initScale: 4 }));
});

test('our q4_0 LM head gives ggml\'s numbers to the bit (every logit of a 300-token prompt, 124M q4_0)', async (t) => {
  // the block weights are repacked by ggml and multiplied by its kernels; the head is ours
  await samePromptLogits(t, await testModel('124M', 'q4_0', { initScale: 4 }));
});

test('our q4_K matmul gives ggml\'s numbers to the bit (every logit of a 300-token prompt, 124M q4_K)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gpt2-node-q4k-'));
  try {
    const path = join(dir, 'q4_K.gguf');
    await quantize(await testModel('124M', 'f16', { initScale: 4 }), path, { type: 'q4_K' });
    await samePromptLogits(t, path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
