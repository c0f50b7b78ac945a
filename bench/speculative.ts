// Speculative decoding, side by side (issue 25): single-stream greedy tokens/s of gpt2-node
// without speculation, with prompt lookup and with a draft model, and of llama.cpp's
// llama-lookup and llama-speculative on the same files, the same prompts and settings, in one
// run. The models are a trained target/draft pair (random weights make acceptance meaningless):
//
//   npx tsx bench/speculative/make-models.ts      # trains them into bench/speculative/models/
//   node bench/build-peers.mjs --skip-node-llama-cpp
//   npx tsx bench/speculative.ts [--tokens 64] [--prompts 8] [--runs 3] [--threads 2] [--max-draft 8] [--p-min 0.5]
//
// Two tasks from held-out passages of the training corpus:
//   edit      the passage, a blank line, its first 8 tokens: the model goes on copying it
//             (prompt lookup's case: "rewrite a passage with small changes");
//   continue  the passage's first 32 tokens: free continuation (the draft model's case).
// Speed is decode speed, as llama.cpp's tools report it ("decoded N tokens in T s"): tokens after
// the first over the time from the first token to the last, summed over the prompts; the median
// over --runs rounds, ours and llama.cpp's alternating. Every speculative output of ours is
// checked against the plain one, token for token.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { cpuLine } from './cpu.js';

import { loadModel, type GenerateOptions } from '../lib/index.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string' },
    tokens: { type: 'string', default: '64' },
    prompts: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    'max-draft': { type: 'string', default: '8' },
    'p-min': { type: 'string', default: '0.5' },
    'skip-llama': { type: 'boolean', default: false },
  },
});
const here = dirname(fileURLToPath(import.meta.url));
const dir = values.models ?? join(here, 'speculative', 'models');
const nTokens = Number(values.tokens);
const nPrompts = Number(values.prompts);
const runs = Number(values.runs);
const threads = Number(values.threads);
const maxDraft = Number(values['max-draft']);
const pMin = Number(values['p-min']);
const bin = join(here, '..', 'build', 'bin');

const targetPath = join(dir, 'target.gguf');
const draftPath = join(dir, 'draft.gguf');
for (const f of [targetPath, draftPath, join(dir, 'heldout-passages.json')]) {
  if (!existsSync(f)) throw new Error(`${f} is missing: run npx tsx bench/speculative/make-models.ts first`);
}
const held = JSON.parse(readFileSync(join(dir, 'heldout-passages.json'), 'utf8')) as { separatorId: number; passages: { ids: number[] }[] };
const passages = held.passages.slice(0, nPrompts).map((p) => p.ids);

const target = await loadModel(targetPath, { threads });
const draft = await loadModel(draftPath, { threads });

// prompts as text (llama.cpp's tools take text), and our tokens of that text
const tasks = {
  edit: passages.map((ids) => target.detokenize([...ids, held.separatorId, ...ids.slice(0, 8)])),
  continue: passages.map((ids) => target.detokenize(ids.slice(0, 32))),
};

interface Measure { tps: number; drafted: number; accepted: number; tokens: number[][] }

async function ours(prompts: string[], speculation: GenerateOptions['speculation']): Promise<Measure> {
  let n = 0, seconds = 0, drafted = 0, accepted = 0;
  const tokens: number[][] = [];
  for (const prompt of prompts) {
    let first = 0;
    const got: number[] = [];
    for await (const c of target.generate(prompt, { maxTokens: nTokens, temperature: 0, ignoreEos: true, highWaterMark: 64, speculation })) {
      if (got.length === 0 && c.tokens.length > 0) first = performance.now();
      got.push(...c.tokens);
      if (c.usage) { drafted += c.usage.draftedTokens ?? 0; accepted += c.usage.acceptedTokens ?? 0; }
    }
    seconds += (performance.now() - first) / 1000;
    n += got.length - 1;
    tokens.push(got);
  }
  return { tps: n / seconds, drafted, accepted, tokens };
}

