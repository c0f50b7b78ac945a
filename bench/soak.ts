// Soak test of the library: many generations across concurrent streams on one small model, with
// every way a generation can end mixed in, checking that the engine neither corrupts, leaks nor
// hangs.
//
//   npx tsx bench/soak.ts [--generations 10000] [--streams 32] [--slots 16] [--seed 1]
//                         [--dispose-every N] [--threads T] [--max-slope 1] [--modes read,slow,...]
//
// The model: random weights (test/support/models.ts, cached in test/.models/), 4 layers, 512
// wide, 8 heads, a 512-position context, f16 weights, the real GPT-2 vocabulary (38 M
// multiply-adds a token, 26 M of them in the 50257-row LM head; 'tiny' has 3 M), chosen so that
// the default 10,000 generations take 10-20 minutes on two cores (a 2-core Xeon at threads 1: 3,000
// generations in 4.5 minutes, so about 15 for 10,000), and `--generations 300` (what
// test/api/soak.test.ts runs) under a minute (37 s there, 15 of them for the solo references).
// --modes keeps only some kinds of generation (read, slow, break, abort-after, abort-timer,
// abort-before), to narrow down a failure.
//
// What it does, deterministically from --seed (the plan is; the interleaving of 32 streams on a
// thread pool is not):
// - 64 request templates (prompt: text of several lengths, some sharing a 150-token prefix so
//   the prefix cache is reused, token ids, empty, one longer than the context with
//   truncate: 'start'; options: greedy or seeded sampling with top-k / top-p / min-p /
//   penalties / logit bias, stop strings, logprobs, ignoreEos, highWaterMark 1 to 64). Each is
//   first run alone, one at a time: its reference tokens and text.
// - N generations of random templates across --streams concurrent consumers, on a model with
//   --slots KV slots (fewer slots than streams: the FIFO queue is used too). Each generation is
//   one of: read to the end; a slow reader (awaits a timer between chunks: backpressure pauses
//   its sequence); `break` out of the for-await loop after k tokens; an abort of its
//   AbortSignal (after k tokens, from a timer, or before it starts).
// - Every --dispose-every generations the model is disposed with everything in flight and
//   loaded again; generations on the disposed model must end with ERR_DISPOSED (documented in
//   docs/api.md) within 10 s.
//
// Checks (any failure: exit code 1):
// - every generation that ran to its end ('stop' or 'length') has exactly its reference tokens
//   and text, and usage matching them; every other one (aborted, broken, cut by a dispose)
//   received a prefix of its reference, in order;
// - no error other than ERR_DISPOSED, and only from a disposed model;
// - no generation unsettled (60 s without settling, or 10 s after its model's dispose);
// - at the end no KV slot in use (model.stats(): activeSequences, queuedSequences, kvUsed), and
//   the model still gives a reference run's tokens;
// - RSS, sampled after a full GC every few generations after the warm-up (the first dispose
//   cycle or 10% of the run, whichever is longer), has a linear-regression slope of at most
//   --max-slope MiB per 1,000 generations.
//
// The last line is `RSS slope <x> MiB per 1000 generations, <n> leaked slots`.
//
// RSS and glibc: glibc's malloc raises its mmap threshold when a large block is freed (up to 32
// MiB), so after the first dispose what a load allocates comes from the heap instead of
// mappings of its own, and what the heap keeps is not returned unless asked: RSS climbed over
// the first reloads while malloc's bytes in use stayed flat (about 13 MiB between models,
// measured with mallinfo2). The KV cache and the compute buffers are mapped by whole pages
// (util/pages.cpp, runtime/paged_buffer.cpp), a dispose trims the heap and the sampler's scratch
// is per thread: with glibc's defaults, 10,000 generations give 1.0-1.1 MiB per 1,000 (it was 14.3);
// fixed thresholds take the allocator out of the measurement entirely, leaving leaks:
//   GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072 npx tsx bench/soak.ts
// (10,000 generations: 0.3 MiB per 1,000, docs/reliability.md). The summary says which allocator
// settings a run had.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseArgs } from 'node:util';

import { Gpt2Error, loadModel, type GenerateOptions, type Model } from '../lib/index.js';
import { testModel } from '../test/support/models.js';

