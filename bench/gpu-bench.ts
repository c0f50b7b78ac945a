// GPU side-by-side benchmark (issue 8): gpt2-node against llama.cpp's llama-bench and
// llama-batched-bench on the same GPU, the same generated GGUF files, in one run. Normally run by
// bench/gpu-check.sh, which builds the CUDA addon and the two tools into build-gpu/ first:
//
//   GPT2_NODE_BINARY=$PWD/build-gpu/Release/gpt2_node.node \
//   npx tsx bench/gpu-bench.ts [--device cuda:0] [--models 124M-f16,355M-f16,1.5B-f16] [--streams 1,32,256]
//        [--out bench/gpu-results.md] [--append] [--llama-bin-dir build-gpu/bin] [--runs 3] [--agg-runs 3]
//        [--threads N] [--budget-s S] [--quick]
//   npx tsx bench/gpu-bench.ts --prepare --models 1.5B-f16 [--test-models]   # only write the models
//
// Smoke test of the whole TypeScript path without a GPU:
//   npx tsx bench/gpu-bench.ts --device cpu --models tiny-f32 --streams 1,4 --quick --out /tmp/gpu-smoke.md
//
// Measures, per model (ratio = ours / llama.cpp; above 1 is better):
//   pp512        prompt processing of 512 tokens: ours model.evaluate() of 512 fresh tokens with one
//                sequence; llama-bench -p 512 -n 0 (depth 0)
//   tg128        128 generated tokens after a 128-token prompt, greedy, timed from the first generated
//                token to the last: ours with batchInvariant true (the default) and false;
//                llama-bench -p 0 -n 128 -d 128
//   N streams    N concurrent 128-token prompts + 128 generated tokens each (ignoreEos), generated
//                tokens / wall time, prefill included. Ours: one model with maxSequences = the largest
//                N and contextSize 256, N concurrent generate() calls; llama-batched-bench
//                -npp 128 -ntg 128 -npl <N,...>: N·TG / T per line (as bench/compare.ts)
//   load         ours only (loadModel with one sequence); llama.cpp's tools do not report it
// Medians of --runs (single stream) and --agg-runs (streams, and whole llama-batched-bench runs).
// Everything of ours runs in this process (on a GPU, peak RSS is not what is compared); each model
// of ours is disposed before llama.cpp's tools run, so the two never share the GPU's memory.
//
// The models are random-weight GPT-2 GGUFs from lib/testing/random-model.ts (seed 1, initScale 4,
// as bench/compare.ts), cached in the git-ignored bench/.models/ and reused when present: the
// generator is single-threaded JavaScript (about 10 M parameters/s here, so ~12 s for 124M and
// ~2.5 min for 1.5B), which is why gpu-check.sh runs `--prepare` for each model in the background
// while the CUDA build runs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { MODEL_SHAPES, writeRandomModel, type NamedShape, type RandomModelType } from '../lib/testing/random-model.js';

const { values } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda:0' },
    models: { type: 'string', default: '124M-f16,355M-f16,1.5B-f16' },
    streams: { type: 'string', default: '1,32,256' },
    out: { type: 'string', default: 'bench/gpu-results.md' },
    append: { type: 'boolean', default: false },
    'llama-bin-dir': { type: 'string' },
    runs: { type: 'string' },
    'agg-runs': { type: 'string' },
    threads: { type: 'string' },
    'budget-s': { type: 'string' },
    quick: { type: 'boolean', default: false },
    prepare: { type: 'boolean', default: false },
    'test-models': { type: 'boolean', default: false },
  },
});

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const modelDir = join(here, '.models');
const t0 = Date.now();
const deadline = values['budget-s'] !== undefined ? t0 + Number(values['budget-s']) * 1000 : Infinity;
const quick = values.quick;
const runs = Number(values.runs ?? (quick ? 1 : 3));
const aggRuns = Number(values['agg-runs'] ?? (quick ? 1 : 3));
const device = values.device!;
const onCpu = device === 'cpu';
const modelSpecs = values.models!.split(',').map((s) => s.trim()).filter(Boolean);
const streams = [...new Set(values.streams!.split(',').map(Number))].sort((a, b) => a - b);
if (streams.length === 0 || streams.some((n) => !Number.isInteger(n) || n < 1 || n > 4096)) throw new RangeError(`bad --streams ${values.streams}`);
const maxStreams = Math.max(...streams);
// threads: on the CPU (smoke tests) the same count for everyone, ours' default (half the cores, 1–4);
// on a GPU left to each program's default (it barely matters there)
const threads = values.threads !== undefined ? Number(values.threads) : onCpu ? Math.max(1, Math.min(4, Math.floor(cpus().length / 2))) : undefined;
const outPath = resolve(values.out!);

