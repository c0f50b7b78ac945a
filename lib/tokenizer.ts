// GPT-2's tokenizer (byte-level BPE, OpenAI r50k_base: the same ids as tiktoken), as a
// standalone object that needs no weights, and as a model's `tokenizer`. Validates every
// argument here (one message shape, TypeError/RangeError) before the native code re-checks.
import { binding, type NativeStreamDecoder, type NativeTokenizer } from './binding.js';
import { fromNative } from './errors.js';
import * as v from './validate.js';

export interface TokenizeOptions {
  /**
   * Special tokens recognized in the text, like tiktoken's `allowed_special`: 'all', or a
   * list such as ['<|endoftext|>']. By default none: "<|endoftext|>" in text is plain text.
   */
  allowedSpecial?: 'all' | readonly string[];
}

const constructToken = Symbol('Tokenizer');

/** Turns token ids into text as they arrive (for generation): never splits a character. */
export class StreamDecoder {
  readonly #native: NativeStreamDecoder;
  readonly #vocabSize: number;

  /** @internal use Tokenizer.createStreamDecoder() */
  constructor(native: NativeStreamDecoder, vocabSize: number, token: symbol) {
    if (token !== constructToken) throw new TypeError('StreamDecoder cannot be constructed directly; use tokenizer.createStreamDecoder()');
    this.#native = native;
    this.#vocabSize = vocabSize;
  }

  /**
   * Adds one token id (or several) and returns the text that is now complete, possibly ''.
   * Bytes of a character that is not finished yet are held back for the next call.
   */
  push(ids: number | Uint32Array | readonly number[]): string {
    if (typeof ids === 'number') return this.#native.push(v.integer('id', ids, 0, this.#vocabSize - 1));
    return this.#native.push(ids instanceof Uint32Array ? ids : v.tokenIds('ids', ids, this.#vocabSize));
  }

  /** Ends the stream: held-back bytes that never completed a character become U+FFFD. */
  flush(): string {
    return this.#native.flush();
  }
}

export class Tokenizer {
  readonly #native: NativeTokenizer;
  readonly #vocabSize: number;
  readonly #eosTokenId: number;
  readonly #special: ReadonlyMap<string, number>;

  /** @internal use loadTokenizer() or model.tokenizer */
  constructor(native: NativeTokenizer, token: symbol) {
    if (token !== constructToken) throw new TypeError('Tokenizer cannot be constructed directly; use loadTokenizer(path)');
    this.#native = native;
    const info = native.info();
    this.#vocabSize = info.vocabSize;
    this.#eosTokenId = info.eosTokenId;
    this.#special = new Map(Object.entries(info.specialTokens));
  }

  /** @internal for Model */
  static _fromNative(native: NativeTokenizer): Tokenizer {
    return new Tokenizer(native, constructToken);
  }

  /** Number of token ids (50257 for GPT-2). */
  get vocabSize(): number { return this.#vocabSize; }

  /** Id of <|endoftext|> (50256 for GPT-2). */
  get eosTokenId(): number { return this.#eosTokenId; }

  /** The special tokens' texts (['<|endoftext|>'] for GPT-2). */
  get specialTokens(): readonly string[] { return [...this.#special.keys()]; }

  #allowed(options: unknown): number[] {
    const o = v.object('options', options);
    const a = o.allowedSpecial;
    if (a === undefined) return [];
    if (a === 'all') return [...this.#special.values()];
    const names = [...this.#special.keys()].map((k) => `'${k}'`).join(', ');
    if (!Array.isArray(a)) {
      const message = `Expected 'all' or an array of special tokens (${names}) for allowedSpecial but received ${v.describe(a)}`;
      throw typeof a === 'string' ? new RangeError(message) : new TypeError(message);
    }
    return a.map((s: unknown, i) => {
      const message = `Expected one of ${names} for allowedSpecial[${i}] but received ${v.describe(s)}`;
      if (typeof s !== 'string') throw new TypeError(message);
      const id = this.#special.get(s);
      if (id === undefined) throw new RangeError(message);
      return id;
    });
  }

  /** Text to token ids, on the calling thread; use tokenizeAsync for long text. */
  tokenize(text: string, options?: TokenizeOptions): Uint32Array {
    v.string('text', text);
    const allowed = this.#allowed(options);
    try {
      return this.#native.tokenize(text, allowed);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Text to token ids off the JS thread (for long text: the event loop stays free). */
  async tokenizeAsync(text: string, options?: TokenizeOptions): Promise<Uint32Array> {
    v.string('text', text);
    const allowed = this.#allowed(options);
    try {
      return await this.#native.tokenizeAsync(text, allowed);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Number of tokens tokenize() would return. */
  countTokens(text: string, options?: TokenizeOptions): number {
    v.string('text', text);
    const allowed = this.#allowed(options);
    try {
      return this.#native.countTokens(text, allowed);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Token ids to text. Ids whose bytes do not form whole UTF-8 characters (a partial emoji,
   * say) decode to U+FFFD, as TextDecoder does; detokenize(tokenize(s)) === s for any
   * well-formed string.
   */
  detokenize(ids: Uint32Array | readonly number[]): string {
    const checked = this.#ids(ids);
    try {
      return this.#native.detokenize(checked);
    } catch (e) {
      throw fromNative(e);
    }
  }

  // Uint32Arrays go to the native code as they are (it checks every id with the same message);
  // arrays are checked here in one fast pass and copied into a Uint32Array.
  #ids(ids: unknown): Uint32Array {
    if (ids instanceof Uint32Array) return ids;
    if (Array.isArray(ids)) {
      const n = this.#vocabSize;
      let ok = true;
      for (let i = 0; i < ids.length; i++) {
        const x = ids[i];
        if (typeof x !== 'number' || (x >>> 0) !== x || x >= n) { ok = false; break; }
      }
      if (ok) return Uint32Array.from(ids as number[]);
    }
    return v.tokenIds('ids', ids, this.#vocabSize); // throws the precise TypeError / RangeError
  }

  /** The raw bytes of one token (a token can be part of a UTF-8 character). */
  tokenBytes(id: number): Uint8Array {
    return this.#native.tokenBytes(v.integer('id', id, 0, this.#vocabSize - 1));
  }

  /** A decoder that turns ids into text as they arrive, never splitting a character. */
  createStreamDecoder(): StreamDecoder {
    return new StreamDecoder(this.#native.createStreamDecoder(), this.#vocabSize, constructToken);
  }
}

/**
 * Loads a tokenizer without weights: a GGUF file (tokenizer.ggml.*), an HF vocab.json (with
 * merges.txt beside it), an HF tokenizer.json, or a folder holding tokenizer.json or
 * vocab.json + merges.txt. Reads the files off the JS thread.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  v.string('path', path);
  let native: NativeTokenizer;
  try {
    native = await binding.loadTokenizer(path);
  } catch (e) {
    throw fromNative(e);
  }
  return new Tokenizer(native, constructToken);
}
