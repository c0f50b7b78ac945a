// Load/dispose loops for LeakSanitizer (scripts/sanitize.sh runs this after the suite, with the
// ASan build and detect_leaks=1; not a test file of its own). Every native object the API makes is
// made and released many times: models (GGUF, and converted from a Hugging Face folder and a
// legacy file), generations finished, aborted and broken off, sessions, tokenizers and stream
// decoders, a model in a worker thread. At exit LeakSanitizer reports what is unreachable; the
// script counts the reports whose allocation passes through the addon.
import { Worker } from 'node:worker_threads';
import { dirname, join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadModel, loadTokenizer } from '../../lib/index.js';
import { writeHfFolder, writeLegacyGgml } from '../support/export-formats.js';
import { testModel, VOCAB_GGUF } from '../support/models.js';

const ROUNDS = Number(process.env.GPT2_NODE_LEAK_ROUNDS ?? 20);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const gguf = await testModel('tiny', 'f32', { initScale: 4 });
const dir = await mkdtemp(join(tmpdir(), 'gpt2-node-leak-loop-'));
const hf = join(dir, 'hf');
const legacy = join(dir, 'tiny.bin');
await writeHfFolder(gguf, hf);
await writeLegacyGgml(gguf, legacy);

for (let round = 0; round < ROUNDS; round++) {
  const model = await loadModel([gguf, hf, legacy][round % 3]!, { threads: 1 });
  await model.complete('Once upon a time', { maxTokens: 8, temperature: 0.8, seed: round });
  const ac = new AbortController();
  const aborted = model.generate('Abort me', { maxTokens: 64, signal: ac.signal });
  setTimeout(() => ac.abort(), 1);
  try { for await (const _ of aborted) { /* drain until the abort */ } } catch { /* ERR_ABORTED */ }
  for await (const _ of model.generate('Break early', { maxTokens: 64 })) break;
  const session = model.createSession();
  await session.complete('Hello', { maxTokens: 4 });
  await session.complete(' again', { maxTokens: 4 });
  // a generation left running when the model is disposed
  const pending = model.complete('Left running', { maxTokens: 256, ignoreEos: true }).catch(() => undefined);
  await model.dispose();
  await pending;

  const tok = await loadTokenizer(VOCAB_GGUF);
  const decoder = tok.createStreamDecoder();
  for (const id of tok.tokenize('streamed 🙂 text')) decoder.push(id);
  decoder.flush();
  (globalThis as { gc?: () => void }).gc?.();
}

// a model in a worker thread, the worker ended while it generates
const dist = pathToFileURL(join(root, 'dist', 'lib', 'index.js')).href;
for (let i = 0; i < 3; i++) {
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { loadModel } = await import(workerData.dist);
      const model = await loadModel(workerData.gguf, { threads: 1 });
      parentPort.postMessage('loaded');
      await model.complete('In a worker', { maxTokens: 1000, ignoreEos: true });
    })();`, { eval: true, workerData: { dist, gguf } });
  await new Promise((resolve) => worker.once('message', resolve));
  await worker.terminate();
}

await rm(dir, { recursive: true, force: true });
console.log(`leak loop: ${ROUNDS} rounds of load, generate, abort, break, session, dispose; 3 workers terminated while generating`);
