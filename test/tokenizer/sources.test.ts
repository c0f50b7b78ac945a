// Loading the tokenizer from each source (GGUF, vocab.json + merges.txt, tokenizer.json, a
// folder) gives identical ids; every bad input is a Gpt2Error naming the file and the problem.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { Gpt2Error, loadTokenizer, type Gpt2ErrorCode, type Tokenizer } from '../../lib/index.js';
import { generateCorpus } from '../support/tokenizer-corpus.js';
import { gpt2VocabGgufPath, readGpt2Vocab, writeHfTokenizerFiles, writeVocabGguf, type VocabData } from '../support/tokenizer-files.js';
import { sameIds } from '../support/tokenizer-refs.js';

let files: ReturnType<typeof writeHfTokenizerFiles>;
let vocab: VocabData;
let reference: Tokenizer;

test.before(async () => {
  vocab = readGpt2Vocab();
  files = writeHfTokenizerFiles(vocab);
  reference = await loadTokenizer(gpt2VocabGgufPath());
});

test.after.always(() => {
  if (files) rmSync(files.dir, { recursive: true, force: true });
});

async function sameAsGguf(t: import('ava').ExecutionContext, path: string) {
  const other = await loadTokenizer(path);
  t.is(other.vocabSize, 50257);
  t.is(other.eosTokenId, 50256);
  t.deepEqual(other.specialTokens, ['<|endoftext|>']);
  const corpus = generateCorpus().filter((_, i) => i % 4 === 0);
  let mismatches = 0;
  for (const e of corpus) {
    const opts = e.allowSpecial ? { allowedSpecial: 'all' as const } : undefined;
    if (!sameIds(other.tokenize(e.text, opts), reference.tokenize(e.text, opts))) mismatches++;
  }
  t.log(`${path}: ${corpus.length} strings, ${mismatches} mismatches against the GGUF`);
  t.is(mismatches, 0);
}

test('vocab.json (+ merges.txt beside it) gives the GGUF ids', async (t) => sameAsGguf(t, files.vocabJson));
test('merges.txt (+ vocab.json beside it) gives the GGUF ids', async (t) => sameAsGguf(t, files.mergesTxt));
test('tokenizer.json gives the GGUF ids', async (t) => sameAsGguf(t, files.tokenizerJson));

test('tokenizer.json with merges as pairs gives the GGUF ids', async (t) => {
  const dir = join(files.dir, 'pairs');
  mkdirSync(dir);
  const j = JSON.parse(readFileSync(files.tokenizerJson, 'utf8'));
  j.model.merges = vocab.merges.map((m) => m.split(' '));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(j));
  await sameAsGguf(t, join(dir, 'tokenizer.json'));
  await sameAsGguf(t, dir); // a folder holding tokenizer.json
});

test('a folder holding vocab.json + merges.txt', async (t) => {
  const dir = join(files.dir, 'hf');
  mkdirSync(dir);
  writeFileSync(join(dir, 'vocab.json'), readFileSync(files.vocabJson));
  writeFileSync(join(dir, 'merges.txt'), readFileSync(files.mergesTxt, 'utf8').replace(/\n/g, '\r\n'));
  await sameAsGguf(t, dir);
});

// ---- errors ----------------------------------------------------------------------------------

async function rejects(t: import('ava').ExecutionContext, path: string, what: string, code: Gpt2ErrorCode = 'ERR_BAD_MODEL') {
  const err = await t.throwsAsync(loadTokenizer(path), { instanceOf: Gpt2Error });
  t.is(err?.code, code);
  t.true(err!.message.startsWith(path), `names the file: ${err!.message}`);
  t.true(err!.message.includes(what), `says "${what}": ${err!.message}`);
}

let n = 0;
function tmp(name: string): string {
  const dir = join(files.dir, `case-${n++}`);
  mkdirSync(dir);
  return join(dir, name);
}

test('path must be a string', async (t) => {
  const err = await t.throwsAsync(loadTokenizer(42 as never), { instanceOf: TypeError });
  t.is(err?.message, 'Expected string for path but received 42 of type number');
});

