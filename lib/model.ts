// A loaded GPT-2 model and its generation engine: the main object of the public API.
import { binding, type NativeEvent, type NativeModel, type NativeModelInfo, type NativeStats } from './binding.js';
import { Gpt2Error, fromNative } from './errors.js';
import { Generation, type Chunk, type EventSink, type FinishReason, type RequestRegistry, type Usage } from './generation.js';
import { Tokenizer, type TokenizeOptions } from './tokenizer.js';
import * as v from './validate.js';

export interface LoadModelOptions {
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
}

export type ModelInfo = Readonly<NativeModelInfo>;
export type ModelStats = NativeStats;

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
  /** Tokens the engine may produce ahead of the consumer. Default 16. */
  highWaterMark?: number;
  signal?: AbortSignal;
}

export interface Completion {
  text: string;
  tokens: Uint32Array;
  finishReason: FinishReason;
  usage: Usage;
}

export interface EvaluateOptions {
  /** Logits of every position instead of the last only. */
  allPositions?: boolean;
  signal?: AbortSignal;
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
    return this.#native.stats();
  }

  #prompt(prompt: unknown): Uint32Array {
    let ids: Uint32Array;
    if (typeof prompt === 'string') ids = this.#tokenizer.tokenize(prompt);
    else if (prompt instanceof Uint32Array || Array.isArray(prompt)) ids = v.tokenIds('prompt', prompt, this.#info.vocabSize);
    else throw new TypeError(`Expected string or token ids for prompt but received ${v.describe(prompt, true)}`);
    // An empty prompt starts from <|endoftext|>, GPT-2's start-of-text as well as its end.
    if (ids.length === 0) ids = Uint32Array.of(this.#info.eosTokenId);
    if (ids.length > this.#info.contextSize) {
      throw new RangeError(`Expected at most ${this.#info.contextSize} prompt tokens (the context size) but received ${ids.length}`);
    }
    return ids;
  }

  /**
   * Streams generated text. Returns at once; the engine starts right away and runs ahead of the
   * consumer by at most `highWaterMark` tokens. The last chunk carries finishReason and usage.
   */
  generate(prompt: Prompt, options?: GenerateOptions): Generation {
    this.#alive();
    const o = v.object('options', options);
    const ids = this.#prompt(prompt);
    return new Generation(this.#native, this.#registry, ids, {
      maxTokens: v.optionalInteger('maxTokens', o.maxTokens, 1, 1_000_000) ?? 256,
      temperature: v.optionalNumber('temperature', o.temperature, 0, 100) ?? 1,
      topK: v.optionalInteger('topK', o.topK, 0, this.#info.vocabSize) ?? 0,
      topP: v.optionalNumber('topP', o.topP, Number.MIN_VALUE, 1) ?? 1,
      minP: v.optionalNumber('minP', o.minP, 0, 1) ?? 0,
      seed: v.optionalInteger('seed', o.seed, 0, Number.MAX_SAFE_INTEGER) ?? 0,
      ignoreEos: v.optionalBoolean('ignoreEos', o.ignoreEos) ?? false,
      highWaterMark: v.optionalInteger('highWaterMark', o.highWaterMark, 1, 1 << 20) ?? 16,
      signal: v.optionalSignal('signal', o.signal),
    });
  }

  /** Generates to the end and resolves with the whole text; an abort resolves with the partial text. */
  async complete(prompt: Prompt, options?: GenerateOptions): Promise<Completion> {
    const parts: string[] = [];
    const tokens: number[] = [];
    let finishReason: FinishReason = 'stop';
    let usage: Usage | undefined;
    for await (const chunk of this.generate(prompt, { highWaterMark: 256, ...options })) {
      parts.push(chunk.text);
      for (const t of chunk.tokens) tokens.push(t);
      if (chunk.finishReason) { finishReason = chunk.finishReason; usage = chunk.usage; }
    }
    return { text: parts.join(''), tokens: Uint32Array.from(tokens), finishReason, usage: usage! };
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
      if (signal?.aborted) return Promise.reject(new Gpt2Error('ERR_ABORTED', 'evaluation aborted'));
      return new Promise<Float32Array>((resolve, reject) => {
        const id = this.#native.submit({ kind: 'evaluate', prompt, allLogits, credit: 0 });
        const onAbort = () => { try { this.#native.cancel(id); } catch { /* disposed */ } };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#sinks.set(id, {
          onEvent: (e: NativeEvent) => {
            if (!e.done) return;
            this.#sinks.delete(id);
            signal?.removeEventListener('abort', onAbort);
            if (e.finishReason === 'error') reject(new Gpt2Error(e.errorCode ?? 'ERR_INTERNAL', e.errorMessage ?? 'evaluation failed'));
            else if (e.finishReason === 'abort') reject(new Gpt2Error('ERR_ABORTED', 'evaluation aborted'));
            else resolve(e.logits ?? new Float32Array(0));
          },
        });
      });
    } catch (e) {
      return Promise.reject(e);
    }
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
    kvF32: kvCacheType(o.kvCacheType) === 'f32',
  };
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

function kvCacheType(value: unknown): 'f16' | 'f32' {
  if (value === undefined) return 'f16';
  if (value !== 'f16' && value !== 'f32') {
    const message = `Expected 'f16' or 'f32' for kvCacheType but received ${v.describe(value)}`;
    throw typeof value === 'string' ? new RangeError(message) : new TypeError(message);
  }
  return value;
}

export type { Chunk, FinishReason, Usage };