import { cpuLine } from './cpu.js';
import { rng } from '../test/support/tokenizer-corpus.js';   // mulberry32
// waits scale under a sanitizer (scripts/sanitize.sh sets GPT2_NODE_TEST_TIME_SCALE)
import { TIME_SCALE } from '../test/support/until.js';

const { values } = parseArgs({
  options: {
    generations: { type: 'string', default: '10000' },
    streams: { type: 'string', default: '32' },
    slots: { type: 'string', default: '16' },
    seed: { type: 'string', default: '1' },
    'dispose-every': { type: 'string' },
    threads: { type: 'string' },
    'max-slope': { type: 'string', default: '1' },
    modes: { type: 'string' },
  },
});
const N = positive('generations');
const STREAMS = positive('streams');
const SLOTS = positive('slots');
const SEED = Number(values.seed);
const THREADS = values.threads === undefined ? undefined : positive('threads');
const MAX_SLOPE = Number(values['max-slope']);
// about 20 dispose cycles in a run, at least 100 generations apart
const DISPOSE_EVERY = values['dispose-every'] === undefined ? Math.max(100, Math.round(N / 20)) : positive('dispose-every');
const WARMUP = Math.min(Math.max(DISPOSE_EVERY, Math.ceil(N / 10)), Math.floor(N / 2));
const SAMPLE_EVERY = Math.max(5, Math.floor(N / 200));
const HANG_MS = 60_000 * TIME_SCALE;
const MODE_KINDS = ['read', 'slow', 'break', 'abort-after', 'abort-timer', 'abort-before'] as const;
const MODES = values.modes?.split(',') as (typeof MODE_KINDS[number])[] | undefined;
if (MODES?.some((m) => !(MODE_KINDS as readonly string[]).includes(m))) {
  console.error(`--modes takes a comma-separated list of ${MODE_KINDS.join(', ')}`);
  process.exit(2);
}
const DISPOSE_SETTLE_MS = 10_000 * TIME_SCALE;