function llama(tool: 'llama-lookup' | 'llama-speculative', prompts: string[]): { tps: number; drafted: number; accepted: number } | undefined {
  const exe = join(bin, tool);
  if (values['skip-llama'] || !existsSync(exe)) return undefined;
  let n = 0, seconds = 0, drafted = 0, accepted = 0;
  for (const prompt of prompts) {
    const args = ['-m', targetPath, '-p', prompt, '-n', String(nTokens), '--temp', '0', '-t', String(threads), '-c', String(target.info.contextSize), '--spec-draft-n-max', String(maxDraft),
      '--ignore-eos', '--seed', '1'];
    if (tool === 'llama-speculative') args.push('-md', draftPath, '--spec-draft-p-min', String(pMin));
    const r = spawnSync(exe, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
    const out = `${r.stdout}\n${r.stderr}`;
    const m = /decoded\s+(\d+) tokens in\s+([\d.]+) seconds/.exec(out);
    if (r.status !== 0 || !m) throw new Error(`${tool} failed (exit ${r.status}):\n${out.slice(-2000)}`);
    n += Number(m[1]);
    seconds += Number(m[2]);
    drafted += Number(/n_drafted\s*=\s*(\d+)/.exec(out)?.[1] ?? 0);
    accepted += Number(/n_accept\s*=\s*(\d+)/.exec(out)?.[1] ?? 0);
  }
  return { tps: n / seconds, drafted, accepted };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: string[] = [];
const same = (a: number[][], b: number[][]) => a.every((t, i) => t.length === b[i]!.length && t.every((x, j) => x === b[i]![j]));

for (const [task, prompts, kind] of [['edit', tasks.edit, 'lookup'], ['continue', tasks.continue, 'draft']] as const) {
  const speculation: GenerateOptions['speculation'] = kind === 'lookup'
    ? { predictor: 'lookup', maxDraft }
    : { predictor: 'draft', draft, maxDraft, minConfidence: pMin };
  const tool = kind === 'lookup' ? 'llama-lookup' : 'llama-speculative';
  await ours(prompts.slice(0, 1), speculation);   // warm-up: the draft's decoder, caches
  const plain: number[] = [], spec: number[] = [], peer: number[] = [];
  let last: Measure | undefined, lastPlain: Measure | undefined, lastPeer: ReturnType<typeof llama>;
  for (let r = 0; r < runs; r++) {
    lastPlain = await ours(prompts, undefined);
    plain.push(lastPlain.tps);
    last = await ours(prompts, speculation);
    spec.push(last.tps);
    if (!same(last.tokens, lastPlain.tokens)) throw new Error(`${task}: speculative output differs from the plain one`);
    lastPeer = llama(tool, prompts);
    if (lastPeer) peer.push(lastPeer.tps);
  }
  const p = median(plain), s = median(spec), l = peer.length ? median(peer) : undefined;
  const rate = (m: { drafted: number; accepted: number }) => `${(100 * m.accepted / Math.max(1, m.drafted)).toFixed(0)} % of ${m.drafted}`;
  rows.push(`| ${task} | ${kind} | ${p.toFixed(1)} | ${s.toFixed(1)} | **${(s / p).toFixed(2)}×** | ${rate(last!)} | ` +
    (l === undefined ? 'not run | | |' : `${l.toFixed(1)} | **${(s / l).toFixed(2)}×** | ${rate(lastPeer!)} |`));
}

await draft.dispose();
await target.dispose();

console.log(`CPU: ${cpuLine()}; ${threads} threads; ${nPrompts} prompts × ${nTokens} tokens, greedy; maxDraft ${maxDraft}, draft p-min ${pMin}; median of ${runs} runs`);
console.log(`target ${targetPath}, draft ${draftPath}`);
console.log('');
console.log('| task | predictor | ours plain t/s | ours speculative t/s | speed-up | ours accepted | llama.cpp t/s | ours / llama.cpp | llama.cpp accepted |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log('\nspeculative outputs identical to the plain ones: yes (checked every run)');
