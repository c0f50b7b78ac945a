// generate()'s options, checked and filled in with their defaults as the native request. Its own
// file (no native import) so that the CLI can check a command line before it loads the addon.
import * as v from './validate.js';

/**
 * @internal generate()'s options checked and filled in as the native request; `vocabSize` bounds
 * topK and the logit-bias ids. The CLI runs it before loading a model, so that a mistake in the
 * command line is a usage error.
 */
export function generateRequest(options: unknown, vocabSize: number) {
  const o = v.object('options', options);
  const maxTokens = v.optionalInteger('maxTokens', o.maxTokens, 1, 1_000_000) ?? 256;
  const truncate = v.optionalOneOf('truncate', o.truncate, ['error', 'start']);
  const request = {
    maxTokens,
    temperature: v.optionalNumber('temperature', o.temperature, 0, 100) ?? 1,
    topK: v.optionalInteger('topK', o.topK, 0, vocabSize) ?? 0,
    topP: v.optionalNumber('topP', o.topP, Number.MIN_VALUE, 1) ?? 1,
    minP: v.optionalNumber('minP', o.minP, 0, 1) ?? 0,
    seed: v.optionalInteger('seed', o.seed, 0, Number.MAX_SAFE_INTEGER) ?? 0,
    ignoreEos: v.optionalBoolean('ignoreEos', o.ignoreEos) ?? false,
    repetitionPenalty: v.optionalNumber('repetitionPenalty', o.repetitionPenalty, 0.01, 100) ?? 1,
    presencePenalty: v.optionalNumber('presencePenalty', o.presencePenalty, -100, 100) ?? 0,
    frequencyPenalty: v.optionalNumber('frequencyPenalty', o.frequencyPenalty, -100, 100) ?? 0,
    penaltyWindow: v.optionalInteger('penaltyWindow', o.penaltyWindow, 0, 1 << 20) ?? 64,
    logitBias: v.optionalLogitBias('logitBias', o.logitBias, vocabSize),
    stop: v.optionalStopStrings('stop', o.stop, 16),
    logprobs: o.logprobs === undefined || o.logprobs === false ? -1 : o.logprobs === true ? 0 : v.integer('logprobs', o.logprobs, 0, 20),
    highWaterMark: v.optionalInteger('highWaterMark', o.highWaterMark, 1, 1 << 20) ?? 16,
    signal: v.optionalSignal('signal', o.signal),
    speculation: o.speculation === undefined ? undefined : speculationRequest(o.speculation),
  };
  return { request, truncate };
}

/**
 * @internal The `speculation` option checked and filled in; `draft` is passed on unchecked (the
 * Model turns it into its native handle, this file imports no native code).
 */
export function speculationRequest(options: unknown) {
  const o = v.object('speculation', options);
  const predictor = v.oneOf('speculation.predictor', o.predictor, ['lookup', 'draft']);
  if (predictor === 'draft' && (typeof o.draft !== 'object' || o.draft === null)) {
    throw new TypeError(`Expected a loaded Model for speculation.draft but received ${v.describe(o.draft, true)}`);
  }
  if (predictor === 'lookup' && o.draft !== undefined) throw new RangeError("speculation.draft goes with predictor 'draft', not 'lookup'");
  const ngramMin = v.optionalInteger('speculation.ngramMin', o.ngramMin, 1, 64) ?? 2;
  return {
    predictor,
    draft: o.draft,
    maxDraft: v.optionalInteger('speculation.maxDraft', o.maxDraft, 1, 64) ?? 8,
    ngramMin,
    ngramMax: v.optionalInteger('speculation.ngramMax', o.ngramMax, ngramMin, 64) ?? Math.max(ngramMin, 4),
    minConfidence: v.optionalNumber('speculation.minConfidence', o.minConfidence, 0, 1) ?? 0.5,
  };
}