function positive(name: keyof typeof values): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, not ${values[name]}`);
    process.exit(2);
  }
  return n;
}

// ---- deterministic randomness ----

const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));   // [lo, hi]
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

// ---- the model ----

const SHAPE = { nLayer: 4, nEmbd: 512, nHead: 8, nCtx: 512 };
const modelPath = await testModel(SHAPE, 'f16', { initScale: 4 });
const loadOptions = { maxSequences: SLOTS, ...(THREADS === undefined ? {} : { threads: THREADS }) };

/**
 * Loads the model and fills every KV slot to the end of the context. The cache lives in
 * zero-filled pages mapped in as sequences first reach them (docs/architecture.md#memory), so
 * without this RSS would creep up over a model's life as random generations reach new
 * positions in new slots: growth that is no leak, but would hide one in the slope.
 */
async function load(): Promise<Model> {
  const model = await loadModel(modelPath, loadOptions);
  const n = model.info.contextSize;
  await Promise.all(Array.from({ length: SLOTS }, (_, k) => model.evaluate(Array.from({ length: n }, (_, j) => (k * 7919 + j * 104729) % 50000))));
  return model;
}

// ---- request templates ----

interface Template {
  prompt: string | number[];
  options: GenerateOptions;
}
const WORDS = ('the of and to in is was that for on with as by at from his her they this which people time year ' +
  'river mountain engine window letter garden silver winter morning paper music number water language city ' +
  'Paris Rome 1999 42 é ü 東京 🙂 , . ; : ! ? " ( )').split(' ');

function templates(seed: number): Template[] {
  const r = rng(seed * 7919 + 17);
  const words = (n: number) => Array.from({ length: n }, () => pick(r, WORDS)).join(' ');
  const sharedPrefix = words(150);   // > 128 tokens: at least one whole chunk the prefix cache keeps
  const out: Template[] = [];
  for (let i = 0; i < 64; i++) {
    let prompt: string | number[];
    let truncate: 'start' | undefined;
    if (i === 0) prompt = '';
    else if (i === 1) { prompt = words(700); truncate = 'start'; }   // longer than the context
    else if (i % 9 === 0) prompt = Array.from({ length: int(r, 1, 40) }, () => int(r, 0, 50256));
    else if (i % 4 === 0) prompt = sharedPrefix + ' ' + words(int(r, 1, 30));
    else prompt = words(pick(r, [1, 3, 8, 20, 60, 140]));
    const options: GenerateOptions = { maxTokens: pick(r, [1, 2, 8, 16, 32, 48, 64, 96]), highWaterMark: pick(r, [1, 2, 4, 16, 16, 64]) };
    if (truncate) options.truncate = truncate;
    const sampling = int(r, 0, 5);
    if (sampling === 0 || sampling === 1) options.temperature = 0;
    else if (sampling === 2) Object.assign(options, { temperature: 0.9, topK: 40, seed: int(r, 0, 1e6) });
    else if (sampling === 3) Object.assign(options, { temperature: 1, topP: 0.9, minP: 0.02, seed: int(r, 0, 1e6) });
    else if (sampling === 4) Object.assign(options, { temperature: 0.7, repetitionPenalty: 1.3, presencePenalty: 0.5, frequencyPenalty: 0.3, seed: int(r, 0, 1e6) });
    else Object.assign(options, { temperature: 1.2, seed: int(r, 0, 1e6), logitBias: { 13: -Infinity, 11: 5, [int(r, 0, 50256)]: -3 } });
    if (r() < 0.15) options.stop = pick(r, [[' the'], ['.', '!'], ['e'], ['\n\n', ' of']]);
    if (r() < 0.1) options.logprobs = pick(r, [true, 3]);
    if (r() < 0.3) options.ignoreEos = true;
    out.push({ prompt, options });
  }
  return out;
}
const TEMPLATES = templates(SEED);

interface Reference { tokens: number[]; text: string; finishReason: string; promptTokens: number; completionTokens: number }

async function solo(model: Model, t: Template): Promise<Reference> {
  const tokens: number[] = [];
  let text = '';
  let finishReason = '';
  let promptTokens = -1;
  let completionTokens = -1;
  for await (const c of model.generate(t.prompt, t.options)) {
    for (const x of c.tokens) tokens.push(x);
    text += c.text;
    if (c.finishReason) { finishReason = c.finishReason; promptTokens = c.usage!.promptTokens; completionTokens = c.usage!.completionTokens; }
  }
  return { tokens, text, finishReason, promptTokens, completionTokens };
}

// ---- the plan: what generation i does ----

type Mode =
  | { kind: 'read' }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'break'; after: number }
  | { kind: 'abort-after'; after: number; slowMs: number }
  | { kind: 'abort-timer'; ms: number }
  | { kind: 'abort-before' };

function plan(i: number): { t: number; mode: Mode } {
  const r = rng(SEED * 1_000_003 + i * 2_654_435_761);
  const t = int(r, 0, TEMPLATES.length - 1);
  const max = TEMPLATES[t]!.options.maxTokens!;
  // the share of each kind, or only those of --modes (equal shares)
  const shares: [Mode['kind'], number][] = MODES
    ? MODES.map((k) => [k, 1 / MODES!.length])
    : [['read', 0.45], ['slow', 0.15], ['break', 0.15], ['abort-after', 0.12], ['abort-timer', 0.1], ['abort-before', 0.03]];
  let x = r();
  let kind = shares[shares.length - 1]![0];
  for (const [k, share] of shares) {
    if (x < share) { kind = k; break; }
    x -= share;
  }
  let mode: Mode;
  if (kind === 'read') mode = { kind };
  else if (kind === 'slow') mode = { kind, delayMs: int(r, 0, 6) };
  else if (kind === 'break') mode = { kind, after: int(r, 0, max) };
  else if (kind === 'abort-after') mode = { kind, after: int(r, 0, max), slowMs: r() < 0.5 ? 0 : int(r, 1, 4) };
  else if (kind === 'abort-timer') mode = { kind, ms: int(r, 0, 40) };
  else mode = { kind: 'abort-before' };
  return { t, mode };
}

// ---- running one generation ----

type Outcome = 'completed' | 'aborted' | 'broken' | 'disposed';
const counts: Record<Outcome | 'error', number> = { completed: 0, aborted: 0, broken: 0, disposed: 0, error: 0 };
const failures: string[] = [];
let mismatches = 0;
const fail = (msg: string) => { if (failures.length < 20) failures.push(msg); };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Slot { model: Model; disposed: boolean }

async function runOne(i: number, slot: Slot, refs: Reference[]): Promise<void> {
  const { t, mode } = plan(i);
  const ref = refs[t]!;
  const template = TEMPLATES[t]!;
  const controller = mode.kind.startsWith('abort') ? new AbortController() : undefined;
  if (mode.kind === 'abort-before') controller!.abort();
  const timer = mode.kind === 'abort-timer' ? setTimeout(() => controller!.abort(), mode.ms) : undefined;
  const tokens: number[] = [];
  let text = '';
  let finishReason: string | undefined;
  let usage: { promptTokens: number; completionTokens: number } | undefined;
  let outcome: Outcome;
  try {
    let broke = false;
    for await (const c of slot.model.generate(template.prompt, { ...template.options, signal: controller?.signal })) {
      for (const x of c.tokens) tokens.push(x);
      text += c.text;
      if (c.finishReason) { finishReason = c.finishReason; usage = c.usage; break; }
      if (mode.kind === 'break' && tokens.length >= mode.after) { broke = true; break; }
      if (mode.kind === 'abort-after' && tokens.length >= mode.after) controller!.abort();
      const delay = mode.kind === 'slow' ? mode.delayMs : mode.kind === 'abort-after' ? mode.slowMs : -1;
      if (delay === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      else if (delay > 0) await sleep(delay);
    }
    if (finishReason === 'stop' || finishReason === 'length') outcome = 'completed';
    else if (finishReason === 'abort') outcome = 'aborted';
    else if (broke) outcome = 'broken';
    else {
      fail(`generation ${i} (template ${t}) ended without a final chunk and without break`);
      counts.error++;
      return;
    }
  } catch (e) {
    if (e instanceof Gpt2Error && e.code === 'ERR_DISPOSED' && slot.disposed) {
      outcome = 'disposed';
    } else {
      counts.error++;
      fail(`generation ${i} (template ${t}, ${mode.kind}) threw ${e instanceof Gpt2Error ? e.code + ': ' : ''}${(e as Error).stack ?? e}`);
      return;
    }
  } finally {
    clearTimeout(timer);
  }
  counts[outcome]++;
  const where = `generation ${i} (template ${t}, ${mode.kind}, ${outcome})`;
  if (outcome === 'completed') {
    const same = tokens.length === ref.tokens.length && tokens.every((x, k) => x === ref.tokens[k]) && text === ref.text &&
      finishReason === ref.finishReason && usage?.promptTokens === ref.promptTokens && usage?.completionTokens === ref.completionTokens;
    if (!same) {
      mismatches++;
      fail(`${where}: got ${tokens.length} tokens [${tokens.slice(0, 12).join(' ')}…] ${finishReason} ${JSON.stringify(usage)}, ` +
        `solo run gave ${ref.tokens.length} [${ref.tokens.slice(0, 12).join(' ')}…] ${ref.finishReason} ` +
        `{"promptTokens":${ref.promptTokens},"completionTokens":${ref.completionTokens}}`);
    }
  } else {
    const prefix = tokens.length <= ref.tokens.length && tokens.every((x, k) => x === ref.tokens[k]);
    if (!prefix) {
      mismatches++;
      fail(`${where}: its ${tokens.length} tokens [${tokens.slice(0, 12).join(' ')}…] are not a prefix of the solo run's ` +
        `${ref.tokens.length} [${ref.tokens.slice(0, 12).join(' ')}…]`);
    }
  }
}

