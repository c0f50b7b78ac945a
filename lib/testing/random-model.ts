// Random-weight GPT-2 models in GGUF, for tests and for trying everything offline (the CLI's
// random-model command calls writeRandomModel). Shapes and names are exactly those of
// llama.cpp's `gpt2` architecture (src/models/gpt2.cpp, src/llama-arch.cpp), the vocabulary and
// merges are the real GPT-2 ones copied from a vocab-only GGUF, and the weights follow GPT-2's
// initialization, deterministic from a seed. It is not a trained model: its text is noise.
//
// Two choices that make these models useful as tests:
// - LayerNorm gains are 1 + noise and biases are noise, never exactly 1 and 0, so a loader that
//   ignores or swaps a norm's weight and bias gives different logits.
// - `initScale` multiplies every standard deviation. At 1 (GPT-2's own init, std 0.02) the
//   logits are nearly flat and greedy decoding repeats one token; a larger scale (4 and up)
//   gives varied continuations, which is what a greedy-parity test needs.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gpt2Error } from '../errors.js';
import { readGgufMetadata, type GgufValue } from '../gguf/reader.js';
import { writeGguf, type EncodableType, type GgufTensorSpec } from '../gguf/writer.js';

/** Bumped whenever the same options would produce different bytes (tests key caches on it). */
export const RANDOM_MODEL_VERSION = 1;

export interface ModelShape {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nCtx: number;
  /** default 4·nEmbd */
  nFf?: number;
}

export type NamedShape = 'tiny' | '124M' | '355M' | '774M' | '1.5B';
export type RandomModelType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0';

export const MODEL_SHAPES: Readonly<Record<NamedShape, Readonly<ModelShape>>> = {
  tiny: { nLayer: 2, nEmbd: 64, nHead: 4, nCtx: 512 },
  '124M': { nLayer: 12, nEmbd: 768, nHead: 12, nCtx: 1024 },
  '355M': { nLayer: 24, nEmbd: 1024, nHead: 16, nCtx: 1024 },
  '774M': { nLayer: 36, nEmbd: 1280, nHead: 20, nCtx: 1024 },
  '1.5B': { nLayer: 48, nEmbd: 1600, nHead: 25, nCtx: 1024 },
};

export interface RandomModelOptions {
  shape: NamedShape | ModelShape;
  /** Type of the 2-D tensors (embeddings included); 1-D tensors are always f32. Default 'f32'. */
  type?: RandomModelType;
  /** Default 1. */
  seed?: number;
  /** Multiplies every standard deviation of the init; default 1 (GPT-2's). */
  initScale?: number;
  /** Vocab-only GGUF to copy `tokenizer.ggml.*` from; default: llama.cpp's ggml-vocab-gpt-2.gguf. */
  vocabGguf?: string;
  /** Default true: no `output.weight`, the LM head is the token embedding (as GPT-2). */
  tiedOutput?: boolean;
}

const ggmlTypeOf: Readonly<Record<RandomModelType, EncodableType>> = {
  f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0', q4_0: 'Q4_0',
};
// llama.h's llama_ftype values
const fileTypeOf: Readonly<Record<RandomModelType, number>> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, bf16: 32 };

/** Bad options throw TypeError (wrong kind of value) or RangeError (right kind, bad value), as lib/validate.ts. */
function invalid(message: string, kind: 'type' | 'range' = 'range'): never {
  throw kind === 'type' ? new TypeError(message) : new RangeError(message);
}

/**
 * llama.cpp's GPT-2 vocab GGUF: under GPT2_NODE_LLAMA_CPP_DIR when set (as the build), else in
 * the package's vendor/llama.cpp (found upward from this file: lib/testing/ or dist/lib/testing/).
 */
export function defaultVocabGguf(): string {
  const rel = join('models', 'ggml-vocab-gpt-2.gguf');
  const env = process.env['GPT2_NODE_LLAMA_CPP_DIR'];
  if (env !== undefined && env !== '') return join(resolve(env), rel);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++) {
    dir = dirname(dir);
    const candidate = join(dir, 'vendor', 'llama.cpp', rel);
    if (existsSync(candidate)) return candidate;
  }
  return join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), 'vendor', 'llama.cpp', rel);
}