test('missing file and empty folder', async (t) => {
  await rejects(t, join(files.dir, 'nope.gguf'), 'no such file or folder', 'ERR_NOT_FOUND');
  const dir = join(files.dir, 'empty');
  mkdirSync(dir);
  await rejects(t, dir, 'folder holds neither tokenizer.json nor vocab.json + merges.txt', 'ERR_NOT_FOUND');
});

test('GGUF: not GGUF, truncated', async (t) => {
  const p = tmp('x.gguf');
  writeFileSync(p, 'hello, not a gguf');
  await rejects(t, p, 'not a GGUF file (bad magic)');
  const q = tmp('trunc.gguf');
  writeFileSync(q, readFileSync(gpt2VocabGgufPath()).subarray(0, 5000));
  await rejects(t, q, 'trunc.gguf: invalid GGUF (the file ends inside metadata value');
});

const ggufCases: Array<[string, Record<string, unknown>, string]> = [
  ['missing tokens', { 'tokenizer.ggml.tokens': undefined }, 'missing key tokenizer.ggml.tokens'],
  ['missing merges', { 'tokenizer.ggml.merges': undefined }, 'missing key tokenizer.ggml.merges'],
  ['missing eos', { 'tokenizer.ggml.eos_token_id': undefined }, 'missing key tokenizer.ggml.eos_token_id'],
  ['tokens of the wrong type', { 'tokenizer.ggml.tokens': { type: 'string', value: 'abc' } }, 'key tokenizer.ggml.tokens has type str, expected arr'],
  ['tokens array of numbers', { 'tokenizer.ggml.tokens': { type: 'array', itemType: 'u32', value: [1, 2] } }, 'key tokenizer.ggml.tokens is an array of u32, expected str'],
  ['eos as a string', { 'tokenizer.ggml.eos_token_id': { type: 'string', value: '50256' } }, 'key tokenizer.ggml.eos_token_id has type str, expected an integer'],
  ['eos out of range', { 'tokenizer.ggml.eos_token_id': { type: 'u32', value: 70000 } }, 'tokenizer.ggml.eos_token_id 70000 is outside the vocabulary of 50257 tokens'],
  ['another tokenizer model', { 'tokenizer.ggml.model': { type: 'string', value: 'llama' } }, "tokenizer.ggml.model is 'llama', expected 'gpt2'"],
  ['model not a string', { 'tokenizer.ggml.model': { type: 'u32', value: 1 } }, 'key tokenizer.ggml.model is not a string'],
  ['token_type of the wrong length', { 'tokenizer.ggml.token_type': { type: 'array', itemType: 'i32', value: [1, 1, 3] } }, 'tokenizer.ggml.token_type has 3 entries for 50257 tokens'],
  ['token_type of the wrong type', { 'tokenizer.ggml.token_type': { type: 'array', itemType: 'string', value: ['a'] } }, 'key tokenizer.ggml.token_type is not an array of int32'],
  // ids are packed 21 bits to a pair-table slot (native/tokenizer/bpe.h)
  ['too many tokens', { 'tokenizer.ggml.tokens': { type: 'array', itemType: 'string', value: new Array(2 ** 21 - 1).fill('a') }, 'tokenizer.ggml.eos_token_id': { type: 'u32', value: 0 } }, 'vocabulary has 2097151 tokens; at most 2097150 are supported'],
  ['too few tokens', { 'tokenizer.ggml.tokens': { type: 'array', itemType: 'string', value: ['a', 'b'] }, 'tokenizer.ggml.eos_token_id': { type: 'u32', value: 1 } }, 'vocabulary has 2 tokens; a byte-level BPE vocabulary needs at least 256'],
];

for (const [name, kv, what] of ggufCases) {
  test(`GGUF: ${name}`, async (t) => {
    const p = tmp('vocab.gguf');
    await writeVocabGguf(p, kv as never, vocab);
    await rejects(t, p, what);
  });
}

