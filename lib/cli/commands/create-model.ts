// gpt2-node create-model: a GPT-2 GGUF with random weights, for trying everything offline.
import { UsageError, type Command } from '../command.js';
import { int, num, str } from '../options.js';

const TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'];

export const command: Command = {
  name: 'create-model',
  synopsis: '-o <out.gguf> [options]',
  summary: 'write a GPT-2 GGUF with random weights and the real vocabulary',
  help: `Usage: gpt2-node create-model -o <out.gguf> [options]

Writes a GPT-2 GGUF with random weights (GPT-2's initialization), real GPT-2 shapes and the
real GPT-2 vocabulary, so everything can be tried offline. Its text is gibberish.

Options:
  -o, --output <path>     file to write (required)
      --shape <name>      tiny | 124M | 355M | 774M | 1.5B (default 124M)
      --type <type>       ${TYPES.join(' | ')} (default f16)
      --seed <n>          weight seed (default 1)
      --init-scale <x>    multiplies the init's standard deviations (default 1; 4 gives livelier text)
  -h, --help              show this help`,
  options: {
    output: { type: 'string', short: 'o' },
    shape: { type: 'string' },
    type: { type: 'string' },
    seed: { type: 'string' },
    'init-scale': { type: 'string' },
  },
  async run(values) {
    const { writeRandomModel, MODEL_SHAPES } = await import('../../testing/random-model.js');
    const out = str(values, 'output');
    if (out === undefined || out === '') throw new UsageError('missing -o <out.gguf>');
    const shape = str(values, 'shape') ?? '124M';
    if (!(shape in MODEL_SHAPES)) throw new UsageError(`--shape must be one of ${Object.keys(MODEL_SHAPES).join(', ')} but got "${shape}"`);
    const type = str(values, 'type') ?? 'f16';
    if (!TYPES.includes(type)) throw new UsageError(`--type must be one of ${TYPES.join(', ')} but got "${type}"`);
    const started = Date.now();
    await writeRandomModel(out, {
      shape: shape as keyof typeof MODEL_SHAPES,
      type: type as 'f32',
      seed: int(values, 'seed', 1),
      initScale: num(values, 'init-scale', 1),
    });
    process.stderr.write(`wrote ${out} (${shape}, ${type}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  },
};
