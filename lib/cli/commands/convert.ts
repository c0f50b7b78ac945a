// gpt2-node convert: a Hugging Face folder, a legacy ggml .bin or a GGUF to GGUF that llama.cpp
// loads too, with a progress bar; Ctrl-C aborts and leaves no output file.
import { UsageError, type Command } from '../command.js';
import { runFileJob } from '../file-job.js';

export const command: Command = {
  name: 'convert',
  synopsis: '<hf-folder | model.safetensors | legacy.bin | in.gguf> -o <out.gguf> [--type <type>]',
  summary: 'write any supported model as GGUF (llama.cpp loads it too)',
  help: `Usage: gpt2-node convert <input> -o <out.gguf> [--type <type>]

Reads a Hugging Face GPT2LMHeadModel folder (config.json, model.safetensors or its shards, and
tokenizer.json or vocab.json + merges.txt), a single model.safetensors inside such a folder, a
legacy ggml GPT-2 .bin, or a GGUF file; the format is recognized by content. Writes GGUF with
llama.cpp's gpt2 architecture keys, tensor names and tokenizer metadata. The input is checked as
loading it would check it. The output appears only when complete; Ctrl-C aborts.

Options:
  -o, --output <path>   the GGUF file to write (required)
      --type <type>     type of the 2-D weights: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1,
                        q2_K, q3_K, q4_K, q5_K, q6_K (default: each tensor keeps its type)
  -h, --help            show this help`,
  options: {
    output: { type: 'string', short: 'o' },
    type: { type: 'string' },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new UsageError('expects one input (a model folder or file)');
    const output = values['output'];
    if (typeof output !== 'string' || output === '') throw new UsageError('needs -o <out.gguf>');
    const type = values['type'] as string | undefined;
    const { convert } = await import('../../convert.js');
    return runFileJob('convert', 'converting', (c) => convert(positionals[0]!, output, { type: type as 'f16' | undefined, ...c }), (r, seconds) =>
      `wrote ${output}: ${r.tensors} tensors from ${r.formatIn}${type ? `, ${r.converted} as ${type}` : ''}, ${(r.bytesOut / 2 ** 20).toFixed(1)} MiB in ${seconds} s`);
  },
};
