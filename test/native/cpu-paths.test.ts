// Each SIMD path of our CPU kernels, run where this CPU has it, skipped with the missing feature
// named where not (a path that cannot run here is never reported as passing). Under each path: the
// kernel path line names it, the load-time probe's verdict is logged, and a request gives the same
// tokens and logprobs, to the bit, alone and among others (batch invariance, whichever way the
// probe made it hold: our kernel for a lone row, or a padding row).
//
// The f16 model is the one that tells the paths apart: where ggml's CPU backend is built for
// AVX-512, its tinyBLAS sums f16 rows in 16 lanes, so only our AVX-512 path gives a lone row the
// same bits without a padding row; capped at AVX2, the probe must find that and pad. On arm64,
// ggml multiplies up to 7 f16 rows (3 f32) with another kernel than many, which no padding row
// mends: only our NEON path (tinyBLAS's 4-lane or half-precision sums) makes batch invariance hold.
import test from 'ava';

import { loadModel, setLogger, type Completion, type ModelInfo } from '../../lib/index.js';
import { cpuFlags } from '../support/cpu-flags.js';
import { testModel } from '../support/models.js';
import { until } from '../support/until.js';

const flags = cpuFlags();
const lines: string[] = [];
setLogger((_level, _source, text) => {
  if (text.startsWith('CPU kernels:') || text.startsWith('row-count invariant')) lines.push(text.trim());
}, 'debug');

/** Runs f with GPT2_NODE_KERNELS set (or unset), restoring it after. */
async function withCap<T>(cap: string | undefined, f: () => Promise<T>): Promise<T> {
  const before = process.env.GPT2_NODE_KERNELS;
  if (cap === undefined) delete process.env.GPT2_NODE_KERNELS;
  else process.env.GPT2_NODE_KERNELS = cap;
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.GPT2_NODE_KERNELS;
    else process.env.GPT2_NODE_KERNELS = before;
  }
}

// Which path the default (uncapped) run takes here: AVX-512 needs ggml's backend built for it too.
const defaultPath = await withCap(undefined, async () => {
  const m = await loadModel(await testModel('tiny', 'f32'), { threads: 1 });
  await m.dispose();
  await until(() => lines.some((l) => l.startsWith('CPU kernels:')), 5000);
  return lines.splice(0).find((l) => l.startsWith('CPU kernels:')) ?? '(no line logged)';
});

interface Path {
  name: string;
  id: ModelInfo['cpuKernels'];
  cap: string | undefined;   // GPT2_NODE_KERNELS for this path
  needs: string[];           // /proc/cpuinfo flags
}
const paths: Path[] = [
  { name: 'AVX2', id: 'avx2', cap: 'avx2', needs: ['avx2', 'fma', 'f16c'] },
  { name: 'AVX-512', id: 'avx512', cap: undefined, needs: ['avx512f', 'avx512bw', 'avx512vl'] },
  { name: 'NEON', id: 'neon', cap: undefined, needs: [] },
];

/** Why this path cannot run here, or null when it can. */
function missing(p: Path): string | null {
  if (p.name === 'NEON') {
    if (process.arch !== 'arm64') return `not an arm64 CPU (${process.arch})`;
    return defaultPath === 'CPU kernels: ours, NEON' ? null : `the default path here is "${defaultPath}"`;
  }
  if (process.arch !== 'x64') return `not an x86-64 CPU (${process.arch})`;
  if (!flags) return 'no /proc/cpuinfo to read the CPU features from';
  const absent = p.needs.filter((f) => !flags.has(f));
  if (absent.length > 0) return `this CPU lacks ${absent.join(', ')}`;
  // our paths follow what ggml's CPU backend is built for (a prebuilt variant may lack both)
  if (p.name === 'AVX-512' && defaultPath !== 'CPU kernels: ours, AVX-512') {
    return `ggml's CPU backend is not built for AVX-512 here (the default path is "${defaultPath}")`;
  }
  if (p.name === 'AVX2' && !defaultPath.startsWith('CPU kernels: ours')) {
    return `ggml's CPU backend is not built for AVX2 here (the default path is "${defaultPath}")`;
  }
  return null;
}

for (const p of paths) {
  const why = missing(p);
  const title = `the ${p.name} path: a request's numbers alone equal its numbers among others (124M f16 and q8_0)`;
  if (why) {
    test.serial.skip(title, () => {});
    console.log(`cpu-paths: ${p.name} path not run: ${why}`);
    continue;
  }
  test.serial(title, async (t) => {
    for (const type of ['f16', 'q8_0'] as const) {
      await withCap(p.cap, async () => {
        lines.length = 0;
        const m = await loadModel(await testModel('124M', type), { threads: 2, maxSequences: 4 });
        try {
          t.is(m.info.cpuKernels, p.id);
          const prompts = Array.from({ length: 4 }, (_, i) => Array.from({ length: 5 + i * 7 }, (_, j) => (i * 977 + j * 31) % 50000));
          const opts = { maxTokens: 12, ignoreEos: true, logprobs: true, temperature: 0 };
          const numbers = (c: Completion) => JSON.stringify([Array.from(c.tokens), c.logprobs!.map((l) => l.logprob)]);
          const alone: string[] = [];
          for (const prompt of prompts) alone.push(numbers(await m.complete(prompt, opts)));
          const together = await Promise.all(prompts.map(async (prompt) => numbers(await m.complete(prompt, opts))));
          await until(() => lines.some((l) => l.startsWith('row-count invariant')), 5000);
          const pathLines = lines.filter((l) => l.startsWith('CPU kernels:'));
          t.deepEqual(pathLines, [`CPU kernels: ours, ${p.name}`], `${type}: every graph took the ${p.name} path`);
          t.log(`${p.name}, ${type}: ${lines.find((l) => l.startsWith('row-count invariant'))}`);
          t.deepEqual(together.map((x, i) => x === alone[i]), [true, true, true, true], `${type}: alone and together`);
          if ((p.name === 'AVX-512' || p.name === 'NEON') && type === 'f16') {
            // the point of these paths: no padding row for a lone f16 row (and on NEON, invariance at all)
            t.is(lines.find((l) => l.startsWith('row-count invariant')), 'row-count invariant: LM head yes, blocks yes (few rows through our kernel)');
            t.false(m.info.padsLoneRow);
            t.true(m.info.batchInvariant);
          }
        } finally {
          await m.dispose();
        }
      });
    }
  });
}