// ---- RSS ----

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;
const rssMiB = () => process.memoryUsage.rss() / MiB;
const samples: [number, number][] = [];   // [generations done, RSS MiB]

/** Where the memory is: V8's heap, ArrayBuffers and other external memory, anonymous and file-backed RSS. */
function memoryLine(): string {
  const m = process.memoryUsage();
  let status = '';
  try {
    const text = readFileSync('/proc/self/status', 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) / 1024;
    status = `, anonymous ${kib('RssAnon').toFixed(1)}, file-backed ${kib('RssFile').toFixed(1)}`;
  } catch { /* not Linux */ }
  return `RSS ${(m.rss / MiB).toFixed(1)} MiB (V8 heap ${(m.heapTotal / MiB).toFixed(1)}, used ${(m.heapUsed / MiB).toFixed(1)}, ` +
    `external ${(m.external / MiB).toFixed(1)}${status})`;
}
let memoryAtWarmup = '';

function slope(points: readonly [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) { sxy += (x - mx) * (y - my); sxx += (x - mx) ** 2; }
  return sxx === 0 ? 0 : sxy / sxx;
}

// ---- the soak ----

const t0 = performance.now();
const rssAtStart = rssMiB();
let current: Slot = { model: await load(), disposed: false };
console.error(`model ${modelPath.split('/').pop()}, ${current.model.info.threads} threads, ${SLOTS} slots, ` +
  `batch invariant: ${current.model.info.batchInvariant}; ${N} generations over ${STREAMS} streams, a dispose every ${DISPOSE_EVERY}`);
