// A loaded GPT-2 model and its generation engine: the main object of the public API.
import { binding, type NativeEvent, type NativeModel, type NativeModelInfo, type NativeRequest, type NativeStats } from './binding.js';
import { Gpt2Error, fromNative } from './errors.js';
import { collect, Generation, type Chunk, type Completion, type EventSink, type FinishReason, type RequestRegistry, type Usage } from './generation.js';
import { type HubLoadOptions, isHubSpecifier, resolveSpecifier } from './hub/index.js';
import { Session, type SessionOptions } from './session.js';
import { Tokenizer, type TokenizeOptions } from './tokenizer.js';
import { generateRequest } from './generate-request.js';
import * as v from './validate.js';

/** With a path `hf:owner/repo[/file][@revision]`, also the hub's options (cacheDir, offline, token, endpoint, revision, signal, onDownloadProgress). */
export interface LoadModelOptions extends HubLoadOptions {
  /** Compute threads for this model. Default: half the hardware threads, 1 to 4. */
  threads?: number;
  /** Positions per sequence, at most the model's context length (1024 for GPT-2). Default: the model's. */
  contextSize?: number;
  /** Sequences that generate at once (KV cache slots); more requests wait in a queue. Default 1. */
  maxSequences?: number;
  /** Tokens per forward pass (prompt chunk size). Default 512. */
  batchSize?: number;
  /** Element type of the KV cache. Default 'f16' (half the memory; llama.cpp's default too). */
  kvCacheType?: 'f16' | 'f32';
  /**
   * Default true: a request gives the same tokens alone or among any others (same seed, same
   * output). ggml's CPU matmul may round one row differently than several, so probes at load
   * pick, for each matmul, kernels that give a row the same bits alone as among others. Only
   * where none passes is a lone row padded to two, which slows a lone stream's decoding (see
   * docs/architecture.md#batch-invariance). CPU only: on a GPU, whose kernels depend on the
   * batch's size, info.batchInvariant is false and the load logs a warning. false: no probes
   * and no padding; results may vary with the load.
   */
  batchInvariant?: boolean;
  /**
   * Where to run: 'auto' (default: the first GPU this build and machine have, else the CPU),
   * 'cpu', 'cuda', 'cuda:N', 'metal', 'vulkan'. A device asked for by name that cannot be used
   * is an error (ERR_NO_DEVICE); with 'auto' the model falls back to the CPU with a log line.
   * 'auto' never picks a device that runs on the CPU (Mesa's lavapipe); name it to use it.
   * Default: the environment variable GPT2_NODE_DEVICE, else 'auto'.
   */
  device?: string;
  /** Transformer blocks to run on the GPU, counted from the last. Default: all. 0 keeps everything on the CPU. */
  gpuLayers?: number;
}

export type ModelInfo = Readonly<NativeModelInfo>;
export interface ModelStats extends NativeStats {
  /** Prompt and generated tokens per second of engine busy time. */
  tokensPerSecond: number;
}

export interface GenerateOptions {
  /** Tokens to generate at most. Default 256, and never past the context. */
  maxTokens?: number;
  /** 0 is greedy. Default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  /** Seed of this request's sampler: the same seed gives the same tokens. Default 0. */
  seed?: number;
  /** Keep going after <|endoftext|>. */
  ignoreEos?: boolean;
  /** > 1 discourages tokens seen in the last `penaltyWindow` tokens (positive logits divided, negative multiplied). Default 1 (off). */
  repetitionPenalty?: number;
  /** Subtracted once from the logit of every token seen in the window (OpenAI's presence_penalty). Default 0. */
  presencePenalty?: number;
  /** Subtracted from a token's logit per occurrence in the window (OpenAI's frequency_penalty). Default 0. */
  frequencyPenalty?: number;
  /** Tokens (prompt included) the penalties look back over. Default 64. */
  penaltyWindow?: number;
  /** Added to the logits of these token ids; -Infinity bans a token, Infinity forces it (the lowest such id). */
  logitBias?: Record<number, number> | ReadonlyMap<number, number>;
  /** Generation ends before any of these strings; the stop string itself is never emitted. */
  stop?: string | readonly string[];
  /** Report each token's log-probability; a number also reports that many top alternatives (up to 20). */
  logprobs?: boolean | number;
  /** A prompt longer than the context: 'error' (default) throws RangeError, 'start' drops its beginning. */
  truncate?: 'error' | 'start';
  /** Tokens the engine may produce ahead of the consumer. Default 16. */
  highWaterMark?: number;
  signal?: AbortSignal;
  /**
   * Speculative decoding ([docs/speculative.md](../docs/speculative.md)): a cheap predictor guesses
   * the next tokens and the model checks them all in one step. The output is the one without it:
   * token for token when greedy, the same distribution when sampling.
   */
  speculation?: SpeculationOptions;
}

