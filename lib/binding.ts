// The only file that loads the native addon, and the exact TypeScript shape of what it exports.
// Everything else in lib/ goes through these types.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Gpt2Error, type Gpt2ErrorCode } from './errors.js';
import { type LoaderHost, loadNative, type NativeBinaryInfo } from './native-loader.js';

// ---- the model and its engine ----

export interface NativeModelOptions {
  threads?: number;
  contextSize?: number;
  maxSequences?: number;
  batchSize?: number;
  kvF32?: boolean;
  batchInvariant?: boolean;
  device?: string;
  gpuLayers?: number;
}

export interface NativeModelInfo {
  architecture: 'gpt2';
  name: string;
  path: string;
  /** The file format the weights were read from: GGUF, a Hugging Face safetensors folder, or a legacy ggml .bin. */
  format: 'gguf' | 'safetensors' | 'ggml';
  layers: number;
  embeddingSize: number;
  heads: number;
  feedForwardSize: number;
  contextLength: number;
  vocabSize: number;
  parameterCount: number;
  tensorType: string;
  weightBytes: number;
  tiedOutput: boolean;
  eosTokenId: number;
  contextSize: number;
  maxSequences: number;
  batchSize: number;
  threads: number;
  batchInvariant: boolean;
  kvCacheBytes: number;
  computeBufferBytes: number;
  /** Block weight tensors multiplied from ggml's interleaved CPU_REPACK layout (0: all as stored). */
  repackedWeights: number;
  /** q4_K block weight tensors multiplied from our own interleaved layout, four rows at a time (0: none). */
  interleavedWeights: number;
  /**
   * The path our own CPU kernels took at load: 'avx512', 'avx2' or 'portable' (chosen by what the
   * CPU has and what ggml's CPU backend is built for); 'none' where ggml's ops run throughout (a GPU).
   */
  cpuKernels: 'avx512' | 'avx2' | 'neon' | 'portable' | 'none';
  /** Whether a lone decoding row gets a padding row for batch invariance (the probes found no kernel that spares it). */
  padsLoneRow: boolean;
  /** The device the model runs on: 'cpu', 'cuda:0', 'metal:0', 'vulkan:0'. */
  device: string;
  /** Transformer blocks on the GPU (0 on the CPU). */
  gpuLayers: number;
}

export interface NativeDevice {
  /** What loadModel's `device` option takes: 'cpu', 'cuda:0', ... */
  id: string;
  /** ggml's device name ('CPU', 'CUDA0', 'MTL0', 'Vulkan0'). */
  name: string;
  description: string;
  backend: string;
  /** 'gpu' (own memory), 'igpu' (shares host memory), 'cpu' or 'accel'. */
  type: 'cpu' | 'gpu' | 'igpu' | 'accel';
  memoryFree: number;
  memoryTotal: number;
}

export interface NativeRequest {
  kind: 'generate' | 'evaluate' | 'score';
  /** score: index of the first prompt token whose log-probability is returned (≥ 1) */
  scoreFrom?: number;
  prompt: Uint32Array;
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
  ignoreEos?: boolean;
  allLogits?: boolean;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  penaltyWindow?: number;
  /** (token id, bias) pairs, flattened */
  logitBias?: Float64Array;
  stop?: string[];
  /** -1: no logprobs; 0: the chosen token's; n: and the top n alternatives */
  logprobs?: number;
  /** tokens the consumer can take before the engine must wait for a grant() */
  credit?: number;
  speculation?: NativeSpeculation;
}

/** generate: speculative decoding (native/engine/request.h, speculation_params) */
export interface NativeSpeculation {
  predictor: 'lookup' | 'draft';
  /** predictor 'draft': the draft Model's native object */
  draft?: NativeModel;
  maxDraft?: number;
  ngramMin?: number;
  ngramMax?: number;
  minConfidence?: number;
}

/** One engine report about one request; the engine sends all of a step's reports at once. */
export interface NativeEvent {
  id: number;
  tokens: Uint32Array;
  text: string;
  done: boolean;
  finishReason?: 'stop' | 'length' | 'abort' | 'error';
  promptTokens?: number;
  completionTokens?: number;
  errorCode?: Gpt2ErrorCode;
  errorMessage?: string;
  logits?: Float32Array;
  /** score: log p(prompt[i] | prompt[..i]) for i from scoreFrom */
  scores?: Float32Array;
  /** when done: prompt tokens whose KV was reused from an earlier request */
  cachedTokens?: number;
  /** when done: tokens guessed by the speculation's predictor, and those the model kept */
  draftedTokens?: number;
  acceptedTokens?: number;
  logprobs?: NativeTokenLogprob[];
}

export interface NativeTokenLogprob {
  logprob: number;
  top: { token: number; logprob: number }[];
}

export interface NativeStats {
  activeSequences: number;
  queuedSequences: number;
  slots: number;
  kvUsed: number;
  kvCapacity: number;
  promptTokens: number;
  generatedTokens: number;
  cachedTokens: number;
  /** speculative decoding: tokens guessed, and those kept */
  draftedTokens: number;
  acceptedTokens: number;
  steps: number;
  busySeconds: number;
}

