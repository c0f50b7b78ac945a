// Log-probabilities in OpenAI's two formats: the completions API's parallel arrays
// ({tokens, token_logprobs, top_logprobs, text_offset}) and the chat API's list of
// {token, logprob, bytes, top_logprobs}. A token that is not valid UTF-8 on its own (part of a
// character split across tokens) is named `bytes:\xe2\x80` as OpenAI does.
import type { TokenLogprob } from '../generation.js';
import type { Tokenizer } from '../tokenizer.js';

export interface Piece {
  /** The token's text, or `bytes:\xe2\x80` when its bytes are not UTF-8 on their own. */
  text: string;
  bytes: number[];
  /** Whether the bytes are UTF-8 on their own. */
  utf8: boolean;
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/** Token id → its text and bytes, cached (at most the vocabulary). */
export class Pieces {
  readonly #tokenizer: Tokenizer;
  readonly #cache = new Map<number, Piece>();
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(tokenizer: Tokenizer) {
    this.#tokenizer = tokenizer;
  }

  get(id: number): Piece {
    let piece = this.#cache.get(id);
    if (!piece) {
      const raw = this.#tokenizer.tokenBytes(id);
      const bytes = Array.from(raw);
      let text: string;
      let utf8 = true;
      try {
        text = this.#decoder.decode(raw);
      } catch {
        utf8 = false;
        text = 'bytes:' + bytes.map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
      }
      piece = { text, bytes, utf8 };
      this.#cache.set(id, piece);
    }
    return piece;
  }
}

// -Infinity (a token banned by logit_bias that still shows among the alternatives) is not JSON
const finite = (x: number) => (Number.isFinite(x) ? x : -9999);

export function emptyCompletionLogprobs(): CompletionLogprobs {
  return { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
}

/**
 * Appends a chunk's tokens to `out`. `textStart` is the length of the choice's text before the
 * chunk and `textLength` the chunk's text length: offsets stay inside the text even when the
 * chunk's text is shorter than its tokens' (held-back bytes or a stop string).
 */
export function appendCompletionLogprobs(out: CompletionLogprobs, lps: readonly TokenLogprob[], pieces: Pieces, textStart: number, textLength: number): void {
  let within = 0;
  for (const lp of lps) {
    const piece = pieces.get(lp.token);
    out.tokens.push(piece.text);
    out.token_logprobs.push(finite(lp.logprob));
    const top: Record<string, number> = {};
    for (const alt of lp.top) top[pieces.get(alt.token).text] ??= finite(alt.logprob);
    out.top_logprobs.push(top);
    out.text_offset.push(textStart + Math.min(within, textLength));
    within += piece.utf8 ? piece.text.length : 0;
  }
}

export function chatLogprobs(lps: readonly TokenLogprob[], pieces: Pieces): ChatTokenLogprob[] {
  return lps.map((lp) => {
    const piece = pieces.get(lp.token);
    return {
      token: piece.text,
      logprob: finite(lp.logprob),
      bytes: piece.bytes,
      top_logprobs: lp.top.map((alt) => {
        const p = pieces.get(alt.token);
        return { token: p.text, logprob: finite(alt.logprob), bytes: p.bytes };
      }),
    };
  });
}
