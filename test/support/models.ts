// Test models: random-weight GPT-2 GGUFs (lib/testing/random-model.ts) generated on first use
// into test/.models/ (git-ignored) and reused afterwards. The file name is the cache key: shape,
// type, seed, init scale, tied output and the generator's version, so a changed generator never
// serves a stale file. Safe when several ava processes ask for the same model at once: each
// writes to its own temporary name and renames it into place (rename is atomic; the loser's
// identical file simply replaces the winner's).
import { existsSync, mkdirSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  RANDOM_MODEL_VERSION, defaultVocabGguf, writeRandomModel,
  type ModelShape, type NamedShape, type RandomModelType,
} from '../../lib/testing/random-model.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const MODELS_DIR = join(root, 'test', '.models');

/** llama.cpp's GPT-2 vocab GGUF (vendor/llama.cpp, or under GPT2_NODE_LLAMA_CPP_DIR). */
export const VOCAB_GGUF = defaultVocabGguf();

export interface TestModelOptions {
  seed?: number;
  initScale?: number;
  tiedOutput?: boolean;
}

function shapeKey(shape: NamedShape | ModelShape): string {
  if (typeof shape === 'string') return shape;
  return `L${shape.nLayer}-E${shape.nEmbd}-H${shape.nHead}-C${shape.nCtx}-F${shape.nFf ?? 4 * shape.nEmbd}`;
}

const pending = new Map<string, Promise<string>>();

/** Path of the test model with these parameters, generating it the first time. */
export function testModel(shape: NamedShape | ModelShape, type: RandomModelType = 'f32', opts: TestModelOptions = {}): Promise<string> {
  const seed = opts.seed ?? 1;
  const initScale = opts.initScale ?? 1;
  const tied = opts.tiedOutput ?? true;
  const name = `gpt2-${shapeKey(shape)}-${type}-s${seed}-x${initScale}${tied ? '' : '-untied'}-v${RANDOM_MODEL_VERSION}.gguf`;
  const path = join(MODELS_DIR, name);
  let p = pending.get(path);
  if (p === undefined) {
    p = (async () => {
      if (existsSync(path)) return path;
      mkdirSync(MODELS_DIR, { recursive: true });
      const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
      try {
        await writeRandomModel(tmp, { shape, type, seed, initScale, tiedOutput: tied, vocabGguf: VOCAB_GGUF });
        await rename(tmp, path);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      return path;
    })();
    pending.set(path, p);
    p.catch(() => pending.delete(path));
  }
  return p;
}