function resolveShape(shape: RandomModelOptions['shape']): Required<ModelShape> {
  let s: ModelShape;
  if (typeof shape === 'string') {
    if (!Object.hasOwn(MODEL_SHAPES, shape)) {
      invalid(`Expected one of ${Object.keys(MODEL_SHAPES).join(', ')} or {nLayer, nEmbd, nHead, nCtx} for shape but received ${JSON.stringify(shape)}`);
    }
    s = MODEL_SHAPES[shape];
  } else if (typeof shape === 'object' && shape !== null) {
    s = shape;
  } else {
    invalid(`Expected a shape name or object for shape but received ${String(shape)} of type ${typeof shape}`, 'type');
  }
  const int = (name: string, v: unknown, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
      invalid(`Expected integer between 1 and ${max} for ${name} but received ${String(v)}`, typeof v === 'number' ? 'range' : 'type');
    }
    return v;
  };
  const nLayer = int('shape.nLayer', s.nLayer, 1024);
  const nEmbd = int('shape.nEmbd', s.nEmbd, 65536);
  const nHead = int('shape.nHead', s.nHead, 1024);
  const nCtx = int('shape.nCtx', s.nCtx, 1 << 20);
  const nFf = int('shape.nFf', s.nFf ?? 4 * nEmbd, 1 << 20);
  if (nEmbd % nHead !== 0) invalid(`Expected shape.nEmbd (${nEmbd}) to be a multiple of shape.nHead (${nHead})`);
  return { nLayer, nEmbd, nHead, nCtx, nFf };
}

// ---- deterministic normal numbers ------------------------------------------------------------

/** 32-bit FNV-1a of a string: one independent stream per tensor name. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * xoshiro128** seeded through splitmix32, with Box-Muller for normals. Fast in V8 (32-bit
 * integer ops only); the same (seed, stream) gives the same numbers on every platform.
 */
export class NormalRng {
  private a: number; private b: number; private c: number; private d: number;
  private spare = 0;
  private hasSpare = false;

