// A running generation as an async iterator with backpressure.
//
// The engine may run ahead of the consumer by at most `highWaterMark` tokens: it starts with that
// much credit, spends one per token, and gets one back for each token the consumer pulls. A
// consumer that stops pulling therefore pauses its own sequence (and only its own) in the
// engine; nothing is buffered without bound.
import type { NativeEvent, NativeModel, NativeRequest } from './binding.js';
import type { Readable } from 'node:stream';

import { Gpt2Error, fromNative } from './errors.js';
import { toReadable, toReadableStream } from './streams.js';

export type FinishReason = 'stop' | 'length' | 'abort';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** With `speculation`: tokens the predictor guessed, and how many of them the model kept. */
  draftedTokens?: number;
  acceptedTokens?: number;
}

/** Log-probability of a generated token, and of the most likely alternatives at its position. */
export interface TokenLogprob {
  token: number;
  logprob: number;
  top: { token: number; logprob: number }[];
}

export interface Chunk {
  /** New text; never ends inside a UTF-8 sequence. May be empty. */
  text: string;
  /** The token ids this chunk's text came from. */
  tokens: Uint32Array;
  /** With the `logprobs` option: one entry per token of this chunk. */
  logprobs?: TokenLogprob[];
  /** Set on the last chunk only. */
  finishReason?: FinishReason;
  /** Set on the last chunk only. */
  usage?: Usage;
}

export interface Completion {
  text: string;
  /** Every generated token (including those of a stop string, whose text is not in `text`). */
  tokens: Uint32Array;
  /** With the `logprobs` option. */
  logprobs?: TokenLogprob[];
  finishReason: FinishReason;
  usage: Usage;
}

/**
 * Reads a generation to its end into one Completion (Model.complete, Session.complete); an
 * abort ends it with the partial text. `logprobs`: the request's option (the result has them
 * when it asked for them).
 */
export async function collect(generation: AsyncIterable<Chunk>, logprobs: boolean | number | undefined): Promise<Completion> {
  const parts: string[] = [];
  const tokens: number[] = [];
  const lps: TokenLogprob[] = [];
  let finishReason: FinishReason = 'stop';
  let usage: Usage | undefined;
  for await (const chunk of generation) {
    parts.push(chunk.text);
    for (const t of chunk.tokens) tokens.push(t);
    if (chunk.logprobs) lps.push(...chunk.logprobs);
    if (chunk.finishReason) { finishReason = chunk.finishReason; usage = chunk.usage; }
  }
  const result: Completion = { text: parts.join(''), tokens: Uint32Array.from(tokens), finishReason, usage: usage! };
  if (logprobs !== undefined && logprobs !== false) result.logprobs = lps;
  return result;
}

/** What a request handler gets from the model's event dispatcher. */
export interface EventSink {
  onEvent(e: NativeEvent): void;
}

export interface RequestRegistry {
  register(id: number, sink: EventSink): void;
  unregister(id: number): void;
}

// What ends a generation whose consumer dropped it unfinished (neither read to the end nor
// stopped with break/return()): held apart from the generation, which the engine's events reach
// through a Forwarder that holds it only weakly while no next() is pending. Without this, its
// sequence would keep a KV cache slot, paused for credit, until the model is disposed.
interface Abandoned {
  native: NativeModel;
  registry: RequestRegistry;
  id: number;
  generated: number[] | undefined;
  onDone: ((tokens: number[], finishReason: FinishReason | 'error') => void) | undefined;
}
const abandonedGenerations = new FinalizationRegistry<Abandoned>((a) => {
  a.registry.unregister(a.id);
  try { a.native.cancel(a.id); } catch { /* disposed: the engine ended it anyway */ }
  a.onDone?.(a.generated ?? [], 'abort');
});

/** A pending next()'s callbacks. */
type Waiter = { resolve: (r: IteratorResult<Chunk>) => void; reject: (e: unknown) => void };

