// Inputs the fuzzers once failed on (test/fuzz/regressions/<harness>/, saved from
// build/fuzz/artifacts by hand once fixed: docs/reliability.md lists each), replayed through the
// public API on every test run, with the harness's own verdict: a model file loads or is refused
// with ERR_BAD_MODEL; text round-trips through the tokenizer; token ids stream to the text they
// decode to at once. No clang needed: the fuzzers themselves run from scripts/fuzz.sh.
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Gpt2Error, loadModel, loadTokenizer } from '../../lib/index.js';
import { writeHfFolder } from '../support/export-formats.js';
import { writeMicroModel } from '../support/micro-model.js';
import { VOCAB_GGUF } from '../support/models.js';

const regressions = join(dirname(fileURLToPath(import.meta.url)), '..', 'fuzz', 'regressions');
// a test per harness with recorded inputs (none recorded: no test, rather than one that passes on nothing)
const recorded = (harness: string): string[] => {
  const dir = join(regressions, harness);
  return existsSync(dir) ? readdirSync(dir).sort() : [];
};
const inputs = async (harness: string): Promise<Array<[string, Buffer]>> =>
  Promise.all(recorded(harness).map(async (f): Promise<[string, Buffer]> => [f, await readFile(join(regressions, harness, f))]));

let tmp: string;
test.before(async () => { tmp = await mkdtemp(join(tmpdir(), 'gpt2-node-fuzz-regressions-')); });
test.after.always(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

/** 'loaded' (then disposed), 'refused' (ERR_BAD_MODEL), or what else happened. */
async function loadsOrRefused(path: string): Promise<string> {
  try {
    await (await loadModel(path, { threads: 1 })).dispose();
    return 'loaded';
  } catch (e) {
    return e instanceof Gpt2Error && e.code === 'ERR_BAD_MODEL' ? 'refused' : `unexpected: ${String(e)}`;
  }
}

for (const harness of ['gguf', 'legacy'].filter((h) => recorded(h).length > 0)) {
  test(`${harness} regressions load or are refused with ERR_BAD_MODEL`, async (t) => {
    for (const [name, bytes] of await inputs(harness)) {
      const path = join(tmp, `${harness}-${name}`);
      await writeFile(path, bytes);
      t.regex(await loadsOrRefused(path), /^(loaded|refused)$/, name);
    }
  });
}

if (recorded('safetensors').length > 0) test('safetensors regressions load or are refused with ERR_BAD_MODEL', async (t) => {
  const cases = await inputs('safetensors');
  // the harness's folder: the micro model's config and tokenizer; first byte even → the input is
  // model.safetensors, odd → model.safetensors.index.json beside one valid shard
  const gguf = join(tmp, 'micro.gguf');
  await writeMicroModel(gguf);
  const base = join(tmp, 'hf-base');
  await writeHfFolder(gguf, base);
  for (const [name, bytes] of cases) {
    const folder = join(tmp, `hf-${name}`);
    await cp(base, folder, { recursive: true });
    if ((bytes[0]! & 1) === 0) {
      await writeFile(join(folder, 'model.safetensors'), bytes.subarray(1));
    } else {
      await cp(join(folder, 'model.safetensors'), join(folder, 'model-00001-of-00001.safetensors'));
      await rm(join(folder, 'model.safetensors'));
      await writeFile(join(folder, 'model.safetensors.index.json'), bytes.subarray(1));
    }
    t.regex(await loadsOrRefused(folder), /^(loaded|refused)$/, name);
  }
});

if (recorded('tokenizer').length + recorded('stream_decoder').length > 0) test('tokenizer and stream-decoder regressions keep their invariants', async (t) => {
  const texts = await inputs('tokenizer');
  const idLists = await inputs('stream_decoder');
  const tok = await loadTokenizer(VOCAB_GGUF);
  for (const [name, bytes] of texts) {
    const text = new TextDecoder().decode(bytes);
    for (const allowedSpecial of ['all', []] as const) {
      t.is(tok.detokenize(tok.tokenize(text, { allowedSpecial })), text, `${name} (allowedSpecial ${JSON.stringify(allowedSpecial)})`);
    }
  }
  for (const [name, bytes] of idLists) {
    const ids = Array.from({ length: bytes.length >> 1 }, (_, i) => bytes.readUInt16LE(2 * i)).filter((id) => id < tok.vocabSize);
    const stream = tok.createStreamDecoder();
    const streamed = ids.map((id) => stream.push(id)).join('') + stream.flush();
    t.is(streamed, tok.detokenize(ids), name);
  }
});
