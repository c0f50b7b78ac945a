// gpt2-node tokenize: text → token ids, with the model's tokenizer (or a tokenizer file).
import type { Command } from '../command.js';
import { readStdin, requireModel } from '../options.js';

export const command: Command = {
  name: 'tokenize',
  synopsis: '-m <model.gguf> [options] [text]',
  summary: 'print the token ids of a text (or of stdin)',
  help: `Usage: gpt2-node tokenize -m <model.gguf | tokenizer> [options] [text]

Prints the token ids of the text, separated by spaces. Without a text argument, stdin is
tokenized exactly as it is (a trailing newline included). -m takes a model or anything
loadTokenizer() reads: a GGUF, a vocab.json (with merges.txt beside it), a tokenizer.json, or a
folder holding them.

Options:
  -m, --model <path>   model or tokenizer file (required)
      --special        recognize special tokens (<|endoftext|>) in the text instead of treating them as plain text
      --pieces         print each token's text beside its id (one "id<TAB>piece" per line; JSON with --json)
      --count          print only the number of tokens
      --json           print JSON: an array of ids (of {id, piece} with --pieces)
  -h, --help           show this help`,
  options: {
    model: { type: 'string', short: 'm' },
    special: { type: 'boolean' },
    pieces: { type: 'boolean' },
    count: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(values, positionals) {
    const path = requireModel(values);
    const text = positionals.length > 0 ? positionals.join(' ') : process.stdin.isTTY ? '' : await readStdin();
    const { loadTokenizer } = await import('../../tokenizer.js');
    const tokenizer = await loadTokenizer(path);
    const ids = Array.from(await tokenizer.tokenizeAsync(text, values.special ? { allowedSpecial: 'all' } : undefined));
    if (values.count) {
      process.stdout.write(`${ids.length}\n`);
      return;
    }
    if (values.pieces) {
      const decoder = new TextDecoder();
      const pieces = ids.map((id) => ({ id, piece: decoder.decode(tokenizer.tokenBytes(id)) }));
      process.stdout.write(values.json ? JSON.stringify(pieces) + '\n' : pieces.map((p) => `${p.id}\t${JSON.stringify(p.piece)}\n`).join(''));
      return;
    }
    process.stdout.write((values.json ? JSON.stringify(ids) : ids.join(' ')) + '\n');
  },
};
