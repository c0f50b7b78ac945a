// Who checks what. lib/ validates every option with one message shape (lib/validate.ts) and is
// what users see; the addon reads typed values only, and keeps the checks that protect the
// process from a caller that bypasses lib/: wrong types (TypeError), an unknown request kind,
// integers that would not fit their C++ fields, non-finite numbers, token ids outside the
// vocabulary (RangeError with the code ERR_OUT_OF_RANGE). Nothing here may abort the process.
// Also: every limit lib/ accepts, the addon accepts too (no drift), and the sampler copes with
// the infinite logit biases lib/ lets through.
import test from 'ava';

import { binding, type NativeModel, type NativeRequest } from '../../lib/binding.js';
import { loadModel, type Model } from '../../lib/index.js';
import * as v from '../../lib/validate.js';
import { testModel } from '../support/models.js';

let path: string;
let model: Model;
let native: NativeModel;

test.before(async () => {
  path = await testModel('tiny', 'f32');
  model = await loadModel(path, { threads: 1, maxSequences: 2 });
  native = await binding.loadModel(path, { threads: 1 }, () => {});
});

test.after.always(async () => {
  await model?.dispose();
  await native?.dispose();
});

const prompt = Uint32Array.of(464, 3290, 318);

/** Submits straight to the binding; a request that is accepted is cancelled at once. */
function submit(request: Record<string, unknown>): number {
  const id = native.submit({ kind: 'generate', prompt, ...request } as unknown as NativeRequest);
  native.cancel(id);
  return id;
}

/** [lo, hi] of an "Expected integer between lo and hi for name" message. */
function bounds(e: unknown): [number, number] {
  const m = /^Expected integer between (-?\d+) and (\d+) for /.exec((e as Error).message);
  if (!m) throw new Error(`not an integer range message: ${(e as Error).message}`);
  return [Number(m[1]), Number(m[2])];
}

function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (e) { return e; }
  throw new Error('did not throw');
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  try { await p; } catch (e) { return e; }
  throw new Error('did not reject');
}

// ---- lib/validate.ts ---------------------------------------------------------------------------

test('oneOf: the value, a TypeError for another type, a RangeError for another string', (t) => {
  t.is(v.oneOf('mode', 'b', ['a', 'b', 'c']), 'b');
  t.is(v.optionalOneOf('mode', undefined, ['a', 'b']), undefined);
  t.throws(() => v.oneOf('mode', 'd', ['a', 'b', 'c']), { instanceOf: RangeError, message: `Expected 'a', 'b' or 'c' for mode but received "d" of type string` });
  t.throws(() => v.oneOf('mode', 1, ['a', 'b']), { instanceOf: TypeError, message: `Expected 'a' or 'b' for mode but received 1 of type number` });
  t.throws(() => v.oneOf('mode', null, ['a']), { instanceOf: TypeError, message: `Expected 'a' for mode but received null` });
  t.throws(() => v.oneOf('mode', 'toString', ['a']), { instanceOf: RangeError });
});

test('through lib: the enum options share oneOf, whatever the option', async (t) => {
  t.throws(() => model.generate('x', { truncate: 5 as never }), { instanceOf: TypeError, message: `Expected 'error' or 'start' for truncate but received 5 of type number` });
  t.throws(() => model.generate('x', { truncate: 'end' as never }), { instanceOf: RangeError, message: `Expected 'error' or 'start' for truncate but received "end" of type string` });
  await t.throwsAsync(loadModel(path, { kvCacheType: 16 as never }), { instanceOf: TypeError, message: `Expected 'f16' or 'f32' for kvCacheType but received 16 of type number` });
  await t.throwsAsync(loadModel(path, { kvCacheType: 'q8' as never }), { instanceOf: RangeError, message: `Expected 'f16' or 'f32' for kvCacheType but received "q8" of type string` });
});

