// The HTTP server's request reading (ours, before any model work): a body's bytes → the JSON
// object (parseJsonBody) → a chat request (readChatRequest) or a completion request
// (readCompletionRequest) → sampling options, messages, prompts. Run under libFuzzer by
// js-fuzz.ts (bash scripts/fuzz.sh server-params <seconds>). The first byte picks the endpoint
// (even: chat, odd: completions); the rest is the body, decoded as the server does (UTF-8, bad
// bytes become U+FFFD).
//
// A finding (thrown, so libFuzzer saves the input): anything but an ApiError 400 (a TypeError
// from a value the checks let through, a RangeError, a stack overflow...), or a request that is
// accepted with a value outside its documented range.
import { ApiError } from '../../lib/server/errors.js';
import { readChatRequest } from '../../lib/server/chat.js';
import { readCompletionRequest, MAX_PROMPTS } from '../../lib/server/completions.js';
import { parseJsonBody } from '../../lib/server/http.js';
import { MAX_N, type Sampling } from '../../lib/server/sampling.js';
import { MAX_STOP_LENGTH } from '../../lib/validate.js';

const VOCAB = 50257;

function fail(what: string): never {
  throw new Error(`accepted out of range: ${what}`);
}

function within(name: string, v: unknown, lo: number, hi: number): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !(v >= lo && v <= hi)) fail(`${name} = ${String(v)}`);
}

function checkSampling(s: Sampling): void {
  const o = s.options;
  within('temperature', o.temperature, 0, 2);
  within('topP', o.topP, Number.MIN_VALUE, 1);
  within('topK', o.topK, 0, VOCAB);
  within('minP', o.minP, 0, 1);
  within('presencePenalty', o.presencePenalty, -2, 2);
  within('frequencyPenalty', o.frequencyPenalty, -2, 2);
  within('repetitionPenalty', o.repetitionPenalty, 0.01, 100);
  within('maxTokens', s.maxTokens, 1, 1_000_000);
  within('n', s.n, 1, MAX_N);
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) fail(`seed = ${s.seed}`);
  for (const [id, bias] of Object.entries(o.logitBias ?? {})) {
    within('logitBias key', Number(id), 0, VOCAB - 1);
    within(`logitBias[${id}]`, bias, -100, 100);
  }
  const stop = o.stop as string[] | undefined;
  if (stop !== undefined && (stop.length > 16 || stop.some((x) => typeof x !== 'string' || x.length === 0 || x.length > MAX_STOP_LENGTH))) fail('stop');
  if (s.includeUsage && !s.stream) fail('stream_options without stream');
}

export function fuzzOne(data: Buffer): void {
  if (data.length === 0) return;
  try {
    const body = parseJsonBody(data.subarray(1).toString('utf8'));
    if ((data[0]! & 1) === 0) {
      const r = readChatRequest(body, VOCAB);
      checkSampling(r.sampling);
      if (r.messages.length === 0) fail('no messages');
      for (const m of r.messages) {
        if (!['system', 'user', 'assistant'].includes(m.role) || typeof m.content !== 'string') fail(`message ${JSON.stringify(m)}`);
      }
      within('topLogprobs', r.topLogprobs, 0, 20);
    } else {
      const r = readCompletionRequest(body, VOCAB);
      checkSampling(r.sampling);
      within('logprobs', r.logprobs, 0, 20);
      if (r.inputs.length < 1 || r.inputs.length > MAX_PROMPTS) fail(`${r.inputs.length} prompts`);
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 400 && e.type === 'invalid_request_error' && e.message !== '') return;
    throw e;
  }
}
