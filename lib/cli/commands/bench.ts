// gpt2-node bench: a quick self-benchmark of prompt processing (pp) and generation (tg) in
// tokens per second, printed like llama-bench's table. For comparisons with llama.cpp and
// node-llama-cpp on the same machine, see bench/ in the repository.
import { basename } from 'node:path';

import { UsageError, type Command } from '../command.js';
import { MODEL_HELP, MODEL_OPTIONS, int, loadOptions, openModel, requireModel } from '../options.js';
import { progressBar } from '../progress.js';
import { onInterrupt } from '../signals.js';

interface Result {
  test: string;
  tokensPerSecond: number;
  stddev: number;
  samples: number[];
}

export const command: Command = {
  name: 'bench',
  synopsis: '-m <model.gguf> [options]',
  summary: 'measure prompt processing and generation speed (tokens/s)',
  help: `Usage: gpt2-node bench -m <model.gguf> [options]

Measures prompt processing (pp: one forward pass over a prompt of random tokens) and generation
(tg: tokens generated one after another, greedy, from a one-token prompt; with --parallel,
that many streams at once, counted together) and prints tokens per second, mean ± standard
deviation over the repetitions. Every repetition uses a new prompt (no KV reuse). A progress
bar shows on stderr when it is a terminal.

Options:
${MODEL_HELP}
  -p, --prompt-tokens <n>     prompt tokens of the pp test (default 512, at most the context size; 0 skips it)
  -n, --gen-tokens <n>        tokens per stream of the tg test (default 128; 0 skips it)
      --parallel <n>          streams of the tg test at once (default 1)
  -r, --repetitions <n>       runs of each test (default 3)
      --batch-size <n>        tokens per forward pass (default 512)
      --no-batch-invariant    decode a lone stream faster; results may then vary with the load
      --json                  print JSON
  -h, --help                  show this help`,
  options: {
    ...MODEL_OPTIONS,
    'prompt-tokens': { type: 'string', short: 'p' },
    'gen-tokens': { type: 'string', short: 'n' },
    parallel: { type: 'string' },
    repetitions: { type: 'string', short: 'r' },
    'batch-size': { type: 'string' },
    'no-batch-invariant': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(values) {
    const modelPath = requireModel(values);
    const parallel = int(values, 'parallel', 1);
    const reps = int(values, 'repetitions', 3);
    const tg = int(values, 'gen-tokens', 128);
    if (parallel < 1) throw new UsageError(`--parallel must be at least 1 but got ${parallel}`);
    if (reps < 1) throw new UsageError(`--repetitions must be at least 1 but got ${reps}`);
    if (tg < 0) throw new UsageError(`--gen-tokens must not be negative but got ${tg}`);
    const loadOpts = { ...loadOptions(values), maxSequences: parallel, batchInvariant: values['no-batch-invariant'] !== true };
    const batchSize = int(values, 'batch-size');
    if (batchSize !== undefined) Object.assign(loadOpts, { batchSize });
    const model = await openModel(modelPath, loadOpts);
    let stopped = false;
    const stopInterrupt = onInterrupt(() => { stopped = true; });
    const bar = progressBar('benchmarking');
    try {
      const info = model.info;
      const pp = int(values, 'prompt-tokens', Math.min(512, info.contextSize));
      if (pp < 0 || pp > info.contextSize) throw new UsageError(`--prompt-tokens must be between 0 and the context size (${info.contextSize}) but got ${pp}`);
      if (tg + 1 > info.contextSize) throw new UsageError(`--gen-tokens must be below the context size (${info.contextSize}) but got ${tg}`);
      let rng = 0x9e3779b9;
      const randomIds = (n: number) => Array.from({ length: n }, () => {
        rng = (Math.imul(rng, 1664525) + 1013904223) >>> 0;
        return rng % (info.vocabSize - 1);
      });
      // warm-up: page the weights in, size the buffers
      await model.complete([info.eosTokenId], { maxTokens: 2, temperature: 0, ignoreEos: true });
      const steps = (pp > 0 ? reps : 0) + (tg > 0 ? reps : 0);
      let done = 0;
      const results: Result[] = [];
      const measure = async (test: string, tokens: number, once: () => Promise<unknown>) => {
        const samples: number[] = [];
        for (let r = 0; r < reps && !stopped; r++) {
          const t0 = process.hrtime.bigint();
          await once();
          samples.push(tokens / (Number(process.hrtime.bigint() - t0) / 1e9));
          bar.update(++done, steps);
        }
        if (samples.length === 0) return;
        const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
        const sd = samples.length > 1 ? Math.sqrt(samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (samples.length - 1)) : 0;
        results.push({ test, tokensPerSecond: mean, stddev: sd, samples });
      };
      if (pp > 0) await measure(`pp${pp}`, pp, () => model.evaluate(randomIds(pp)));
      if (tg > 0) {
        await measure(parallel > 1 ? `tg${tg} x${parallel}` : `tg${tg}`, tg * parallel, () => Promise.all(Array.from({ length: parallel }, () =>
          model.complete(randomIds(1), { maxTokens: tg, temperature: 0, ignoreEos: true }))));
      }
      bar.end();
      const name = info.name || basename(info.path).replace(/\.gguf$/i, '');
      if (values.json) {
        process.stdout.write(JSON.stringify({
          model: name, path: info.path, tensorType: info.tensorType, weightBytes: info.weightBytes, parameters: info.parameterCount,
          threads: info.threads, parallel, batchInvariant: info.batchInvariant, results,
        }) + '\n');
      } else {
        const rows = [['model', 'type', 'size', 'params', 'threads', 'test', 't/s']];
        for (const r of results) {
          rows.push([name, info.tensorType, `${(info.weightBytes / 2 ** 20).toFixed(1)} MiB`, `${(info.parameterCount / 1e6).toFixed(1)}M`,
            String(info.threads), r.test, `${r.tokensPerSecond.toFixed(2)} ± ${r.stddev.toFixed(2)}`]);
        }
        const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
        const right = new Set([2, 3, 4, 6]);
        const line = (row: string[]) => '| ' + row.map((cell, c) => (right.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join(' | ') + ' |\n';
        process.stdout.write(line(rows[0]!));
        process.stdout.write('| ' + widths.map((w, c) => (right.has(c) ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ') + ' |\n');
        for (const row of rows.slice(1)) process.stdout.write(line(row));
      }
      return stopped ? 130 : 0;
    } finally {
      bar.end();
      stopInterrupt();
      await model.dispose();
    }
  },
};
