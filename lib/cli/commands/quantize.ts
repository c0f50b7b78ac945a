// gpt2-node quantize: convert a model's weights to another ggml type, with a progress bar.
import { Gpt2Error } from '../../errors.js';
import { EXIT_INTERRUPTED, UsageError, type Command } from '../command.js';
import { progressBar } from '../progress.js';
import { onInterrupt } from '../signals.js';

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
    const ac = new AbortController();
    const stopListening = onInterrupt(() => ac.abort());
    const bar = progressBar('quantizing');
    const started = Date.now();
    try {
      const r = await quantize(input, output, { type: type as 'q8_0', signal: ac.signal, onProgress: (d, t) => bar.update(d, t) });
      bar.end();
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      process.stderr.write(`wrote ${output}: ${r.converted} tensors as ${type}${r.kept ? `, ${r.kept} kept (rows not a multiple of the block size)` : ''}, ` +
        `${mib(r.bytesIn)} → ${mib(r.bytesOut)} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      return 0;
    } catch (e) {
      bar.end();
      if (ac.signal.aborted && e instanceof Gpt2Error && e.code === 'ERR_ABORTED') {
        process.stderr.write('gpt2-node quantize: interrupted, no output written\n');
        return EXIT_INTERRUPTED;
      }
      if (e instanceof RangeError) throw new UsageError(e.message);
      throw e;
    } finally {
      stopListening();
    }
  },
};
