// Test support for the tokenizer: reads the vocabulary from a vocab-only GGUF (a small
// reader of the GGUF key/value section, independent of ggml) and writes the same data as
// HF `vocab.json` + `merges.txt` and as HF `tokenizer.json`, so tests can check that all
// three sources give identical ids. Not a general GGUF reader: tensors are not read.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

/** The GPT-2 vocab-only GGUF shipped with llama.cpp (in the vendored tree). */
export function gpt2VocabGgufPath(): string {
  const path = join(root, 'vendor', 'llama.cpp', 'models', 'ggml-vocab-gpt-2.gguf');
  if (!existsSync(path)) throw new Error(`${path} not found; run \`node vendor/materialize.mjs\` (npm install does)`);
  return path;
}

export type GgufRawValue = number | bigint | boolean | string | GgufRawValue[];

/** Reads the key/value metadata of a GGUF file (v2/v3, little-endian). */
export function readGgufMetadata(path: string): Map<string, GgufRawValue> {
  const buf = readFileSync(path);
  let off = 0;
  const u32 = () => { const v = buf.readUInt32LE(off); off += 4; return v; };
  const u64 = () => { const v = buf.readBigUInt64LE(off); off += 8; return v; };
  const str = () => {
    const n = Number(u64());
    const s = buf.toString('utf8', off, off + n);
    off += n;
    return s;
  };
  const value = (type: number): GgufRawValue => {
    switch (type) {
      case 0: return buf.readUInt8(off++);
      case 1: return buf.readInt8(off++);
      case 2: { const v = buf.readUInt16LE(off); off += 2; return v; }
      case 3: { const v = buf.readInt16LE(off); off += 2; return v; }
      case 4: return u32();
      case 5: { const v = buf.readInt32LE(off); off += 4; return v; }
      case 6: { const v = buf.readFloatLE(off); off += 4; return v; }
      case 7: return buf.readUInt8(off++) !== 0;
      case 8: return str();
      case 9: {
        const itemType = u32();
        const n = Number(u64());
        const items: GgufRawValue[] = new Array(n);
        for (let i = 0; i < n; i++) items[i] = value(itemType);
        return items;
      }
      case 10: return u64();
      case 11: { const v = buf.readBigInt64LE(off); off += 8; return v; }
      case 12: { const v = buf.readDoubleLE(off); off += 8; return v; }
      default: throw new Error(`unknown GGUF value type ${type} at offset ${off}`);
    }
  };
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error(`${path}: not a GGUF file`);
  off = 4;
  u32(); // version
  u64(); // n_tensors
  const nKv = Number(u64());
  const out = new Map<string, GgufRawValue>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    out.set(key, value(u32()));
  }
  return out;
}

export interface VocabData {
  tokens: string[];   // GPT-2 byte-to-unicode form, index = id
  merges: string[];   // "a b", rank order
  eosId: number;
}

export function readGpt2Vocab(path = gpt2VocabGgufPath()): VocabData {
  const kv = readGgufMetadata(path);
  return {
    tokens: kv.get('tokenizer.ggml.tokens') as string[],
    merges: kv.get('tokenizer.ggml.merges') as string[],
    eosId: Number(kv.get('tokenizer.ggml.eos_token_id')),
  };
}

/** Writes vocab.json + merges.txt and tokenizer.json into a fresh temp folder. */
export function writeHfTokenizerFiles(v: VocabData = readGpt2Vocab()): { dir: string; vocabJson: string; mergesTxt: string; tokenizerJson: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gpt2-node-tok-'));
  const vocab: Record<string, number> = {};
  v.tokens.forEach((t, i) => { vocab[t] = i; });
  const vocabJson = join(dir, 'vocab.json');
  const mergesTxt = join(dir, 'merges.txt');
  const tokenizerJson = join(dir, 'tokenizer.json');
  writeFileSync(vocabJson, JSON.stringify(vocab));
  writeFileSync(mergesTxt, `#version: 0.2\n${v.merges.join('\n')}\n`);
  const eos = v.tokens[v.eosId];
  writeFileSync(tokenizerJson, JSON.stringify({
    version: '1.0',
    added_tokens: [{ id: v.eosId, content: eos, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, vocab, merges: v.merges },
  }));
  return { dir, vocabJson, mergesTxt, tokenizerJson };
}

/**
 * Writes a vocab-only GGUF with the given tokenizer keys (for error-path tests). `kv` entries
 * replace or add keys; a value of `undefined` removes the key.
 */
export async function writeVocabGguf(path: string, kv: Record<string, GgufKv | undefined>, v: VocabData = readGpt2Vocab()): Promise<void> {
  const { writeGguf } = await import('../../lib/gguf/writer.js');
  const base: Record<string, GgufKv | undefined> = {
    'general.architecture': { type: 'string', value: 'gpt2' },
    'tokenizer.ggml.model': { type: 'string', value: 'gpt2' },
    'tokenizer.ggml.tokens': { type: 'array', itemType: 'string', value: v.tokens },
    'tokenizer.ggml.merges': { type: 'array', itemType: 'string', value: v.merges },
    'tokenizer.ggml.eos_token_id': { type: 'u32', value: v.eosId },
    ...kv,
  };
  const entries = Object.entries(base).filter((e): e is [string, GgufKv] => e[1] !== undefined);
  await writeGguf(path, { kv: entries, tensors: [] });
}

export type GgufKv = import('../../lib/gguf/reader.js').GgufValue;