// The registry's entry for a generation: strong while a next() is pending (the awaiting consumer
// is then reachable only through the engine's events), weak otherwise.
class Forwarder implements EventSink {
  readonly #weak: WeakRef<EventSink>;
  strong: EventSink | undefined;
  constructor(sink: EventSink) { this.#weak = new WeakRef(sink); }
  onEvent(e: NativeEvent): void { (this.strong ?? this.#weak.deref())?.onEvent(e); }
}

export class Generation implements AsyncIterableIterator<Chunk>, EventSink {
  readonly #native: NativeModel;
  readonly #registry: RequestRegistry;
  readonly #hwm: number;
  readonly #promptTokens: number;
  readonly #buffer: Chunk[] = [];
  #waiter: Waiter | undefined;
  #id = -1;
  #finished = false;      // the engine reported the end (or it never started)
  #failure: Error | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #onDone: ((tokens: number[], finishReason: FinishReason | 'error') => void) | undefined;
  #generated: number[] | undefined;
  #forwarder: Forwarder | undefined;
  #speculating = false;

  constructor(native: NativeModel, registry: RequestRegistry, prompt: Uint32Array,
    options: Omit<NativeRequest, 'kind' | 'prompt' | 'credit'> & { highWaterMark: number; signal?: AbortSignal },
    /** @internal called once when the generation ends, with every generated token (sessions) */
    onDone?: (tokens: number[], finishReason: FinishReason | 'error') => void) {
    this.#native = native;
    this.#registry = registry;
    this.#hwm = options.highWaterMark;
    this.#promptTokens = prompt.length;
    this.#speculating = options.speculation !== undefined;
    this.#signal = options.signal;
    this.#onDone = onDone;
    if (onDone) this.#generated = [];
    if (this.#signal?.aborted) {
      this.#end({ text: '', tokens: new Uint32Array(0), finishReason: 'abort', usage: this.#usage(0) });
      return;
    }
    const { highWaterMark, signal, ...request } = options;
    void highWaterMark; void signal;
    let id: number;
    try {
      id = native.submit({ ...request, kind: 'generate', prompt, credit: this.#hwm });
    } catch (e) {
      throw fromNative(e);   // a refused draft model (ERR_INCOMPATIBLE_MODEL, ERR_DISPOSED)
    }
    this.#id = id;
    this.#forwarder = new Forwarder(this);
    registry.register(id, this.#forwarder);
    abandonedGenerations.register(this, { native, registry, id, generated: this.#generated, onDone }, this);
    if (this.#signal) {
      // Not a closure over `this`: a long-lived signal must not keep a dropped generation alive.
      this.#onAbort = () => { try { native.cancel(id); } catch { /* disposed */ } };
      this.#signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  #usage(completion: number): Usage {
    return { promptTokens: this.#promptTokens, completionTokens: completion, totalTokens: this.#promptTokens + completion };
  }

  #cancel(): void {
    if (!this.#finished && this.#id >= 0) {
      try { this.#native.cancel(this.#id); } catch { /* disposed: the engine ends it anyway */ }
    }
  }

  #cleanup(): void {
    if (this.#onAbort) this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#onAbort = undefined;
    if (this.#id >= 0) this.#registry.unregister(this.#id);
    abandonedGenerations.unregister(this);
    this.#forwarder = undefined;
  }

  #wait(w: Waiter): void {
    this.#waiter = w;
    if (this.#forwarder) this.#forwarder.strong = this;
  }

  #end(last: Chunk | undefined, failure?: Error): void {
    this.#finished = true;
    const onDone = this.#onDone;
    this.#onDone = undefined;
    onDone?.(this.#generated ?? [], failure ? 'error' : last?.finishReason ?? 'stop');
    this.#failure = failure;
    if (last) this.#push(last);
    this.#cleanup();
    if (this.#waiter && this.#buffer.length === 0) this.#settleWaiter();
  }

  /** The pending next()'s callbacks, no longer pending: the engine then holds this weakly again. */
  #takeWaiter(): Waiter {
    const w = this.#waiter!;
    this.#waiter = undefined;
    if (this.#forwarder) this.#forwarder.strong = undefined;
    return w;
  }

  #push(chunk: Chunk): void {
    if (this.#waiter) {
      const w = this.#takeWaiter();
      this.#consumed(chunk);
      w.resolve({ value: chunk, done: false });
    } else {
      this.#buffer.push(chunk);
    }
  }

  /** A chunk left the buffer: the engine may produce that many more tokens. */
  #consumed(chunk: Chunk): void {
    if (!this.#finished && chunk.tokens.length > 0 && this.#id >= 0) {
      try { this.#native.grant(this.#id, chunk.tokens.length); } catch { /* disposed meanwhile */ }
    }
  }

  #settleWaiter(): void {
    const w = this.#takeWaiter();
    if (this.#failure) {
      const f = this.#failure;
      this.#failure = undefined;
      w.reject(f);
    } else {
      w.resolve({ value: undefined, done: true });
    }
  }

  onEvent(e: NativeEvent): void {
    if (this.#generated) for (const t of e.tokens) this.#generated.push(t);
    if (e.tokens.length > 0 || e.text.length > 0) {
      const chunk: Chunk = { text: e.text, tokens: e.tokens };
      if (e.logprobs) chunk.logprobs = e.logprobs.map((lp, i) => ({ token: e.tokens[i]!, logprob: lp.logprob, top: lp.top }));
      this.#push(chunk);
    }
    if (!e.done) return;
    if (e.finishReason === 'error') {
      this.#end(undefined, new Gpt2Error(e.errorCode ?? 'ERR_INTERNAL', e.errorMessage ?? 'generation failed'));
    } else {
      const usage = this.#usage(e.completionTokens ?? 0);
      if (this.#speculating) { usage.draftedTokens = e.draftedTokens ?? 0; usage.acceptedTokens = e.acceptedTokens ?? 0; }
      this.#end({ text: '', tokens: new Uint32Array(0), finishReason: e.finishReason as FinishReason, usage });
    }
  }

  next(): Promise<IteratorResult<Chunk>> {
    if (this.#waiter) return Promise.reject(new Gpt2Error('ERR_CONCURRENT_NEXT', 'next() called while a previous next() is pending'));
    const chunk = this.#buffer.shift();
    if (chunk) {
      this.#consumed(chunk);
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.#finished) {
      if (this.#failure) {
        const f = this.#failure;
        this.#failure = undefined;
        return Promise.reject(f);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.#wait({ resolve, reject }));
  }

  /** Called by `break` in a for-await loop: stops the generation and frees its slot. */
  return(): Promise<IteratorResult<Chunk>> {
    this.#cancel();
    const onDone = this.#onDone;
    this.#onDone = undefined;
    onDone?.(this.#generated ?? [], 'abort');
    this.#buffer.length = 0;
    this.#finished = true;
    this.#failure = undefined;
    this.#cleanup();
    if (this.#waiter) this.#settleWaiter();   // a next() pending meanwhile ends too
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** A Node Readable of text (or of chunks with objectMode) that honors backpressure. */
  toReadable(options?: { objectMode?: boolean }): Readable {
    return toReadable(this, options);
  }

  /** A web ReadableStream of chunks (or of text with { text: true }) that honors backpressure. */
  toReadableStream(options?: { text?: boolean }): ReadableStream<Chunk | string> {
    return toReadableStream(this, options);
  }

  /** Tokens buffered here and not yet pulled (for tests and stats). */
  get buffered(): number {
    return this.#buffer.reduce((n, c) => n + c.tokens.length, 0);
  }
}
