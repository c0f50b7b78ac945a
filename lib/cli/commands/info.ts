// gpt2-node info: a model's architecture and sizes.
import type { Command } from '../command.js';
import { openModel, requireModel } from '../options.js';

export const command: Command = {
  name: 'info',
  synopsis: '-m <model.gguf> [--json]',
  summary: "print the model's architecture and sizes",
  help: `Usage: gpt2-node info -m <model.gguf> [--json]

Prints the model's architecture, sizes and tensor type.

Options:
  -m, --model <path>   GGUF model file (required)
      --json           print JSON
  -h, --help           show this help`,
  options: { model: { type: 'string', short: 'm' }, json: { type: 'boolean' } },
  async run(values) {
    const model = await openModel(requireModel(values), { maxSequences: 1, contextSize: 16 });
    try {
      const { contextSize, maxSequences, batchSize, threads, kvCacheBytes, computeBufferBytes, ...info } = model.info;
      void contextSize; void maxSequences; void batchSize; void threads; void kvCacheBytes; void computeBufferBytes;
      if (values.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      const rows: [string, string][] = [
        ['file', info.path], ['name', info.name || '(none)'], ['architecture', info.architecture],
        ['parameters', `${(info.parameterCount / 1e6).toFixed(1)}M`], ['tensor type', info.tensorType],
        ['weights', mib(info.weightBytes)], ['layers', String(info.layers)], ['embedding size', String(info.embeddingSize)],
        ['heads', String(info.heads)], ['feed-forward size', String(info.feedForwardSize)],
        ['context length', String(info.contextLength)], ['vocabulary', String(info.vocabSize)],
        ['LM head', info.tiedOutput ? 'tied to token embedding' : 'separate output.weight'],
      ];
      const w = Math.max(...rows.map(([k]) => k.length));
      for (const [k, val] of rows) process.stdout.write(`${k.padEnd(w)}  ${val}\n`);
    } finally {
      await model.dispose();
    }
  },
};
