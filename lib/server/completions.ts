// POST /v1/completions in OpenAI's (legacy) completions format: a prompt (text, token ids, or a
// list of either) continued n times each; streamed as text_completion chunks with stream: true.
import type { Model } from '../model.js';
import { checkContext, type ChoiceSpec, completionId, finishReason, type RequestContext, runChoices, usageOf } from './choices.js';
import { invalidParam, toApiError, unsupported } from './errors.js';
import { sendJson } from './http.js';
import { appendCompletionLogprobs, emptyCompletionLogprobs, type CompletionLogprobs } from './logprobs.js';
import { Fields, tokenIds, typeError } from './params.js';
import { MAX_N, readSampling, type Sampling } from './sampling.js';
import { EventStream } from './sse.js';

/** OpenAI's default max_tokens for completions. */
const DEFAULT_MAX_TOKENS = 16;

/** Most prompts in one request (each is tokenized before it is generated from). */
export const MAX_PROMPTS = 1024;

/** One prompt as the request gives it (a string or token ids, unchecked past the top level), and its name in messages. */
interface PromptSource {
  value: unknown;
  param: string;
}

interface PromptInput {
  ids: Uint32Array;
  /** The prompt as text (for echo). */
  text: string;
}

export async function completions(ctx: RequestContext, body: Record<string, unknown>): Promise<void> {
  const { model, pieces } = ctx;
  const { vocabSize, contextSize } = model.info;
  const { sampling: s, echo, logprobs, inputs } = readCompletionRequest(body, vocabSize);
  // count before tokenizing: a request the queue would refuse costs no tokenizer work
  ctx.checkAdmit(inputs.length * s.n);
  const prompts = await readPrompts(model, inputs);
  for (const p of prompts) checkContext(contextSize, p.ids.length, s.maxTokens, 'prompt');

  const specs: ChoiceSpec[] = [];
  prompts.forEach((p, pi) => {
    for (let i = 0; i < s.n; i++) {
      specs.push({
        index: pi * s.n + i,
        prompt: p.ids,
        options: {
          ...s.options,
          maxTokens: s.maxTokens ?? DEFAULT_MAX_TOKENS,
          seed: (s.seed + i) % Number.MAX_SAFE_INTEGER,
          logprobs: logprobs === undefined ? undefined : logprobs === 0 ? true : logprobs,
        },
      });
    }
  });
  const release = ctx.admit(specs.length);
  const promptTokens = prompts.reduce((n, p) => n + p.ids.length, 0);
  ctx.metrics.promptTokens += promptTokens;
  const id = completionId('cmpl');
  const created = Math.floor(Date.now() / 1000);
  const echoOf = (spec: ChoiceSpec) => (echo ? prompts[Math.floor(spec.index / s.n)]!.text : '');

  if (!s.stream) {
    const texts = specs.map(echoOf);
    const lps: (CompletionLogprobs | null)[] = specs.map(() => (logprobs === undefined ? null : emptyCompletionLogprobs()));
    const ends = await runChoices(ctx, specs, release, (spec, chunk, textStart) => {
      const lp = lps[spec.index];
      if (lp && chunk.logprobs) appendCompletionLogprobs(lp, chunk.logprobs, pieces, textStart, chunk.text.length);
      texts[spec.index] += chunk.text;
    });
    ctx.signal.throwIfAborted();
    sendJson(ctx.res, 200, {
      id, object: 'text_completion', created, model: ctx.modelId,
      choices: specs.map((spec, i) => ({ text: texts[i], index: spec.index, logprobs: lps[i], finish_reason: finishReason(ends[i]!) })),
      usage: usageOf(promptTokens, ends),
    });
    return;
  }

  const stream = new EventStream(ctx.res, ctx.signal, () => { ctx.metrics.stalls++; });
  const base = { id, object: 'text_completion', created, model: ctx.modelId };
  const extra = s.includeUsage ? { usage: null } : {};
  const event = (index: number, text: string, lp: CompletionLogprobs | null, finish: 'stop' | 'length' | null) =>
    ({ ...base, choices: [{ text, index, logprobs: lp, finish_reason: finish }], ...extra });
  try {
    if (echo) for (const spec of specs) await stream.send(event(spec.index, echoOf(spec), null, null));
    const ends = await runChoices(ctx, specs, release, async (spec, chunk, textStart) => {
      let lp: CompletionLogprobs | null = null;
      if (logprobs !== undefined && chunk.logprobs && chunk.logprobs.length > 0) {
        lp = emptyCompletionLogprobs();
        appendCompletionLogprobs(lp, chunk.logprobs, pieces, textStart, chunk.text.length);
      }
      if (chunk.text !== '' || lp) await stream.send(event(spec.index, chunk.text, lp, null));
      if (chunk.finishReason && chunk.finishReason !== 'abort') await stream.send(event(spec.index, '', null, chunk.finishReason));
    });
    ctx.signal.throwIfAborted();
    if (s.includeUsage) await stream.send({ ...base, choices: [], usage: usageOf(promptTokens, ends) });
    stream.done();
  } catch (e) {
    stream.fail(toApiError(e).body());
  }
}