export interface NativeModel {
  info(): NativeModelInfo;
  tokenizer(): NativeTokenizer;
  submit(request: NativeRequest): number;
  grant(id: number, tokens: number): void;
  cancel(id: number): void;
  stats(): NativeStats;
  dispose(): Promise<void>;
}

// ---- the tokenizer (native/addon/tokenizer_wrap.cpp) ----

export interface NativeTokenizerInfo {
  vocabSize: number;
  eosTokenId: number;
  /** special token text -> id */
  specialTokens: Record<string, number>;
}

export interface NativeStreamDecoder {
  /** Complete UTF-8 text so far (may be ''); bytes of an unfinished character are held back. */
  push(idOrIds: number | Uint32Array | readonly number[]): string;
  /** Ends the stream: held-back bytes become U+FFFD. */
  flush(): string;
}

export interface NativeTokenizer {
  /** allowedSpecial: ids of the special tokens recognized in the text ([] = none) */
  tokenize(text: string, allowedSpecial: readonly number[]): Uint32Array;
  tokenizeAsync(text: string, allowedSpecial: readonly number[]): Promise<Uint32Array>;
  countTokens(text: string, allowedSpecial: readonly number[]): number;
  detokenize(ids: Uint32Array | readonly number[]): string;
  tokenBytes(id: number): Uint8Array;
  info(): NativeTokenizerInfo;
  createStreamDecoder(): NativeStreamDecoder;
}

export interface NativeTokenizerExports {
  /** GGUF, vocab.json (+ merges.txt beside it), tokenizer.json, or a folder holding them. */
  loadTokenizer(path: string): Promise<NativeTokenizer>;
}

// ---- files, devices, logging ----

/** A job on a pool thread; cancel() makes it reject with ERR_ABORTED at the next tensor. */
export interface NativeFileJob<T> {
  promise: Promise<T>;
  cancel(): void;
}

export interface NativeBinding extends NativeTokenizerExports {
  loadModel(path: string, options: NativeModelOptions, onEvents: (events: NativeEvent[]) => void): Promise<NativeModel>;
  setLogger(fn: ((level: number, source: string, text: string) => void) | null, minLevel?: number): void;
  quantize(input: string, output: string, type: string, onProgress?: (done: number, total: number) => void):
    NativeFileJob<{ converted: number; kept: number; bytesIn: number; bytesOut: number }>;
  /** type '' keeps every tensor's type. */
  convert(input: string, output: string, type: string, onProgress?: (done: number, total: number) => void):
    NativeFileJob<{ formatIn: 'gguf' | 'safetensors' | 'ggml'; tensors: number; converted: number; bytesOut: number }>;
  quantizeTypes(): string[];
  getDevices(): Promise<NativeDevice[]>;
  /** Stops every engine thread of this environment (at process exit). */
  shutdown(): void;
}

/** gpt2-node's own package.json, found upward from this file: its folder and its version. */
function ownPackage(): { root: string; version: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    const pkg = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }) : undefined;
    if (pkg?.name === 'gpt2-node') return { root: dir, version: pkg.version ?? '' };
    const parent = dirname(dir);
    if (parent === dir) throw new Gpt2Error('ERR_NO_BINARY', 'cannot find the gpt2-node package root');
    dir = parent;
  }
}

/** The folder of gpt2-node's package.json (a clone, or node_modules/gpt2-node). */
export function packageRoot(): string {
  return ownPackage().root;
}

function libc(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** This process as the loader sees it (lib/native-loader.ts decides). */
export function realLoaderHost(): LoaderHost {
  const { root, version } = ownPackage();
  const require = createRequire(join(root, 'package.json'));
  return {
    env: process.env,
    platform: process.platform,
    arch: process.arch,
    libc: libc(),
    cpuModel: cpus()[0]?.model.trim() || 'unknown',
    root,
    version,
    exists: existsSync,
    resolvePackage(name) {
      try { return require.resolve(`${name}/package.json`); } catch { return undefined; }
    },
    readJson: (path) => JSON.parse(readFileSync(path, 'utf8')),
    // resolved first: require() reads a relative path without ./ as a package name
    load: (path) => require(resolve(path)),
  };
}

let loaded: { binding: NativeBinding; info: NativeBinaryInfo } | undefined;

function load(): { binding: NativeBinding; info: NativeBinaryInfo } {
  if (!loaded) {
    loaded = loadNative<NativeBinding>(realLoaderHost());
    const b = loaded.binding;
    // process.exit() calls exit() without running the environment's cleanup hooks; stop the
    // engine threads first, while everything they use still exists.
    process.once('exit', () => b.shutdown());
  }
  return loaded;
}

/** Which addon file this process runs, and why (loads it if that has not happened yet). */
export function nativeBinary(): NativeBinaryInfo {
  return { ...load().info };
}

/**
 * The addon, loaded on first use: `import 'gpt2-node'` never fails for want of a binary; the
 * first call that needs one (loadModel, loadTokenizer, ...) throws ERR_NO_BINARY instead.
 */
export const binding: NativeBinding = new Proxy({} as NativeBinding, {
  get: (_, key) => Reflect.get(load().binding, key),
});