test('GGUF: inconsistent vocabulary and merges', async (t) => {
  const cases: Array<[string, (v: VocabData) => void, string]> = [
    ['a token outside the byte alphabet', (v) => { v.tokens[300] = 'a b'; }, "token 300 'a b' is not in GPT-2's byte-level alphabet"],
    ['an empty token', (v) => { v.tokens[300] = ''; }, 'token 300 is empty'],
    ['two tokens with the same bytes', (v) => { v.tokens[300] = v.tokens[301]!; }, 'tokens 300 and 301 have the same bytes'],
    ['a byte without a token', (v) => { v.tokens[0] = 'ĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠ'; }, 'vocabulary has no token for byte 0x21'],
    ['a merge that is not "a b"', (v) => { v.merges[7] = 'abc'; }, "merges[7] 'abc' is not of the form 'a b'"],
    ['a merge of an unknown token', (v) => { v.merges[7] = 'Ġ qqqqzzzz'; }, "merges[7] 'Ġ qqqqzzzz' names a token that is not in the vocabulary"],
    ['a merge producing an unknown token', (v) => { v.merges[7] = 'ÿ ÿ'; }, "merges[7] 'ÿ ÿ' produces a token that is not in the vocabulary"],
  ];
  for (const [name, mutate, what] of cases) {
    const v: VocabData = { tokens: [...vocab.tokens], merges: [...vocab.merges], eosId: vocab.eosId };
    mutate(v);
    const p = tmp('vocab.gguf');
    await writeVocabGguf(p, {}, v);
    await rejects(t, p, what);
    t.log(`${name}: ok`);
  }
});

test('vocab.json errors', async (t) => {
  const cases: Array<[string, string | null, string, Gpt2ErrorCode?]> = [
    ['no merges.txt', null, 'merges.txt not found beside it', 'ERR_NOT_FOUND'],
    ['invalid JSON', '{"a": ', 'invalid JSON'],
    ['not an integer id', '{"a": "x"}', "vocab entry 'a' is not an integer id"],
    ['an id used twice', '{"a": 0, "b": 0}', 'vocab id 0 is used twice'],
    ['an id out of range', '{"a": 0, "b": 5}', "vocab id 5 of 'b' is outside 0..1"],
    ['no <|endoftext|>', '{"a": 0, "b": 1}', "cannot find the end-of-text token (no '<|endoftext|>' in the vocabulary)"],
  ];
  for (const [name, json, what, code] of cases) {
    const p = tmp('vocab.json');
    writeFileSync(p, json ?? readFileSync(files.vocabJson));
    if (json !== null) writeFileSync(join(p, '..', 'merges.txt'), '#version: 0.2\n');
    await rejects(t, p, what, code);
    t.log(`${name}: ok`);
  }
});

test('tokenizer.json errors', async (t) => {
  const good = JSON.parse(readFileSync(files.tokenizerJson, 'utf8'));
  const cases: Array<[string, unknown, string]> = [
    ['no model', { version: '1.0' }, 'no "model" object'],
    ['a model that is not BPE', { model: { type: 'WordPiece', vocab: {} } }, 'model.type is "WordPiece", expected "BPE"'],
    ['no vocab', { model: { type: 'BPE', merges: [] } }, 'no model.vocab'],
    ['no merges', { model: { type: 'BPE', vocab: {} } }, 'no model.merges array'],
    ['a bad merge entry', { ...good, model: { ...good.model, merges: [42] } }, 'model.merges entry 42 is neither "a b" nor ["a", "b"]'],
    ['a bad added token', { ...good, added_tokens: [{ id: -1, content: 'x' }] }, 'lacks an integer id or a string content'],
    ['an added token that conflicts', { ...good, added_tokens: [{ id: 5, content: 'x', special: true }] }, "added token 5 'x' conflicts with vocab entry '&'"],
    ['a gap in the ids', { ...good, added_tokens: [{ id: 50300, content: '<|x|>', special: true }] }, 'no token has id 50257'],
    // an added id sizes the token table: refused before it is allocated (2^31 - 1 would ask for 64 GiB)
    ['a huge added token id', { model: { type: 'BPE', vocab: { a: 0 }, merges: [] }, added_tokens: [{ id: 2 ** 31 - 1, content: 'x' }] },
      'added token id 2147483647 is too large (at most 2097150)'],
    ['an added token id past the pair table', { ...good, added_tokens: [{ id: 2 ** 21 - 1, content: '<|x|>', special: true }] },
      'added token id 2097151 is too large (at most 2097150)'],
  ];
  for (const [name, json, what] of cases) {
    const p = tmp('tokenizer.json');
    writeFileSync(p, JSON.stringify(json));
    await rejects(t, p, what);
    t.log(`${name}: ok`);
  }
});
