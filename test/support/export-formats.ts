// Writes a GGUF model (f32, f16 or bf16 weights) in the other layouts GPT-2 ships in, byte for
// byte the same weights: a Hugging Face GPT2LMHeadModel folder (config.json, safetensors,
// tokenizer files) and a legacy ggml .bin (ggml's examples/gpt-2 format). For tests: the same
// random model in three formats must give identical logits. Also the fixtures of the loaders'
// error tests (options make the variants real checkpoints come in).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Gpt2Error } from '../../lib/errors.js';
import { readGgufMetadata, readGgufTensorBytes, type GgufMetadata, type GgufTensorInfo } from '../../lib/gguf/reader.js';

/** GGUF name → HF name (without the `transformer.` prefix) and whether it is a Conv1D weight. */
function hfName(gguf: string): { name: string; conv1d: boolean } {
  const top: Record<string, string> = {
    'token_embd.weight': 'wte.weight', 'position_embd.weight': 'wpe.weight', 'output.weight': 'lm_head.weight',
    'output_norm.weight': 'ln_f.weight', 'output_norm.bias': 'ln_f.bias',
  };
  if (top[gguf] !== undefined) return { name: top[gguf], conv1d: false };
  const m = /^blk\.(\d+)\.(.+)$/.exec(gguf);
  const block: Record<string, [string, boolean]> = {
    'attn_norm.weight': ['ln_1.weight', false], 'attn_norm.bias': ['ln_1.bias', false],
    'attn_qkv.weight': ['attn.c_attn.weight', true], 'attn_qkv.bias': ['attn.c_attn.bias', false],
    'attn_output.weight': ['attn.c_proj.weight', true], 'attn_output.bias': ['attn.c_proj.bias', false],
    'ffn_norm.weight': ['ln_2.weight', false], 'ffn_norm.bias': ['ln_2.bias', false],
    'ffn_up.weight': ['mlp.c_fc.weight', true], 'ffn_up.bias': ['mlp.c_fc.bias', false],
    'ffn_down.weight': ['mlp.c_proj.weight', true], 'ffn_down.bias': ['mlp.c_proj.bias', false],
  };
  const b = m ? block[m[2]!] : undefined;
  if (!m || !b) throw new Gpt2Error('ERR_BAD_MODEL', `not a GPT-2 tensor: ${gguf}`);
  return { name: `h.${m[1]}.${b[0]}`, conv1d: b[1] };
}

/** GGUF name → legacy ggml name ("blk.3.attn_qkv.weight" → "model/h3/attn/c_attn/w"). */
function legacyName(gguf: string): string {
  const { name } = hfName(gguf);
  const whole: Record<string, string> = { 'wte.weight': 'wte', 'wpe.weight': 'wpe', 'lm_head.weight': 'lm_head' };
  if (whole[name] !== undefined) return `model/${whole[name]}`;
  const isNorm = /(^|\.)ln_/.test(name);   // norms store g (gain) and b; linear layers w and b
  const s = name.replace(/^h\.(\d+)\./, 'h$1.').replace(/\.weight$/, isNorm ? '.g' : '.w').replace(/\.bias$/, '.b');
  return `model/${s.replace(/\./g, '/')}`;
}

const ELEMENT: Record<string, { size: number; st: string; ggml: number }> = {
  F32: { size: 4, st: 'F32', ggml: 0 }, F16: { size: 2, st: 'F16', ggml: 1 }, BF16: { size: 2, st: 'BF16', ggml: 30 },
};

function element(t: GgufTensorInfo): { size: number; st: string; ggml: number } {
  const e = ELEMENT[t.type];
  if (!e) throw new Gpt2Error('ERR_BAD_MODEL', `tensor ${t.name} is ${t.type}; only F32, F16 and BF16 models can be exported`);
  return e;
}

