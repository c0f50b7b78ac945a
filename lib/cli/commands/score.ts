// gpt2-node score: log-likelihoods of candidate continuations (multiple-choice evaluation, as
// lm-eval's loglikelihood), from a JSON-lines file, with a progress bar.
import { readFile } from 'node:fs/promises';

import { Gpt2Error } from '../../errors.js';
import { EXIT_INTERRUPTED, UsageError, type Command } from '../command.js';
import { MODEL_HELP, MODEL_OPTIONS, asUsage, loadOptions, openModel, readStdin, requireModel, str } from '../options.js';
import { progressBar } from '../progress.js';
import { onInterrupt } from '../signals.js';

interface Item {
  context: string;
  continuations: string[];
  label?: number;
}

export const command: Command = {
  name: 'score',
  synopsis: '-m <model.gguf> <file.jsonl | ->',
  summary: 'log-likelihoods of candidate continuations (multiple choice)',
  help: `Usage: gpt2-node score -m <model.gguf> [options] <file.jsonl | ->
       gpt2-node score -m <model.gguf> [options] --context <text> <continuation>...

Scores each continuation after its context: the sum of its tokens' log-probabilities (as
lm-eval's loglikelihood). Input lines are JSON objects
  {"context": "The capital of France is", "continuations": [" Paris", " Rome"], "label": 0}
("label", optional, is the index of the right continuation). Prints one JSON line per input:
  {"index": 0, "logprobs": [-3.2, -7.9], "tokens": [1, 1], "best": 0, "correct": true}
and, when inputs have labels, "accuracy <x> (<right> of <n>)" on stderr. A progress bar shows
on stderr when it is a terminal; Ctrl-C stops (exit code 130).

Options:
${MODEL_HELP}
      --context <text>        score the continuation arguments after this context instead of a file
  -h, --help                  show this help`,
  options: { ...MODEL_OPTIONS, context: { type: 'string' } },
  async run(values, positionals) {
    const modelPath = requireModel(values);
    const context = str(values, 'context');
    let items: Item[];
    if (context !== undefined) {
      if (positionals.length === 0) throw new UsageError('expects at least one continuation after --context');
      items = [{ context, continuations: positionals }];
    } else {
      if (positionals.length !== 1) throw new UsageError('expects one JSON-lines file (or - for stdin), or --context <text> <continuation>...');
      const source = positionals[0] === '-' ? await readStdin() : await readFile(positionals[0]!, 'utf8');
      items = parseItems(source);
    }
    const loadOpts = loadOptions(values);
    const model = await openModel(modelPath, loadOpts);
    const controller = new AbortController();
    const stopInterrupt = onInterrupt(() => controller.abort());
    const bar = progressBar('scoring');
    let labelled = 0;
    let right = 0;
    try {
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        const results = await asUsage(() => model.score(item.context, item.continuations, { signal: controller.signal }));
        const sums = results.map((r) => r.sum);
        const best = sums.indexOf(Math.max(...sums));
        const out: Record<string, unknown> = { index: i, logprobs: sums, tokens: results.map((r) => r.tokens.length), best };
        if (item.label !== undefined) {
          labelled++;
          if (best === item.label) right++;
          out.correct = best === item.label;
        }
        bar.end();
        process.stdout.write(JSON.stringify(out) + '\n');
        bar.update(i + 1, items.length);
      }
      bar.end();
      if (labelled > 0) process.stderr.write(`accuracy ${(right / labelled).toFixed(4)} (${right} of ${labelled})\n`);
      return 0;
    } catch (e) {
      bar.end();
      if (e instanceof Gpt2Error && e.code === 'ERR_ABORTED') {
        process.stderr.write('gpt2-node score: interrupted\n');
        return EXIT_INTERRUPTED;
      }
      throw e;
    } finally {
      stopInterrupt();
      await model.dispose();
    }
  },
};

function parseItems(source: string): Item[] {
  const items: Item[] = [];
  source.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `line ${i + 1}`;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new UsageError(`${where}: not JSON (${(e as Error).message})`);
    }
    const { context, continuations, label } = (o ?? {}) as Record<string, unknown>;
    if (typeof context !== 'string') throw new UsageError(`${where}: expected a string "context"`);
    if (!Array.isArray(continuations) || continuations.length === 0 || !continuations.every((c) => typeof c === 'string' && c !== '')) {
      throw new UsageError(`${where}: expected "continuations", a non-empty array of non-empty strings`);
    }
    if (label !== undefined && (!Number.isInteger(label) || (label as number) < 0 || (label as number) >= continuations.length)) {
      throw new UsageError(`${where}: expected "label" to be the index of a continuation (0 to ${continuations.length - 1})`);
    }
    items.push({ context, continuations: continuations as string[], ...(label !== undefined ? { label: label as number } : {}) });
  });
  if (items.length === 0) throw new UsageError('no input lines to score');
  return items;
}
