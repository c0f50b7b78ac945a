// Seed corpora for the fuzzers (scripts/fuzz.mjs runs this once per build folder), generated, not
// stored: `npx tsx test/fuzz/seeds.ts <folder>` writes <folder>/<harness>/ for each harness and
// <folder>/hf-folder (the micro model as a Hugging Face folder, which the safetensors harness
// copies its config and tokenizer from).
//
// The model seeds are the micro GPT-2 (test/support/micro-model.ts) in each format; the text
// seeds a slice of the tokenizer test corpus plus invalid UTF-8; the stream decoder's, those texts
// as token ids (16-bit little-endian, its input format); the server's, request bodies.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadTokenizer } from '../../lib/index.js';
import { writeHfFolder, writeLegacyGgml } from '../support/export-formats.js';
import { writeMicroModel } from '../support/micro-model.js';
import { VOCAB_GGUF } from '../support/models.js';
import { generateCorpus } from '../support/tokenizer-corpus.js';
import { serverParamSeeds, serverParamWords } from './server-params.seeds.js';

const out = process.argv[2];
if (out === undefined) {
  console.error('usage: npx tsx test/fuzz/seeds.ts <folder>');
  process.exit(2);
}
await rm(out, { recursive: true, force: true });
const dir = async (name: string): Promise<string> => { const d = join(out, name); await mkdir(d, { recursive: true }); return d; };

const gguf = join(await dir('gguf'), 'micro.gguf');
await writeMicroModel(gguf);
await writeLegacyGgml(gguf, join(await dir('legacy'), 'micro.bin'));

// safetensors: the harness's first byte picks the file (even: model.safetensors, odd: the index)
const hf = join(out, 'hf-folder');
await writeHfFolder(gguf, hf);
const st = await dir('safetensors');
const weights = await readFile(join(hf, 'model.safetensors'));
await writeFile(join(st, 'weights'), Buffer.concat([Buffer.from([0]), weights]));
const header = JSON.parse(weights.subarray(8, 8 + Number(weights.readBigUInt64LE(0))).toString()) as Record<string, unknown>;
const shard = 'model-00001-of-00001.safetensors';   // the harness's one shard: this same file
const index = { metadata: { total_size: weights.length }, weight_map: Object.fromEntries(Object.keys(header).filter((n) => n !== '__metadata__').map((n) => [n, shard])) };
await writeFile(join(st, 'index'), Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(index))]));

// text: every 50th corpus string (about 100), some invalid UTF-8, the special token
const texts: Buffer[] = generateCorpus().filter((_, i) => i % 50 === 0).map((e) => Buffer.from(e.text));
texts.push(Buffer.from([0xff, 0xfe, 0x80, 0x41]), Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from('a<|endoftext|>b <|endoftext|><|endoftext|>'), Buffer.from("  hello\n\n\tworld's 123 ü 日本語 🙂🙂"));
const tok = await dir('tokenizer');
const ids = await dir('stream_decoder');
const tokenizer = await loadTokenizer(VOCAB_GGUF);
for (const [i, text] of texts.entries()) {
  await writeFile(join(tok, `text-${i}`), text);
  const encoded = tokenizer.tokenize(text.toString('latin1'));   // arbitrary ids, byte pieces included
  const u16 = Buffer.alloc(2 * encoded.length);
  encoded.forEach((id, k) => u16.writeUInt16LE(id, 2 * k));
  await writeFile(join(ids, `ids-${i}`), u16);
}

const params = await dir('server_params');
for (const [i, body] of serverParamSeeds().entries()) await writeFile(join(params, `body-${i}`), body);
// libFuzzer's dictionary for it (-dict): the field names and JSON's punctuation
await writeFile(join(out, 'server_params.dict'), serverParamWords().map((w) => `${JSON.stringify(w)}\n`).join(''));
console.log(`seeds in ${out}`);
