// POST /v1/chat/completions in OpenAI's chat format. The messages become one GPT-2 prompt
// through the server's chat format (DialoGPT's by default, see chat-format.ts); the reply is
// generated n times; streamed as chat.completion.chunk events with stream: true.
import type { ChatMessage, ChatRole } from './chat-format.js';
import { checkContext, type ChoiceSpec, completionId, finishReason, type RequestContext, runChoices, usageOf } from './choices.js';
import { invalidParam, missingParam, toApiError, unsupported } from './errors.js';
import { sendJson } from './http.js';
import { chatLogprobs, type ChatTokenLogprob } from './logprobs.js';
import { Fields, typeError } from './params.js';
import { readSampling, rejectUnsupported, type Sampling } from './sampling.js';
import { EventStream } from './sse.js';

const ROLES: Readonly<Record<string, ChatRole>> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

export async function chatCompletions(ctx: RequestContext, body: Record<string, unknown>): Promise<void> {
  const { model, pieces } = ctx;
  const { vocabSize, contextSize } = model.info;
  const { sampling: s, messages, logprobs, topLogprobs } = readChatRequest(body, vocabSize);
  ctx.checkAdmit(s.n);   // before tokenizing, as completions
  const prompt = await ctx.chat.prompt(messages);
  checkContext(contextSize, prompt.length, s.maxTokens, 'messages');

  const stop = [...(s.options.stop as string[] | undefined ?? []), ...ctx.chat.stop];
  const specs: ChoiceSpec[] = [];
  for (let i = 0; i < s.n; i++) {
    specs.push({
      index: i,
      prompt,
      options: {
        ...s.options,
        stop: stop.length > 0 ? stop.slice(0, 16) : undefined,
        // without max_tokens the reply may fill the context
        maxTokens: s.maxTokens ?? contextSize - prompt.length,
        seed: (s.seed + i) % Number.MAX_SAFE_INTEGER,
        logprobs: logprobs ? (topLogprobs || true) : undefined,
      },
    });
  }
  const release = ctx.admit(specs.length);
  ctx.metrics.promptTokens += prompt.length;
  const id = completionId('chatcmpl');
  const created = Math.floor(Date.now() / 1000);

  if (!s.stream) {
    const texts = specs.map(() => '');
    const lps: (ChatTokenLogprob[] | null)[] = specs.map(() => (logprobs ? [] : null));
    const ends = await runChoices(ctx, specs, release, (spec, chunk) => {
      texts[spec.index] += chunk.text;
      if (chunk.logprobs) lps[spec.index]?.push(...chatLogprobs(chunk.logprobs, pieces));
    });
    ctx.signal.throwIfAborted();
    sendJson(ctx.res, 200, {
      id, object: 'chat.completion', created, model: ctx.modelId,
      choices: specs.map((spec, i) => ({
        index: spec.index,
        message: { role: 'assistant', content: texts[i], refusal: null },
        logprobs: lps[i] ? { content: lps[i], refusal: null } : null,
        finish_reason: finishReason(ends[i]!),
      })),
      usage: usageOf(prompt.length, ends),
    });
    return;
  }

  const stream = new EventStream(ctx.res, ctx.signal, () => { ctx.metrics.stalls++; });
  const base = { id, object: 'chat.completion.chunk', created, model: ctx.modelId };
  const extra = s.includeUsage ? { usage: null } : {};
  const event = (index: number, delta: Record<string, unknown>, lp: ChatTokenLogprob[] | null, finish: 'stop' | 'length' | null) =>
    ({ ...base, choices: [{ index, delta, logprobs: lp ? { content: lp, refusal: null } : null, finish_reason: finish }], ...extra });
  try {
    for (const spec of specs) await stream.send(event(spec.index, { role: 'assistant', content: '' }, null, null));
    const ends = await runChoices(ctx, specs, release, async (spec, chunk) => {
      const lp = logprobs && chunk.logprobs && chunk.logprobs.length > 0 ? chatLogprobs(chunk.logprobs, pieces) : null;
      if (chunk.text !== '' || lp) await stream.send(event(spec.index, { content: chunk.text }, lp, null));
      if (chunk.finishReason && chunk.finishReason !== 'abort') await stream.send(event(spec.index, {}, null, chunk.finishReason));
    });
    ctx.signal.throwIfAborted();
    if (s.includeUsage) await stream.send({ ...base, choices: [], usage: usageOf(prompt.length, ends) });
    stream.done();
  } catch (e) {
    stream.fail(toApiError(e).body());
  }
}