export interface SpeculationOptions {
  /**
   * 'lookup': the tokens that followed the latest earlier occurrence of the last few tokens, in
   * the prompt and the output so far (no second model; pays off when the output quotes its input).
   * 'draft': a smaller model with the same vocabulary (`draft`) guesses, a token at a time.
   */
  predictor: 'lookup' | 'draft';
  /** predictor 'draft': a loaded Model with this model's vocabulary (else ERR_INCOMPATIBLE_MODEL). */
  draft?: Model;
  /** Tokens guessed per step at most (1–64). Default 8; fewer after a step whose guesses failed early. */
  maxDraft?: number;
  /** 'lookup': the shortest and longest run of last tokens matched. Default 2 and 4. */
  ngramMin?: number;
  ngramMax?: number;
  /** 'draft': stop guessing when the draft's probability of its next guess is below this (0–1). Default 0.5. */
  minConfidence?: number;
}

export interface EvaluateOptions {
  /** Logits of every position instead of the last only. */
  allPositions?: boolean;
  signal?: AbortSignal;
}

export interface ScoreResult {
  /** The continuation's tokens. */
  tokens: Uint32Array;
  /** log p(token | everything before it), one per token. */
  logprobs: Float32Array;
  /** Sum of logprobs: the continuation's log-likelihood. */
  sum: number;
}

export interface PerplexityResult {
  perplexity: number;
  /** Sum of the scored tokens' log-probabilities. */
  logprobSum: number;
  /** Tokens scored (all but the first). */
  tokens: number;
}

/** A prompt: text, or token ids. */
export type Prompt = string | Uint32Array | readonly number[];

export class Model implements AsyncDisposable {
  readonly #native: NativeModel;
  readonly #info: ModelInfo;
  readonly #tokenizer: Tokenizer;
  readonly #sinks = new Map<number, EventSink>();
  readonly #registry: RequestRegistry;
  #disposing: Promise<void> | undefined;

