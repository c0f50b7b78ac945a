// Files that are not GPT-2 models, truncated, or inconsistent: each load fails with
// ERR_BAD_MODEL naming the file and the failed check, and the process lives on.
import { copyFile, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { Gpt2Error, loadModel, type Gpt2ErrorCode } from '../../lib/index.js';
import { testModel } from '../support/models.js';
import { mutateModel, zeroTensor } from '../support/mutate-model.js';

let dir: string;
let good: string;

test.before(async () => {
  good = await testModel('tiny', 'f32');
  dir = await mkdtemp(join(tmpdir(), 'gpt2-node-bad-'));
});

test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function rejects(t: import('ava').ExecutionContext, path: string, what: string | RegExp, code: Gpt2ErrorCode = 'ERR_BAD_MODEL') {
  const err = await t.throwsAsync(loadModel(path, { threads: 1 }), { instanceOf: Gpt2Error });
  t.is(err?.code, code);
  t.true(err!.message.startsWith(path), `names the file: ${err!.message}`);
  if (typeof what === 'string') t.true(err!.message.includes(what), `says what failed: ${err!.message}`);
  else t.regex(err!.message, what);
}

test('a missing file', async (t) => {
  await rejects(t, join(dir, 'nope.gguf'), 'no such file or folder', 'ERR_NOT_FOUND');
});

test('a file that is not GGUF', async (t) => {
  const p = join(dir, 'text.gguf');
  await writeFile(p, 'hello, this is not a model\n');
  await rejects(t, p, 'unknown format: not GGUF, safetensors or a legacy ggml file (first bytes: 68 65 6c 6c 6f 2c 20 74)');
  const empty = join(dir, 'empty.gguf');
  await writeFile(empty, '');
  await rejects(t, empty, 'unknown format: not GGUF, safetensors or a legacy ggml file (first bytes: )');
});

test('a truncated file, cut in the header or in the tensor data', async (t) => {
  const header = join(dir, 'cut-header.gguf');
  await copyFile(good, header);
  await truncate(header, 1000);
  await rejects(t, header, 'invalid GGUF');
  const data = join(dir, 'cut-data.gguf');
  await copyFile(good, data);
  await truncate(data, 5_000_000);
  await rejects(t, data, /tensor \S+ extends past the end of the file/);
});

test('another architecture', async (t) => {
  const p = join(dir, 'llama.gguf');
  await mutateModel(good, p, { kv: (kv) => kv.set('general.architecture', { type: 'string', value: 'llama' }) });
  await rejects(t, p, 'architecture is "llama", expected "gpt2"');
});

test('missing or mistyped hyperparameters', async (t) => {
  const p1 = join(dir, 'no-heads.gguf');
  await mutateModel(good, p1, { kv: (kv) => kv.delete('gpt2.attention.head_count') });
  await rejects(t, p1, 'missing metadata gpt2.attention.head_count');
  const p2 = join(dir, 'str-layers.gguf');
  await mutateModel(good, p2, { kv: (kv) => kv.set('gpt2.block_count', { type: 'string', value: '2' }) });
  await rejects(t, p2, 'metadata gpt2.block_count has type str, expected an integer');
  const p3 = join(dir, 'odd-heads.gguf');
  await mutateModel(good, p3, { kv: (kv) => kv.set('gpt2.attention.head_count', { type: 'u32', value: 3 }) });
  await rejects(t, p3, 'embedding size 64 is not divisible by the head count 3');
  const p4 = join(dir, 'more-layers.gguf');
  await mutateModel(good, p4, { kv: (kv) => kv.set('gpt2.block_count', { type: 'u32', value: 3 }) });
  await rejects(t, p4, 'missing tensor blk.2.attn_norm.weight');
});

test('a missing tensor', async (t) => {
  const p = join(dir, 'no-ffn.gguf');
  await mutateModel(good, p, { tensors: (ts) => ts.filter((x) => x.name !== 'blk.1.ffn_up.bias') });
  await rejects(t, p, 'missing tensor blk.1.ffn_up.bias');
});

test('a tensor of the wrong shape or type', async (t) => {
  const p = join(dir, 'bad-shape.gguf');
  await mutateModel(good, p, { tensors: (ts) => ts.map((x) => (x.name === 'blk.0.attn_qkv.bias' ? zeroTensor(x.name, [64]) : x)) });
  await rejects(t, p, 'tensor blk.0.attn_qkv.bias has shape [64], expected [192]');
  const p2 = join(dir, 'bad-pos.gguf');
  await mutateModel(good, p2, { tensors: (ts) => ts.map((x) => (x.name === 'position_embd.weight' ? zeroTensor(x.name, [64, 100]) : x)) });
  await rejects(t, p2, 'tensor position_embd.weight has shape [64, 100], expected [64, 512]');
  const p3 = join(dir, 'i32-norm.gguf');
  await mutateModel(good, p3, {
    tensors: (ts) => ts.map((x) => (x.name === 'output_norm.bias' ? { name: x.name, type: 'I32', shape: [64], data: function* () { yield new Uint8Array(256); } } : x)),
  });
  await rejects(t, p3, 'tensor output_norm.bias has type i32, expected f32 for a 1-D tensor');
});

test('a vocabulary that does not match the embedding', async (t) => {
  const p = join(dir, 'long-vocab.gguf');
  await mutateModel(good, p, {
    kv: (kv) => {
      const tokens = kv.get('tokenizer.ggml.tokens')!;
      const types = kv.get('tokenizer.ggml.token_type')!;
      if (tokens.type !== 'array' || tokens.itemType !== 'string' || types.type !== 'array' || types.itemType !== 'i32') throw new Error('unexpected vocab gguf');
      kv.set('tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: [...tokens.value, '<|extra|>'] });
      kv.set('tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: [...types.value, 3] });
    },
  });
  await rejects(t, p, 'tokenizer has 50258 tokens but token_embd.weight has 50257 rows');
});

test('the process survives every bad file and still loads a good one', async (t) => {
  const m = await loadModel(good, { threads: 1 });
  t.is(m.info.architecture, 'gpt2');
  await m.dispose();
});
