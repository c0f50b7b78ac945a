#!/usr/bin/env node
// The gpt2-node command line: a dispatcher over the command table. Each command lives in
// commands/<name>.ts (its help, options and run); add one by importing it into COMMANDS.
// Errors are one line on stderr, `gpt2-node <command>: message`, and a non-zero exit code:
// 2 for a mistake in the command line, 1 for a failure, 130 for a command stopped by Ctrl-C.
import { parseArgs } from 'node:util';

import { Gpt2Error } from '../errors.js';
import { UsageError, type Command, type Values } from './command.js';
import { command as bench } from './commands/bench.js';
import { command as build } from './commands/build.js';
import { command as chat } from './commands/chat.js';
import { command as convert } from './commands/convert.js';
import { command as createModel } from './commands/create-model.js';
import { command as detokenize } from './commands/detokenize.js';
import { command as generate } from './commands/generate.js';
import { command as info } from './commands/info.js';
import { command as perplexity } from './commands/perplexity.js';
import { command as quantize } from './commands/quantize.js';
import { command as score } from './commands/score.js';
import { command as serve } from './commands/serve.js';
import { command as tokenize } from './commands/tokenize.js';

/** Every command, in the order `gpt2-node --help` lists them. */
export const COMMANDS: readonly Command[] = [
  generate, chat, serve, info, tokenize, detokenize, score, perplexity, bench, convert, quantize, createModel, build,
];

function help(): string {
  const rows = COMMANDS.map((c) => [`${c.name} ${c.synopsis}`, c.summary] as const);
  const width = Math.max(...rows.map(([left]) => left.length));
  return `Usage: gpt2-node <command> [options]

Commands:
${rows.map(([left, summary]) => `  ${left.padEnd(width)}  ${summary}`).join('\n')}

Run gpt2-node <command> --help for the command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return name === undefined ? 1 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`gpt2-node: unknown command "${name}" (try gpt2-node --help)\n`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true,
    });
    if (values.help) {
      process.stdout.write(command.help + '\n');
      return 0;
    }
    return (await command.run(values as Values, positionals)) ?? 0;
  } catch (e) {
    if (e instanceof UsageError || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`gpt2-node ${name}: ${e.message}\n`);
      return 2;
    }
    const code = e instanceof Gpt2Error ? ` [${e.code}]` : '';
    const message = (e instanceof Error ? e.message : String(e)).split('\n', 1)[0];
    process.stderr.write(`gpt2-node ${name}: ${message}${code}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
