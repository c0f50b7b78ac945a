// gpt2-node detokenize: token ids → text.
import { UsageError, type Command } from '../command.js';
import { readStdin, requireModel } from '../options.js';

export const command: Command = {
  name: 'detokenize',
  synopsis: '-m <model.gguf> [ids...]',
  summary: 'print the text of token ids (arguments or stdin)',
  help: `Usage: gpt2-node detokenize -m <model.gguf | tokenizer> [ids...]

Prints the text of the token ids exactly (no newline is added unless stdout is a terminal).
Without id arguments they are read from stdin; ids may be separated by spaces, commas or
newlines, and a JSON array works too (what tokenize --json prints).

Options:
  -m, --model <path>   model or tokenizer file (required)
  -h, --help           show this help`,
  options: { model: { type: 'string', short: 'm' } },
  async run(values, positionals) {
    const path = requireModel(values);
    const source = positionals.length > 0 ? positionals.join(' ') : await readStdin();
    const words = source.replace(/[[\]]/g, ' ').split(/[\s,]+/).filter((w) => w !== '');
    const ids = words.map((w) => {
      if (!/^\d+$/.test(w)) throw new UsageError(`expects token ids (non-negative integers) but got "${w.length > 20 ? w.slice(0, 20) + '…' : w}"`);
      return Number(w);
    });
    const { loadTokenizer } = await import('../../tokenizer.js');
    const tokenizer = await loadTokenizer(path);
    const bad = ids.find((id) => id >= tokenizer.vocabSize);
    if (bad !== undefined) throw new UsageError(`token id ${bad} is not in the vocabulary (0 to ${tokenizer.vocabSize - 1})`);
    process.stdout.write(tokenizer.detokenize(ids) + (process.stdout.isTTY ? '\n' : ''));
  },
};
