// gpt2-node generate: stream a continuation of a prompt to stdout (or one JSON result).
import { EXIT_INTERRUPTED, type Command } from '../command.js';
import { MODEL_HELP, MODEL_OPTIONS, SAMPLING_OPTIONS, SPECULATION_HELP, SPECULATION_OPTIONS, asUsage, checkSampling, int, loadOptions, openModel, openSpeculation, readStdin, requireModel, samplingHelp, samplingOptions, speculationArgs } from '../options.js';
import { onInterrupt } from '../signals.js';
import type { Model } from '../../model.js';

export const command: Command = {
  name: 'generate',
  synopsis: '-m <model.gguf> [options] [prompt]',
  summary: 'stream a continuation of the prompt (or of stdin)',
  help: `Usage: gpt2-node generate -m <model.gguf> [options] [prompt]

Streams the prompt and its continuation to stdout. Without a prompt argument the prompt is read
from stdin. Ctrl-C stops the generation (what was generated stays printed; exit code 130).

Options:
${MODEL_HELP}
${samplingHelp(128)}
${SPECULATION_HELP}
      --logprobs <n>          with --json: each token's log-probability and its n best alternatives (0 to 20)
      --truncate              drop the beginning of a prompt longer than the context instead of failing
      --json                  print one JSON object (text, tokens, finishReason, usage[, logprobs]) instead of streaming
  -h, --help                  show this help`,
  options: {
    ...MODEL_OPTIONS,
    ...SAMPLING_OPTIONS,
    ...SPECULATION_OPTIONS,
    logprobs: { type: 'string' },
    truncate: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(values, positionals) {
    const modelPath = requireModel(values);
    const options = samplingOptions(values, 128);
    const logprobs = int(values, 'logprobs');
    if (logprobs !== undefined) options.logprobs = logprobs;
    if (values.truncate) options.truncate = 'start';
    checkSampling(options);   // before the model loads: a bad value is a command-line mistake
    const specArgs = speculationArgs(values);
    const loadOpts = loadOptions(values);
    const prompt = positionals.length > 0 ? positionals.join(' ') : process.stdin.isTTY ? '' : await readStdin();
    const model = await openModel(modelPath, loadOpts);
    let draft: Model | undefined;
    try {
      ({ speculation: options.speculation, draft } = await openSpeculation(specArgs, loadOpts));
    } catch (e) {
      await model.dispose();
      throw e;
    }
    const controller = new AbortController();
    const stopInterrupt = onInterrupt(() => controller.abort());
    try {
      if (values.json) {
        const r = await asUsage(() => model.complete(prompt, { ...options, signal: controller.signal }));
        const out: Record<string, unknown> = { text: r.text, tokens: Array.from(r.tokens), finishReason: r.finishReason, usage: r.usage };
        if (r.logprobs) out.logprobs = r.logprobs;
        process.stdout.write(JSON.stringify(out) + '\n');
        return r.finishReason === 'abort' ? EXIT_INTERRUPTED : 0;
      }
      const generation = await asUsage(() => model.generate(prompt, { ...options, signal: controller.signal }));
      process.stdout.write(prompt);
      let finish = 'stop';
      for await (const chunk of generation) {
        if (chunk.text) process.stdout.write(chunk.text);
        if (chunk.finishReason) finish = chunk.finishReason;
      }
      process.stdout.write('\n');
      return finish === 'abort' ? EXIT_INTERRUPTED : 0;
    } finally {
      stopInterrupt();
      await model.dispose();
      await draft?.dispose();
    }
  },
};