test('through lib: logitBias, stop and device keep their messages', async (t) => {
  t.throws(() => model.generate('x', { logitBias: { 50257: 1 } }), { instanceOf: RangeError, message: 'Expected integer between 0 and 50256 for logitBias key but received 50257' });
  t.throws(() => model.generate('x', { logitBias: new Map([[5, Number.NaN]]) }), { instanceOf: TypeError, message: 'Expected number for logitBias[5] but received NaN of type number' });
  t.throws(() => model.generate('x', { logitBias: null as never }), { instanceOf: TypeError, message: 'Expected object or Map of token id to bias for logitBias but received null' });
  t.throws(() => model.generate('x', { stop: ['a', 2] as never }), { instanceOf: TypeError, message: 'Expected string or array of strings for stop but received an array' });
  t.throws(() => model.generate('x', { stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }), { instanceOf: RangeError, message: 'Expected at most 16 stop strings but received 17' });
  t.throws(() => model.generate('x', { stop: ['ok', 'x'.repeat(257)] }), { instanceOf: RangeError, message: 'Expected stop strings of at most 256 characters but received one of 257' });
  t.throws(() => model.generate('x', { stop: '🙂'.repeat(129) }), { instanceOf: RangeError, message: 'Expected stop strings of at most 256 characters but received one of 258' });
  t.is((await model.complete('x', { maxTokens: 2, ignoreEos: true, stop: ['y'.repeat(256), '🙂'.repeat(128)] })).tokens.length, 2, 'the longest stop strings are taken');
  await t.throwsAsync(loadModel(path, { device: 'cuda:x' }), { instanceOf: RangeError, message: `Expected 'auto', 'cpu', 'cuda', 'cuda:N', 'metal' or 'vulkan' for device but received "cuda:x" of type string` });
});

// ---- the binding: what the addon still checks ---------------------------------------------------

test('binding: an unknown request kind is a RangeError with ERR_OUT_OF_RANGE, never a generation', (t) => {
  const e = t.throws(() => submit({ kind: 'generat' }), { instanceOf: RangeError, message: `Expected 'generate', 'evaluate' or 'score' for kind but received "generat" of type string` });
  t.is((e as RangeError & { code?: string }).code, 'ERR_OUT_OF_RANGE');
  t.throws(() => submit({ kind: undefined }), { instanceOf: TypeError, message: `Expected 'generate', 'evaluate' or 'score' for kind but received undefined of type undefined` });
  t.throws(() => submit({ kind: 1 }), { instanceOf: TypeError, message: `Expected 'generate', 'evaluate' or 'score' for kind but received 1 of type number` });
  t.is(native.stats().queuedSequences + native.stats().activeSequences, 0, 'nothing was queued');
});

test('binding: a wrong type is a TypeError for every request field, and the process lives on', (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ prompt: [1, 2] }, 'Expected Uint32Array for prompt but received an array'],
    [{ prompt: Int32Array.of(1) }, 'Expected Uint32Array for prompt but received an object of type Int32Array'],
    [{ maxTokens: '5' }, 'Expected integer between 1 and 4294967295 for maxTokens but received "5" of type string'],
    [{ topK: null }, 'Expected integer between 0 and 4294967295 for topK but received null'],
    [{ seed: 1n }, 'Expected integer between 0 and 9007199254740991 for seed but received 1 of type bigint'],
    [{ penaltyWindow: {} }, 'Expected integer between 0 and 4294967295 for penaltyWindow but received an object of type Object'],
    [{ logprobs: true }, 'Expected integer between -1 and 4294967295 for logprobs but received true of type boolean'],
    [{ credit: '1' }, 'Expected integer between 0 and 9007199254740991 for credit but received "1" of type string'],
    [{ kind: 'score', scoreFrom: [1] }, 'Expected integer between 1 and 4294967295 for scoreFrom but received an array'],
    [{ temperature: '1' }, 'Expected number for temperature but received "1" of type string'],
    [{ topP: null }, 'Expected number for topP but received null'],
    [{ minP: false }, 'Expected number for minP but received false of type boolean'],
    [{ repetitionPenalty: [] }, 'Expected number for repetitionPenalty but received an array'],
    [{ presencePenalty: '0' }, 'Expected number for presencePenalty but received "0" of type string'],
    [{ frequencyPenalty: {} }, 'Expected number for frequencyPenalty but received an object of type Object'],
    [{ ignoreEos: 1 }, 'Expected boolean for ignoreEos but received 1 of type number'],
    [{ kind: 'evaluate', allLogits: 'yes' }, 'Expected boolean for allLogits but received "yes" of type string'],
    [{ logitBias: { 5: 1 } }, 'Expected Float64Array of (id, bias) pairs for logitBias but received an object of type Object'],
    [{ logitBias: Float64Array.of(5, Number.NaN) }, 'Expected number for logitBias[5] but received NaN of type number'],
    [{ stop: 'x' }, 'Expected array of strings for stop but received "x" of type string'],
    [{ stop: ['a', 1] }, 'Expected string for stop[1] but received 1 of type number'],
  ];
  for (const [request, message] of cases) {
    const e = t.throws(() => submit(request), { instanceOf: TypeError, message }, JSON.stringify(request, (_, x) => typeof x === 'bigint' ? `${x}n` : x));
    t.is((e as TypeError & { code?: string }).code, undefined);
  }
  t.throws(() => native.submit(undefined as never), { instanceOf: TypeError, message: 'submit(request: object)' });
});

