// Turning chat messages into a GPT-2 prompt. GPT-2 has no chat template; the default follows
// DialoGPT: every turn (its text only, no role) ends with <|endoftext|>, and the reply is
// generated after the last turn until the model emits <|endoftext|>. A format can instead put
// text before each role's turns ("User: ", "Assistant: ") and end turns with other text ("\n");
// a separator that is not <|endoftext|> also becomes a stop string of the reply.
//
// The prompt is built as token ids, piece by piece: a message's text is tokenized as plain text
// (so "<|endoftext|>" typed by a user cannot end a turn), while the separator and the prefixes
// may name special tokens.
import type { Model } from '../model.js';
import * as v from '../validate.js';

export interface ChatFormat {
  /** Text that ends every turn; special tokens in it are recognized. Default '<|endoftext|>' (DialoGPT). */
  turnSeparator?: string;
  /** Text before each turn's content, by role; `assistant` also starts the reply. Default: none (DialoGPT has no roles). */
  rolePrefixes?: { system?: string; user?: string; assistant?: string };
}

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export class ChatTemplate {
  readonly #model: Model;
  readonly #separator: Uint32Array;
  readonly #prefixes: Record<ChatRole, Uint32Array>;
  /** Stop strings every reply gets (the separator unless it is <|endoftext|>). */
  readonly stop: readonly string[];

  constructor(model: Model, format: ChatFormat = {}) {
    const o = v.object('chatFormat', format);
    const separator = o.turnSeparator === undefined ? '<|endoftext|>' : v.string('chatFormat.turnSeparator', o.turnSeparator);
    const p = v.object('chatFormat.rolePrefixes', o.rolePrefixes);
    const prefix = (role: ChatRole) => {
      const text = p[role] === undefined ? '' : v.string(`chatFormat.rolePrefixes.${role}`, p[role]);
      return model.tokenize(text, { allowedSpecial: 'all' });
    };
    this.#model = model;
    this.#separator = model.tokenize(separator, { allowedSpecial: 'all' });
    this.#prefixes = { system: prefix('system'), user: prefix('user'), assistant: prefix('assistant') };
    const eos = model.info.eosTokenId;
    const isEos = this.#separator.length === 1 && this.#separator[0] === eos;
    this.stop = isEos || separator === '' ? [] : [separator.replaceAll('<|endoftext|>', '')].filter((s) => s !== '');
    const long = this.stop.find((s) => s.length > v.MAX_STOP_LENGTH);
    if (long !== undefined) {
      throw new RangeError(`Expected at most ${v.MAX_STOP_LENGTH} characters for chatFormat.turnSeparator (it also stops the reply) but received ${long.length}`);
    }
  }

  /** The prompt for the reply that follows these messages. */
  async prompt(messages: readonly ChatMessage[]): Promise<Uint32Array> {
    const out: number[] = [];
    for (const m of messages) {
      out.push(...this.#prefixes[m.role]);
      for (const t of await this.#model.tokenizeAsync(m.content)) out.push(t);
      out.push(...this.#separator);
    }
    out.push(...this.#prefixes.assistant);
    return Uint32Array.from(out);
  }
}
