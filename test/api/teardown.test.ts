// Teardown, as users do it (issue 23): dispose() during a load, a prefill and a decode, twice
// and from several callers at once; worker.terminate() and process.exit() with generations in
// flight in several worker threads; Electron's order (will-quit → await dispose() → exit) and
// the reverse (exit while a dispose is pending). What must hold: no crash, no hang, no callback
// after teardown, every pending promise settled with its documented code (ERR_DISPOSED).
// lifecycle.test.ts covers one worker terminated mid-generation and process.exit() with one
// generation in the main thread; this file extends those. Whatever could take the process down
// runs in a child process (test/support/child.ts), so that a crash is observed, not suffered.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import test from 'ava';

import { Gpt2Error, loadModel, type Chunk } from '../../lib/index.js';
import { describeChild, runChild, WORKER_PRELUDE } from '../support/child.js';
import { testModel } from '../support/models.js';
import { until } from '../support/until.js';

let tiny: string;   // 2 layers: fast to load and to generate with
let mid: string;    // 4 layers × 512, 1024 positions: a 1000-token prefill takes a noticeable while

test.before(async () => {
  tiny = await testModel('tiny', 'f32', { initScale: 4 });
  mid = await testModel({ nLayer: 4, nEmbd: 512, nHead: 8, nCtx: 1024 }, 'f16');
});

const forever = { maxTokens: 1_000_000, temperature: 0, ignoreEos: true } as const;
const isDisposed = { instanceOf: Gpt2Error, code: 'ERR_DISPOSED' } as never;

/** How a promise settled: 'ok' or the error's code (its text when it has none). */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'ok', (e: unknown) => (e instanceof Gpt2Error ? e.code : String(e)));
}

// ---------------------------------------------------------------------------------------------
// dispose() in this process

test.serial('dispose() during decode settles every pending promise with ERR_DISPOSED, then nothing is called', async (t) => {
  const m = await loadModel(tiny, { threads: 1, maxSequences: 2 });
  let disposed = false;
  const late: string[] = [];   // callbacks that ran after the model was disposed
  const seen = (what: string) => { if (disposed) late.push(what); };

  // slot 1: a consumer waiting in next()
  const reading = m.generate('reading', forever);
  let read = 0;
  const readLoop = outcome((async () => { for await (const c of reading) { read += c.tokens.length; seen('chunk'); } })());
  // slot 2: paused by backpressure, four tokens buffered and not pulled
  const paused = m.generate('paused', { ...forever, highWaterMark: 4 });
  // queued behind them: every other kind of request, and a stream
  const queued = {
    complete: outcome(m.complete('queued', { maxTokens: 5 })),
    evaluate: outcome(m.evaluate([1, 2, 3])),
    score: outcome(m.score('a', ['b', 'c'])),
    perplexity: outcome(m.perplexity('one two three four', { onProgress: () => seen('progress') })),
    session: outcome(m.createSession().complete('hello', { maxTokens: 5 })),
    readable: outcome(new Promise((resolve, reject) => {
      const r: Readable = m.generate('stream', forever).toReadable();
      r.on('data', () => seen('data')).on('end', resolve).on('error', reject);
    })),
  };
  t.true(await until(() => read >= 3 && paused.buffered === 4), 'both sequences are running');
  t.is(m.stats().queuedSequences, 6);

  await m.dispose();
  disposed = true;
  await sleep(0);
  t.is(await readLoop, 'ERR_DISPOSED');
  t.deepEqual(Object.fromEntries(await Promise.all(Object.entries(queued).map(async ([k, p]) => [k, await p]))), {
    complete: 'ERR_DISPOSED', evaluate: 'ERR_DISPOSED', score: 'ERR_DISPOSED', perplexity: 'ERR_DISPOSED',
    session: 'ERR_DISPOSED', readable: 'ERR_DISPOSED',
  });
  // the paused generation: its buffered tokens are still there to read, then ERR_DISPOSED
  t.is(paused.buffered, 4);
  const rest: Chunk[] = [];
  const pausedEnd = await outcome((async () => { for await (const c of paused) rest.push(c); })());
  t.is(pausedEnd, 'ERR_DISPOSED');
  t.is(rest.reduce((n, c) => n + c.tokens.length, 0), 4);
  // nothing arrives afterwards
  const readAt = read;
  await sleep(150);
  t.is(read, readAt);
  t.deepEqual(late, []);
  t.throws(() => m.stats(), isDisposed);
});

