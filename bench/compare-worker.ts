// One measurement group of bench/compare.ts in a fresh process, so that load time and peak RSS
// are this group's own. Prints one JSON line on stdout. Not meant to be run by hand.
//
//   tsx bench/compare-worker.ts <ours|nlc> <single|agg|agg1|ttft> <model.gguf> <threads> <runs> [batchInvariant]
//
// single: load time, pp512 and tg128 (after a 128-token prompt), medians of <runs>; peak RSS
// agg:    aggregate generation of 4/16/32 concurrent 128+128 streams, medians of <runs>; peak RSS
// agg1:   agg's configuration with one sequence, one 128+128 stream; peak RSS as rss_base (the
//         baseline of the per-extra-stream RSS: the same context per sequence as agg, unlike single's)
// ttft:   time to first token of a new 128-token request while 16 streams are generating
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [engine, group, modelPath, threadsArg, runsArg, biArg] = process.argv.slice(2);
const threads = Number(threadsArg);
const runs = Number(runsArg);
const batchInvariant = biArg !== 'false';
const STREAMS = [4, 16, 32];
/** Positions of the single-stream context: llama-bench -p 512 -n 128 -d 0,128 needs at most 640. */
const SINGLE_CONTEXT = 640;
/** Positions per sequence when streams are batched: 128 + 128. */
const STREAM_CONTEXT = 256;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// distinct prompts (no prefix reuse between runs); ids below 50000 are plain GPT-2 tokens
const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % 50000);
const now = () => performance.now();
const maxRssBytes = () => process.resourceUsage().maxRSS * 1024;

async function seq(n: number, f: (i: number) => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await f(i));
  return out;
}

/** What the groups need from an engine; one stream = one sequence/request. */
interface Engine {
  /** prefill only, seconds */
  prefill(tokens: number[]): Promise<number>;
  /** greedy generation of n tokens after the prompt; calls onToken per generated token */
  generate(prompt: number[], n: number, onToken: () => void): Promise<void>;
  dispose(): Promise<void>;
}

async function open(maxSequences: number, contextSize = maxSequences === 1 ? SINGLE_CONTEXT : STREAM_CONTEXT): Promise<{ engine: Engine; loadS: number }> {
  if (engine === 'ours') {
    const { loadModel } = await import('../lib/index.js');
    const t0 = now(); // load time: the model and its engine, not the library's own start
    // the same positions per sequence as the peers get: alone, 640 (llama-bench's largest
    // context in this run: pp512 at depth 128); 256 (128+128) when batched
    const m = await loadModel(modelPath!, { threads, maxSequences, batchInvariant, contextSize });
    const loadS = (now() - t0) / 1000;
    return {
      loadS,
      engine: {
        async prefill(tokens) {
          const t = now();
          await m.evaluate(tokens);
          return (now() - t) / 1000;
        },
        async generate(prompt, n, onToken) {
          for await (const c of m.generate(prompt, { maxTokens: n, temperature: 0, ignoreEos: true, highWaterMark: 1024 })) {
            for (let i = 0; i < c.tokens.length; i++) onToken();
          }
        },
        dispose: () => m.dispose(),
      },
    };
  }
  // node-llama-cpp from bench/peers (bench/build-peers.mjs), prebuilt CPU binary
  const peers = join(dirname(fileURLToPath(import.meta.url)), 'peers', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
  const nlc = await import(peers);
  const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: threads });
  const t0 = now(); // as ours: model + context, not getLlama (which tests its binary in a child process)
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize, // per sequence
    sequences: maxSequences,
    batchSize: 512,
    threads,
  });
  const loadS = (now() - t0) / 1000;
  // the part of node-llama-cpp's LlamaContextSequence used here (the peer is not a dependency)
  interface PeerSequence {
    clearHistory(): Promise<void>;
    evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
    evaluate(tokens: number[], options: { temperature: number }): AsyncIterable<unknown>;
  }
  const free: PeerSequence[] = Array.from({ length: maxSequences }, () => context.getSequence());
  async function withSeq<T>(f: (s: PeerSequence) => Promise<T>): Promise<T> {
    const s = free.pop();
    if (!s) throw new Error('no free sequence');
    try {
      await s.clearHistory();
      return await f(s);
    } finally {
      free.push(s);
    }
  }
  return {
    loadS,
    engine: {
      prefill: (tokens) => withSeq(async (s) => {
        const t = now();
        await s.evaluateWithoutGeneratingNewTokens(tokens);
        return (now() - t) / 1000;
      }),
      generate: (prompt, n, onToken) => withSeq(async (s) => {
        let k = 0;
        for await (const _ of s.evaluate(prompt, { temperature: 0 })) {
          onToken();
          if (++k >= n) break;
        }
      }),
      async dispose() {
        await context.dispose();
        await model.dispose();
        await llama.dispose();
      },
    },
  };
}