  /** @internal use loadModel() */
  constructor(native: NativeModel, sinks: Map<number, EventSink>) {
    this.#native = native;
    this.#sinks = sinks;
    this.#info = Object.freeze(native.info());
    this.#tokenizer = Tokenizer._fromNative(native.tokenizer());
    this.#registry = {
      register: (id, sink) => { this.#sinks.set(id, sink); },
      unregister: (id) => { this.#sinks.delete(id); },
    };
  }

  #alive(): void {
    if (this.#disposing) throw new Gpt2Error('ERR_DISPOSED', 'the model has been disposed');
  }

  /** Architecture and sizes of the model, and how this instance was set up. */
  get info(): ModelInfo {
    this.#alive();
    return this.#info;
  }

  /** The model's tokenizer (GPT-2 byte-level BPE). */
  get tokenizer(): Tokenizer {
    this.#alive();
    return this.#tokenizer;
  }

  tokenize(text: string, options?: TokenizeOptions): Uint32Array {
    this.#alive();
    return this.#tokenizer.tokenize(text, options);
  }

  tokenizeAsync(text: string, options?: TokenizeOptions): Promise<Uint32Array> {
    try { this.#alive(); } catch (e) { return Promise.reject(e); }
    return this.#tokenizer.tokenizeAsync(text, options);
  }

  detokenize(ids: Uint32Array | readonly number[]): string {
    this.#alive();
    return this.#tokenizer.detokenize(ids);
  }

  countTokens(text: string, options?: TokenizeOptions): number {
    this.#alive();
    return this.#tokenizer.countTokens(text, options);
  }

  stats(): ModelStats {
    this.#alive();
    const s = this.#native.stats();
    return { ...s, tokensPerSecond: s.busySeconds > 0 ? (s.promptTokens + s.generatedTokens) / s.busySeconds : 0 };
  }

  #prompt(prompt: unknown, truncate: 'error' | 'start' = 'error', maxTokens = 1): Uint32Array {
    let ids = this.#tokens(prompt, 'prompt');
    // An empty prompt starts from <|endoftext|>, GPT-2's start-of-text as well as its end.
    if (ids.length === 0) ids = Uint32Array.of(this.#info.eosTokenId);
    const n = this.#info.contextSize;
    if (ids.length > n) {
      if (truncate === 'error') throw new RangeError(`Expected at most ${n} prompt tokens (the context size) but received ${ids.length}`);
      // keep the end of the prompt and room to generate (maxTokens, or half the context at most)
      const keep = n - Math.min(maxTokens, Math.floor(n / 2));
      ids = ids.slice(ids.length - keep);
    }
    return ids;
  }

  /**
   * Streams generated text. Returns at once; the engine starts right away and runs ahead of the
   * consumer by at most `highWaterMark` tokens. The last chunk carries finishReason and usage.
   */
  generate(prompt: Prompt, options?: GenerateOptions): Generation {
    return this._generate(prompt, options);
  }

  /** @internal generate() with a hook at the end (sessions) */
  _generate(prompt: Prompt, options?: GenerateOptions, onDone?: (tokens: number[], finishReason: FinishReason | 'error') => void): Generation {
    this.#alive();
    const { request, truncate } = generateRequest(options, this.#info.vocabSize);
    const ids = this.#prompt(prompt, truncate, request.maxTokens);
    const { speculation, ...rest } = request;
    const native = speculation && { ...speculation, draft: speculation.draft === undefined ? undefined : Model.#nativeOf(speculation.draft) };
    return new Generation(this.#native, this.#registry, ids, { ...rest, speculation: native }, onDone);
  }

  /** The native object of a draft model (speculation.draft). */
  static #nativeOf(draft: unknown): NativeModel {
    if (!(draft instanceof Model)) throw new TypeError(`Expected a loaded Model for speculation.draft but received ${v.describe(draft, true)}`);
    draft.#alive();
    return draft.#native;
  }

  /** Generates to the end and resolves with the whole text; an abort resolves with the partial text. */
  async complete(prompt: Prompt, options?: GenerateOptions): Promise<Completion> {
    return collect(this.generate(prompt, { highWaterMark: 256, ...options }), options?.logprobs);
  }

  /**
   * Runs the model over token ids and resolves with the logits: n_vocab floats for the last
   * position, or for every position (row after row) with `allPositions`.
   */
  evaluate(ids: Uint32Array | readonly number[], options?: EvaluateOptions): Promise<Float32Array> {
    try {
      this.#alive();
      const o = v.object('options', options);
      const allLogits = v.optionalBoolean('allPositions', o.allPositions) ?? false;
      const signal = v.optionalSignal('signal', o.signal);
      const prompt = v.tokenIds('ids', ids, this.#info.vocabSize);
      if (prompt.length === 0) throw new RangeError('Expected at least 1 token id for ids but received 0');
      if (prompt.length > this.#info.contextSize) {
        throw new RangeError(`Expected at most ${this.#info.contextSize} token ids (the context size) for ids but received ${prompt.length}`);
      }
      return this.#run({ kind: 'evaluate', prompt, allLogits }, signal).then((e) => e.logits ?? new Float32Array(0));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Log-probabilities of each continuation's tokens after the context, as lm-eval's
   * loglikelihood: for in-context-learning evaluation (compare the sums across candidate
   * answers). The context's KV is computed once and reused across the continuations.
   */
  async score(context: Prompt, continuations: readonly Prompt[], options?: { signal?: AbortSignal }): Promise<ScoreResult[]> {
    this.#alive();
    const o = v.object('options', options);
    const signal = v.optionalSignal('signal', o.signal);
    if (!Array.isArray(continuations)) throw new TypeError(`Expected array for continuations but received ${v.describe(continuations, true)}`);
    let ctx = this.#tokens(context, 'context');
    if (ctx.length === 0) ctx = Uint32Array.of(this.#info.eosTokenId);
    const results: ScoreResult[] = [];
    for (let i = 0; i < continuations.length; i++) {
      const cont = this.#tokens(continuations[i], `continuations[${i}]`);
      if (cont.length === 0) throw new RangeError(`Expected at least 1 token for continuations[${i}] but received 0`);
      const prompt = new Uint32Array(ctx.length + cont.length);
      prompt.set(ctx);
      prompt.set(cont, ctx.length);
      if (prompt.length > this.#info.contextSize) {
        throw new RangeError(`Expected at most ${this.#info.contextSize} tokens of context and continuations[${i}] (the context size) but received ${prompt.length}`);
      }
      const e = await this.#run({ kind: 'score', prompt, scoreFrom: ctx.length }, signal);
      const logprobs = e.scores ?? new Float32Array(0);
      let sum = 0;
      for (const x of logprobs) sum += x;
      results.push({ tokens: cont, logprobs, sum });
    }
    return results;
  }

  /**
   * Perplexity of a text under the model, with a sliding window for texts longer than the
   * context: windows of `window` tokens (default the context size) moved by `stride` (default
   * half a window), each scoring only the tokens the previous windows did not.
   */
  async perplexity(text: Prompt, options?: { window?: number; stride?: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void }): Promise<PerplexityResult> {
    this.#alive();
    const o = v.object('options', options);
    const window = v.optionalInteger('window', o.window, 2, this.#info.contextSize) ?? this.#info.contextSize;
    const stride = v.optionalInteger('stride', o.stride, 1, window - 1) ?? Math.max(1, Math.floor(window / 2));
    const signal = v.optionalSignal('signal', o.signal);
    if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
      throw new TypeError(`Expected function for onProgress but received ${v.describe(o.onProgress, true)}`);
    }
    const onProgress = o.onProgress as ((done: number, total: number) => void) | undefined;
    const ids = this.#tokens(text, 'text');
    if (ids.length < 2) throw new RangeError(`Expected at least 2 tokens for text but received ${ids.length}`);
    let sum = 0;
    let count = 0;
    let scoredEnd = 1;   // tokens before this index are scored (the first one never is)
    for (let begin = 0; scoredEnd < ids.length; begin += stride) {
      const end = Math.min(begin + window, ids.length);
      if (end <= scoredEnd) continue;
      const e = await this.#run({ kind: 'score', prompt: ids.slice(begin, end), scoreFrom: Math.max(1, scoredEnd - begin) }, signal);
      for (const x of e.scores ?? []) { sum += x; count++; }
      scoredEnd = end;
      onProgress?.(scoredEnd, ids.length);
    }
    return { perplexity: Math.exp(-sum / count), logprobSum: sum, tokens: count };
  }

  #tokens(prompt: unknown, name: string): Uint32Array {
    if (typeof prompt === 'string') return this.#tokenizer.tokenize(prompt);
    if (prompt instanceof Uint32Array || Array.isArray(prompt)) return v.tokenIds(name, prompt, this.#info.vocabSize);
    throw new TypeError(`Expected string or token ids for ${name} but received ${v.describe(prompt, true)}`);
  }

  /** Submits a request that ends in one final event (evaluate, score) and resolves with it. */
  #run(request: NativeRequest, signal: AbortSignal | undefined): Promise<NativeEvent> {
    if (signal?.aborted) return Promise.reject(new Gpt2Error('ERR_ABORTED', `${request.kind} aborted`));
    return new Promise<NativeEvent>((resolve, reject) => {
      const id = this.#native.submit({ ...request, credit: 0 });
      const onAbort = () => { try { this.#native.cancel(id); } catch { /* disposed */ } };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#sinks.set(id, {
        onEvent: (e: NativeEvent) => {
          if (!e.done) return;
          this.#sinks.delete(id);
          signal?.removeEventListener('abort', onAbort);
          if (e.finishReason === 'error') reject(new Gpt2Error(e.errorCode ?? 'ERR_INTERNAL', e.errorMessage ?? `${request.kind} failed`));
          else if (e.finishReason === 'abort') reject(new Gpt2Error('ERR_ABORTED', `${request.kind} aborted`));
          else resolve(e);
        },
      });
    });
  }

  /** A multi-turn conversation that keeps its KV cache between turns (see Session). */
  createSession(options?: SessionOptions): Session {
    this.#alive();
    return new Session(this, options);
  }

  /**
   * Stops the engine, ends running generations with ERR_DISPOSED and frees the model.
   * Idempotent: every call returns the same promise. Afterwards every method throws ERR_DISPOSED.
   */
  dispose(): Promise<void> {
    this.#disposing ??= this.#native.dispose();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** Loads a GPT-2 GGUF model. The file is mapped and checked off the JS thread. */
export async function loadModel(path: string, options?: LoadModelOptions): Promise<Model> {
  v.string('path', path);
  const o = v.object('options', options);
  const nativeOptions = {
    threads: v.optionalInteger('threads', o.threads, 1, 512),
    contextSize: v.optionalInteger('contextSize', o.contextSize, 1, 1 << 20),
    maxSequences: v.optionalInteger('maxSequences', o.maxSequences, 1, 4096),
    batchSize: v.optionalInteger('batchSize', o.batchSize, 1, 1 << 16),
    kvF32: v.optionalOneOf('kvCacheType', o.kvCacheType, ['f16', 'f32']) === 'f32',
    batchInvariant: v.optionalBoolean('batchInvariant', o.batchInvariant) ?? true,
    // the environment's default, for an app run on another device without a code change
    device: v.optionalDevice('device', o.device) ?? v.optionalDevice('GPT2_NODE_DEVICE', process.env.GPT2_NODE_DEVICE || undefined),
    gpuLayers: v.optionalInteger('gpuLayers', o.gpuLayers, 0, 1024),
  };
  // `hf:owner/repo[/file][@revision]`: fetched into the cache first (lib/hub), then loaded from there.
  if (isHubSpecifier(path)) path = await resolveSpecifier(path, o, 'onDownloadProgress');
  const sinks = new Map<number, EventSink>();
  const onEvents = (events: NativeEvent[]) => {
    for (const e of events) {
      try {
        sinks.get(e.id)?.onEvent(e);
      } catch (err) {
        // A handler bug must not lose other requests' events; surface it without crashing here.
        queueMicrotask(() => { throw err; });
      }
    }
  };
  let native: NativeModel;
  try {
    native = await binding.loadModel(path, nativeOptions, onEvents);
  } catch (e) {
    throw fromNative(e);
  }
  return new Model(native, sinks);
}

export type { Chunk, Completion, FinishReason, Usage };
