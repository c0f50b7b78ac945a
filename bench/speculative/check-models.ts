// Checks the models make-models.ts wrote, through gpt2-node itself: each GGUF loads and
// completes held-out prompts greedily; the copy test measures how much of a held-out passage the
// model reproduces after "<passage>\n\n<its first 8 tokens>" (what prompt-lookup decoding
// feeds on); and the padded target must compute the same function as the trained-only one
// (same greedy tokens, logits equal up to rounding).
//
//   npx tsx bench/speculative/check-models.ts [DIR]     (default bench/speculative/models/)
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { loadModel, type Model } from '../../lib/index.js';

export interface HeldoutPassage {
  ids: number[];
  text: string;
}

export interface CheckResult {
  models: Record<string, { copyFraction: number; copyTokens: number; msPerToken: number; sample: string }>;
  paddedGreedyEqual: boolean;
  paddedMaxLogitDiff: number;
}

const GIVEN = 8;        // tokens of the passage repeated after the separator
const GENERATE = 64;    // tokens the model must copy
const PASSAGES = 16;

/** Greedy continuations of every copy prompt, and the fraction of tokens that match the passage position by position. */
async function copyTest(model: Model, passages: HeldoutPassage[], sep: number): Promise<{ outputs: Uint32Array[]; fraction: number; tokens: number; msPerToken: number; sample: string }> {
  const outputs: Uint32Array[] = [];
  let match = 0;
  let total = 0;
  const t0 = performance.now();
  for (const p of passages) {
    const prompt = [...p.ids, sep, ...p.ids.slice(0, GIVEN)];
    const c = await model.complete(prompt, { maxTokens: GENERATE, temperature: 0, ignoreEos: true });
    outputs.push(c.tokens);
    for (let i = 0; i < GENERATE; i++) if (c.tokens[i] === p.ids[GIVEN + i]) match++;
    total += GENERATE;
  }
  const ms = performance.now() - t0;
  const first = passages[0]!;
  const sample = model.detokenize(first.ids.slice(0, GIVEN)) + model.detokenize(outputs[0]!);
  return { outputs, fraction: match / total, tokens: total, msPerToken: ms / total, sample };
}

export async function checkModels(dir: string): Promise<CheckResult> {
  const held = JSON.parse(readFileSync(join(dir, 'heldout-passages.json'), 'utf8')) as { separatorId: number; passages: HeldoutPassage[] };
  const passages = held.passages.slice(0, PASSAGES);
  console.log(`copy prompt 0: ${JSON.stringify(passages[0]!.text)}`);
  const result: CheckResult = { models: {}, paddedGreedyEqual: false, paddedMaxLogitDiff: NaN };
  const greedy = new Map<string, Uint32Array[]>();
  for (const name of ['target', 'target-q8_0', 'target-trained-only', 'draft']) {
    const model = await loadModel(join(dir, `${name}.gguf`));
    try {
      const r = await copyTest(model, passages, held.separatorId);
      greedy.set(name, r.outputs);
      result.models[name] = { copyFraction: r.fraction, copyTokens: r.tokens, msPerToken: r.msPerToken, sample: r.sample };
      console.log(`${name} (${model.info.layers} blocks): copies ${(r.fraction * 100).toFixed(1)}% of ${r.tokens} tokens, ${r.msPerToken.toFixed(2)} ms/token; ` +
        `prompt 0 → ${JSON.stringify(r.sample)}`);
    } finally {
      await model.dispose();
    }
  }
  const a = greedy.get('target')!;
  const b = greedy.get('target-trained-only')!;
  result.paddedGreedyEqual = a.every((x, i) => x.length === b[i]!.length && x.every((t, j) => t === b[i]![j]));

  // logits of every position of a few prompts (the copy prompts with their greedy continuations)
  const padded = await loadModel(join(dir, 'target.gguf'));
  const trained = await loadModel(join(dir, 'target-trained-only.gguf'));
  try {
    let maxDiff = 0;
    for (let i = 0; i < 3; i++) {
      const ids = [...passages[i]!.ids, held.separatorId, ...passages[i]!.ids.slice(0, GIVEN), ...a[i]!];
      const [x, y] = await Promise.all([padded.evaluate(ids, { allPositions: true }), trained.evaluate(ids, { allPositions: true })]);
      for (let j = 0; j < x.length; j++) maxDiff = Math.max(maxDiff, Math.abs(x[j]! - y[j]!));
    }
    result.paddedMaxLogitDiff = maxDiff;
  } finally {
    await Promise.all([padded.dispose(), trained.dispose()]);
  }
  console.log(`padded vs trained-only target: greedy outputs ${result.paddedGreedyEqual ? 'identical' : 'DIFFERENT'} over ${a.length}×${GENERATE} tokens; ` +
    `max |logit difference| ${result.paddedMaxLogitDiff.toExponential(2)} over all positions of 3 prompts`);
  return result;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await checkModels(resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), 'models')));
}