test.serial('dispose() during a long prefill stops it mid-step, before any token', async (t) => {
  const m = await loadModel(mid, { threads: 1, batchSize: 1024 });
  const prompt = (salt: number) => Array.from({ length: 1000 }, (_, i) => (i * 7919 + salt) % 50000);
  // a whole prefill: one forward pass of 1000 positions
  let t0 = performance.now();
  await m.complete(prompt(1), { maxTokens: 1 });
  const prefill = performance.now() - t0;
  // another prompt (no prefix to reuse), disposed of a little into its prefill
  const g = m.generate(prompt(2), { maxTokens: 5 });
  const first = g.next();
  t.true(await until(() => m.stats().activeSequences === 1, 5000));
  await sleep(Math.min(30, prefill / 5));
  t0 = performance.now();
  await m.dispose();
  const took = performance.now() - t0;
  await t.throwsAsync(first, isDisposed);
  t.true(took < prefill / 2, `dispose took ${took.toFixed(0)} ms; a whole prefill ${prefill.toFixed(0)} ms`);
});

test.serial('dispose() from several callers at once, from inside a consumer loop, and again afterwards', async (t) => {
  const m = await loadModel(tiny, { threads: 1, maxSequences: 2 });
  const g = m.generate('loop', forever);
  const controller = new AbortController();
  const aborting = m.generate('signal', { ...forever, signal: controller.signal });
  const abortingEnd = outcome((async () => { for await (const c of aborting) void c; })());
  let afterDispose = 0;
  const calls: Array<Promise<void>> = [];
  const loop = outcome((async () => {
    let n = 0;
    for await (const c of g) {
      void c;
      if (++n === 3) {
        // callers in this tick, in a microtask, in a later macrotask, and `await using`'s
        calls.push(m.dispose(), m.dispose());
        queueMicrotask(() => calls.push(m[Symbol.asyncDispose]()));
        setImmediate(() => calls.push(m.dispose()));
        calls.push((async () => { await using scoped = m; void scoped; })());
      } else if (n > 3) {
        afterDispose++;   // chunks the engine had sent before it stopped may still be read
      }
    }
  })());
  t.is(await loop, 'ERR_DISPOSED');
  t.is(await abortingEnd, 'ERR_DISPOSED');
  await until(() => calls.length === 5);
  t.is(calls[0], calls[1], 'one promise for every call');
  t.deepEqual(await Promise.all(calls.map(outcome)), ['ok', 'ok', 'ok', 'ok', 'ok']);
  t.true(afterDispose <= 16, `${afterDispose} chunks after dispose(), at most a high-water mark's`);
  // late calls on a disposed model and its generations: no throw, no effect
  t.is(await outcome(m.dispose()), 'ok');
  controller.abort();
  t.deepEqual(await g.return(), { value: undefined, done: true });
  t.deepEqual(await aborting.next(), { value: undefined, done: true });
});

test.serial('dispose() while loads are in flight, and in the very tick a load resolves', async (t) => {
  const a = await loadModel(tiny, { threads: 1 });
  const aGen = outcome(a.complete('a', forever));
  // two loads in flight (one of the same file) while `a` is disposed
  const loadingB = loadModel(tiny, { threads: 1 });
  const loadingC = loadModel(mid, { threads: 1 }).then((c) => {
    // disposed in the tick it arrives, with a request already submitted (whose first tokens
    // may still come: the engine can take a step before it stops)
    const g = c.generate('c', forever);
    const next = outcome((async () => { for await (const chunk of g) void chunk; })());
    return { next, disposed: outcome(c.dispose()) };
  });
  await a.dispose();
  t.is(await aGen, 'ERR_DISPOSED');
  const b = await loadingB;
  const c = await loadingC;
  t.is(await c.disposed, 'ok');
  t.is(await c.next, 'ERR_DISPOSED');
  // the model loaded meanwhile is unaffected
  t.is((await b.complete('b', { maxTokens: 3, temperature: 0, ignoreEos: true })).tokens.length, 3);
  await b.dispose();
});

