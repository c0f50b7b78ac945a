// Engine benchmark: single-stream prompt processing and generation, and aggregate generation
// with concurrent streams, for each engine configuration (today: batchInvariant on and off, to
// state what batch invariance costs). Ours only; the side-by-side with llama.cpp and
// node-llama-cpp is bench/compare.ts.
//
//   npx tsx bench/engine.ts [--shape 124M] [--type f16] [--threads 2] [--runs 3] [--streams 1,4,16,32]
//
// Prints a markdown table; medians of --runs runs for the single-stream rows.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { loadModel, type Model } from '../lib/index.js';
import { writeRandomModel, type NamedShape, type RandomModelType } from '../lib/testing/random-model.js';

import { cpuLine } from './cpu.js';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: '124M' },
    type: { type: 'string', default: 'f16' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    streams: { type: 'string', default: '4,16,32' },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const streamCounts = values.streams!.split(',').map(Number);

const dir = join(dirname(fileURLToPath(import.meta.url)), '.models');
mkdirSync(dir, { recursive: true });
const modelPath = join(dir, `gpt2-${values.shape}-${values.type}.gguf`);
if (!existsSync(modelPath)) {
  console.error(`writing ${modelPath}`);
  await writeRandomModel(modelPath, { shape: values.shape as NamedShape, type: values.type as RandomModelType, seed: 1, initScale: 4 });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % 50000);

let ppSeed = 100;
async function pp512(m: Model): Promise<number> {
  // a new prompt each run: the engine would otherwise reuse the previous run's KV (prefix reuse)
  const prompt = ids(512, ppSeed++);
  const t0 = performance.now();
  await m.evaluate(prompt);
  return 512 / ((performance.now() - t0) / 1000);
}

async function tg128(m: Model): Promise<number> {
  // time from the first token to the 128th: generation only, after a 128-token prompt
  let first = 0;
  let n = 0;
  for await (const c of m.generate(ids(128, 2), { maxTokens: 128, temperature: 0, ignoreEos: true, highWaterMark: 256 })) {
    if (c.tokens.length > 0 && n === 0) first = performance.now();
    n += c.tokens.length;
  }
  return (n - 1) / ((performance.now() - first) / 1000);
}

async function aggregate(m: Model, streams: number): Promise<number> {
  const t0 = performance.now();
  const outs = await Promise.all(Array.from({ length: streams }, (_, i) =>
    m.complete(ids(128, 10 + i), { maxTokens: 128, temperature: 0, ignoreEos: true })));
  const generated = outs.reduce((n, o) => n + o.tokens.length, 0);
  return generated / ((performance.now() - t0) / 1000);
}

const rows: string[] = [];
const configs = [{ batchInvariant: true }, { batchInvariant: false }];
const results: Record<string, Record<string, number>> = {};
let kernels = '';
for (const cfg of configs) {
  const name = `batchInvariant: ${cfg.batchInvariant}`;
  results[name] = {};
  const single = await loadModel(modelPath, { threads, ...cfg });
  if (cfg.batchInvariant) kernels = `our CPU kernels: ${single.info.cpuKernels}, lone row padded: ${single.info.padsLoneRow ? 'yes' : 'no'}`;
  await single.complete('warm up', { maxTokens: 4 });
  results[name]!['pp512 (t/s)'] = median(await seq(runs, () => pp512(single)));
  results[name]!['tg128 (t/s)'] = median(await seq(runs, () => tg128(single)));
  await single.dispose();
  const many = await loadModel(modelPath, { threads, maxSequences: Math.max(...streamCounts), ...cfg });
  for (const s of streamCounts) results[name]![`${s} streams, 128+128 (gen t/s)`] = await aggregate(many, s);
  await many.dispose();
}

async function seq(n: number, f: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

const metrics = Object.keys(results[`batchInvariant: true`]!);
rows.push(`| ${values.shape} ${values.type}, ${threads} threads | batchInvariant: true | batchInvariant: false | ratio |`);
rows.push('| --- | ---: | ---: | ---: |');
for (const k of metrics) {
  const a = results['batchInvariant: true']![k]!;
  const b = results['batchInvariant: false']![k]!;
  rows.push(`| ${k} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)}× |`);
}
console.log(`${new Date().toISOString().slice(0, 10)}, ${cpuLine()}, node ${process.version}; ${kernels}`);
console.log(rows.join('\n'));
