// Reference tokenizers behind one interface: tiktoken (the ground truth, OpenAI's Rust core
// as WASM), gpt-tokenizer and js-tiktoken (pure JS), all for r50k_base (GPT-2).
import { get_encoding } from 'tiktoken';
import { getEncoding } from 'js-tiktoken';
import * as gptTokenizer from 'gpt-tokenizer/encoding/r50k_base';

export interface RefTokenizer {
  name: string;
  encode(text: string, allowSpecial: boolean): number[];
  decode(ids: readonly number[]): string;
}

let tiktokenEnc: ReturnType<typeof get_encoding> | undefined;
// ignoreBOM: a leading U+FEFF is text, not a byte order mark to drop
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

export const tiktoken: RefTokenizer = {
  name: 'tiktoken',
  encode(text, allowSpecial) {
    tiktokenEnc ??= get_encoding('r50k_base');
    return Array.from(allowSpecial ? tiktokenEnc.encode(text, 'all') : tiktokenEnc.encode(text, [], []));
  },
  decode(ids) {
    tiktokenEnc ??= get_encoding('r50k_base');
    return utf8.decode(tiktokenEnc.decode(Uint32Array.from(ids)));
  },
};

let jsTiktokenEnc: ReturnType<typeof getEncoding> | undefined;
export const jsTiktoken: RefTokenizer = {
  name: 'js-tiktoken',
  encode(text, allowSpecial) {
    jsTiktokenEnc ??= getEncoding('r50k_base');
    return allowSpecial ? jsTiktokenEnc.encode(text, 'all') : jsTiktokenEnc.encode(text, [], []);
  },
  decode(ids) {
    jsTiktokenEnc ??= getEncoding('r50k_base');
    return jsTiktokenEnc.decode(ids as number[]);
  },
};

export const gptTok: RefTokenizer = {
  name: 'gpt-tokenizer',
  encode(text, allowSpecial) {
    return allowSpecial
      ? gptTokenizer.encode(text, { allowedSpecial: 'all' as never, disallowedSpecial: new Set() })
      : gptTokenizer.encode(text, { allowedSpecial: new Set(), disallowedSpecial: new Set() });
  },
  decode(ids) {
    return gptTokenizer.decode(ids);
  },
};

export const references: RefTokenizer[] = [tiktoken, gptTok, jsTiktoken];

/** UTF-8 bytes of a JS string the way N-API and WASM bindings see it (lone surrogates → U+FFFD). */
export function wellFormed(text: string): string {
  return utf8.decode(new TextEncoder().encode(text));
}

export function sameIds(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
