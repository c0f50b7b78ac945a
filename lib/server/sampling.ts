// The request fields both endpoints share (sampling, n, seed, stop, streaming), read into the
// model's GenerateOptions. OpenAI's names and ranges; llama.cpp's server names for what OpenAI
// lacks (top_k, min_p, repeat_penalty, repeat_last_n, ignore_eos).
import type { GenerateOptions } from '../model.js';
import { MAX_STOP_LENGTH } from '../validate.js';
import { invalidParam, unsupported } from './errors.js';
import { Fields, typeError } from './params.js';

export interface Sampling {
  /** Without seed, maxTokens, logprobs and signal: those are per choice or per endpoint. */
  options: GenerateOptions;
  /** Explicit max_tokens (or max_completion_tokens), if any. */
  maxTokens: number | undefined;
  n: number;
  /** The request's seed, or a random one. Choice i uses seed + i. */
  seed: number;
  stream: boolean;
  includeUsage: boolean;
}

/** Upper bound of n (OpenAI's). */
export const MAX_N = 128;

export function readSampling(f: Fields, vocabSize: number, maxTokensNames: readonly string[]): Sampling {
  let maxTokens: number | undefined;
  for (const name of maxTokensNames) maxTokens ??= f.integer(name, 1, 1_000_000);
  const options: GenerateOptions = {
    temperature: f.number('temperature', 0, 2),
    topP: f.number('top_p', 0, 1),
    topK: f.integer('top_k', 0, vocabSize),
    minP: f.number('min_p', 0, 1),
    presencePenalty: f.number('presence_penalty', -2, 2),
    frequencyPenalty: f.number('frequency_penalty', -2, 2),
    repetitionPenalty: f.number('repeat_penalty', 0.01, 100),
    penaltyWindow: f.integer('repeat_last_n', 0, 1 << 20),
    ignoreEos: f.boolean('ignore_eos'),
    logitBias: logitBias(f, vocabSize),
    stop: stop(f),
  };
  // top_p 0 means "only the most likely token"; the sampler wants p > 0 for that
  if (options.topP === 0) options.topP = Number.MIN_VALUE;
  for (const key of Object.keys(options) as (keyof GenerateOptions)[]) if (options[key] === undefined) delete options[key];

  const stream = f.boolean('stream') ?? false;
  const streamOptions = f.object('stream_options');
  let includeUsage = false;
  if (streamOptions) {
    if (!stream) throw invalidParam('stream_options', 'stream_options is only allowed when stream is true');
    const u = streamOptions.include_usage;
    if (u !== undefined && u !== null && typeof u !== 'boolean') typeError('stream_options.include_usage', 'boolean', u);
    includeUsage = u === true;
  }
  return {
    options,
    maxTokens,
    n: f.integer('n', 1, MAX_N) ?? 1,
    seed: f.integer('seed', 0, Number.MAX_SAFE_INTEGER) ?? Math.floor(Math.random() * 2 ** 48),
    stream,
    includeUsage,
  };
}

function logitBias(f: Fields, vocabSize: number): Record<number, number> | undefined {
  const o = f.object('logit_bias');
  if (!o) return undefined;
  const out: Record<number, number> = {};
  for (const [key, bias] of Object.entries(o)) {
    const param = `logit_bias.${key}`;
    if (!/^\d+$/.test(key) || Number(key) >= vocabSize) {
      throw invalidParam('logit_bias', `Expected token ids between 0 and ${vocabSize - 1} as keys of logit_bias but received ${JSON.stringify(key)}`);
    }
    if (typeof bias !== 'number') typeError(param, 'number', bias);
    if (bias < -100 || bias > 100) throw invalidParam(param, `Expected number between -100 and 100 for ${param} but received ${bias}`);
    out[Number(key)] = bias;
  }
  return out;
}

function stop(f: Fields): string[] | undefined {
  const value = f.body.stop;
  if (value === undefined || value === null) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) typeError('stop', 'string or array of strings', value);
  if (list.length > 16) throw invalidParam('stop', `Expected at most 16 stop strings but received ${list.length}`);
  if (list.some((x) => x === '')) throw invalidParam('stop', 'Expected non-empty strings for stop but received ""');
  const long = list.find((x) => x.length > MAX_STOP_LENGTH);
  if (long !== undefined) {
    throw invalidParam('stop', `Expected stop strings of at most ${MAX_STOP_LENGTH} characters but received one of ${long.length}`);
  }
  return list.length > 0 ? list : undefined;
}

/** OpenAI fields for features this server does not have: reject them unless they ask for nothing. */
export function rejectUnsupported(f: Fields, names: readonly string[]): void {
  for (const name of names) {
    const value = f.body[name];
    if (value === undefined || value === null) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    throw unsupported(name, `Unsupported parameter: '${name}' is not supported by this server`);
  }
}
