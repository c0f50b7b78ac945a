// Loading every format GPT-2 ships in through one loadModel(): a Hugging Face GPT2LMHeadModel
// folder (safetensors, possibly sharded; tokenizer as vocab.json + merges.txt or tokenizer.json)
// and a legacy ggml .bin, written from the same random weights as a GGUF test model
// (test/support/export-formats.ts). Same weights, same kernels: the logits must be identical to
// the bit, not merely close. Then what each loader refuses, with ERR_BAD_MODEL naming the file
// and the problem.
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Gpt2Error, loadModel, type Gpt2ErrorCode } from '../../lib/index.js';
import { encodeSafetensors, writeHfFolder, writeLegacyGgml, type HfFolderOptions } from '../support/export-formats.js';
import { testModel } from '../support/models.js';

let dir: string;
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'gpt2-node-formats-')); });
test.after.always(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

const PROMPT = 'The quick brown fox jumps over the lazy dog. Ünïcödé ✓';

async function logitsOf(path: string): Promise<{ logits: Float32Array; format: string; tied: boolean; text: string }> {
  const m = await loadModel(path);
  try {
    const logits = await m.evaluate(m.tokenize(PROMPT)) as Float32Array;
    const c = await m.complete('Hello', { maxTokens: 8, temperature: 0 });
    return { logits, format: m.info.format, tied: m.info.tiedOutput, text: c.text };
  } finally {
    await m.dispose();
  }
}

let n = 0;
const fresh = (name: string): string => join(dir, `${n++}-${name}`);

for (const type of ['f32', 'f16', 'bf16'] as const) {
  test(`${type}: HF folder, sharded folder, single safetensors file and legacy .bin give the GGUF's logits exactly`, async (t) => {
    const gguf = await testModel('tiny', type, { initScale: 4 });
    const want = await logitsOf(gguf);
    const variants: Array<[string, HfFolderOptions]> = [
      ['vocab.json + merges.txt', {}],
      ['tokenizer.json, 3 shards, lm_head copy, mask buffers', { tokenizer: 'json', shards: 3, lmHead: true, maskBuffers: true }],
      ['no transformer. prefix', { prefix: false }],
    ];
    for (const [name, opts] of variants) {
      const folder = fresh('hf');
      await writeHfFolder(gguf, folder, opts);
      const got = await logitsOf(folder);
      t.is(got.format, 'safetensors', name);
      t.true(got.tied, name);
      t.deepEqual(got.logits, want.logits, name);
      t.is(got.text, want.text, name);
      if (!opts.shards) t.deepEqual((await logitsOf(join(folder, 'model.safetensors'))).logits, want.logits, `${name}: the .safetensors file`);
    }
    const legacy = fresh('legacy.bin');
    await writeLegacyGgml(gguf, legacy);
    const got = await logitsOf(legacy);
    t.is(got.format, 'ggml');
    t.deepEqual(got.logits, want.logits);
    t.is(got.text, want.text);
  });
}

test('an untied model (lm_head.weight of its own) keeps its head in every format', async (t) => {
  const gguf = await testModel('tiny', 'f32', { initScale: 4, tiedOutput: false });
  const want = await logitsOf(gguf);
  t.false(want.tied);
  const folder = fresh('hf-untied');
  await writeHfFolder(gguf, folder);
  const hf = await logitsOf(folder);
  t.false(hf.tied);
  t.deepEqual(hf.logits, want.logits);
  const legacy = fresh('untied.bin');
  await writeLegacyGgml(gguf, legacy);
  const lg = await logitsOf(legacy);
  t.false(lg.tied);
  t.deepEqual(lg.logits, want.logits);
});

// ---- what the loaders refuse -------------------------------------------------------------

async function hfFolder(edit?: (folder: string) => Promise<void>, opts: HfFolderOptions = {}): Promise<string> {
  const folder = fresh('bad-hf');
  await writeHfFolder(await testModel('tiny', 'f32'), folder, opts);
  if (edit) await edit(folder);
  return folder;
}

async function editConfig(folder: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const p = join(folder, 'config.json');
  const c = JSON.parse(await readFile(p, 'utf8')) as Record<string, unknown>;
  edit(c);
  await writeFile(p, JSON.stringify(c));
}

/** Rewrites model.safetensors with its tensor list edited. */
async function editTensors(folder: string, edit: (ts: Array<{ name: string; dtype: string; shape: number[]; data: Buffer }>) => void): Promise<void> {
  const p = join(folder, 'model.safetensors');
  const buf = await readFile(p);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString()) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + len;
  const ts = Object.entries(header).filter(([k]) => k !== '__metadata__')
    .map(([name, v]) => ({ name, dtype: v.dtype, shape: v.shape, data: buf.subarray(base + v.data_offsets[0], base + v.data_offsets[1]) }));
  edit(ts);
  await writeFile(p, encodeSafetensors(ts));
}