const refs: Reference[] = [];
for (const t of TEMPLATES) refs.push(await solo(current.model, t));
const tRefs = performance.now();

let ready: Promise<Slot> = Promise.resolve(current);
let disposes = 0;
let unsettled = 0;
let done = 0;
let dispatched = 0;
let nextSample = WARMUP;
/** Generations in flight: their promise → start time, index and model. */
const inFlight = new Map<Promise<void>, { start: number; i: number; slot: Slot }>();

let rotating = false;
/** RSS after each dispose, once its generations settled and before the next load (no model loaded). */
const betweenModels: number[] = [];

function rotate(): void {
  const old = current;
  disposes++;
  rotating = true;
  ready = (async () => {
    old.disposed = true;
    await deadline(old.model.dispose(), 30_000, 'dispose()');
    // everything of the old model must settle with ERR_DISPOSED (or have ended) soon
    const left = [...inFlight].filter(([, g]) => g.slot === old).map(([p]) => p);
    // (a timer left pending would keep the old model, and its tokenizer's 4.5 MiB, alive for its duration)
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.all(left).then(() => true),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), DISPOSE_SETTLE_MS); }),
    ]);
    clearTimeout(timer);
    if (!settled) {
      const stuck = [...inFlight.values()].filter((g) => g.slot === old);
      unsettled += stuck.length;
      fail(`${stuck.length} generations still unsettled ${DISPOSE_SETTLE_MS / 1000} s after their model's dispose: ${stuck.map((g) => g.i).join(' ')}`);
      finish();
    }
    gc();
    betweenModels.push(rssMiB());
    current = { model: await deadline(load(), 60_000 * TIME_SCALE, 'loading the model again'), disposed: false };
    rotating = false;
    return current;
  })();
}

async function worker(): Promise<void> {
  for (;;) {
    const i = dispatched++;
    if (i >= N) return;
    if (i > 0 && i % DISPOSE_EVERY === 0) rotate();
    const slot = await ready;
    const p = runOne(i, slot, refs);
    inFlight.set(p, { start: performance.now(), i, slot });
    await p;
    inFlight.delete(p);
    done++;
    // (not while the model is being replaced: RSS is then that of no model)
    if (done >= nextSample && !rotating) {
      nextSample = done + SAMPLE_EVERY;
      gc();
      samples.push([done, rssMiB()]);
      if (samples.length === 1) memoryAtWarmup = memoryLine();
    }
    if (done % Math.max(1, Math.floor(N / 10)) === 0) {
      console.error(`  ${done}/${N} in ${((performance.now() - tRefs) / 1000).toFixed(0)} s, RSS ${rssMiB().toFixed(1)} MiB`);
    }
  }
}

