// The micro GPT-2: a 257-token byte vocabulary (no merges), 1 layer, 8 wide, 8 positions, f32
// weights from a fixed LCG. About 10 KB as GGUF, so that mutations and fuzzers spend their time in
// headers, where the parsing happens (test/formats/fuzz-parsers.test.ts, test/fuzz/seeds.ts).
import { writeGguf, type GgufTensorSpec } from '../../lib/gguf/writer.js';
import type { GgufValue } from '../../lib/gguf/reader.js';
import { byteLevelAlphabet } from './export-formats.js';

export async function writeMicroModel(path: string): Promise<void> {
  const tokens = [...byteLevelAlphabet().codePoints.map((cp) => String.fromCodePoint(cp)), '<|endoftext|>'];
  const E = 8, F = 32, V = tokens.length, C = 8;
  const kv: Array<[string, GgufValue]> = [
    ['general.architecture', { type: 'string', value: 'gpt2' }],
    ['gpt2.context_length', { type: 'u32', value: C }],
    ['gpt2.embedding_length', { type: 'u32', value: E }],
    ['gpt2.feed_forward_length', { type: 'u32', value: F }],
    ['gpt2.block_count', { type: 'u32', value: 1 }],
    ['gpt2.attention.head_count', { type: 'u32', value: 2 }],
    ['gpt2.attention.layer_norm_epsilon', { type: 'f32', value: 1e-5 }],
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: [] }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: V - 1 }],
  ];
  let x = 1;
  const t = (name: string, shape: number[]): GgufTensorSpec => ({
    name, type: 'F32', shape,
    data: () => [Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => ((x = (x * 48271) % 2147483647) / 2147483647 - 0.5) * 0.2)],
  });
  await writeGguf(path, {
    kv,
    tensors: [
      t('token_embd.weight', [E, V]), t('position_embd.weight', [E, C]), t('output_norm.weight', [E]), t('output_norm.bias', [E]),
      t('blk.0.attn_norm.weight', [E]), t('blk.0.attn_norm.bias', [E]), t('blk.0.attn_qkv.weight', [E, 3 * E]), t('blk.0.attn_qkv.bias', [3 * E]),
      t('blk.0.attn_output.weight', [E, E]), t('blk.0.attn_output.bias', [E]), t('blk.0.ffn_norm.weight', [E]), t('blk.0.ffn_norm.bias', [E]),
      t('blk.0.ffn_up.weight', [E, F]), t('blk.0.ffn_up.bias', [F]), t('blk.0.ffn_down.weight', [F, E]), t('blk.0.ffn_down.bias', [E]),
    ],
  });
}