/** out[i][o] = in[o][i] for ggml [nIn, nOut] data (Conv1D's PyTorch layout is [in, out]). */
function transpose(src: Buffer, nIn: number, nOut: number, esize: number): Buffer {
  const dst = Buffer.allocUnsafe(src.length);
  for (let o = 0; o < nOut; o++) {
    for (let i = 0; i < nIn; i++) src.copy(dst, (i * nOut + o) * esize, (o * nIn + i) * esize, (o * nIn + i + 1) * esize);
  }
  return dst;
}

interface GgufModel { path: string; meta: GgufMetadata; kv: (key: string) => unknown }

async function openModel(gguf: string): Promise<GgufModel> {
  const meta = await readGgufMetadata(gguf);
  return { path: gguf, meta, kv: (key) => meta.kv.get(key)?.value };
}

/** One safetensors file: 8-byte header length, JSON header (padded with spaces to 8 bytes), data. */
export function encodeSafetensors(tensors: Array<{ name: string; dtype: string; shape: number[]; data: Buffer }>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), ...tensors.map((t) => t.data)]);
}

export interface HfFolderOptions {
  /** 'vocab' writes vocab.json + merges.txt, 'json' tokenizer.json. Default 'vocab'. */
  tokenizer?: 'vocab' | 'json';
  /** Split the weights over this many shards with model.safetensors.index.json. Default 1. */
  shards?: number;
  /** Prefix weight names with `transformer.` (as GPT2LMHeadModel's state dict). Default true. */
  prefix?: boolean;
  /** Also store lm_head.weight (a copy of wte when tied). Default false. */
  lmHead?: boolean;
  /** Add the attn.bias / attn.masked_bias buffers old checkpoints carry. Default false. */
  maskBuffers?: boolean;
}

/** Writes `gguf` as a Hugging Face GPT2LMHeadModel folder at `dir` (created). */
export async function writeHfFolder(gguf: string, dir: string, opts: HfFolderOptions = {}): Promise<void> {
  const m = await openModel(gguf);
  await mkdir(dir, { recursive: true });
  const nEmbd = Number(m.kv('gpt2.embedding_length'));
  const nCtx = Number(m.kv('gpt2.context_length'));
  const nLayer = Number(m.kv('gpt2.block_count'));
  const tokens = m.kv('tokenizer.ggml.tokens') as string[];
  const merges = m.kv('tokenizer.ggml.merges') as string[];
  const eos = Number(m.kv('tokenizer.ggml.eos_token_id'));
  const prefix = opts.prefix ?? true ? 'transformer.' : '';
  const tied = !m.meta.tensors.some((t) => t.name === 'output.weight');

  const out: Array<{ name: string; dtype: string; shape: number[]; data: Buffer }> = [];
  for (const t of m.meta.tensors) {
    const e = element(t);
    const { name, conv1d } = hfName(t.name);
    let data = await readGgufTensorBytes(gguf, m.meta, t.name);
    let shape = [...t.shape].reverse();   // PyTorch order
    if (conv1d) {
      data = transpose(data, t.shape[0]!, t.shape[1]!, e.size);
      shape = [t.shape[0]!, t.shape[1]!];
    }
    const full = name === 'lm_head.weight' ? name : prefix + name;
    out.push({ name: full, dtype: e.st, shape, data });
    if (name === 'wte.weight' && tied && opts.lmHead) out.push({ name: 'lm_head.weight', dtype: e.st, shape, data });
  }
  if (opts.maskBuffers) {
    for (let il = 0; il < nLayer; il++) {
      // the causal mask buffer (here shrunk to 1×1×4×4 to keep fixtures small) and masked_bias
      out.push({ name: `${prefix}h.${il}.attn.bias`, dtype: 'U8', shape: [1, 1, 4, 4], data: Buffer.alloc(16, 1) });
      const mb = Buffer.alloc(4); mb.writeFloatLE(-1e4);
      out.push({ name: `${prefix}h.${il}.attn.masked_bias`, dtype: 'F32', shape: [], data: mb });
    }
  }

  const shards = Math.max(1, opts.shards ?? 1);
  if (shards === 1) {
    await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(out, { format: 'pt' }));
  } else {
    const weightMap: Record<string, string> = {};
    const per = Math.ceil(out.length / shards);
    let total = 0;
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = out.slice(s * per, (s + 1) * per);
      for (const t of part) { weightMap[t.name] = file; total += t.data.length; }
      await writeFile(join(dir, file), encodeSafetensors(part, { format: 'pt' }));
    }
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  }

  await writeFile(join(dir, 'config.json'), JSON.stringify({
    activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], bos_token_id: eos, eos_token_id: eos,
    layer_norm_epsilon: Number(m.kv('gpt2.attention.layer_norm_epsilon') ?? 1e-5), model_type: 'gpt2',
    n_ctx: nCtx, n_embd: nEmbd, n_head: Number(m.kv('gpt2.attention.head_count')), n_inner: Number(m.kv('gpt2.feed_forward_length') ?? 4 * nEmbd),
    n_layer: nLayer, n_positions: nCtx, tie_word_embeddings: tied, vocab_size: tokens.length,
  }, null, 2));

  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => { vocab[t] = i; });
  if ((opts.tokenizer ?? 'vocab') === 'vocab') {
    await writeFile(join(dir, 'vocab.json'), JSON.stringify(vocab));
    await writeFile(join(dir, 'merges.txt'), `#version: 0.2\n${merges.join('\n')}\n`);
  } else {
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({
      version: '1.0',
      added_tokens: [{ id: eos, content: tokens[eos], single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
      model: { type: 'BPE', dropout: null, unk_token: null, vocab, merges },
    }));
  }
}

