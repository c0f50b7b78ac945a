// gpt2-node quantize: convert a model's weights to another ggml type, with a progress bar.
import { UsageError, type Command } from '../command.js';
import { runFileJob } from '../file-job.js';

export const command: Command = {
  name: 'quantize',
  synopsis: '<in.gguf> <out.gguf> <type>',
  summary: 'convert the weights to another type (q8_0, q4_K, ...)',
  help: `Usage: gpt2-node quantize <in.gguf> <out.gguf> <type>

Writes out.gguf with every 2-D weight of in.gguf converted to <type>; norms and biases stay f32.
Types: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K.
A progress bar shows on stderr when it is a terminal; Ctrl-C aborts and leaves no output file.

Options:
  -h, --help   show this help`,
  options: {},
  async run(_values, positionals) {
    if (positionals.length !== 3) throw new UsageError('expects <in.gguf> <out.gguf> <type>');
    const { quantize } = await import('../../quantize.js');
    const [input, output, type] = positionals as [string, string, string];
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    return runFileJob('quantize', 'quantizing', (c) => quantize(input, output, { type: type as 'q8_0', ...c }), (r, seconds) =>
      `wrote ${output}: ${r.converted} tensors as ${type}${r.kept ? `, ${r.kept} kept (rows not a multiple of the block size)` : ''}, ` +
      `${mib(r.bytesIn)} → ${mib(r.bytesOut)} in ${seconds} s`);
  },
};
