// Side-by-side benchmark (issue 6): gpt2-node against llama.cpp's own llama-bench and
// llama-batched-bench (built from the vendored tree) and node-llama-cpp 3.21.1 (bench/peers),
// on the same generated GGUF files, the same thread count, in one run. Build the peers first:
//
//   node bench/build-peers.mjs
//   npm run bench:compare -- [--threads 2] [--runs 3] [--agg-runs 1] [--models 124M-f16,124M-q8_0] [--quick]
//
// Measures, per model (ratio = ours / peer: above 1 is better for t/s, below 1 for s and MiB):
//   load          ours: loadModel() with one sequence; node-llama-cpp: getLlama + loadModel +
//                 createContext; llama.cpp: not measured by its tools
//   pp512         prompt processing, 512 tokens (llama-bench -p 512)
//   tg128         generation of 128 tokens after a 128-token prompt (llama-bench -n 128 -d 128);
//                 ours with the default batchInvariant: true and with false
//   N streams     generated tokens / wall time (prefill included) of N = 1, 4, 16, 32 concurrent
//                 128+128 requests (llama-batched-bench -npp 128 -ntg 128 -npl 4,16,32 and, in a
//                 process of its own, -npl 1: N·TG / T)
//   TTFT          time to first token of a new 128-token request while 16 streams generate
//                 (ours and node-llama-cpp; llama.cpp's tools have no such measure)
//   RSS           peak RSS of the single-stream process; per extra stream, (peak RSS of the
//                 32-stream process − that of the same configuration with one sequence and one
//                 stream) / 31 (llama-batched-bench: -npl 32 -c 8192 against -npl 1 -c 256)
// Each of ours / node-llama-cpp's groups runs in its own process (bench/compare-worker.ts).
// Ours and llama.cpp's tools alternate: --runs rounds of (ours single, ours single with
// batchInvariant: false, llama-bench -r 1), then --agg-runs rounds of (ours agg and
// agg1, llama-batched-bench for 4-32 and for 1); each number is the median over its rounds.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import ts from 'typescript';

import { cpuLine } from './cpu.js';

import { quantize, type QuantizeType } from '../lib/quantize.js';
import { writeRandomModel, type NamedShape, type RandomModelType } from '../lib/testing/random-model.js';