async function tg128(e: Engine, seed: number): Promise<number> {
  // from the first generated token to the 128th: generation only, after a 128-token prompt
  let first = 0;
  let n = 0;
  await e.generate(ids(128, seed), 128, () => {
    if (n++ === 0) first = now();
  });
  return (n - 1) / ((now() - first) / 1000);
}

async function aggregate(e: Engine, streams: number, seed: number): Promise<number> {
  // generated tokens / wall time (prefill included) for N concurrent 128+128 requests
  let generated = 0;
  const t0 = now();
  await Promise.all(Array.from({ length: streams }, (_, i) => e.generate(ids(128, seed + i), 128, () => generated++)));
  return generated / ((now() - t0) / 1000);
}

/** per TTFT run: how many of the 16 background streams had already finished at the first token */
const ttftFinishedBefore: number[] = [];
async function ttft(e: Engine, seed: number): Promise<number> {
  // 16 streams, each long enough to outlast the measurement; once all 16 decode, a new request
  let started = 0;
  let resolveAll!: () => void;
  const allStarted = new Promise<void>((r) => (resolveAll = r));
  let finished = 0;
  const background = Array.from({ length: 16 }, async (_, i) => {
    let first = true;
    await e.generate(ids(128, seed + i), 128, () => {
      if (first) {
        first = false;
        if (++started === 16) resolveAll();
      }
    });
    finished++;
  });
  await allStarted;
  let t1 = 0;
  const t0 = now();
  let finishedBefore = 0;
  await e.generate(ids(128, seed + 100), 1, () => {
    t1 = now();
    finishedBefore = finished;
  });
  await Promise.all(background);
  ttftFinishedBefore.push(finishedBefore);
  return (t1 - t0) / 1000;
}

const out: Record<string, number> = {};
if (group === 'single') {
  const { engine: e, loadS } = await open(1);
  out['load_s'] = loadS;
  await e.generate(ids(8, 1), 4, () => {}); // warm-up
  out['pp512'] = median(await seq(runs, async (i) => 512 / (await e.prefill(ids(512, 100 + i)))));
  out['tg128'] = median(await seq(runs, (i) => tg128(e, 200 + i)));
  out['rss_bytes'] = maxRssBytes();
  await e.dispose();
} else if (group === 'agg') {
  const { engine: e } = await open(Math.max(...STREAMS));
  await e.generate(ids(8, 1), 4, () => {});
  for (const s of STREAMS) out[`agg${s}`] = median(await seq(runs, (i) => aggregate(e, s, 1000 * s + 100 * i)));
  out['rss_bytes'] = maxRssBytes();
  await e.dispose();
} else if (group === 'agg1') {
  const { engine: e } = await open(1, STREAM_CONTEXT);
  await e.generate(ids(8, 1), 4, () => {});
  out['agg1'] = median(await seq(runs, (i) => aggregate(e, 1, 100 * i)));
  out['rss_base'] = maxRssBytes();
  await e.dispose();
} else if (group === 'ttft') {
  const { engine: e } = await open(17);
  await e.generate(ids(8, 1), 4, () => {});
  out['ttft_s'] = median(await seq(runs, (i) => ttft(e, 5000 + 1000 * i)));
  out['ttft_bg_finished_max'] = Math.max(...ttftFinishedBefore);
  await e.dispose();
} else {
  throw new Error(`unknown group ${group}`);
}
console.log(JSON.stringify(out));