  constructor(seed: number, stream = 0) {
    let x = (Math.imul(seed >>> 0, 0x9e3779b1) ^ stream) >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** uniform u32 */
  u32(): number {
    const r = Math.imul(((Math.imul(this.b, 5) << 7) | (Math.imul(this.b, 5) >>> 25)), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d;
    this.c ^= t;
    this.d = (this.d << 11) | (this.d >>> 21);
    return r;
  }

  /** Fill `out` with normal(mean, std) values. */
  fill(out: Float32Array, mean: number, std: number): void {
    let i = 0;
    if (this.hasSpare && out.length > 0) { out[i++] = mean + std * this.spare; this.hasSpare = false; }
    for (; i + 1 < out.length; i += 2) {
      const u1 = (this.u32() + 1) * 2.3283064365386963e-10;   // (0, 1]
      const u2 = this.u32() * 2.3283064365386963e-10;         // [0, 1)
      const r = Math.sqrt(-2 * Math.log(u1));
      const th = 6.283185307179586 * u2;
      out[i] = mean + std * r * Math.cos(th);
      out[i + 1] = mean + std * r * Math.sin(th);
    }
    if (i < out.length) {
      const u1 = (this.u32() + 1) * 2.3283064365386963e-10;
      const u2 = this.u32() * 2.3283064365386963e-10;
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + std * r * Math.cos(6.283185307179586 * u2);
      this.spare = r * Math.sin(6.283185307179586 * u2);
      this.hasSpare = true;
    }
  }
}

const CHUNK = 1 << 18; // values per generated chunk (1 MiB of f32), a multiple of every block size

function* normalChunks(n: number, seed: number, name: string, mean: number, std: number): Generator<Float32Array> {
  const rng = new NormalRng(seed, fnv1a(name));
  for (let done = 0; done < n; done += CHUNK) {
    const chunk = new Float32Array(Math.min(CHUNK, n - done));
    rng.fill(chunk, mean, std);
    yield chunk;
  }
}

// ---- the model -------------------------------------------------------------------------------

/** Write a random-weight GPT-2 GGUF to `path` (overwritten). */
export async function writeRandomModel(path: string, opts: RandomModelOptions): Promise<void> {
  if (typeof path !== 'string' || path === '') invalid(`Expected a file path for path but received ${String(path)}`, typeof path === 'string' ? 'range' : 'type');
  if (typeof opts !== 'object' || opts === null) invalid(`Expected an object for options but received ${String(opts)}`, 'type');
  const shape = resolveShape(opts.shape);
  const type = opts.type ?? 'f32';
  if (!Object.hasOwn(ggmlTypeOf, type)) invalid(`Expected one of ${Object.keys(ggmlTypeOf).join(', ')} for type but received ${JSON.stringify(type)}`);
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) invalid(`Expected integer between 0 and 4294967295 for seed but received ${String(seed)}`, typeof seed === 'number' ? 'range' : 'type');
  const initScale = opts.initScale ?? 1;
  if (typeof initScale !== 'number' || !(initScale > 0) || !Number.isFinite(initScale)) invalid(`Expected positive number for initScale but received ${String(initScale)}`, typeof initScale === 'number' ? 'range' : 'type');
  const tied = opts.tiedOutput ?? true;
  const vocabPath = opts.vocabGguf ?? defaultVocabGguf();
  if (!existsSync(vocabPath)) {
    throw new Gpt2Error('ERR_BAD_MODEL', `Vocabulary GGUF not found at ${vocabPath} (run npm install to materialize vendor/llama.cpp, or set GPT2_NODE_LLAMA_CPP_DIR)`);
  }

  const qtype = ggmlTypeOf[type];
  if (qtype === 'Q8_0' || qtype === 'Q4_0') {
    for (const [what, v] of [['nEmbd', shape.nEmbd], ['nFf', shape.nFf]] as const) {
      if (v % 32 !== 0) invalid(`Expected shape.${what} to be a multiple of 32 for type ${type} but received ${v}`);
    }
  }

  const vocab = await readGgufMetadata(vocabPath);
  const tokens = vocab.kv.get('tokenizer.ggml.tokens');
  if (tokens?.type !== 'array' || tokens.itemType !== 'string' || tokens.value.length === 0) {
    throw new Gpt2Error('ERR_BAD_MODEL', `Vocabulary GGUF ${vocabPath} has no tokenizer.ggml.tokens string array`);
  }
  const nVocab = tokens.value.length;
  const { nLayer, nEmbd, nHead, nCtx, nFf } = shape;

  const name = typeof opts.shape === 'string' ? `gpt2-random-${opts.shape}` : `gpt2-random-${nLayer}x${nEmbd}`;
  const kv: Array<[string, GgufValue]> = [
    ['general.architecture', { type: 'string', value: 'gpt2' }],
    ['general.name', { type: 'string', value: name }],
    ['general.description', { type: 'string', value: `Random weights (not trained) from gpt2-node's test-model generator v${RANDOM_MODEL_VERSION}: seed ${seed}, init scale ${initScale}` }],
    ['general.file_type', { type: 'u32', value: fileTypeOf[type] }],
    ['gpt2.context_length', { type: 'u32', value: nCtx }],
    ['gpt2.embedding_length', { type: 'u32', value: nEmbd }],
    ['gpt2.feed_forward_length', { type: 'u32', value: nFf }],
    ['gpt2.block_count', { type: 'u32', value: nLayer }],
    ['gpt2.attention.head_count', { type: 'u32', value: nHead }],
    ['gpt2.attention.layer_norm_epsilon', { type: 'f32', value: 1e-5 }],
  ];
  for (const [key, value] of vocab.kv) {
    if (key.startsWith('tokenizer.ggml.')) kv.push([key, value]);
  }

  // GPT-2's init (std 0.02; residual projections scaled by 1/sqrt(2·n_layer)), times initScale
  const std = 0.02 * initScale;
  const residualStd = std / Math.sqrt(2 * nLayer);
  const normGainStd = 0.1 * initScale;
  const tensors: GgufTensorSpec[] = [];
  const add = (tname: string, dims: number[], mean: number, sd: number): void => {
    const n = dims.reduce((a, b) => a * b, 1);
    tensors.push({
      name: tname,
      type: dims.length === 1 ? 'F32' : qtype,
      shape: dims,
      data: () => normalChunks(n, seed, tname, mean, sd),
    });
  };
  const norm = (prefix: string): void => {
    add(`${prefix}.weight`, [nEmbd], 1, normGainStd);
    add(`${prefix}.bias`, [nEmbd], 0, std);
  };

  add('token_embd.weight', [nEmbd, nVocab], 0, std);
  add('position_embd.weight', [nEmbd, nCtx], 0, std);
  norm('output_norm');
  if (!tied) add('output.weight', [nEmbd, nVocab], 0, std);
  for (let il = 0; il < nLayer; il++) {
    const b = `blk.${il}`;
    norm(`${b}.attn_norm`);
    add(`${b}.attn_qkv.weight`, [nEmbd, 3 * nEmbd], 0, std);
    add(`${b}.attn_qkv.bias`, [3 * nEmbd], 0, std);
    add(`${b}.attn_output.weight`, [nEmbd, nEmbd], 0, residualStd);
    add(`${b}.attn_output.bias`, [nEmbd], 0, std);
    norm(`${b}.ffn_norm`);
    add(`${b}.ffn_up.weight`, [nEmbd, nFf], 0, std);
    add(`${b}.ffn_up.bias`, [nFf], 0, std);
    add(`${b}.ffn_down.weight`, [nFf, nEmbd], 0, residualStd);
    add(`${b}.ffn_down.bias`, [nEmbd], 0, std);
  }

  await writeGguf(path, { kv, tensors });
}