async function rejects(t: import('ava').ExecutionContext, path: string, code: Gpt2ErrorCode, ...patterns: RegExp[]): Promise<void> {
  const err = await t.throwsAsync(loadModel(path), { instanceOf: Gpt2Error });
  t.is(err?.code, code, err?.message);
  for (const p of patterns) t.regex(err?.message ?? '', p);
}

test('HF folder errors name the folder or file and the problem', async (t) => {
  const cases: Array<[string, (f: string) => Promise<void>, RegExp[]]> = [
    ['no weights', (f) => rm(join(f, 'model.safetensors')), [/no weights: expected model\.safetensors/]],
    ['pickle only', async (f) => { await rm(join(f, 'model.safetensors')); await writeFile(join(f, 'pytorch_model.bin'), Buffer.from([0x80, 0x02, 0x7d])); },
      [/pytorch_model\.bin/, /pickle/, /safetensors/]],
    ['no config', (f) => rm(join(f, 'config.json')), [/no config\.json/]],
    ['not gpt2', (f) => editConfig(f, (c) => { c['model_type'] = 'llama'; }), [/config\.json: model_type is "llama", expected "gpt2"/]],
    ['heads do not divide', (f) => editConfig(f, (c) => { c['n_head'] = 3; }), [/not divisible by the head count 3/]],
    ['vocab_size', (f) => editConfig(f, (c) => { c['vocab_size'] = 50000; }), [/vocab_size 50000 differs from wte\.weight's 50257 rows/]],
    ['n_embd vs tensors', (f) => editConfig(f, (c) => { c['n_embd'] = 128; c['n_inner'] = 512; }), [/tensor wte\.weight \(token_embd\.weight\) has shape/]],
    ['wrong type in config', (f) => editConfig(f, (c) => { c['n_layer'] = '2'; }), [/n_layer is "2", expected an integer/]],
    ['unsupported activation', (f) => editConfig(f, (c) => { c['activation_function'] = 'relu'; }), [/activation_function "relu" is not supported/]],
    ['missing tensor', (f) => editTensors(f, (ts) => { ts.splice(ts.findIndex((x) => x.name === 'transformer.h.1.mlp.c_fc.bias'), 1); }),
      [/missing tensor h\.1\.mlp\.c_fc\.bias \(blk\.1\.ffn_up\.bias\)/]],
    ['misnamed tensor', (f) => editTensors(f, (ts) => { ts.find((x) => x.name === 'transformer.h.0.mlp.c_fc.weight')!.name = 'transformer.h.0.mlp.c_fx.weight'; }),
      [/model\.safetensors: unexpected tensor transformer\.h\.0\.mlp\.c_fx\.weight/]],
    ['layer past n_layer', (f) => editTensors(f, (ts) => { ts.find((x) => x.name === 'transformer.h.1.ln_1.bias')!.name = 'transformer.h.7.ln_1.bias'; }),
      [/unexpected tensor transformer\.h\.7\.ln_1\.bias/]],
    ['wrong shape', (f) => editTensors(f, (ts) => { const x = ts.find((y) => y.name === 'transformer.h.0.attn.c_attn.weight')!; x.shape = [x.shape[1]!, x.shape[0]!]; }),
      [/tensor h\.0\.attn\.c_attn\.weight \(blk\.0\.attn_qkv\.weight\) has shape \[192, 64\], expected \[64, 192\]/]],
    ['unsupported dtype', (f) => editTensors(f, (ts) => { ts.find((x) => x.name === 'transformer.h.0.ln_1.weight')!.dtype = 'I32'; }),
      [/tensor transformer\.h\.0\.ln_1\.weight has dtype I32; GPT-2 weights must be F32, F16 or BF16/]],
    // a dimension after a zero passes the per-factor size check, but must still fit an int64
    ['a dimension over 2^63 - 1 after a zero', (f) => editTensors(f, (ts) => { ts.push({ name: 'extra', dtype: 'F32', shape: [0, 2 ** 63], data: Buffer.alloc(0) }); }),
      [/model\.safetensors: tensor extra: shape holds 9223372036854776000, more than 2\^63 - 1/]],
    ['inconsistent byte count', (f) => editTensors(f, (ts) => { ts.find((x) => x.name === 'transformer.ln_f.bias')!.shape = [65]; }),
      [/tensor transformer\.ln_f\.bias: 256 bytes for 65 F32 elements/]],
    ['truncated', async (f) => { const p = join(f, 'model.safetensors'); const b = await readFile(p); await writeFile(p, b.subarray(0, b.length - 1000)); },
      [/model\.safetensors: tensor .* lie outside the \d+ data bytes \(truncated\?\)/]],
    ['header not JSON', async (f) => { const p = join(f, 'model.safetensors'); const b = await readFile(p); b.write('!', 9); await writeFile(p, b); },
      [/safetensors header is not valid JSON/]],
    ['huge header length', async (f) => { const p = join(f, 'model.safetensors'); const b = await readFile(p); b.writeBigUInt64LE(1n << 60n, 0); await writeFile(p, b); },
      [/header length \d+ exceeds the file size/]],
    ['no tokenizer', async (f) => { await rm(join(f, 'vocab.json')); await rm(join(f, 'merges.txt')); }, [/no tokenizer/]],
  ];
  for (const [name, edit, patterns] of cases) {
    const folder = await hfFolder(edit);
    const err = await t.throwsAsync(loadModel(folder), { instanceOf: Gpt2Error }, name);
    t.is(err?.code, 'ERR_BAD_MODEL', `${name}: ${err?.message}`);
    for (const p of patterns) t.regex(err?.message ?? '', p, name);
    t.true(err?.message.includes(folder), `${name}: names the folder or a file in it: ${err?.message}`);
  }
});

test('sharded folders: a missing shard and a shard name outside the folder', async (t) => {
  const missing = await hfFolder(async (f) => {
    const shard = (await readdir(f)).find((x) => x.startsWith('model-00002'))!;
    await rm(join(f, shard));
  }, { shards: 3 });
  await rejects(t, missing, 'ERR_BAD_MODEL', /model\.safetensors\.index\.json: shard model-00002-of-00003\.safetensors is missing/);
  const escape = await hfFolder(async (f) => {
    const p = join(f, 'model.safetensors.index.json');
    const idx = JSON.parse(await readFile(p, 'utf8')) as { weight_map: Record<string, string> };
    idx.weight_map['transformer.wte.weight'] = '../elsewhere.safetensors';
    await writeFile(p, JSON.stringify(idx));
  }, { shards: 3 });
  await rejects(t, escape, 'ERR_BAD_MODEL', /names "\.\.\/elsewhere\.safetensors", which is not a file in the folder/);
  // a drive prefix: on Windows, folder / "D:x.safetensors" is a file on drive D
  const drive = await hfFolder(async (f) => {
    const p = join(f, 'model.safetensors.index.json');
    const idx = JSON.parse(await readFile(p, 'utf8')) as { weight_map: Record<string, string> };
    const shard = idx.weight_map['transformer.wte.weight']!;
    idx.weight_map['transformer.wte.weight'] = `D:${shard}`;
    await writeFile(p, JSON.stringify(idx));
  }, { shards: 3 });
  await rejects(t, drive, 'ERR_BAD_MODEL', /names "D:model-\d+-of-00003\.safetensors", which is not a file in the folder/);
});

test('files by content: pickle, pre-GGUF llama files, unknown bytes, a missing path', async (t) => {
  const pickle = fresh('model.pt');
  await writeFile(pickle, Buffer.from([0x80, 0x04, 0x95, 0, 0]));
  await rejects(t, pickle, 'ERR_BAD_MODEL', /a PyTorch pickle checkpoint/, /model\.safetensors/);
  const zip = fresh('pytorch_model.bin');
  await writeFile(zip, Buffer.from('PK\x03\x04rest of a zip'));
  await rejects(t, zip, 'ERR_BAD_MODEL', /a PyTorch pickle checkpoint/);
  const ggjt = fresh('old.bin');
  await writeFile(ggjt, Buffer.from([0x74, 0x6a, 0x67, 0x67, 3, 0, 0, 0]));
  await rejects(t, ggjt, 'ERR_BAD_MODEL', /a pre-GGUF llama\.cpp file/);
  const junk = fresh('junk.bin');
  await writeFile(junk, Buffer.from('hello, world'));
  await rejects(t, junk, 'ERR_BAD_MODEL', /unknown format: not GGUF, safetensors or a legacy ggml file \(first bytes: 68 65 6c 6c 6f 2c 20 77\)/);
  await rejects(t, join(dir, 'nothing-here'), 'ERR_NOT_FOUND', /nothing-here: no such file or folder/);
});

test('GGUF header fields ggml would meet unchecked are refused before ggml parses the file', async (t) => {
  // ggml's parser computes a tensor's element count before checking it against 64 bits (signed
  // overflow, found by scripts/sanitize.sh) and stores type numbers into its enums before the
  // range check: our reader scans the header first (gguf_reader::header_problem)
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
  const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };
  const tensor = (name: string, dims: bigint[], type = 0) =>
    Buffer.concat([u64(BigInt(name.length)), Buffer.from(name), u32(dims.length), ...dims.map(u64), u32(type), u64(0n)]);
  const arch = Buffer.concat([u64(20n), Buffer.from('general.architecture'), u32(8), u64(4n), Buffer.from('gpt2')]);
  const gguf = async (name: string, kvs: Buffer[], tensors: Buffer[]) => {
    const file = fresh(name);
    await writeFile(file, Buffer.concat([Buffer.from('GGUF'), u32(3), u64(BigInt(tensors.length)), u64(BigInt(kvs.length)), ...kvs, ...tensors, Buffer.alloc(64)]));
    return file;
  };
  await rejects(t, await gguf('overflow.gguf', [arch], [tensor('ok', [768n, 4n]), tensor('huge', [1n << 40n, 1n << 30n])]),
    'ERR_BAD_MODEL', /overflow\.gguf/, /tensor 1 has shape \(1099511627776, 1073741824\), more elements than 64 bits can count/);
  await rejects(t, await gguf('tensor-type.gguf', [arch], [tensor('ok', [768n, 4n]), tensor('odd', [4n], 0x7fffffff)]),
    'ERR_BAD_MODEL', /tensor-type\.gguf/, /tensor 1 has unknown type 2147483647/);
  const key = (name: string) => Buffer.concat([u64(BigInt(name.length)), Buffer.from(name)]);
  await rejects(t, await gguf('kv-type.gguf', [arch, Buffer.concat([key('x'), u32(13), u32(0)])], []),
    'ERR_BAD_MODEL', /kv-type\.gguf/, /metadata value 1 has an unknown type/);
  await rejects(t, await gguf('array-type.gguf', [arch, Buffer.concat([key('x'), u32(9), u32(0xffffffff), u64(1n)])], []),
    'ERR_BAD_MODEL', /array-type\.gguf/, /metadata value 1 has an unknown type/);
  // the file ends inside a type field: ggml then tests its own out-of-range sentinel (the GGUF fuzzer's find)
  const full = await readFile(await gguf('whole.gguf', [arch, Buffer.concat([key('x'), u32(4), u32(7)])], [tensor('ok', [768n, 4n])]));
  const cut = fresh('cut.gguf');
  await writeFile(cut, full.subarray(0, 24 + arch.length + key('x').length + 2));
  await rejects(t, cut, 'ERR_BAD_MODEL', /cut\.gguf/, /the file ends inside metadata key 1 \(truncated, or a length past its end\)/);
});

test('legacy .bin errors: truncation, unknown tensor, wrong shape, unknown type, bad hyperparameters', async (t) => {
  const gguf = await testModel('tiny', 'f32');
  const good = fresh('good.bin');
  await writeLegacyGgml(gguf, good);
  const bytes = await readFile(good);
  const variant = async (name: string, edit: (b: Buffer) => Buffer): Promise<string> => {
    const p = fresh(name);
    await writeFile(p, edit(Buffer.from(bytes)));
    return p;
  };
  await rejects(t, await variant('trunc.bin', (b) => b.subarray(0, b.length - 100)), 'ERR_BAD_MODEL', /trunc\.bin: file ends inside the data of tensor model\/h1\/mlp\/c_proj\/b \(truncated\?\)/);
  await rejects(t, await variant('trunc-vocab.bin', (b) => b.subarray(0, 5000)), 'ERR_BAD_MODEL', /file ends inside the vocabulary \(truncated\?\)/);
  // hyperparameters: n_head (offset 16) that does not divide n_embd; a huge n_vocab
  await rejects(t, await variant('heads.bin', (b) => { b.writeInt32LE(5, 16); return b; }), 'ERR_BAD_MODEL', /embedding size 64 is not divisible by the head count 5/);
  await rejects(t, await variant('vocab.bin', (b) => { b.writeInt32LE(0x7fffffff, 4); return b; }), 'ERR_BAD_MODEL', /n_vocab = 2147483647 is outside/);
  // the first tensor after the vocabulary: find its header by name
  const first = bytes.indexOf('model/');
  await rejects(t, await variant('name.bin', (b) => { b.write('x', first + 6); return b; }), 'ERR_BAD_MODEL', /unexpected tensor .* \(not a GPT-2 weight\)/);
  const neAt = first - 8;   // [n_dims, name_len, type, ne0, ne1] precede the name
  await rejects(t, await variant('shape.bin', (b) => { const a = b.readInt32LE(neAt), c = b.readInt32LE(neAt + 4); b.writeInt32LE(c, neAt); b.writeInt32LE(a, neAt + 4); return b; }),
    'ERR_BAD_MODEL', /has shape \[\d+, \d+\], expected/);
  await rejects(t, await variant('type.bin', (b) => { b.writeInt32LE(4, neAt - 4); return b; }), 'ERR_BAD_MODEL', /has unknown type 4/);
  // f64 rows of 2147352580 × 1073807362 take 2^64 + 64 bytes: a product that wraps to 64 must be refused
  await rejects(t, await variant('wrap.bin', (b) => { b.writeInt32LE(28, neAt - 4); b.writeInt32LE(2147352580, neAt); b.writeInt32LE(1073807362, neAt + 4); return b; }),
    'ERR_BAD_MODEL', /wrap\.bin: tensor model\/\S+: 2147352580 × 1073807362 f64 elements need more bytes than 64 bits can count/);
});

test('a legacy file stores no merges: the ones recovered from its vocabulary order are GPT-2\'s own', async (t) => {
  const { readGgufMetadata } = await import('../../lib/gguf/reader.js');
  const { convert } = await import('../../lib/index.js');
  const gguf = await testModel('tiny', 'f32');
  const legacy = fresh('vocab.bin');
  await writeLegacyGgml(gguf, legacy);
  const out = fresh('from-legacy.gguf');
  await convert(legacy, out);
  const [a, b] = await Promise.all([readGgufMetadata(gguf), readGgufMetadata(out)]);
  for (const key of ['tokenizer.ggml.tokens', 'tokenizer.ggml.merges', 'tokenizer.ggml.token_type', 'tokenizer.ggml.eos_token_id']) {
    t.deepEqual(b.kv.get(key)?.value, a.kv.get(key)?.value, key);
  }
  t.is((b.kv.get('tokenizer.ggml.merges')?.value as string[]).length, 50000);
});