test('binding: values that would not fit their C++ fields, or poison the sampler, are RangeErrors with ERR_OUT_OF_RANGE', (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ maxTokens: 0 }, 'Expected integer between 1 and 4294967295 for maxTokens but received 0'],
    [{ maxTokens: 2 ** 32 }, 'Expected integer between 1 and 4294967295 for maxTokens but received 4294967296'],
    [{ topK: 1.5 }, 'Expected integer between 0 and 4294967295 for topK but received 1.5'],
    [{ seed: -1 }, 'Expected integer between 0 and 9007199254740991 for seed but received -1'],
    [{ penaltyWindow: Number.POSITIVE_INFINITY }, 'Expected integer between 0 and 4294967295 for penaltyWindow but received Infinity'],
    [{ logprobs: -2 }, 'Expected integer between -1 and 4294967295 for logprobs but received -2'],
    [{ credit: -1 }, 'Expected integer between 0 and 9007199254740991 for credit but received -1'],
    [{ kind: 'score', scoreFrom: 0 }, 'Expected integer between 1 and 4294967295 for scoreFrom but received 0'],
    [{ temperature: Number.NaN }, 'Expected finite number for temperature but received NaN'],
    [{ topP: Number.NEGATIVE_INFINITY }, 'Expected finite number for topP but received -Infinity'],
    [{ repetitionPenalty: Number.POSITIVE_INFINITY }, 'Expected finite number for repetitionPenalty but received Infinity'],
    [{ logitBias: Float64Array.of(50257, 1) }, 'Expected integer between 0 and 50256 for logitBias key but received 50257'],
    [{ logitBias: Float64Array.of(2.5, 1) }, 'Expected integer between 0 and 50256 for logitBias key but received 2.5'],
    // stop strings: matching costs count × length² per token
    [{ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }, 'Expected at most 16 stop strings but received 17'],
    [{ stop: ['a', 'x'.repeat(1025)] }, 'Expected at most 1024 UTF-8 bytes for stop[1] but received 1025'],
    [{ stop: ['é'.repeat(513)] }, 'Expected at most 1024 UTF-8 bytes for stop[0] but received 1026'],
    // engine::submit: the prompt
    [{ prompt: Uint32Array.of(1, 50257) }, 'Expected integer between 0 and 50256 for prompt[1] but received 50257'],
    [{ prompt: new Uint32Array(0) }, 'the prompt must hold at least one token'],
    [{ prompt: new Uint32Array(513) }, 'Expected at most 512 prompt tokens (the context size) but received 513'],
  ];
  for (const [request, message] of cases) {
    const e = t.throws(() => submit(request), { instanceOf: RangeError, message }, message);
    t.is((e as RangeError & { code?: string }).code, 'ERR_OUT_OF_RANGE');
  }
});