/**
 * A completion request's fields, checked (every type and range; 400 otherwise) up to the prompts,
 * which are listed but not yet tokenized: what the handler needs before it touches the model.
 * Pure, so that the fuzzer (test/fuzz/server-params) runs it.
 */
export function readCompletionRequest(body: Record<string, unknown>, vocabSize: number): { sampling: Sampling; echo: boolean; logprobs: number | undefined; inputs: PromptSource[] } {
  const f = new Fields(body);
  f.string('model');
  f.ignored({ user: 'string', metadata: 'object', store: 'boolean', service_tier: 'string' });
  if (f.string('suffix')) throw unsupported('suffix', "Unsupported parameter: 'suffix' is not supported by this server");
  const echo = f.boolean('echo') ?? false;
  const logprobs = f.integer('logprobs', 0, 20);
  const s = readSampling(f, vocabSize, ['max_tokens']);
  const bestOf = f.integer('best_of', 1, MAX_N);
  if (bestOf !== undefined && bestOf !== s.n) throw unsupported('best_of', "Unsupported parameter: 'best_of' other than n is not supported by this server");
  if (echo && logprobs !== undefined) throw unsupported('echo', "Unsupported parameter: 'echo' together with 'logprobs' is not supported by this server");
  const inputs = promptInputs(f.required('prompt'));
  return { sampling: s, echo, logprobs, inputs };
}

/** `prompt` as a list of prompts (a string or an array of token ids each), with their names in messages; types checked at the top level only. */
function promptInputs(value: unknown): PromptSource[] {
  const expected = 'string, array of strings, array of token ids, or array of arrays of token ids';
  if (typeof value === 'string') return [{ value, param: 'prompt' }];
  if (!Array.isArray(value)) typeError('prompt', expected, value);
  if (value.length === 0) throw invalidParam('prompt', 'Expected at least 1 prompt for prompt but received an empty array');
  if (value.every((x) => typeof x === 'number')) return [{ value, param: 'prompt' }];
  if (!value.every((x) => typeof x === 'string' || Array.isArray(x))) typeError('prompt', expected, value);
  if (value.length > MAX_PROMPTS) throw invalidParam('prompt', `Expected at most ${MAX_PROMPTS} prompts for prompt but received ${value.length}`);
  return value.map((x, i) => ({ value: x, param: `prompt[${i}]` }));
}

async function readPrompts(model: Model, inputs: PromptSource[]): Promise<PromptInput[]> {
  const { vocabSize, eosTokenId } = model.info;
  const one = async (x: unknown, param: string): Promise<PromptInput> => {
    let ids: Uint32Array;
    let text: string;
    if (typeof x === 'string') {
      // as OpenAI's and llama.cpp's servers: <|endoftext|> in a completion prompt is the special token
      ids = await model.tokenizeAsync(x, { allowedSpecial: 'all' });
      text = x;
    } else {
      ids = tokenIds(param, x, vocabSize);
      text = model.detokenize(ids);
    }
    // an empty prompt starts from <|endoftext|> (the model does the same)
    return { ids: ids.length > 0 ? ids : Uint32Array.of(eosTokenId), text };
  };
  return Promise.all(inputs.map((p) => one(p.value, p.param)));
}
