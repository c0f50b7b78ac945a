// gpt2-node chat: an interactive multi-turn conversation (a model session) in a terminal, or
// over piped stdin: each line is a turn, each reply is printed as it is generated.
import { createInterface } from 'node:readline';

import { UsageError, type Command } from '../command.js';
import { MODEL_HELP, MODEL_OPTIONS, SAMPLING_OPTIONS, asUsage, loadOptions, openModel, requireModel, samplingHelp, samplingOptions, checkSampling, str, unescape } from '../options.js';
import { onInterrupt } from '../signals.js';

export const command: Command = {
  name: 'chat',
  synopsis: '-m <model.gguf> [options]',
  summary: 'talk with the model, turn by turn (stdin lines are your turns)',
  help: `Usage: gpt2-node chat -m <model.gguf> [options]

A multi-turn conversation. Each line you type (or each line of piped stdin) is a turn; the
model's reply streams to stdout. GPT-2 has no chat template: turns are joined DialoGPT's way,
each ending with <|endoftext|> (see --separator). Earlier turns are kept in the KV cache; when
the conversation outgrows the context, the oldest turns are dropped.

  /reset   forget the conversation        /exit   leave (as do Ctrl-D and Ctrl-C at the prompt)
  Ctrl-C while the model replies stops that reply.

Options:
${MODEL_HELP}
${samplingHelp(128).replace('tokens to generate at most', 'tokens per reply at most')}
      --separator <text>      text that ends every turn (default <|endoftext|>; \\n for a newline)
  -h, --help                  show this help`,
  options: { ...MODEL_OPTIONS, ...SAMPLING_OPTIONS, separator: { type: 'string' } },
  async run(values) {
    const modelPath = requireModel(values);
    const options = samplingOptions(values, 128);
    checkSampling(options);   // before the model loads: a bad value is a command-line mistake
    const separatorText = str(values, 'separator');
    if (separatorText === '') throw new UsageError('--separator must not be empty');
    const loadOpts = loadOptions(values);
    const model = await openModel(modelPath, loadOpts);
    const tty = process.stdin.isTTY === true;
    const rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, prompt: '> ' });
    let reply: AbortController | undefined;
    // Ctrl-C: stops the reply being generated, or at the prompt ends the chat. A terminal's
    // Ctrl-C reaches readline (raw mode); a signal from elsewhere reaches the process.
    const interrupt = () => {
      if (reply) reply.abort();
      else rl.close();
    };
    rl.on('SIGINT', interrupt);
    const stopInterrupt = onInterrupt(interrupt);
    try {
      let session;
      if (separatorText === undefined) {
        session = model.createSession();
      } else {
        const text = unescape(separatorText);
        const separator = Array.from(model.tokenize(text, { allowedSpecial: 'all' }));
        session = model.createSession({ turnSeparator: separator });
        // a reply ends where the model starts the next turn
        if (text !== '<|endoftext|>') options.stop = [...(options.stop ?? []), text.replaceAll('<|endoftext|>', '')].filter((s) => s !== '');
      }
      if (tty) {
        process.stdout.write('Chatting with the model. /reset forgets the conversation, /exit or Ctrl-D leaves.\n');
        rl.prompt();
      }
      for await (const line of rl) {
        const text = line.trim();
        if (text === '/exit' || text === '/quit') break;
        if (text === '/reset') {
          session.reset();
          if (tty) process.stdout.write('(conversation forgotten)\n');
        } else if (text !== '') {
          reply = new AbortController();
          try {
            const generation = await asUsage(() => session.generate(line, { ...options, signal: reply!.signal }));
            for await (const chunk of generation) if (chunk.text) process.stdout.write(chunk.text);
          } finally {
            reply = undefined;
          }
          process.stdout.write('\n');
        }
        if (tty) rl.prompt();
      }
      if (tty) process.stdout.write('\n');
    } finally {
      stopInterrupt();
      rl.close();
      await model.dispose();
    }
  },
};