test('binding: loadModel reads typed options: wrong types are TypeErrors, limits RangeErrors with ERR_OUT_OF_RANGE', async (t) => {
  const cases: [Record<string, unknown>, 'type' | 'range', string][] = [
    [{ threads: '2' }, 'type', 'Expected integer between 0 and 512 for threads but received "2" of type string'],
    [{ threads: 513 }, 'range', 'Expected integer between 0 and 512 for threads but received 513'],
    [{ contextSize: -1 }, 'range', 'Expected integer between 0 and 1048576 for contextSize but received -1'],
    [{ maxSequences: 1.5 }, 'range', 'Expected integer between 0 and 4096 for maxSequences but received 1.5'],
    [{ batchSize: null }, 'type', 'Expected integer between 0 and 65536 for batchSize but received null'],
    [{ gpuLayers: -1 }, 'range', 'Expected integer between 0 and 1024 for gpuLayers but received -1'],
    [{ kvF32: 1 }, 'type', 'Expected boolean for kvF32 but received 1 of type number'],
    [{ batchInvariant: 'no' }, 'type', 'Expected boolean for batchInvariant but received "no" of type string'],
    [{ device: 0 }, 'type', 'Expected string for device but received 0 of type number'],
  ];
  for (const [options, kind, message] of cases) {
    const e = t.throws(() => binding.loadModel(path, options as never, () => {}), { instanceOf: kind === 'type' ? TypeError : RangeError, message });
    t.is((e as Error & { code?: string }).code, kind === 'type' ? undefined : 'ERR_OUT_OF_RANGE');
  }
  t.throws(() => binding.loadModel(5 as never, {}, () => {}), { instanceOf: TypeError, message: 'loadModel(path: string, options: object, onEvents: function)' });
  // the decoder's checks against the model: a RangeError with the code, through the promise
  const e = await t.throwsAsync(binding.loadModel(path, { threads: 1, device: 'cpu', gpuLayers: 3 }, () => {}), { instanceOf: RangeError, message: 'Expected integer between 0 and 2 for gpuLayers but received 3' });
  t.is((e as RangeError & { code?: string }).code, 'ERR_OUT_OF_RANGE');
});

// ---- no drift: what lib/ accepts, the addon accepts -----------------------------------------------

test('every integer limit of loadModel in lib/ is within the addon\'s', async (t) => {
  for (const name of ['threads', 'contextSize', 'maxSequences', 'batchSize', 'gpuLayers'] as const) {
    const [tsLo, tsHi] = bounds(await rejected(loadModel(path, { [name]: -5 })));
    const [cLo, cHi] = bounds(thrown(() => binding.loadModel(path, { [name]: -5 }, () => {})));
    t.true(cLo <= tsLo && tsHi <= cHi, `${name}: lib [${tsLo}, ${tsHi}] within the addon's [${cLo}, ${cHi}]`);
  }
});

test('every integer limit of generate in lib/ is within the addon\'s', (t) => {
  const pairs: [string, string][] = [['maxTokens', 'maxTokens'], ['topK', 'topK'], ['seed', 'seed'], ['penaltyWindow', 'penaltyWindow'], ['logprobs', 'logprobs'], ['highWaterMark', 'credit']];
  for (const [option, field] of pairs) {
    const [tsLo, tsHi] = bounds(thrown(() => model.generate('x', { [option]: -5 })));
    const [cLo, cHi] = bounds(thrown(() => submit({ [field]: -5 })));
    t.true(cLo <= tsLo && tsHi <= cHi, `${option}: lib [${tsLo}, ${tsHi}] within the addon's [${cLo}, ${cHi}] (${field})`);
  }
});

test('the addon takes a request at every extreme lib/ accepts', (t) => {
  const vocab = model.info.vocabSize;
  const extremes: Record<string, unknown>[] = [
    { maxTokens: 1, temperature: 0, topK: 0, topP: Number.MIN_VALUE, minP: 0, seed: 0, repetitionPenalty: 0.01, presencePenalty: -100, frequencyPenalty: -100, penaltyWindow: 0, logprobs: -1, credit: 0 },
    { maxTokens: 1_000_000, temperature: 100, topK: vocab, topP: 1, minP: 1, seed: Number.MAX_SAFE_INTEGER, repetitionPenalty: 100, presencePenalty: 100, frequencyPenalty: 100, penaltyWindow: 1 << 20, logprobs: 20, credit: 1 << 20 },
    { logitBias: Float64Array.of(0, Number.NEGATIVE_INFINITY, vocab - 1, Number.POSITIVE_INFINITY), stop: Array.from({ length: 16 }, (_, i) => `s${i}`), ignoreEos: true },
    // the longest stop strings lib/ takes: 256 UTF-16 units, 3 UTF-8 bytes each at most
    { stop: Array.from({ length: 16 }, (_, i) => `${'✓'.repeat(255)}${i % 10}`) },
    { stop: ['🙂'.repeat(128), 'x'.repeat(1024)] },
    { kind: 'evaluate', allLogits: true },
    { kind: 'score', scoreFrom: prompt.length - 1 },
  ];
  for (const request of extremes) t.notThrows(() => submit(request), JSON.stringify(request));
});

