// Which files of a repo make "the model" when a specifier names no file. In this order:
//
// 1. A Hugging Face GPT2LMHeadModel folder at the repo's root: config.json and weights
//    (model.safetensors, or model.safetensors.index.json and the shards it names) → config.json,
//    the weights, the tokenizer files there are (vocab.json, merges.txt, tokenizer.json; either
//    vocab.json + merges.txt or tokenizer.json is required), and generation_config.json /
//    tokenizer_config.json when present. The model is the snapshot folder.
// 2. Else exactly one .gguf file anywhere in the repo. Several: ERR_AMBIGUOUS, listing them.
// 3. Else exactly one legacy ggml .bin (a .bin with "ggml" in its name). Several: ERR_AMBIGUOUS.
// 4. Else ERR_NOT_FOUND, listing what the repo holds (e.g. only pytorch_model.bin).
import { Gpt2Error } from '../errors.js';
import { validRelativePath } from './specifier.js';

export type Selection =
  | { kind: 'file'; file: string }
  /** `files` to fetch; with `index`, also the shards it names (known once it is fetched). */
  | { kind: 'folder'; files: string[]; index: string | undefined };

export const INDEX_FILE = 'model.safetensors.index.json';
const TOKENIZER_FILES = ['vocab.json', 'merges.txt', 'tokenizer.json'];
const OPTIONAL_FILES = ['generation_config.json', 'tokenizer_config.json'];
const LIST_AT_MOST = 20;

function listing(files: string[]): string {
  const shown = files.slice(0, LIST_AT_MOST).join(', ');
  return files.length > LIST_AT_MOST ? `${shown}, … (${files.length} in all)` : shown || 'no files';
}

/**
 * `where`: the repo and revision for messages (`hf:owner/repo@main`); `nameOne(file)`: the
 * specifier that names a file, for the advice of an ambiguous choice.
 */
export function selectModel(available: Iterable<string>, where: string, nameOne: (file: string) => string): Selection {
  const files = [...available].sort();
  const has = new Set(files);
  if (has.has('config.json') && (has.has('model.safetensors') || has.has(INDEX_FILE))) {
    const weights = has.has('model.safetensors') ? 'model.safetensors' : INDEX_FILE;
    if (!(has.has('vocab.json') && has.has('merges.txt')) && !has.has('tokenizer.json')) {
      throw new Gpt2Error('ERR_NOT_FOUND', `${where} has config.json and ${weights} but no tokenizer (vocab.json + merges.txt, or tokenizer.json)`);
    }
    const take = ['config.json', weights, ...TOKENIZER_FILES, ...OPTIONAL_FILES].filter((f) => has.has(f));
    return { kind: 'folder', files: take, index: weights === INDEX_FILE ? INDEX_FILE : undefined };
  }
  for (const [label, test] of [
    ['GGUF files', (f: string) => /\.gguf$/i.test(f)],
    ['ggml .bin files', (f: string) => /ggml[^/]*\.bin$/i.test(f)],
  ] as const) {
    const found = files.filter(test);
    if (found.length === 1) return { kind: 'file', file: found[0]! };
    if (found.length > 1) {
      throw new Gpt2Error('ERR_AMBIGUOUS', `${where} holds ${found.length} ${label}: ${listing(found)}; name one, as in ${nameOne(found[0]!)}`);
    }
  }
  throw new Gpt2Error('ERR_NOT_FOUND',
    `${where} holds no model in a format gpt2-node loads (a .gguf, a ggml .bin, or config.json with model.safetensors); it holds: ${listing(files)}`);
}

/** The shard files a model.safetensors.index.json names (its weight_map's values). */
export function shardsOf(indexText: string, where: string): string[] {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(indexText) as { weight_map?: unknown }).weight_map;
  } catch {
    weightMap = undefined;
  }
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new Gpt2Error('ERR_BAD_MODEL', `${INDEX_FILE} of ${where} has no weight_map object`);
  }
  const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))];
  for (const s of shards) {
    if (typeof s !== 'string' || !validRelativePath(s) || !s.endsWith('.safetensors')) {
      throw new Gpt2Error('ERR_BAD_MODEL', `${INDEX_FILE} of ${where} names a shard that is not a .safetensors path: ${JSON.stringify(s)}`);
    }
  }
  if (shards.length === 0) throw new Gpt2Error('ERR_BAD_MODEL', `${INDEX_FILE} of ${where} names no shard`);
  return (shards as string[]).sort();
}