/**
 * A chat request's fields, checked (every type and range; 400 otherwise): what the handler
 * needs before it touches the model. Pure, so that the fuzzer (test/fuzz/server-params) runs it.
 */
export function readChatRequest(body: Record<string, unknown>, vocabSize: number): { sampling: Sampling; messages: ChatMessage[]; logprobs: boolean; topLogprobs: number | undefined } {
  const f = new Fields(body);
  f.string('model');
  f.ignored({
    user: 'string', metadata: 'object', store: 'boolean', service_tier: 'string', parallel_tool_calls: 'boolean',
    modalities: 'array', reasoning_effort: 'string', prompt_cache_key: 'string', safety_identifier: 'string', verbosity: 'string',
  });
  rejectUnsupported(f, ['tools', 'functions', 'audio', 'prediction', 'web_search_options']);
  for (const name of ['tool_choice', 'function_call']) {
    const value = f.body[name];
    if (value !== undefined && value !== null && value !== 'none' && value !== 'auto') {
      throw unsupported(name, `Unsupported parameter: '${name}' is not supported by this server`);
    }
  }
  const format = f.object('response_format');
  if (format && format.type !== 'text') {
    throw unsupported('response_format', `Unsupported value: response_format of type ${JSON.stringify(format.type)} is not supported by this server; only "text" is`);
  }
  const logprobs = f.boolean('logprobs') ?? false;
  const topLogprobs = f.integer('top_logprobs', 0, 20);
  if (topLogprobs !== undefined && !logprobs) throw invalidParam('top_logprobs', 'top_logprobs requires logprobs to be true');
  const s = readSampling(f, vocabSize, ['max_completion_tokens', 'max_tokens']);
  const messages = readMessages(f.required('messages'));
  return { sampling: s, messages, logprobs, topLogprobs };
}

function readMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value)) typeError('messages', 'array of messages', value);
  if (value.length === 0) throw invalidParam('messages', 'Expected at least 1 message for messages but received an empty array');
  return value.map((m, i): ChatMessage => {
    const param = `messages[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) typeError(param, 'object', m);
    const { role, content, name } = m as Record<string, unknown>;
    if (role === undefined || role === null) throw missingParam(`${param}.role`);
    if (typeof role !== 'string') typeError(`${param}.role`, 'string', role);
    const mapped = ROLES[role];
    if (!mapped) {
      throw invalidParam(`${param}.role`, `Expected one of system, developer, user, assistant for ${param}.role but received ${JSON.stringify(role)}`);
    }
    if (name !== undefined && name !== null && typeof name !== 'string') typeError(`${param}.name`, 'string', name);
    return { role: mapped, content: messageContent(content, `${param}.content`, mapped) };
  });
}

function messageContent(content: unknown, param: string, role: ChatRole): string {
  if (typeof content === 'string') return content;
  // an assistant turn that only called tools has no content
  if ((content === null || content === undefined) && role === 'assistant') return '';
  if (content === undefined) throw missingParam(param);
  if (!Array.isArray(content)) typeError(param, 'string or array of content parts', content);
  return content.map((part, j) => {
    const p = `${param}[${j}]`;
    if (part === null || typeof part !== 'object' || Array.isArray(part)) typeError(p, 'object', part);
    const { type, text } = part as Record<string, unknown>;
    if (type !== 'text') {
      if (typeof type !== 'string') typeError(`${p}.type`, 'string', type);
      throw unsupported(`${p}.type`, `Unsupported value: content parts of type ${JSON.stringify(type)} are not supported by this server; only "text" is`);
    }
    if (typeof text !== 'string') typeError(`${p}.text`, 'string', text);
    return text;
  }).join('');
}