const PROMPT = 128;
const GEN = 128;
const PP = 512;
const STREAM_CTX = PROMPT + GEN; // positions per sequence in the streams groups (both engines)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const now = () => performance.now();
const log = (s: string) => console.error(`[gpu-bench +${((Date.now() - t0) / 1000).toFixed(0)}s] ${s}`);
const timeLeft = () => deadline - Date.now();
// distinct prompts (no prefix reuse between runs or streams); ids below 50000 are plain GPT-2 tokens
const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % 50000);
const rel = (p: string) => (p.startsWith(root + '/') ? relative(root, p) : p);

// ---- models ------------------------------------------------------------------------------------

function parseSpec(spec: string): { shape: NamedShape; type: RandomModelType; path: string } {
  const i = spec.lastIndexOf('-');
  const shape = spec.slice(0, i) as NamedShape;
  const type = spec.slice(i + 1) as RandomModelType;
  if (i < 0 || !Object.hasOwn(MODEL_SHAPES, shape)) throw new RangeError(`bad model ${spec}: expected <${Object.keys(MODEL_SHAPES).join('|')}>-<type>, e.g. 124M-f16`);
  // the same file name and options as bench/compare.ts, so either bench reuses the other's files
  return { shape, type, path: join(modelDir, `gpt2-${shape}-${type}.gguf`) };
}

