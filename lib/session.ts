// A multi-turn conversation on one model. GPT-2 has no chat template; the default follows
// DialoGPT: every turn, the user's and the model's, ends with <|endoftext|>, and the model's
// reply is generated after the user's turn until it emits <|endoftext|>.
//
// The KV cache is kept between turns by the engine's prefix reuse: each turn's prompt is the
// previous one plus the new turns, so the earlier turns are not computed again (in whole chunks
// of 128 positions) as long as the slot has not been taken by other requests meanwhile.
// When the conversation outgrows the context, the oldest turns are dropped and the rest is
// prefilled again.
import { Gpt2Error } from './errors.js';
import { collect, type Completion, type FinishReason, type Generation } from './generation.js';
import type { GenerateOptions, Model } from './model.js';
import * as v from './validate.js';

export interface SessionOptions {
  /** Token ids that end every turn. Default: [<|endoftext|>] (DialoGPT). */
  turnSeparator?: readonly number[];
  /** Tokens kept free for each reply when older turns must be dropped. Default: the turn's maxTokens (256). */
  replyReserve?: number;
}

export interface Turn {
  role: 'user' | 'model';
  text: string;
  tokens: Uint32Array;
}

export class Session {
  readonly #model: Model;
  readonly #separator: Uint32Array;
  readonly #replyReserve: number | undefined;
  #turns: Turn[] = [];
  #busy = false;
  /** Turns dropped from the start of the conversation to fit the context, so far. */
  droppedTurns = 0;

  /** @internal use model.createSession() */
  constructor(model: Model, options?: SessionOptions) {
    const o = v.object('options', options);
    const vocab = model.info.vocabSize;
    this.#model = model;
    this.#separator = o.turnSeparator === undefined ? Uint32Array.of(model.info.eosTokenId) : v.tokenIds('turnSeparator', o.turnSeparator, vocab);
    this.#replyReserve = v.optionalInteger('replyReserve', o.replyReserve, 1, model.info.contextSize - 1);
  }

  /** The conversation so far (turns dropped for the context are gone). */
  get history(): readonly Turn[] {
    return this.#turns;
  }

  /** Forgets the conversation. */
  reset(): void {
    if (this.#busy) throw new Gpt2Error('ERR_BUSY', 'a turn of this session is still generating');
    this.#turns = [];
    this.droppedTurns = 0;
  }

  #promptFor(user: Uint32Array, reserve: number): Uint32Array {
    const limit = this.#model.info.contextSize - reserve;
    const sep = this.#separator;
    const size = (turns: Turn[]) => turns.reduce((n, t) => n + t.tokens.length + sep.length, 0) + user.length + sep.length;
    while (this.#turns.length > 0 && size(this.#turns) > limit) {
      this.#turns.shift();
      this.droppedTurns++;
    }
    const out: number[] = [];
    for (const t of this.#turns) out.push(...t.tokens, ...sep);
    out.push(...user, ...sep);
    // a single user turn longer than the room: keep its end
    return Uint32Array.from(out.length > limit ? out.slice(out.length - limit) : out);
  }

  /** Streams the model's reply to `text`; the turn and the reply join the history when it ends. */
  generate(text: string, options?: GenerateOptions): Generation {
    v.string('text', text);
    if (this.#busy) throw new Gpt2Error('ERR_BUSY', 'a turn of this session is still generating');
    const o = v.object('options', options);
    const maxTokens = v.optionalInteger('maxTokens', o.maxTokens, 1, this.#model.info.contextSize - 1) ?? 256;
    const user = this.#model.tokenize(text);
    const prompt = this.#promptFor(user, Math.min(this.#replyReserve ?? maxTokens, this.#model.info.contextSize - 1));
    this.#busy = true;
    try {
      return this.#model._generate(prompt, { ...o, maxTokens }, (tokens: number[], reason: FinishReason | 'error') => {
        this.#busy = false;
        if (reason === 'error') return;
        this.#turns.push({ role: 'user', text, tokens: user });
        const reply = Uint32Array.from(tokens);
        this.#turns.push({ role: 'model', text: this.#model.detokenize(reply), tokens: reply });
      });
    } catch (e) {
      this.#busy = false;
      throw e;
    }
  }

  /** The model's whole reply to `text`. */
  async complete(text: string, options?: GenerateOptions): Promise<Completion> {
    return collect(this.generate(text, { highWaterMark: 256, ...options }), options?.logprobs);
  }
}