// ---- the sampler and infinite biases (lib/ lets ±Infinity through) ---------------------------------

test('a +Infinity bias forces its token (the lowest such id), whatever the filters', async (t) => {
  for (const filters of [{}, { topP: 0.5 }, { topK: 10 }, { minP: 0.5 }, { topK: 40, topP: 0.9, minP: 0.05 }]) {
    const one = await model.complete('Hello', { maxTokens: 4, ignoreEos: true, seed: 3, logitBias: { 5: Number.POSITIVE_INFINITY }, ...filters });
    t.deepEqual([...one.tokens], [5, 5, 5, 5], JSON.stringify(filters));
    const two = await model.complete('Hello', { maxTokens: 2, ignoreEos: true, seed: 3, logitBias: { 9: Number.POSITIVE_INFINITY, 7: Number.POSITIVE_INFINITY }, ...filters });
    t.deepEqual([...two.tokens], [7, 7], JSON.stringify(filters));
  }
});

test('opposite infinite biases of one id (a Map with 5 and \'5\') ban the token', async (t) => {
  const bias = new Map<number | string, number>([[5, Number.POSITIVE_INFINITY], ['5', Number.NEGATIVE_INFINITY], [7, Number.POSITIVE_INFINITY]]);
  for (const options of [{ temperature: 0 }, { temperature: 1 }, { temperature: 1, topP: 0.5, topK: 20, minP: 0.1 }]) {
    const r = await model.complete('Hello', { maxTokens: 3, ignoreEos: true, logitBias: bias as never, ...options });
    t.deepEqual([...r.tokens], [7, 7, 7], JSON.stringify(options));
  }
  const banned = new Map<number | string, number>([[464, Number.POSITIVE_INFINITY], ['464', Number.NEGATIVE_INFINITY]]);
  const r = await model.complete('Hello', { maxTokens: 8, ignoreEos: true, temperature: 1, topK: 50, logitBias: banned as never });
  t.false(r.tokens.includes(464));
});

test('-Infinity on every token leaves id 0, sampled or greedy, with any min-p', async (t) => {
  const ban = Object.fromEntries(Array.from({ length: model.info.vocabSize }, (_, i) => [i, Number.NEGATIVE_INFINITY]));
  for (const options of [{ temperature: 0 }, { temperature: 1 }, { temperature: 1, minP: 0.1 }, { temperature: 1, topP: 0.5, topK: 5 }]) {
    const r = await model.complete('Hello', { maxTokens: 3, ignoreEos: true, logitBias: ban, ...options });
    t.deepEqual([...r.tokens], [0, 0, 0], JSON.stringify(options));
  }
});

// ---- complete(), one collecting loop for Model and Session ------------------------------------------

test('Model.complete and Session.complete collect the same way, logprobs included when asked', async (t) => {
  const options = { maxTokens: 4, temperature: 0, ignoreEos: true } as const;
  const plain = await model.complete('Hello', options);
  t.false('logprobs' in plain);
  t.is(plain.tokens.length, 4);
  t.is(plain.text, model.detokenize(plain.tokens));
  t.like(plain, { finishReason: 'length', usage: { completionTokens: 4 } });

  const withLp = await model.complete('Hello', { ...options, logprobs: 2 });
  t.deepEqual(withLp.tokens, plain.tokens);
  t.is(withLp.logprobs?.length, 4);
  t.is(withLp.logprobs?.[0]?.top.length, 2);

  const session = model.createSession();
  const reply = await session.complete('Hello', { ...options, logprobs: true });
  t.is(reply.tokens.length, 4);
  t.is(reply.logprobs?.length, 4);
  t.like(reply, { finishReason: 'length', usage: { completionTokens: 4 } });
  t.false('logprobs' in await model.createSession().complete('Hello', options));
});