const RANDOM_TYPES: readonly string[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'];

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    'agg-runs': { type: 'string', default: '1' },
    models: { type: 'string', default: '124M-f16,124M-q8_0' },
    quick: { type: 'boolean', default: false },
    'no-node-llama-cpp': { type: 'boolean', default: false },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const aggRuns = Number(values['agg-runs']);
const models = (values.quick ? '124M-f16' : values.models!).split(',');

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const modelDir = join(here, '.models');
mkdirSync(modelDir, { recursive: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const commands: string[] = [];

function findTool(name: string): string | undefined {
  const candidates = [join(root, 'build', 'bin', name), join(root, 'build', 'llama', 'bin', name),
    join(root, 'build', 'Release', name), join(root, 'build', 'llama', 'tools', name.replace(/^llama-/, ''), name)];
  return candidates.find((p) => existsSync(p));
}
const llamaBench = findTool('llama-bench');
const batchedBench = findTool('llama-batched-bench');
const nlcPath = join(here, 'peers', 'node_modules', 'node-llama-cpp', 'package.json');
const haveNlc = !values['no-node-llama-cpp'] && existsSync(nlcPath);
if (!llamaBench || !batchedBench) console.error('llama-bench / llama-batched-bench not built (node bench/build-peers.mjs); llama.cpp column empty');
if (!haveNlc) console.error('node-llama-cpp not in bench/peers (node bench/build-peers.mjs); its column empty');

/** Runs a command under /usr/bin/time for its peak RSS; returns stdout and the RSS in bytes. */
function timed(cmd: string, args: string[]): { stdout: string; rssBytes: number } {
  const rssFile = join(tmpdir(), `gpt2-node-bench-rss-${process.pid}`);
  const shown = `${cmd.replace(root + '/', '')} ${args.map((a) => a.replace(root + '/', '')).join(' ')}`;
  commands.push(shown);
  console.error(`$ ${shown}`);
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, cmd, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${shown} failed (${r.status}):\n${r.stderr?.slice(-2000)}`);
  const rssBytes = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) * 1024;
  rmSync(rssFile, { force: true });
  return { stdout: r.stdout, rssBytes };
}

// The worker runs on plain node against the compiled package (dist/), as users run it: under
// tsx the same process carries ~37 MiB more RSS (the loader and esbuild), which would be
// charged to us in the RSS rows. TypeScript's transpiler turns it into bench/.compare-worker.mjs.
const workerJs = join(here, '.compare-worker.mjs');
{
  const src = readFileSync(join(here, 'compare-worker.ts'), 'utf8').replace("'../lib/index.js'", "'../dist/lib/index.js'");
  if (!existsSync(join(root, 'dist', 'lib', 'index.js'))) throw new Error('dist/ is missing: run npm run build:ts');
  writeFileSync(workerJs, ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
}

function worker(engine: 'ours' | 'nlc', group: string, model: string, batchInvariant = true, n = group.startsWith('agg') ? aggRuns : runs): Record<string, number> {
  const args = [workerJs, engine, group, model, String(threads), String(n), String(batchInvariant)];
  const r = timed(process.execPath, args);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as Record<string, number>;
}

type Row = { name: string; ours?: number; llama?: number; nlc?: number; unit: string };

/** Key by key medians of several runs' results. */
function medians(xs: Record<string, number>[]): Record<string, number> {
  const keys = new Set(xs.flatMap((x) => Object.keys(x)));
  return Object.fromEntries([...keys].map((k) => [k, median(xs.map((x) => x[k]).filter((v): v is number => v !== undefined))]));
}

/** One llama-bench run (-r 1): pp512, tg128 after 128, tg128 at depth 0, peak RSS. */
function llamaBenchOnce(path: string): Record<string, number> {
  const b = timed(llamaBench!, ['-m', path, '-p', '512', '-n', '128', '-d', '0,128', '-t', String(threads), '-r', '1', '-o', 'json']);
  const tests = JSON.parse(b.stdout) as Array<{ n_prompt: number; n_gen: number; n_depth: number; avg_ts: number }>;
  const out: Record<string, number> = { rss_single: b.rssBytes };
  const pp = tests.find((t) => t.n_prompt === 512 && t.n_depth === 0);
  const tg = tests.find((t) => t.n_gen === 128 && t.n_depth === 128);
  const tg0 = tests.find((t) => t.n_gen === 128 && t.n_depth === 0);
  if (pp) out['pp512'] = pp.avg_ts;
  if (tg) out['tg128'] = tg.avg_ts;
  if (tg0) out['tg128_d0'] = tg0.avg_ts;
  return out;
}

/** One llama-batched-bench run of 128 + 128 per sequence, for `npl` sequences (generated tokens / wall per count), peak RSS. */
function batchedBenchOnce(path: string, npl: number[], rssKey: string): Record<string, number> {
  const ctx = 256 * Math.max(...npl);
  const bb = timed(batchedBench!, ['-m', path, '-c', String(ctx), '-b', '2048', '-ub', '512', '-npp', '128', '-ntg', '128', '-npl', npl.join(','),
    '-t', String(threads), '--output-format', 'jsonl']);
  const out: Record<string, number> = { [rssKey]: bb.rssBytes };
  for (const line of bb.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as { pl: number; tg: number; t: number };
    out[`agg${j.pl}`] = (j.pl * j.tg) / j.t;
  }
  return out;
}

async function benchModel(spec: string): Promise<{ title: string; rows: Row[] }> {
  const [shape, type] = spec.split('-') as [NamedShape, QuantizeType];
  const path = join(modelDir, `gpt2-${shape}-${type}.gguf`);
  if (!existsSync(path)) {
    if (RANDOM_TYPES.includes(type)) {
      console.error(`writing ${path}`);
      await writeRandomModel(path, { shape, type: type as RandomModelType, seed: 1, initScale: 4 });
    } else {
      // k-quants and the rest: the f16 model's weights, quantized by our quantize() (ggml's quantizer)
      const f16 = join(modelDir, `gpt2-${shape}-f16.gguf`);
      if (!existsSync(f16)) await writeRandomModel(f16, { shape, type: 'f16', seed: 1, initScale: 4 });
      console.error(`quantizing ${f16} to ${type}`);
      await quantize(f16, path, { type });
    }
  }

  // ours and llama.cpp, interleaved: one run of each per round, medians over the rounds. This
  // machine's speed drifts by 10-20 % over minutes (a shared VM); running all of one engine and
  // then all of the other would charge that drift to one side.
  const o1s: Record<string, number>[] = [];
  const o1fs: Record<string, number>[] = [];
  const oAggs: Record<string, number>[] = [];
  const ls: Record<string, number>[] = [];
  const lAggs: Record<string, number>[] = [];
  const havePeers = llamaBench !== undefined && batchedBench !== undefined;
  for (let round = 0; round < runs; round++) {
    o1s.push(worker('ours', 'single', path, true, 1));
    o1fs.push(worker('ours', 'single', path, false, 1));
    if (havePeers) ls.push(llamaBenchOnce(path));
  }
  for (let round = 0; round < aggRuns; round++) {
    oAggs.push({ ...worker('ours', 'agg', path, true, 1), ...worker('ours', 'agg1', path, true, 1) });
    if (havePeers) lAggs.push({ ...batchedBenchOnce(path, [4, 16, 32], 'rss_multi'), ...batchedBenchOnce(path, [1], 'rss_base') });
  }
  const o1 = medians(o1s);
  const o1f = medians(o1fs);
  const oAgg = medians(oAggs);
  const oTtft = worker('ours', 'ttft', path, true);
  const l = { ...medians(ls), ...medians(lAggs) };

  // node-llama-cpp
  let n1: Record<string, number> = {};
  let nAgg: Record<string, number> = {};
  let nTtft: Record<string, number> = {};
  if (haveNlc) {
    try {
      n1 = worker('nlc', 'single', path);
      nAgg = { ...worker('nlc', 'agg', path), ...worker('nlc', 'agg1', path) };
      nTtft = worker('nlc', 'ttft', path);
    } catch (e) {
      console.error(`node-llama-cpp failed: ${(e as Error).message}`);
    }
  }

  const MiB = 1 << 20;
  const perExtra = (multi?: number, base?: number) => (multi && base ? (multi - base) / 31 / MiB : undefined);
  const rows: Row[] = [
    { name: 'load', unit: 's', ours: o1['load_s'], nlc: n1['load_s'] },
    { name: 'pp512', unit: 't/s', ours: o1['pp512'], llama: l['pp512'], nlc: n1['pp512'] },
    { name: 'tg128 after 128 (batchInvariant: true)', unit: 't/s', ours: o1['tg128'], llama: l['tg128'], nlc: n1['tg128'] },
    { name: 'tg128 after 128 (batchInvariant: false)', unit: 't/s', ours: o1f['tg128'], llama: l['tg128'], nlc: n1['tg128'] },
    ...[1, 4, 16, 32].map((s) => ({ name: `${s} stream${s === 1 ? '' : 's'}, 128+128, gen tokens / wall`, unit: 't/s', ours: oAgg[`agg${s}`], llama: l[`agg${s}`], nlc: nAgg[`agg${s}`] })),
    { name: 'TTFT, 128-token request beside 16 streams', unit: 's', ours: oTtft['ttft_s'], nlc: nTtft['ttft_s'] },
    { name: 'of the 16 streams, finished before that first token', unit: 'max', ours: oTtft['ttft_bg_finished_max'], nlc: nTtft['ttft_bg_finished_max'] },
    { name: 'peak RSS, one stream', unit: 'MiB', ours: o1['rss_bytes']! / MiB, llama: l['rss_single'] ? l['rss_single'] / MiB : undefined, nlc: n1['rss_bytes'] ? n1['rss_bytes'] / MiB : undefined },
    { name: 'peak RSS per extra stream (32 vs 1)', unit: 'MiB', ours: perExtra(oAgg['rss_bytes'], oAgg['rss_base']), llama: perExtra(l['rss_multi'], l['rss_base']), nlc: perExtra(nAgg['rss_bytes'], nAgg['rss_base']) },
  ];
  if (l['tg128_d0'] !== undefined) console.error(`llama-bench tg128 at depth 0 (for reference): ${l['tg128_d0'].toFixed(1)} t/s`);
  return { title: `${shape} ${type}, ${threads} threads`, rows };
}

const fmt = (x: number | undefined, unit: string) =>
  x === undefined || !Number.isFinite(x) ? '–' : unit === 's' ? x.toFixed(3) : unit === 'max' ? String(x) : x.toFixed(1);
const ratio = (a?: number, b?: number) => (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '–' : `${(a / b).toFixed(2)}×`);

const tables: string[] = [];
for (const spec of models) {
  const { title, rows } = await benchModel(spec);
  const t = [`| ${title} | ours | llama.cpp | ratio | node-llama-cpp | ratio |`, '| --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    const count = r.unit === 'max';
    t.push(`| ${r.name} (${r.unit}) | ${fmt(r.ours, r.unit)} | ${fmt(r.llama, r.unit)} | ${count ? '' : ratio(r.ours, r.llama)} | ${fmt(r.nlc, r.unit)} | ${count ? '' : ratio(r.ours, r.nlc)} |`);
  }
  tables.push(t.join('\n'));
  console.error(t.join('\n'));
}

console.log(`${new Date().toISOString()}, ${cpuLine()}, node ${process.version}, threads ${threads}, runs ${runs}, agg-runs ${aggRuns}`);
console.log('\nCommands:\n' + commands.map((c) => `    ${c}`).join('\n'));
console.log('\n' + tables.join('\n\n'));
