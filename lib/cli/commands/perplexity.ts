// gpt2-node perplexity: the model's perplexity on a text file, with a progress bar.
import { readFile } from 'node:fs/promises';

import { Gpt2Error } from '../../errors.js';
import { EXIT_INTERRUPTED, UsageError, type Command } from '../command.js';
import { MODEL_HELP, MODEL_OPTIONS, asUsage, int, loadOptions, openModel, readStdin, requireModel } from '../options.js';
import { progressBar } from '../progress.js';
import { onInterrupt } from '../signals.js';

export const command: Command = {
  name: 'perplexity',
  synopsis: '-m <model.gguf> <file.txt | ->',
  summary: "the model's perplexity on a text file",
  help: `Usage: gpt2-node perplexity -m <model.gguf> [options] <file.txt | ->

Computes the perplexity of the text (- reads stdin) under the model: exp of the mean negative
log-probability of every token but the first. A text longer than a window is scored in sliding
windows, each token once, with the windows' earlier tokens as its context. A progress bar
shows on stderr when it is a terminal; Ctrl-C stops (exit code 130).

Prints "perplexity <x> (<n> tokens scored, window <w>, stride <s>)", or JSON with --json.

Options:
${MODEL_HELP}
      --window <n>            tokens per window (default: the context size)
      --stride <n>            tokens a window moves by (default: half a window)
      --json                  print {"perplexity", "logprobSum", "tokens", "window", "stride"}
  -h, --help                  show this help`,
  options: { ...MODEL_OPTIONS, window: { type: 'string' }, stride: { type: 'string' }, json: { type: 'boolean' } },
  async run(values, positionals) {
    const modelPath = requireModel(values);
    if (positionals.length !== 1) throw new UsageError('expects one text file (or - for stdin)');
    const loadOpts = loadOptions(values);
    const window = int(values, 'window');
    const stride = int(values, 'stride');
    const text = positionals[0] === '-' ? await readStdin() : await readFile(positionals[0]!, 'utf8');
    const model = await openModel(modelPath, loadOpts);
    const controller = new AbortController();
    const stopInterrupt = onInterrupt(() => controller.abort());
    const bar = progressBar('perplexity');
    try {
      const ids = await model.tokenizeAsync(text);
      const w = window ?? model.info.contextSize;
      const s = stride ?? Math.max(1, Math.floor(w / 2));
      const r = await asUsage(() => model.perplexity(ids, { window: w, stride: s, signal: controller.signal, onProgress: (d, t) => bar.update(d, t) }));
      bar.end();
      if (values.json) process.stdout.write(JSON.stringify({ ...r, window: w, stride: s }) + '\n');
      else process.stdout.write(`perplexity ${r.perplexity.toFixed(4)} (${r.tokens} tokens scored, window ${w}, stride ${s})\n`);
      return 0;
    } catch (e) {
      bar.end();
      if (e instanceof Gpt2Error && e.code === 'ERR_ABORTED') {
        process.stderr.write('gpt2-node perplexity: interrupted\n');
        return EXIT_INTERRUPTED;
      }
      throw e;
    } finally {
      stopInterrupt();
      await model.dispose();
    }
  },
};