async function ensureModel(spec: string): Promise<string> {
  const { shape, type, path } = parseSpec(spec);
  if (existsSync(path)) return path;
  mkdirSync(modelDir, { recursive: true });
  // written under a temporary name and renamed: a killed run never leaves a truncated file behind
  // that a later run would take for a finished one
  const tmp = `${path}.${process.pid}.tmp`;
  const t = now();
  log(`writing ${rel(path)}`);
  try {
    await writeRandomModel(tmp, { shape, type, seed: 1, initScale: 4 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  log(`wrote ${rel(path)} in ${((now() - t) / 1000).toFixed(1)} s`);
  return path;
}

if (values.prepare) {
  for (const spec of modelSpecs) await ensureModel(spec);
  if (values['test-models']) {
    // the test models of the device tests (test/device/, test/api/devices.test.ts), into test/.models (their own cache)
    const { testModel } = await import('../test/support/models.js');
    const t = now();
    await testModel('124M', 'f16');
    const deviceShape = { nLayer: 4, nEmbd: 256, nHead: 4, nCtx: 512 };   // test/device/'s SHAPE
    for (const type of ['f32', 'f16', 'q8_0', 'q4_0'] as const) await testModel(deviceShape, type, { initScale: 4 });
    log(`test models ready (${((now() - t) / 1000).toFixed(1)} s)`);
  }
  process.exit(0);
}

// ---- the run's facts -----------------------------------------------------------------------------

const { loadModel, getDevices } = await import('../lib/index.js');

function sh(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const commit = (() => {
  const head = sh('git', ['rev-parse', '--short=12', 'HEAD']);
  if (!head) return 'unknown (no git)';
  return sh('git', ['status', '--porcelain', '--untracked-files=no']) ? `${head} + uncommitted changes` : head;
})();
const llamaPin = (() => {
  try { return (JSON.parse(readFileSync(join(root, 'vendor', 'llama.cpp.pin.json'), 'utf8')) as { commit: string }).commit.slice(0, 8); } catch { return 'unknown'; }
})();
const devices = await getDevices();
const dev = devices.find((d) => d.id === device) ?? (device === 'cuda' ? devices.find((d) => d.backend === 'cuda') : undefined);
if (!dev) throw new Error(`device ${device} is not available in this build (available: ${devices.map((d) => d.id).join(', ')}); is GPT2_NODE_BINARY the CUDA build?`);
const nvidiaSmi = onCpu ? undefined : sh('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader']);
const GiB = 2 ** 30;

// ---- llama.cpp's tools ---------------------------------------------------------------------------

const binDirs = values['llama-bin-dir'] !== undefined ? [resolve(values['llama-bin-dir'])] : [join(root, 'build-gpu', 'bin'), join(root, 'build', 'bin')];
const findTool = (name: string) => binDirs.map((d) => join(d, name)).find((p) => existsSync(p));
const llamaBench = findTool('llama-bench');
const batchedBench = findTool('llama-batched-bench');
if (!llamaBench || !batchedBench) log(`llama-bench / llama-batched-bench not found in ${binDirs.map(rel).join(', ')}: llama.cpp column empty`);
// on the GPU: every layer offloaded; cuda:N other than 0 chosen by name. On the CPU: nothing offloaded.
const cudaIndex = /^cuda:(\d+)$/.exec(device)?.[1];
const llamaDevArgs = onCpu ? ['-ngl', '0'] : ['-ngl', '99', ...(cudaIndex && cudaIndex !== '0' ? ['-dev', `CUDA${cudaIndex}`] : [])];
const llamaThreadArgs = threads !== undefined ? ['-t', String(threads)] : [];

const commands = new Set<string>();
const facts = new Set<string>();
function tool(cmd: string, args: string[]): string {
  const shown = [cmd, ...args].map(rel).join(' ');
  commands.add(shown.replace(/gpt2-[^ /]+\.gguf/, 'gpt2-<model>.gguf'));
  log(`$ ${shown}`);
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${shown} failed (${r.status ?? r.signal}):\n${(r.stderr ?? '').slice(-3000)}`);
  return r.stdout;
}

type Numbers = Record<string, number>;

function llamaSingle(path: string): Numbers {
  // two runs, so that each test is at its own depth only: pp512 from an empty context, tg128 after
  // 128 tokens (one run with -d 0,128 would also do pp512 at depth 128, past the tiny shape's 512
  // positions, and tg128 at depth 0)
  type Test = { n_prompt: number; n_gen: number; n_depth: number; samples_ts: number[]; backends?: string; gpu_info?: string; n_gpu_layers?: number; flash_attn?: number };
  const bench = (p: number, n: number, d: number) =>
    JSON.parse(tool(llamaBench!, ['-m', path, ...llamaDevArgs, ...llamaThreadArgs, '-p', String(p), '-n', String(n), '-d', String(d), '-r', String(runs), '-o', 'json'])) as Test[];
  const tests = [...bench(PP, 0, 0), ...bench(0, GEN, PROMPT)];
  const r: Numbers = {};
  const pp = tests.find((t) => t.n_prompt === PP && t.n_gen === 0 && t.n_depth === 0);
  const tg = tests.find((t) => t.n_gen === GEN && t.n_prompt === 0 && t.n_depth === PROMPT);
  if (pp) r['pp512'] = median(pp.samples_ts);
  if (tg) r['tg128'] = median(tg.samples_ts);
  const t = tests[0];
  if (t) facts.add(`llama-bench: backends ${t.backends ?? '?'}, gpu_info "${t.gpu_info ?? ''}", n_gpu_layers ${t.n_gpu_layers ?? '?'}, flash_attn ${t.flash_attn ?? '?'} (-1 auto)`);
  return r;
}

function llamaStreams(path: string): Numbers {
  // n_ctx must cover every sequence: batched-bench skips (silently) a line whose pl·(pp+tg) exceeds
  // it; with its default non-unified KV cache each of the max(npl) sequences gets n_ctx / max(npl)
  const args = ['-m', path, ...llamaDevArgs, ...llamaThreadArgs, '-c', String(maxStreams * STREAM_CTX), '-b', '2048', '-ub', '512',
    '-npp', String(PROMPT), '-ntg', String(GEN), '-npl', streams.join(','), '--output-format', 'jsonl'];
  const per: Record<number, number[]> = {};
  for (let i = 0; i < aggRuns; i++) {
    const out = tool(batchedBench!, args);
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      const j = JSON.parse(line) as { pl: number; tg: number; t: number; n_gpu_layers: number; flash_attn: number; n_kv_max: number };
      (per[j.pl] ??= []).push((j.pl * j.tg) / j.t);
      if (i === 0 && j.pl === streams[0]) facts.add(`llama-batched-bench: n_kv_max ${j.n_kv_max}, n_gpu_layers ${j.n_gpu_layers}, flash_attn ${j.flash_attn} (-1 auto)`);
    }
  }
  const r: Numbers = {};
  for (const n of streams) {
    if (per[n]) r[`s${n}`] = median(per[n]!);
    else log(`llama-batched-bench printed no line for ${n} streams`);
  }
  return r;
}

// ---- ours ------------------------------------------------------------------------------------------

type Model = Awaited<ReturnType<typeof loadModel>>;

async function generate(m: Model, prompt: number[], n: number, onToken: () => void): Promise<void> {
  for await (const c of m.generate(prompt, { maxTokens: n, temperature: 0, ignoreEos: true, highWaterMark: 1024 })) {
    for (let i = 0; i < c.tokens.length; i++) onToken();
  }
}

async function open(path: string, maxSequences: number, contextSize: number, batchInvariant: boolean): Promise<{ m: Model; loadS: number }> {
  const t = now();
  const m = await loadModel(path, { device, maxSequences, contextSize, batchInvariant, ...(threads !== undefined ? { threads } : {}) });
  const loadS = (now() - t) / 1000;
  // never report a CPU run as a GPU one: the model must be where it was asked to be, all of it
  if (m.info.device !== dev!.id || (!onCpu && m.info.gpuLayers !== m.info.layers)) {
    await m.dispose();
    throw new Error(`asked for ${device}, got device ${m.info.device} with ${m.info.gpuLayers}/${m.info.layers} layers on it`);
  }
  return { m, loadS };
}

async function oursSingle(path: string, ctx: number, batchInvariant: boolean): Promise<Numbers> {
  const { m, loadS } = await open(path, 1, ctx, batchInvariant);
  try {
    const r: Numbers = { load_s: loadS };
    await generate(m, ids(8, 1), 4, () => {}); // warm-up: kernels, graphs, buffers
    if (batchInvariant) {
      await m.evaluate(ids(PP, 99)); // warm-up of the prompt-sized graph
      const pp: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = now();
        await m.evaluate(ids(PP, 100 + i));
        pp.push(PP / ((now() - t) / 1000));
      }
      r['pp512'] = median(pp);
    }
    const tg: number[] = [];
    for (let i = 0; i < runs; i++) {
      // from the first generated token to the 128th: generation only, after a 128-token prompt
      let first = 0;
      let n = 0;
      await generate(m, ids(PROMPT, 200 + i), GEN, () => {
        if (n++ === 0) first = now();
      });
      tg.push((n - 1) / ((now() - first) / 1000));
    }
    r['tg128'] = median(tg);
    return r;
  } finally {
    await m.dispose();
  }
}

async function oursStreams(path: string): Promise<Numbers> {
  const { m } = await open(path, maxStreams, STREAM_CTX, true);
  try {
    await Promise.all([0, 1].map((i) => generate(m, ids(8, 10 + i), 4, () => {}))); // warm-up
    const r: Numbers = {};
    for (const n of streams) {
      const xs: number[] = [];
      for (let run = 0; run < aggRuns; run++) {
        let generated = 0;
        const t = now();
        await Promise.all(Array.from({ length: n }, (_, i) => generate(m, ids(PROMPT, 1000 * n + 100 * run + i), GEN, () => generated++)));
        const s = (now() - t) / 1000;
        if (generated !== n * GEN) log(`warning: ${n} streams generated ${generated} tokens, not ${n * GEN}`);
        xs.push(generated / s);
      }
      r[`s${n}`] = median(xs);
    }
    return r;
  } finally {
    await m.dispose();
  }
}

// ---- the report ----------------------------------------------------------------------------------

type Row = { name: string; unit: string; ours?: number; llama?: number };
interface ModelResult { spec: string; title: string; rows: Row[]; notes: string[]; seconds: number }

const fmt = (x: number | undefined, unit: string) => (x === undefined || !Number.isFinite(x) ? '–' : unit === 's' ? x.toFixed(3) : x.toFixed(1));
const ratioOf = (a?: number, b?: number) => (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? undefined : a / b);
const fmtRatio = (x?: number) => (x === undefined ? '–' : `${x.toFixed(2)}×`);

async function benchModel(spec: string): Promise<ModelResult> {
  const started = now();
  const { shape, type } = parseSpec(spec);
  const path = await ensureModel(spec);
  const notes: string[] = [];
  // one sequence: 1024 positions as bench/compare.ts (the tiny shape has 512)
  const ctx = Math.min(1024, MODEL_SHAPES[shape].nCtx);
  const skip = (what: string) => {
    if (timeLeft() > 0) return false;
    notes.push(`${what}: skipped, out of time (--budget-s)`);
    log(`skipping ${spec} ${what}: out of time`);
    return true;
  };
  const run = async <T extends Numbers>(what: string, f: () => T | Promise<T>): Promise<Numbers> => {
    if (skip(what)) return {};
    try {
      return await f();
    } catch (e) {
      notes.push(`${what} failed: ${(e as Error).message.split('\n')[0]}`);
      log(`${spec} ${what} failed: ${(e as Error).stack ?? String(e)}`);
      return {};
    }
  };

  // each comparison's two sides back to back, so that running out of time (--budget-s) leaves
  // whole comparisons rather than one side of several
  const haveLlama = !!(llamaBench && batchedBench);
  log(`${spec}: one stream`);
  const o1 = await run('ours, one stream', () => oursSingle(path, ctx, true));
  const o1f = await run('ours, one stream, batchInvariant false', () => oursSingle(path, ctx, false));
  const l1 = haveLlama ? await run('llama-bench', () => llamaSingle(path)) : {};
  log(`${spec}: ${streams.join('/')} streams`);
  const os = await run('ours, streams', () => oursStreams(path));
  const ls = haveLlama ? await run('llama-batched-bench', () => llamaStreams(path)) : {};
  const rows: Row[] = [
    { name: 'load', unit: 's', ours: o1['load_s'] },
    { name: 'pp512', unit: 't/s', ours: o1['pp512'], llama: l1['pp512'] },
    { name: 'tg128 after 128, batchInvariant: true (default)', unit: 't/s', ours: o1['tg128'], llama: l1['tg128'] },
    { name: 'tg128 after 128, batchInvariant: false', unit: 't/s', ours: o1f['tg128'], llama: l1['tg128'] },
    ...streams.map((n) => ({ name: `${n} stream${n === 1 ? '' : 's'}, 128+128, gen tokens / wall`, unit: 't/s', ours: os[`s${n}`], llama: ls[`s${n}`] })),
  ];
  const seconds = (now() - started) / 1000;
  log(`${spec} done in ${seconds.toFixed(0)} s`);
  return { spec, title: `${shape} ${type}`, rows, notes, seconds };
}

const where = onCpu ? `CPU, ${threads} threads` : (nvidiaSmi?.split('\n')[0]?.split(',')[0]?.trim() ?? dev.description);
function report(results: ModelResult[], done: boolean): string {
  const lines: string[] = [];
  lines.push(`## gpt2-node vs llama.cpp on ${where}${done ? '' : ' (incomplete: still running or interrupted)'}`, '');
  lines.push(`- Date: ${new Date(t0).toISOString()}; gpt2-node ${commit}; llama.cpp ${llamaPin} (vendored); Node ${process.version}`);
  lines.push(`- Device: \`${dev!.id}\`: ${dev!.description} (${(dev!.memoryTotal / GiB).toFixed(1)} GiB)${nvidiaSmi ? `; nvidia-smi: ${nvidiaSmi.split('\n').join(' | ')}` : ''}`);
  lines.push(`- Host: ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} cores); ours threads: ${threads ?? 'default'}`);
  lines.push(`- Runs: single stream median of ${runs}, streams median of ${aggRuns}${quick ? ' (--quick)' : ''}; llama.cpp: ${llamaBench && batchedBench ? binDirs.find((d) => existsSync(join(d, 'llama-bench')))!.replace(root + '/', '') : 'not found (–)'}`);
  for (const f of facts) lines.push(`- ${f}`);
  lines.push('');

  // the issue's targets, judged on ours' defaults (batchInvariant: true); false shown beside
  const sTop = maxStreams;
  lines.push(`Targets: single-stream generation (tg128) ≥ 1.0× llama-bench; ${sTop} streams ≥ 1.0× llama-batched-bench. Judged on ours' default (batchInvariant: true); false is shown for reference.`, '');
  lines.push(`| model | tg128 ours / llama.cpp | (batchInvariant: false) | ${sTop} streams ours / llama.cpp | targets |`, '| --- | ---: | ---: | ---: | :---: |');
  for (const r of results) {
    const get = (prefix: string) => r.rows.find((x) => x.name.startsWith(prefix));
    const tg = get('tg128 after 128, batchInvariant: true');
    const tgf = get('tg128 after 128, batchInvariant: false');
    const st = get(`${sTop} stream`);
    const a = ratioOf(tg?.ours, tg?.llama);
    const b = ratioOf(st?.ours, st?.llama);
    const verdict = a === undefined || b === undefined ? '–' : a >= 1 && b >= 1 ? 'met' : 'missed';
    lines.push(`| ${r.title} | ${fmtRatio(a)} | ${fmtRatio(ratioOf(tgf?.ours, tgf?.llama))} | ${fmtRatio(b)} | ${verdict} |`);
  }
  lines.push('');
  for (const r of results) {
    lines.push(`| ${r.title} (${r.seconds.toFixed(0)} s) | ours | llama.cpp | ratio |`, '| --- | ---: | ---: | ---: |');
    for (const x of r.rows) lines.push(`| ${x.name} (${x.unit}) | ${fmt(x.ours, x.unit)} | ${fmt(x.llama, x.unit)} | ${fmtRatio(ratioOf(x.ours, x.llama))} |`);
    for (const n of r.notes) lines.push('', `Note: ${n}`);
    lines.push('');
  }
  lines.push('Commands (llama.cpp; ours runs in-process: `loadModel(path, { device, maxSequences: 1, contextSize: 1024 })` (the tiny shape: 512) for pp512/tg128, ' +
    `\`{ maxSequences: ${maxStreams}, contextSize: ${STREAM_CTX} }\` for the streams, \`generate(prompt, { maxTokens: 128, temperature: 0, ignoreEos: true })\`):`, '');
  for (const c of commands) lines.push(`    ${c}`);
  lines.push('', `Definitions: bench/gpu-bench.ts (its head comment). Ratio = ours / llama.cpp, above 1 is better.`, '');
  return lines.join('\n');
}

// --append: what the file held before this run stays in front (gpu-check.sh writes the system and
// test sections first); the report is rewritten after every model, so an interrupted run keeps
// what it measured
const prefix = values.append && existsSync(outPath) ? readFileSync(outPath, 'utf8').replace(/\n*$/, '\n\n') : '';
mkdirSync(dirname(outPath), { recursive: true });
const results: ModelResult[] = [];
const write = (done: boolean) => writeFileSync(outPath, prefix + report(results, done));
for (const spec of modelSpecs) {
  if (timeLeft() <= 0) {
    log(`skipping ${spec}: out of time (--budget-s)`);
    results.push({ spec, title: parseSpec(spec).shape + ' ' + parseSpec(spec).type, rows: [], notes: ['skipped: out of time (--budget-s)'], seconds: 0 });
    continue;
  }
  results.push(await benchModel(spec));
  write(false);
}
write(true);
console.log(report(results, true));
log(`wrote ${rel(outPath)}`);
// a group that failed (not one skipped for time) fails the run; the report still has the rest
if (results.some((r) => r.notes.some((n) => n.includes(' failed: ')))) process.exitCode = 1;
