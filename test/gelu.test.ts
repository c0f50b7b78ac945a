// GPT-2's GELU runs as our own CPU op (native/gpt/gelu.cpp: ggml's rounding to f16 and its lookup
// table, eight elements at a time) and must give ggml's GELU to the bit, so that parity with
// llama.cpp, which uses ggml's, is untouched. GPT2_NODE_PORTABLE_KERNELS=1 (read at every step)
// puts ggml's GELU back. On a q8_0 model a prompt's logits depend on no other kernel of ours: its
// rows attend through ggml's flash attention and its LM head is ggml's quantized matmul. So the
// logits of every position must be equal to the bit with and without the switch; one GELU output
// one ulp off anywhere in 12 layers × 300 rows × 3072 would show.
import test from 'ava';

import { loadModel } from '../lib/index.js';
import { testModel } from './support/models.js';

test('our GELU gives ggml\'s GELU to the bit (every logit of a 300-token prompt, 124M q8_0)', async (t) => {
  // init scale 4: activations reach the table's ±10 cut-offs, not only its middle
  const m = await loadModel(await testModel('124M', 'q8_0', { initScale: 4 }), { threads: 2 });
  try {
    const prompt = Array.from({ length: 300 }, (_, i) => (i * 7919 + 5) % 50000);
    const ours = await m.evaluate(prompt, { allPositions: true });
    process.env.GPT2_NODE_PORTABLE_KERNELS = '1';
    let ggml;
    try {
      ggml = await m.evaluate(prompt, { allPositions: true });
    } finally {
      delete process.env.GPT2_NODE_PORTABLE_KERNELS;
    }
    t.is(ours.length, ggml.length);
    let differ = 0;
    for (let i = 0; i < ours.length; i++) if (!Object.is(ours[i], ggml[i])) differ++;
    t.is(differ, 0, `${differ} of ${ours.length} logits differ`);
  } finally {
    await m.dispose();
  }
});
