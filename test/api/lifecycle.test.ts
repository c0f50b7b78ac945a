// The addon in worker threads and at process exit: per-environment state, engine threads
// stopped by the environment's cleanup hook, nothing calling into JS after teardown.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import test from 'ava';

import { loadModel } from '../../lib/index.js';
import { testModel } from '../support/models.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = pathToFileURL(join(root, 'dist', 'lib', 'index.js')).href;
let modelPath: string;

test.before(async () => {
  modelPath = await testModel('tiny', 'f32', { initScale: 4 });
});

function runWorker(body: string): { worker: Worker; messages: unknown[]; exited: Promise<number> } {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { loadModel } = await import(workerData.dist);
      ${body}
    })().catch((e) => { parentPort.postMessage({ error: String(e && e.stack || e) }); });`;
  const worker = new Worker(code, { eval: true, workerData: { dist, modelPath } });
  const messages: unknown[] = [];
  worker.on('message', (m) => messages.push(m));
  const exited = new Promise<number>((resolve, reject) => {
    worker.on('exit', resolve);
    worker.on('error', reject);
  });
  return { worker, messages, exited };
}

test.serial('generates in worker threads, the same tokens as the main thread', async (t) => {
  const main = await loadModel(modelPath, { threads: 1 });
  const expected = Array.from((await main.complete('Workers', { maxTokens: 8, temperature: 0, ignoreEos: true })).tokens);
  await main.dispose();
  const body = `
    const model = await loadModel(workerData.modelPath, { threads: 1 });
    const out = await model.complete('Workers', { maxTokens: 8, temperature: 0, ignoreEos: true });
    await model.dispose();
    parentPort.postMessage({ tokens: Array.from(out.tokens) });`;
  const a = runWorker(body);
  const b = runWorker(body);
  t.is(await a.exited, 0);
  t.is(await b.exited, 0);
  t.deepEqual(a.messages, [{ tokens: expected }]);
  t.deepEqual(b.messages, [{ tokens: expected }]);
});

test.serial('terminating a worker in the middle of a generation stops its engine cleanly', async (t) => {
  const w = runWorker(`
    const model = await loadModel(workerData.modelPath, { threads: 1 });
    let n = 0;
    for await (const chunk of model.generate('forever', { maxTokens: 100000, temperature: 0, ignoreEos: true })) {
      if (++n === 5) parentPort.postMessage({ started: true });
    }`);
  while (w.messages.length === 0) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(w.messages[0], { started: true });
  await w.worker.terminate();
  await w.exited;
  // the main thread's own model still works afterwards
  const m = await loadModel(modelPath, { threads: 1 });
  t.is((await m.complete('still alive', { maxTokens: 3, temperature: 0, ignoreEos: true })).tokens.length, 3);
  await m.dispose();
});

test.serial('process.exit() with a generation in flight exits cleanly', async (t) => {
  const script = `
    const { loadModel } = await import(${JSON.stringify(dist)});
    const model = await loadModel(${JSON.stringify(modelPath)}, { threads: 1 });
    let n = 0;
    for await (const chunk of model.generate('exit', { maxTokens: 100000, temperature: 0, ignoreEos: true })) {
      if (++n === 5) process.exit(0);
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  t.is(signal, null, stderr);
  t.is(code, 0, stderr);
});

test.serial('an undisposed model does not keep an idle process alive, an active generation does', async (t) => {
  const script = `
    const { loadModel } = await import(${JSON.stringify(dist)});
    const model = await loadModel(${JSON.stringify(modelPath)}, { threads: 1 });
    const out = await model.complete('idle', { maxTokens: 4, temperature: 0, ignoreEos: true });
    console.log(out.tokens.length);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0);
  t.is(stdout, '4\n', 'the generation completed before the process exited on its own');
});
