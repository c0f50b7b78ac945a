// Resident memory: what the engine reserves is not what a process pays for until it is used.
// This file runs in its own process (ava: workerThreads false) and its tests run one at a time,
// so process.memoryUsage().rss differences are this file's own allocations.
import test from 'ava';

import { loadModel, loadTokenizer } from '../../lib/index.js';
import { testModel, VOCAB_GGUF } from '../support/models.js';

const MiB = 2 ** 20;
const rss = () => process.memoryUsage().rss;

test.serial('a KV cache reserved for many slots is resident only where sequences have written', async (t) => {
  // 4 layers × 512 wide, f16 cells: 8 KiB per position, so 128 slots × 1024 positions reserve 1 GiB
  const path = await testModel({ nLayer: 4, nEmbd: 512, nHead: 8, nCtx: 1024 }, 'f16');
  const before = rss();
  const model = await loadModel(path, { threads: 1, maxSequences: 128, contextSize: 1024 });
  try {
    t.true(model.info.kvCacheBytes >= 1024 * MiB, `reserved ${model.info.kvCacheBytes / MiB} MiB`);
    const loaded = rss() - before;
    // the weights (≈ 60 MiB of f16, paged in as they are read) and compute buffers, not the cache
    t.true(loaded < 256 * MiB, `resident after load grew by ${(loaded / MiB).toFixed(1)} MiB`);
    const outs = await Promise.all([1, 2].map((seed) => model.complete('The cache', { maxTokens: 16, seed, ignoreEos: true })));
    for (const o of outs) t.is(o.tokens.length, 16);
    const used = rss() - before;
    t.log(`reserved ${(model.info.kvCacheBytes / MiB).toFixed(0)} MiB; resident grew ${(loaded / MiB).toFixed(1)} MiB at load, ${(used / MiB).toFixed(1)} MiB after generating`);
    t.true(used < 384 * MiB, `resident after two short generations grew by ${(used / MiB).toFixed(1)} MiB`);
  } finally {
    await model.dispose();
  }
});

test.serial('a loaded tokenizer keeps its tables, not the parse that built them', async (t) => {
  await loadTokenizer(VOCAB_GGUF); // the addon's and the JS module's own pages first
  const before = rss();
  const tok = await loadTokenizer(VOCAB_GGUF);
  const grown = rss() - before;
  t.deepEqual([...tok.tokenize('Hello world')], [15496, 995]);
  // GPT-2's tables are ≈ 4.5 MiB (merge-pair table 2, vocabulary 1, token bytes 0.5, merges as id
  // pairs 0.4). Before the pair table was sized by its real entries and the heap trimmed after
  // loading: 25 MiB; before its slots were packed and the merges kept as ids: 8-10 MiB.
  t.log(`resident grew by ${(grown / MiB).toFixed(1)} MiB`);
  t.true(grown < 8 * MiB, `resident grew by ${(grown / MiB).toFixed(1)} MiB`);
});
