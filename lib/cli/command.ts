// What a CLI command is: its name, its line in `gpt2-node --help`, its own help text, its
// options (node:util parseArgs) and what it runs. One file per command under commands/; main.ts
// lists them in its command table.
import type { parseArgs } from 'node:util';

export type OptionsConfig = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;

/** Parsed option values: strings, booleans, or string arrays for repeatable options. */
export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  name: string;
  /** Arguments shown after the name in `gpt2-node --help`, e.g. '-m <model.gguf> [prompt]'. */
  synopsis: string;
  /** One line for `gpt2-node --help`. */
  summary: string;
  /** The whole `gpt2-node <name> --help` text. */
  help: string;
  options: OptionsConfig;
  /** Resolves with the exit code (default 0). */
  run(values: Values, positionals: string[]): Promise<number | void>;
}

/** A mistake in the command line: printed as one line, exit code 2. */
export class UsageError extends Error {}

/** Exit code of a command stopped by Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;
