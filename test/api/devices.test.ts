// Devices: what getDevices() reports, the `device` / `gpuLayers` options, and the GPU code path.
//
// The device tests need a build with a GPU backend (GPT2_NODE_GPU=cuda|metal|vulkan) and a device
// for it: GPT2_NODE_TEST_DEVICE or the first GPU (`npm run test:vulkan` runs them on Mesa's
// lavapipe); elsewhere ava lists them as skipped. The scheduler path that GPUs take (weights copied to the device's buffers, KV cache
// placed by layer, ggml_backend_sched splitting the graph) is also run on the CPU here
// (GPT2_NODE_SCHED_ON_CPU=1), so that its bookkeeping is tested on every machine.
//
// Serial: the scheduler tests set an environment variable the native loader reads.
import test, { type ExecutionContext } from 'ava';
import { Gpt2Error, loadModel, setLogger } from '../../lib/index.js';
import { devices, onDevice, testDevice } from '../support/device.js';
import { runChild } from '../support/child.js';
import { testModel } from '../support/models.js';
import { until } from '../support/until.js';

const gpu = devices.find((d) => d.type === 'gpu' || d.type === 'igpu');

test.serial('getDevices() lists the CPU with its memory, and every device has an id loadModel takes', (t) => {
  const cpu = devices.find((d) => d.id === 'cpu');
  t.truthy(cpu);
  t.is(cpu?.type, 'cpu');
  t.is(cpu?.backend, 'cpu');
  t.true((cpu?.memoryTotal ?? 0) > 0);
  for (const d of devices) {
    t.regex(d.id, /^(cpu|[a-z]+:\d+)$/);
    t.true(d.memoryFree <= d.memoryTotal, d.id);
    t.true(Object.isFrozen(d));
  }
  t.log(devices.map((d) => `${d.id}: ${d.description} (${(d.memoryTotal / 2 ** 30).toFixed(1)} GiB)`).join('; '));
});

test.serial('device: cpu, and auto (the GPU if there is one)', async (t) => {
  const path = await testModel('tiny', 'f32');
  const cpu = await loadModel(path, { device: 'cpu' });
  t.is(cpu.info.device, 'cpu');
  t.is(cpu.info.gpuLayers, 0);
  await cpu.dispose();
  const auto = await loadModel(path);
  t.is(auto.info.device, gpu ? gpu.id : 'cpu');
  t.is(auto.info.gpuLayers, gpu ? auto.info.layers : 0);
  await auto.dispose();
});

test.serial('device and gpuLayers validation', async (t) => {
  const path = await testModel('tiny', 'f32');
  await t.throwsAsync(loadModel(path, { device: 5 as never }), { instanceOf: TypeError, message: "Expected 'auto', 'cpu', 'cuda', 'cuda:N', 'metal' or 'vulkan' for device but received 5 of type number" });
  await t.throwsAsync(loadModel(path, { device: 'tpu' }), { instanceOf: RangeError, message: `Expected 'auto', 'cpu', 'cuda', 'cuda:N', 'metal' or 'vulkan' for device but received "tpu" of type string` });
  await t.throwsAsync(loadModel(path, { gpuLayers: -1 }), { instanceOf: RangeError, message: 'Expected integer between 0 and 1024 for gpuLayers but received -1' });
  await t.throwsAsync(loadModel(path, { device: 'cpu', gpuLayers: 3 }), { instanceOf: RangeError, message: 'Expected integer between 0 and 2 for gpuLayers but received 3' });
  for (const kind of ['cuda', 'metal', 'vulkan'] as const) {
    if (devices.some((d) => d.backend === kind)) {
      t.log(`${kind}:1 not checked: this build has a ${kind} backend`);
      continue;
    }
    const err = await t.throwsAsync(loadModel(path, { device: `${kind}:1` }), { instanceOf: Gpt2Error });
    t.is(err?.code, 'ERR_NO_DEVICE');
    t.is(err?.message, `device ${kind}:1 is not available: this build has no ${kind} backend (rebuild with GPT2_NODE_GPU=${kind} npm install); available: ${devices.map((d) => d.id).join(', ')}`);
  }
});