// ---------------------------------------------------------------------------------------------
// Worker threads and process exit, in a child process

/** Worker source: `body` runs with loadModel, lib, parentPort and workerData in scope. */
const workerSource = (body: string) => JSON.stringify(WORKER_PRELUDE.replace('/*BODY*/', body));

// A worker that loads the model and runs two generations at once, reporting 'started' once
// both stream and the tokens so far every 10; it never ends on its own (a generation that
// reaches the end of the context is followed by another).
const twoGenerations = workerSource(`
  const model = await loadModel(workerData.model, { threads: 1, maxSequences: 2 });
  const counts = [0, 0];
  let told = false;
  const run = async (i) => {
    for (;;) {
      for await (const c of model.generate('worker ' + i, { maxTokens: 1000000, temperature: 0, ignoreEos: true })) {
        const before = counts[0] + counts[1];
        counts[i] += c.tokens.length;
        if (!told && counts[0] >= 3 && counts[1] >= 3) { told = true; parentPort.postMessage('started'); }
        if (Math.floor(before / 10) !== Math.floor((counts[0] + counts[1]) / 10)) parentPort.postMessage({ tokens: counts[0] + counts[1] });
      }
    }
  };
  await Promise.all([run(0), run(1)]);`);

/** Child-script lines that start `n` workers of `source` and wait until each has said 'started'. */
const startWorkers = (n: number, source: string, model: string) => `
  const { Worker } = await import('node:worker_threads');
  const workers = Array.from({ length: ${n} }, () =>
    new Worker(${source}, { eval: true, workerData: { TSX_API, LIB, model: ${JSON.stringify(model)} } }));
  const said = (w, what) => new Promise((resolve, reject) => {
    w.on('message', (m) => { if (m && m.error) reject(new Error(m.error)); else if (m === what) resolve(); });
    w.on('error', reject);
  });
  await Promise.all(workers.map((w) => said(w, 'started')));
  console.log('started');`;

test('worker.terminate() with generations in flight in several workers: the parent survives and still generates', async (t) => {
  const r = await runChild(`
    ${startWorkers(3, twoGenerations, tiny)}
    const codes = await Promise.all(workers.map((w) => w.terminate()));
    console.log('terminated ' + JSON.stringify(codes));
    const { loadModel } = await import(LIB);
    const m = await loadModel(${JSON.stringify(tiny)}, { threads: 1 });
    const out = await m.complete('after', { maxTokens: 3, temperature: 0, ignoreEos: true });
    await m.dispose();
    console.log('parent ' + out.tokens.length);`);
  t.false(r.timedOut, describeChild(r));
  t.is(r.signal, null, describeChild(r));
  t.is(r.code, 0, describeChild(r));
  t.is(r.stdout, 'started\nterminated [1,1,1]\nparent 3\n');
});

test('process.exit() with generations in flight in several workers exits cleanly with its code', async (t) => {
  const r = await runChild(`
    ${startWorkers(3, twoGenerations, tiny)}
    process.exit(5);`);
  t.false(r.timedOut, describeChild(r));
  t.is(r.signal, null, describeChild(r));
  t.is(r.code, 5, describeChild(r));
  t.is(r.stdout, 'started\n');
});

