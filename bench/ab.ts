// A/B benchmark of two checkouts of this project (a refactor, a kernel change), or of two addon
// files in one checkout (the prebuilt variant against the native build): runs bench/engine.ts
// for each side, alternating, and prints per metric the median of each side and their ratio.
// Checkouts must be built (npm install); each runs its own lib/ and its own addon, unless
// --base-binary / --head-binary name the .node file a side loads (GPT2_NODE_BINARY).
//
//   npx tsx bench/ab.ts --base ../old-checkout [--head .] [--rounds 3] [--types f16,q8_0] [-- engine.ts options]
//   npx tsx bench/ab.ts --base-binary build/Release/gpt2_node.node \
//       --head-binary build/packages/linux-x64/gpt2_node-avx512-vnni.node
//
// A ratio within the rounds' spread is noise; the spread is printed beside each median.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { cpuLine } from './cpu.js';

const { values, positionals } = parseArgs({
  options: {
    base: { type: 'string' },
    head: { type: 'string', default: '.' },
    rounds: { type: 'string', default: '3' },
    types: { type: 'string', default: 'f16,q8_0' },
    'base-binary': { type: 'string' },
    'head-binary': { type: 'string' },
  },
  allowPositionals: true,
});
if (!values.base && !values['base-binary']) throw new TypeError('Expected --base <checkout> or --base-binary <file.node> (the other side)');
const trees = { base: resolve(values.base ?? values.head!), head: resolve(values.head!) };
const binaries = {
  base: values['base-binary'] ? resolve(values['base-binary']) : undefined,
  head: values['head-binary'] ? resolve(values['head-binary']) : undefined,
};
const rounds = Number(values.rounds);

/** One run of bench/engine.ts in `dir`: metric → value, per configuration column. */
function run(dir: string, type: string, binary: string | undefined): Map<string, number> {
  const env = { ...process.env };
  if (binary) env.GPT2_NODE_BINARY = binary;
  const r = spawnSync(process.execPath, ['--import=tsx', 'bench/engine.ts', '--type', type, ...positionals], {
    cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env,
  });
  if (r.status !== 0) throw new Error(`bench/engine.ts failed in ${dir} (exit ${r.status})`);
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const cells = line.split('|').map((c) => c.trim()).filter(Boolean);
    if (cells.length < 3 || !/\d/.test(cells[1]!) || cells[0]!.startsWith('---')) continue;
    out.set(`${cells[0]}, batchInvariant: true`, Number(cells[1]));
    out.set(`${cells[0]}, batchInvariant: false`, Number(cells[2]));
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`${new Date().toISOString().slice(0, 10)}, ${cpuLine()}, node ${process.version}`);
console.log(`base ${binaries.base ?? trees.base}, head ${binaries.head ?? trees.head}, ${rounds} alternating rounds, medians (min-max)\n`);
for (const type of values.types!.split(',')) {
  const samples = { base: new Map<string, number[]>(), head: new Map<string, number[]>() };
  for (let i = 0; i < rounds; i++) {
    const order: ('base' | 'head')[] = i % 2 === 0 ? ['base', 'head'] : ['head', 'base'];
    for (const side of order) {
      for (const [k, v] of run(trees[side], type, binaries[side])) samples[side].set(k, [...(samples[side].get(k) ?? []), v]);
    }
  }
  console.log(`| 124M ${type} | base | head | head / base |`);
  console.log('| --- | ---: | ---: | ---: |');
  const fmt = (xs: number[]) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
  for (const [k, b] of samples.base) {
    const h = samples.head.get(k);
    if (!h) continue;
    console.log(`| ${k} | ${fmt(b)} | ${fmt(h)} | ${(median(h) / median(b)).toFixed(3)} |`);
  }
  console.log('');
}