/** Runs fn and returns, with its result, the loader's "scheduler over …" debug lines meanwhile. */
async function schedulerLines<T>(models: number, fn: () => Promise<T>): Promise<{ result: T, lines: string[] }> {
  const lines: string[] = [];
  setLogger((_level, _source, text) => { if (text.startsWith('scheduler over')) lines.push(text); }, 'debug');
  try {
    const result = await fn();
    // the loader writes its line before loadModel resolves, but it reaches JS through a queue:
    // wait for the ones expected (none expected: a short grace for a stray one)
    await until(() => lines.length >= Math.max(models, 1), models > 0 ? 5000 : 200);
    return { result, lines };
  } finally {
    setLogger(null);
  }
}

/**
 * Runs fn (which loads one model) with GPT2_NODE_SCHED_ON_CPU=1 and asserts that the loader took
 * the scheduler path: its debug line "scheduler over 1 backend(s); N weight tensors (… KiB) copied
 * to CPU" (the weights copied into a buffer of their own, as for a GPU), N being the tensors of the
 * "offloaded" blocks: 12 per block, and the final norm and LM head (3) when all are.
 */
async function withSchedOnCpu<T>(t: ExecutionContext, copiedTensors: number, fn: () => Promise<T>): Promise<T> {
  process.env['GPT2_NODE_SCHED_ON_CPU'] = '1';
  try {
    const { result, lines } = await schedulerLines(1, fn);
    t.is(lines.length, 1, 'one scheduler log line');
    t.regex(lines[0] ?? '', new RegExp(`^scheduler over 1 backend\\(s\\); ${copiedTensors} weight tensors \\(\\d+ KiB\\) copied to CPU$`));
    return result;
  } finally {
    delete process.env['GPT2_NODE_SCHED_ON_CPU'];
  }
}

const PROMPT = 'In a hole in the ground there lived a hobbit. Not a nasty, dirty, wet hole';

async function logits(path: string, opts: Parameters<typeof loadModel>[1]): Promise<Float32Array> {
  const m = await loadModel(path, opts);
  try {
    return await m.evaluate(m.tokenize(PROMPT)) as Float32Array;
  } finally {
    await m.dispose();
  }
}

test.serial('the scheduler path (as on a GPU, all or some layers "offloaded") gives the CPU path\'s logits exactly', async (t) => {
  for (const type of ['f32', 'f16'] as const) {
    const path = await testModel('tiny', type, { initScale: 4, tiedOutput: type === 'f32' });
    // the plain CPU path: no scheduler
    const { result: want, lines } = await schedulerLines(0, () => logits(path, { device: 'cpu' }));
    t.deepEqual(lines, [], 'the CPU path does not go through the scheduler');
    // tiny has 2 blocks of 12 tensors; with all of them the final norm and the LM head (3) too
    for (const [gpuLayers, copied] of [[undefined, 27], [1, 12], [0, 0]] as const) {
      const got = await withSchedOnCpu(t, copied, () => logits(path, { device: 'cpu', gpuLayers }));
      t.deepEqual(got, want, `${type}, gpuLayers ${String(gpuLayers)}`);
    }
  }
});

test.serial('continuous batching through the scheduler path: 8 concurrent requests match their solo runs', async (t) => {
  const path = await testModel('tiny', 'f16', { initScale: 4 });
  const prompts = Array.from({ length: 8 }, (_, i) => `Request ${i}: the weather today is`);
  const solo = await (async () => {
    const m = await loadModel(path, { device: 'cpu' });
    try {
      const out: string[] = [];
      for (const [i, p] of prompts.entries()) out.push((await m.complete(p, { maxTokens: 12, seed: i })).text);
      return out;
    } finally { await m.dispose(); }
  })();
  const together = await withSchedOnCpu(t, 27, async () => {
    const m = await loadModel(path, { device: 'cpu', maxSequences: 8 });
    try {
      return await Promise.all(prompts.map(async (p, i) => (await m.complete(p, { maxTokens: 12, seed: i })).text));
    } finally { await m.dispose(); }
  });
  t.deepEqual(together, solo);
});