test('process.exit() inside a worker mid-generation ends that worker only', async (t) => {
  const exiting = workerSource(`
    const model = await loadModel(workerData.model, { threads: 1 });
    parentPort.postMessage('started');
    let n = 0;
    for await (const c of model.generate('exit here', { maxTokens: 1000000, temperature: 0, ignoreEos: true })) {
      if (++n === 5) process.exit(3);
    }`);
  const r = await runChild(`
    ${startWorkers(1, twoGenerations, tiny)}
    const other = workers[0];
    let tokens = 0;
    other.on('message', (m) => { if (m && m.tokens) tokens = Math.max(tokens, m.tokens); });
    const w = new Worker(${exiting}, { eval: true, workerData: { TSX_API, LIB, model: ${JSON.stringify(tiny)} } });
    w.on('error', (e) => console.log('error ' + e));
    const code = await new Promise((resolve) => w.on('exit', resolve));
    const before = tokens;
    while (tokens < before + 20) await new Promise((r) => setTimeout(r, 10));
    console.log('worker exited ' + code + ', the other still generates');
    await other.terminate();`);
  t.false(r.timedOut, describeChild(r));
  t.is(r.signal, null, describeChild(r));
  t.is(r.code, 0, describeChild(r));
  t.is(r.stdout, 'started\nworker exited 3, the other still generates\n');
});

test('process.exit() during loadModel() exits cleanly with its code', async (t) => {
  const r = await runChild(`
    const { loadModel } = await import(LIB);
    loadModel(${JSON.stringify(mid)}, { threads: 1 }).then(() => console.log('loaded'), (e) => console.log('failed ' + e));
    setTimeout(() => process.exit(4), 5);`);
  t.false(r.timedOut, describeChild(r));
  t.is(r.signal, null, describeChild(r));
  t.is(r.code, 4, describeChild(r));
  t.is(r.stdout, '', 'the process exited while the model was loading');
});

test('worker.terminate() during loadModel() in the worker: the parent survives', async (t) => {
  // As built: the load's completion runs while the worker's environment is torn down, resolving
  // the promise throws (node-addon-api), and the C++ exception aborts the whole process.
  const loading = workerSource(`
    const loading = loadModel(workerData.model, { threads: 1 });   // the native load is queued now
    parentPort.postMessage('loading');
    await loading;
    parentPort.postMessage('loaded');`);
  const r = await runChild(`
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(${loading}, { eval: true, workerData: { TSX_API, LIB, model: ${JSON.stringify(mid)} } });
    const messages = [];
    await new Promise((resolve) => w.on('message', (m) => { messages.push(m); resolve(); }));
    const code = await w.terminate();
    await new Promise((r) => setTimeout(r, 200));
    console.log(JSON.stringify({ code, messages }));`);
  t.false(r.timedOut, describeChild(r));
  t.is(r.signal, null, describeChild(r));
  t.is(r.code, 0, describeChild(r));
  t.is(r.stdout, '{"code":1,"messages":["loading"]}\n', 'terminated while loading');
});

test('worker.terminate() while a dispose() is pending in the worker: the parent survives', async (t) => {
  // As built: the same abort as above, from the dispose's completion.
  const disposing = workerSource(`
    const model = await loadModel(workerData.model, { threads: 1 });
    let n = 0;
    for await (const c of model.generate('dispose', { maxTokens: 1000000, temperature: 0, ignoreEos: true })) {
      if (++n === 3) { model.dispose(); parentPort.postMessage('disposing'); }
    }`);
  const r = await runChild(`
    const { Worker } = await import('node:worker_threads');
    const codes = [];
    for (let i = 0; i < 3; i++) {
      const w = new Worker(${disposing}, { eval: true, workerData: { TSX_API, LIB, model: ${JSON.stringify(tiny)} } });
      await new Promise((resolve) => w.once('message', resolve));
      codes.push(await w.terminate());
    }
    console.log(JSON.stringify(codes));`);
  t.false(r.timedOut, describeChild(r));
  t.is(r.signal, null, describeChild(r));
  t.is(r.code, 0, describeChild(r));
  t.is(r.stdout, '[1,1,1]\n');
});