/** `p`, or a failure (an unsettled promise: the run ends) when it takes longer than `ms`. */
async function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>(() => {
    timer = setTimeout(() => {
      unsettled++;
      fail(`${what} did not settle in ${ms / 1000} s`);
      finish();
    }, ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const watchdog = setInterval(() => {
  const now = performance.now();
  const stuck = [...inFlight.values()].filter((g) => now - g.start > HANG_MS);
  if (stuck.length > 0) {
    unsettled += stuck.length;
    fail(`${stuck.length} generations unsettled after ${HANG_MS / 1000} s: ${stuck.map((g) => g.i).join(' ')}`);
    finish();
  }
}, 1000);
watchdog.unref();

let finished = false;
let leaked = -1;
let afterCheck = '';

/** Prints the summary and exits (also called early by the watchdogs). */
function finish(): never | void {
  if (finished) return;
  finished = true;
  clearInterval(watchdog);
  const s = slope(samples) * 1000;
  const seconds = (performance.now() - t0) / 1000;
  const ok = mismatches === 0 && counts.error === 0 && unsettled === 0 && leaked === 0 && s <= MAX_SLOPE && done === N && afterCheck === '';
  console.log(`soak: ${cpuLine()}, node ${process.version}`);
  console.log(`model: ${modelPath.split('/').pop()} (${SLOTS} slots), seed ${SEED}, ${STREAMS} streams; ` +
    `GLIBC_TUNABLES: ${process.env['GLIBC_TUNABLES'] || 'unset (glibc\'s dynamic mmap threshold, see the header)'}`);
  console.log(`generations: ${done} of ${N} in ${seconds.toFixed(1)} s (references ${((tRefs - t0) / 1000).toFixed(1)} s): ` +
    `${counts.completed} completed, ${counts.aborted} aborted, ${counts.broken} broken, ${counts.disposed} cut by dispose, ${counts.error} failed`);
  console.log(`disposes: ${disposes}; mismatches: ${mismatches}; unsettled: ${unsettled}`);
  const first = samples[0];
  const last = samples[samples.length - 1];
  console.log(`RSS: ${rssAtStart.toFixed(1)} MiB at start, ${first ? first[1].toFixed(1) : '?'} MiB after ${WARMUP} generations (warm-up), ` +
    `${last ? last[1].toFixed(1) : '?'} MiB at the end; ${samples.length} samples; target slope ≤ ${MAX_SLOPE} MiB per 1000`);
  gc();
  console.log(`memory after warm-up (model loaded): ${memoryAtWarmup || '?'}`);
  console.log(`memory at the end (no model loaded): ${memoryLine()}`);
  if (betweenModels.length > 0) console.log(`RSS between models (after each dispose, before the next load): ${betweenModels.map((x) => x.toFixed(1)).join(', ')} MiB`);
  if (afterCheck) console.log(`after the soak: ${afterCheck}`);
  for (const f of failures) console.log(`FAIL ${f}`);
  console.log(`${ok ? 'PASS' : 'FAIL'}`);
  console.log(`RSS slope ${s.toFixed(2)} MiB per 1000 generations, ${leaked < 0 ? '?' : leaked} leaked slots`);
  process.exit(ok ? 0 : 1);
}

await Promise.all(Array.from({ length: STREAMS }, () => worker()));
const final = await ready;
// The engine publishes its stats after each step: give a cancellation a moment to be seen, and
// read them twice, 100 ms apart (a sequence being admitted is neither queued nor active in them
// until its first step ends).
const idle = (x: ReturnType<Model['stats']>) => x.activeSequences === 0 && x.queuedSequences === 0 && x.kvUsed === 0;
let stats = final.model.stats();
for (let k = 0; k < 200; k++) {
  if (idle(stats)) {
    await sleep(100);
    stats = final.model.stats();
    if (idle(stats)) break;
  }
  await sleep(10);
  stats = final.model.stats();
}
leaked = stats.activeSequences + stats.queuedSequences;
if (stats.kvUsed > 0) afterCheck += `${stats.kvUsed} KV positions still in use; `;
if (stats.slots !== SLOTS) afterCheck += `stats().slots is ${stats.slots}, expected ${SLOTS}; `;
// and the engine still gives the same tokens
for (const t of [0, 2, 5]) {
  const again = await deadline(solo(final.model, TEMPLATES[t]!), HANG_MS, 'a solo run after the soak');
  if (again.tokens.join(' ') !== refs[t]!.tokens.join(' ')) afterCheck += `template ${t} alone after the soak differs from before; `;
}
await deadline(final.model.dispose(), 30_000, 'the last dispose()');
finish();