// ---- on a device (test/support/device.ts: GPT2_NODE_TEST_DEVICE or the first GPU) -----------
// Logits, offload and the engine on the device: test/device/.

onDevice('the device is listed with its memory; a device that runs on the CPU (lavapipe) has type cpu, and auto does not pick it', async (t) => {
  const d = testDevice!;
  t.regex(d.id, /^(cuda|metal|vulkan):\d+$/);
  t.true(d.memoryTotal > 0 && d.memoryFree > 0 && d.memoryFree <= d.memoryTotal, `${d.memoryFree} of ${d.memoryTotal}`);
  t.log(`${d.id}: ${d.description}, type ${d.type}, ${(d.memoryTotal / 2 ** 30).toFixed(1)} GiB (${(d.memoryFree / 2 ** 30).toFixed(1)} free)`);
  if (/llvmpipe|lavapipe|swiftshader/i.test(d.description)) t.is(d.type, 'cpu');
  const path = await testModel('tiny', 'f32');
  const auto = await loadModel(path, { device: 'auto' });
  try {
    if (d.type === 'cpu') t.not(auto.info.device, d.id, 'auto never picks a device that runs on the CPU');
    else t.is(auto.info.device, gpu?.id ?? 'cpu');
  } finally {
    await auto.dispose();
  }
  const named = await loadModel(path, { device: d.id });
  try {
    t.is(named.info.device, d.id, 'named, it is used');
    t.is(named.info.gpuLayers, named.info.layers);
  } finally {
    await named.dispose();
  }
});

onDevice('a device index this machine does not have: ERR_NO_DEVICE listing what it has', async (t) => {
  const path = await testModel('tiny', 'f32');
  const backend = testDevice!.backend;
  const err = await t.throwsAsync(loadModel(path, { device: `${backend}:99` }), { instanceOf: Gpt2Error });
  t.is(err?.code, 'ERR_NO_DEVICE');
  const hint = backend === 'vulkan' ? ' (ggml lists a Vulkan device that runs on the CPU, such as lavapipe, only when GGML_VK_VISIBLE_DEVICES names it)' : '';
  t.is(err?.message, `device ${backend}:99 is not available: this machine has no such ${backend} device${hint}; available: ${devices.map((x) => x.id).join(', ')}`);
});

// ggml-vulkan reads GGML_VK_FORCE_MAX_BUFFER_SIZE once, when it first lists its devices: in a
// child process with 1 MiB as the largest buffer, the device cannot hold a 124M model's weights
// (a block's are 14 MiB), as a GPU with too little memory cannot.
const onVulkan = testDevice?.backend === 'vulkan' ? test.serial : test.serial.skip;
onVulkan('a device whose memory cannot hold the weights: ERR_OUT_OF_MEMORY saying how much, and no crash', async (t) => {
  const path = await testModel('124M', 'f16');
  const r = await runChild(`
    const { loadModel } = await import(LIB);
    for (const gpuLayers of [undefined, 1]) {
      try {
        const m = await loadModel(${JSON.stringify(path)}, { device: ${JSON.stringify(testDevice?.id)}, gpuLayers });
        console.log('loaded', m.info.device, m.info.gpuLayers);
        await m.dispose();
      } catch (e) {
        console.log('error', e.code, e.message);
      }
    }`, { env: { ...process.env, GGML_VK_FORCE_MAX_BUFFER_SIZE: String(1 << 20) }, timeoutMs: 120_000 });
  t.log(r.stdout.trim());
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.regex(lines[0] ?? '', /^error ERR_OUT_OF_MEMORY cannot allocate \d+ MiB for the weights in Vulkan\d \(fewer gpuLayers need less\)$/);
  t.regex(lines[1] ?? '', /^error ERR_OUT_OF_MEMORY /);
});
