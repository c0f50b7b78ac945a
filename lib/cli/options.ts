// Option parsing shared by the commands: numbers, the model to load, sampling options, stdin.
import { generateRequest, speculationRequest } from '../generate-request.js';
import type { GenerateOptions, LoadModelOptions, Model, SpeculationOptions } from '../model.js';
import { UsageError, type OptionsConfig, type Values } from './command.js';

/** A number option (`--key <x>`), or `fallback` when absent. */
export function num(values: Values, key: string, fallback: number): number;
export function num(values: Values, key: string, fallback?: number): number | undefined;
export function num(values: Values, key: string, fallback?: number): number | undefined {
  return parseNumber(values, key, fallback, false);
}

/** An integer option, or `fallback` when absent. */
export function int(values: Values, key: string, fallback: number): number;
export function int(values: Values, key: string, fallback?: number): number | undefined;
export function int(values: Values, key: string, fallback?: number): number | undefined {
  return parseNumber(values, key, fallback, true);
}

function parseNumber(values: Values, key: string, fallback: number | undefined, integer: boolean): number | undefined {
  const raw = values[key];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${key} expects ${integer ? 'an integer' : 'a number'} but got "${String(raw)}"`);
  }
  return n;
}

/** A string option, or undefined. */
export function str(values: Values, key: string): string | undefined {
  const raw = values[key];
  return typeof raw === 'string' ? raw : undefined;
}

/** A repeatable string option as a list. */
export function list(values: Values, key: string): string[] {
  const raw = values[key];
  return Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
}

export function requireModel(values: Values): string {
  const m = values.model;
  if (typeof m !== 'string' || m === '') throw new UsageError('missing -m <model.gguf>');
  return m;
}

/** Backslash escapes in option values (--stop '\n', --chat-separator '\n\n'): \n \t \r \\ */
export function unescape(text: string): string {
  return text.replace(/\\([ntr\\])/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r', '\\': '\\' })[c]!);
}

export async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/** Runs an API call and turns its validation errors (TypeError, RangeError) into usage errors. */
export async function asUsage<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RangeError || (e instanceof TypeError && !(e as { code?: string }).code)) throw new UsageError(e.message);
    throw e;
  }
}

// ---- the model to load ----

export const MODEL_OPTIONS: OptionsConfig = {
  model: { type: 'string', short: 'm' },
  threads: { type: 'string' },
  'ctx-size': { type: 'string', short: 'c' },
  device: { type: 'string' },
  'gpu-layers': { type: 'string' },
};

export const MODEL_HELP = `  -m, --model <path>          the model: a GGUF file, a Hugging Face model folder or a ggml .bin (required)
      --threads <n>           compute threads (default: half the hardware threads, 1 to 4)
  -c, --ctx-size <n>          positions per sequence (default: the model's context length)
      --device <name>         auto | cpu | cuda | cuda:N | metal | vulkan (default auto: a GPU if there is one)
      --gpu-layers <n>        transformer blocks on the GPU, counted from the last (default all)`;

export function loadOptions(values: Values): LoadModelOptions {
  const o: LoadModelOptions = {};
  const threads = int(values, 'threads');
  const contextSize = int(values, 'ctx-size');
  const device = str(values, 'device');
  const gpuLayers = int(values, 'gpu-layers');
  if (threads !== undefined) o.threads = threads;
  if (contextSize !== undefined) o.contextSize = contextSize;
  if (device !== undefined) o.device = device;
  if (gpuLayers !== undefined) o.gpuLayers = gpuLayers;
  return o;
}

/**
 * Loads the model for a command (the one place the CLI does: where a download progress bar for
 * hub specifiers belongs); a bad load option (RangeError, TypeError) is a usage error.
 */
export async function openModel(path: string, options: LoadModelOptions): Promise<Model> {
  const { loadModel } = await import('../model.js');
  const { isHubSpecifier } = await import('../hub/index.js');
  if (!isHubSpecifier(path)) return asUsage(() => loadModel(path, options));
  // hf:owner/repo: a progress line per downloaded file (on a terminal)
  const { downloadProgressBar } = await import('./download-progress.js');
  const bar = downloadProgressBar();
  try {
    return await asUsage(() => loadModel(path, { ...options, onDownloadProgress: bar.onProgress }));
  } finally {
    bar.end();
  }
}

// ---- speculative decoding (generate, serve) ----

export const SPECULATION_OPTIONS: OptionsConfig = {
  lookup: { type: 'boolean' },
  'draft-model': { type: 'string' },
  'draft-max': { type: 'string' },
  'draft-p-min': { type: 'string' },
};

export const SPECULATION_HELP = `      --lookup                speculative decoding by prompt lookup (guesses copied from the prompt and the output)
      --draft-model <path>    speculative decoding with this smaller model (same vocabulary) guessing ahead
      --draft-max <n>         tokens guessed per step at most (default 8)
      --draft-p-min <x>       --draft-model: stop guessing below this probability (default 0.5)`;

/** The speculation the command line asks for, checked; the draft model is not loaded yet. */
export function speculationArgs(values: Values): { lookup: boolean; draftPath: string | undefined; maxDraft?: number; minConfidence?: number } | undefined {
  const lookup = values.lookup === true;
  const draftPath = str(values, 'draft-model');
  const maxDraft = int(values, 'draft-max');
  const minConfidence = num(values, 'draft-p-min');
  if (!lookup && draftPath === undefined) {
    if (maxDraft !== undefined || minConfidence !== undefined) throw new UsageError('--draft-max and --draft-p-min go with --lookup or --draft-model');
    return undefined;
  }
  if (lookup && draftPath !== undefined) throw new UsageError('--lookup and --draft-model exclude each other: pick one predictor');
  if (minConfidence !== undefined && lookup) throw new UsageError('--draft-p-min goes with --draft-model');
  try {
    speculationRequest({ predictor: lookup ? 'lookup' : 'draft', draft: lookup ? undefined : {}, maxDraft, minConfidence });
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) throw new UsageError(e.message.replace('speculation.maxDraft', '--draft-max').replace('speculation.minConfidence', '--draft-p-min'));
    throw e;
  }
  return { lookup, draftPath, ...(maxDraft !== undefined && { maxDraft }), ...(minConfidence !== undefined && { minConfidence }) };
}

/** Loads the draft model (if any) beside `model` and returns the generate() option. */
export async function openSpeculation(args: ReturnType<typeof speculationArgs>, load: LoadModelOptions): Promise<{ speculation: SpeculationOptions | undefined; draft: Model | undefined }> {
  if (!args) return { speculation: undefined, draft: undefined };
  const tuning = { ...(args.maxDraft !== undefined && { maxDraft: args.maxDraft }), ...(args.minConfidence !== undefined && { minConfidence: args.minConfidence }) };
  if (args.lookup) return { speculation: { predictor: 'lookup', ...tuning }, draft: undefined };
  const draft = await openModel(args.draftPath!, load);
  return { speculation: { predictor: 'draft', draft, ...tuning }, draft };
}

// ---- sampling (generate, chat) ----

export const SAMPLING_OPTIONS: OptionsConfig = {
  'max-tokens': { type: 'string', short: 'n' },
  temperature: { type: 'string', short: 't' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  seed: { type: 'string', short: 's' },
  'repeat-penalty': { type: 'string' },
  'presence-penalty': { type: 'string' },
  'frequency-penalty': { type: 'string' },
  'repeat-last-n': { type: 'string' },
  'logit-bias': { type: 'string', multiple: true },
  stop: { type: 'string', multiple: true },
  'ignore-eos': { type: 'boolean' },
};

export function samplingHelp(maxTokens: number): string {
  return `  -n, --max-tokens <n>        tokens to generate at most (default ${maxTokens})
  -t, --temperature <x>       0 is greedy (default 0.8)
      --top-k <n>             keep the k most likely tokens (default 40; 0 = off)
      --top-p <x>             nucleus sampling: keep the most likely tokens up to probability x (default 0.95)
      --min-p <x>             drop tokens below x times the best one's probability (default 0)
  -s, --seed <n>              sampler seed (default: random)
      --repeat-penalty <x>    > 1 discourages tokens seen in the last --repeat-last-n tokens (default 1 = off)
      --presence-penalty <x>  subtracted once from every seen token's logit (default 0)
      --frequency-penalty <x> subtracted per occurrence of a seen token (default 0)
      --repeat-last-n <n>     tokens the penalties look back over, prompt included (default 64)
      --logit-bias <id=bias>  add bias to a token's logit (-inf bans it); repeatable
      --stop <text>           end before this text (\\n for a newline); repeatable
      --ignore-eos            keep going after <|endoftext|>`;
}

export function samplingOptions(values: Values, maxTokens: number): GenerateOptions {
  const o: GenerateOptions = {
    maxTokens: int(values, 'max-tokens', maxTokens),
    temperature: num(values, 'temperature', 0.8),
    topK: int(values, 'top-k', 40),
    topP: num(values, 'top-p', 0.95),
    minP: num(values, 'min-p', 0),
    seed: int(values, 'seed', Math.floor(Math.random() * 2 ** 31)),
    repetitionPenalty: num(values, 'repeat-penalty', 1),
    presencePenalty: num(values, 'presence-penalty', 0),
    frequencyPenalty: num(values, 'frequency-penalty', 0),
    ignoreEos: values['ignore-eos'] === true,
  };
  const window = int(values, 'repeat-last-n');
  if (window !== undefined) o.penaltyWindow = window;
  const bias = list(values, 'logit-bias');
  if (bias.length > 0) {
    const map = new Map<number, number>();
    for (const entry of bias) {
      const m = /^(\d+)=(-?(?:inf|infinity|\d+(?:\.\d*)?|\.\d+)(?:e-?\d+)?)$/i.exec(entry.trim());
      if (!m) throw new UsageError(`--logit-bias expects <token id>=<bias> (e.g. 50256=-inf) but got "${entry}"`);
      const value = /^-?inf/i.test(m[2]!) ? (m[2]!.startsWith('-') ? -Infinity : Infinity) : Number(m[2]);
      map.set(Number(m[1]), value);
    }
    o.logitBias = map;
  }
  const stop = list(values, 'stop').map(unescape);
  if (stop.length > 0) o.stop = stop;
  return o;
}

/**
 * generate()'s checks, run before a model is loaded so that a mistake in the command line is a
 * usage error (exit code 2). The bounds that need the model (topK and logit-bias ids up to the
 * vocabulary, a chat reply up to the context) are checked again once it is.
 */
export function checkSampling(o: GenerateOptions): void {
  try {
    generateRequest(o, 2 ** 32 - 1);
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
}
