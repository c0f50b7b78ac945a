// Running a request's choices: one generation per choice (n per prompt), all on the shared
// engine at once (continuous batching), each pulling its chunks only as fast as the response
// takes them. The request's signal (client gone, server shutting down) aborts them all, and so
// does a failure of any one of them.
import type { ServerResponse } from 'node:http';

import { nodeCrypto } from '../builtins.js';
import type { Chunk } from '../generation.js';
import type { GenerateOptions, Model, SpeculationOptions } from '../model.js';
import type { ChatTemplate } from './chat-format.js';
import { contextLengthExceeded } from './errors.js';
import type { Pieces } from './logprobs.js';
import type { Metrics } from './metrics.js';

/** What an endpoint handler gets besides the request body. */
export interface RequestContext {
  readonly model: Model;
  readonly modelId: string;
  readonly pieces: Pieces;
  readonly chat: ChatTemplate;
  /** ServerOptions.speculation, for every generation */
  readonly speculation?: SpeculationOptions;
  readonly metrics: Metrics;
  readonly res: ServerResponse;
  /** Aborted when the client disconnects or the server shuts down. */
  readonly signal: AbortSignal;
  /** Throws what admit() would for `sequences` now (400 when they could never fit, 503 when the queue is full), taking nothing. */
  checkAdmit(sequences: number): void;
  /** Takes `sequences` places in the bounded queue (503 when full); the returned function gives one back. */
  admit(sequences: number): () => void;
}

export interface ChoiceSpec {
  index: number;
  prompt: Uint32Array;
  /** Complete per-choice options (seed, maxTokens, logprobs...); the signal is added here. */
  options: GenerateOptions;
}

export interface ChoiceEnd {
  finishReason: 'stop' | 'length' | 'abort';
  completionTokens: number;
  /** with speculation: guesses kept and not */
  acceptedTokens?: number;
  rejectedTokens?: number;
}

/** OpenAI's usage object for choices that ended, with the prediction counts when speculating. */
export function usageOf(promptTokens: number, ends: readonly ChoiceEnd[]) {
  const completion = ends.reduce((n, e) => n + e.completionTokens, 0);
  const usage: Record<string, unknown> = { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
  if (ends.some((e) => e.acceptedTokens !== undefined)) {
    usage.completion_tokens_details = {
      accepted_prediction_tokens: ends.reduce((n, e) => n + (e.acceptedTokens ?? 0), 0),
      rejected_prediction_tokens: ends.reduce((n, e) => n + (e.rejectedTokens ?? 0), 0),
    };
  }
  return usage;
}

/**
 * Runs every choice to its end; `release` (from ctx.admit) is called as each one ends. `onChunk`
 * gets each chunk with the length of the choice's text before it; the next chunk is pulled only
 * when onChunk's promise settles (backpressure). Throws the first failure, after every choice
 * has ended; when the request's signal aborts, the choices end with finishReason 'abort'.
 */
export async function runChoices(ctx: RequestContext, specs: readonly ChoiceSpec[], release: () => void,
  onChunk: (spec: ChoiceSpec, chunk: Chunk, textStart: number) => Promise<void> | void): Promise<ChoiceEnd[]> {
  const failed = new AbortController();
  const signal = AbortSignal.any([ctx.signal, failed.signal]);
  const settled = await Promise.allSettled(specs.map(async (spec): Promise<ChoiceEnd> => {
    try {
      let textStart = 0;
      let end: ChoiceEnd = { finishReason: 'abort', completionTokens: 0 };
      for await (const chunk of ctx.model.generate(spec.prompt, { ...spec.options, speculation: ctx.speculation, signal })) {
        ctx.metrics.completionTokens += chunk.tokens.length;
        await onChunk(spec, chunk, textStart);
        textStart += chunk.text.length;
        if (chunk.finishReason) {
          end = { finishReason: chunk.finishReason, completionTokens: chunk.usage?.completionTokens ?? 0 };
          const u = chunk.usage;
          if (u?.draftedTokens !== undefined) { end.acceptedTokens = u.acceptedTokens!; end.rejectedTokens = u.draftedTokens - u.acceptedTokens!; }
        }
      }
      return end;
    } catch (e) {
      failed.abort();
      throw e;
    } finally {
      release();
    }
  }));
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<ChoiceEnd>).value);
}

/** OpenAI's finish_reason for a choice that ran to its end. */
export function finishReason(end: ChoiceEnd): 'stop' | 'length' {
  return end.finishReason === 'length' ? 'length' : 'stop';
}

/**
 * 400 context_length_exceeded when the prompt leaves no room, or an explicit max_tokens does not
 * fit after it (as OpenAI: prompt + max_tokens must fit in the context).
 */
export function checkContext(contextSize: number, promptTokens: number, maxTokens: number | undefined, what: 'prompt' | 'messages'): void {
  const yours = what === 'prompt' ? 'your prompt has' : 'your messages resulted in';
  if (promptTokens >= contextSize) {
    throw contextLengthExceeded(what, `This model's maximum context length is ${contextSize} tokens, however ${yours} ${promptTokens} tokens ` +
      `(at least 1 must remain for the completion). Please reduce the length of the ${what}.`);
  }
  if (maxTokens !== undefined && promptTokens + maxTokens > contextSize) {
    throw contextLengthExceeded('max_tokens', `This model's maximum context length is ${contextSize} tokens, however you requested ` +
      `${promptTokens + maxTokens} tokens (${promptTokens} in your ${what}; ${maxTokens} for the completion). ` +
      `Please reduce the length of the ${what} or of the completion.`);
  }
}

export function completionId(prefix: 'cmpl' | 'chatcmpl'): string {
  return `${prefix}-${nodeCrypto().randomBytes(12).toString('hex')}`;
}