/**
 * GPT-2's byte-level alphabet in its vocabulary order: entry i is the code point standing for
 * byte `bytes[i]` (printable Latin-1 bytes stand for themselves, the other 68 map to U+0100..).
 */
export function byteLevelAlphabet(): { bytes: number[]; codePoints: number[] } {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const codePoints = [...bytes];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) { bytes.push(b); codePoints.push(256 + n++); }
  }
  return { bytes, codePoints };
}

// code point → byte
function byteDecoder(): Map<number, number> {
  const { bytes, codePoints } = byteLevelAlphabet();
  return new Map(codePoints.map((cp, i) => [cp, bytes[i]!]));
}

/** Writes `gguf` as a legacy ggml GPT-2 file (ggml's examples/gpt-2 layout). */
export async function writeLegacyGgml(gguf: string, path: string): Promise<void> {
  const m = await openModel(gguf);
  const tokens = m.kv('tokenizer.ggml.tokens') as string[];
  const eos = Number(m.kv('tokenizer.ggml.eos_token_id'));
  const decoder = byteDecoder();
  const wte = m.meta.tensors.find((t) => t.name === 'token_embd.weight')!;
  const i32 = (...v: number[]): Buffer => { const b = Buffer.alloc(4 * v.length); v.forEach((x, i) => b.writeInt32LE(x, 4 * i)); return b; };

  const parts: Buffer[] = [];
  const magic = Buffer.alloc(4); magic.writeUInt32LE(0x67676d6c);
  parts.push(magic, i32(tokens.length, Number(m.kv('gpt2.context_length')), Number(m.kv('gpt2.embedding_length')),
    Number(m.kv('gpt2.attention.head_count')), Number(m.kv('gpt2.block_count')), element(wte).ggml === 0 ? 0 : 1));
  parts.push(i32(tokens.length));
  tokens.forEach((t, id) => {
    const bytes = id === eos ? Buffer.from(t) : Buffer.from([...t].map((c) => decoder.get(c.codePointAt(0)!)!));
    parts.push(i32(bytes.length), bytes);
  });
  for (const t of m.meta.tensors) {
    const name = Buffer.from(legacyName(t.name));
    parts.push(i32(t.shape.length, name.length, element(t).ggml, ...t.shape), name, await readGgufTensorBytes(gguf, m.meta, t.name));
  }
  await writeFile(path, Buffer.concat(parts));
}