test('worker.terminate() while quantize(), loadTokenizer() or getDevices() runs in the worker: the parent survives', async (t) => {
  // As built: every async native call completing during the worker's teardown aborts the process.
  const dir = await mkdtemp(join(tmpdir(), 'gpt2-node-teardown-'));
  try {
    const jobs = [
      `lib.quantize(workerData.model, ${JSON.stringify(join(dir, 'q.gguf'))}, { type: 'q8_0' })`,
      'lib.loadTokenizer(workerData.model)',
      'lib.getDevices()',
    ];
    const r = await runChild(`
      const { Worker } = await import('node:worker_threads');
      for (const job of ${JSON.stringify(jobs)}) {
        const src = ${JSON.stringify(WORKER_PRELUDE)}.replace('/*BODY*/', 'const p = ' + job + '; parentPort.postMessage("running"); await p;');
        const w = new Worker(src, { eval: true, workerData: { TSX_API, LIB, model: ${JSON.stringify(tiny)} } });
        await new Promise((resolve) => w.once('message', resolve));
        console.log(job.slice(4, job.indexOf('(')) + ' ' + await w.terminate());
      }`);
    t.false(r.timedOut, describeChild(r));
    t.is(r.signal, null, describeChild(r));
    t.is(r.code, 0, describeChild(r));
    t.is(r.stdout, 'quantize 1\nloadTokenizer 1\ngetDevices 1\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// Electron's app.on('will-quit', …): an EventEmitter stands for `app` (same order of calls).
const pendingRequests = () => `
  const { loadModel } = await import(LIB);
  const { EventEmitter } = await import('node:events');
  const app = new EventEmitter();
  const model = await loadModel(${JSON.stringify(tiny)}, { threads: 1, maxSequences: 2 });
  const outcomes = {};
  const settle = (name, p) => p.then(() => { outcomes[name] = 'ok'; }, (e) => { outcomes[name] = e.code || String(e); });
  let streamed = 0;
  const stream = async (g) => { for await (const c of g) streamed += c.tokens.length; };
  settle('first', stream(model.generate('first', { maxTokens: 1000000, temperature: 0, ignoreEos: true })));
  settle('second', stream(model.generate('second', { maxTokens: 1000000, temperature: 0, ignoreEos: true })));
  settle('queued', model.complete('queued', { maxTokens: 5 }));
  settle('evaluate', model.evaluate([1, 2, 3]));
  while (streamed < 10) await new Promise((r) => setTimeout(r, 5));`;

test('Electron order: will-quit → await model.dispose() → process.exit(): pending requests settle, clean exit', async (t) => {
  const r = await runChild(`
    ${pendingRequests()}
    app.on('will-quit', async (event) => {
      event.preventDefault();
      await model.dispose();
      await new Promise((r) => setImmediate(r));
      console.log(JSON.stringify(outcomes));
      process.exit(0);
    });
    app.emit('will-quit', { preventDefault() {} });`);
  t.false(r.timedOut, describeChild(r));
  t.is(r.signal, null, describeChild(r));
  t.is(r.code, 0, describeChild(r));
  t.deepEqual(JSON.parse(r.stdout), { first: 'ERR_DISPOSED', second: 'ERR_DISPOSED', queued: 'ERR_DISPOSED', evaluate: 'ERR_DISPOSED' });
});

test('reverse order: process.exit() while model.dispose() is pending exits cleanly', async (t) => {
  // As built: the dispose's pool thread and the exit handler's shutdown both join the engine
  // thread (engine::stop() from two threads); the process hangs in pthread_join for good.
  const r = await runChild(`
    ${pendingRequests()}
    app.on('will-quit', () => {
      model.dispose();   // not awaited
      process.exit(0);
    });
    app.emit('will-quit', { preventDefault() {} });`, { timeoutMs: 8000 });
  t.false(r.timedOut, describeChild(r));
  t.is(r.signal, null, describeChild(r));
  t.is(r.code, 0, describeChild(r));
});
