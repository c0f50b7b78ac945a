// Faults from outside (issue 23): a model file truncated, deleted or replaced after it was loaded;
// a full disk while convert(), quantize() or a hub download writes; too little memory at load.
// Each runs where a crash would be observed rather than suffered: a child process
// (test/support/child.ts), with `ulimit` setting the limits.
//
// What is promised (and asserted here):
// - A GGUF file is memory-mapped: deleting it or replacing it by rename (what convert, quantize
//   and the hub do) is safe; truncating or rewriting it in place while a model loaded from it
//   is alive is not: the next forward pass touches pages that no longer exist and the system
//   kills the process with SIGBUS (repacked weights do not change that: the embeddings, norms
//   and biases stay mapped). A Hugging Face folder and a legacy ggml .bin are copied at load:
//   their files may change afterwards.
// - A full disk (ENOSPC, or EFBIG at a file size limit): ERR_IO, and no partial file is left.
// - Memory refused at load: loadModel() rejects with a Gpt2Error and the process goes on.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { convert, downloadModel, Gpt2Error, quantize } from '../../lib/index.js';
import { describeChild, runChild, type ChildResult } from '../support/child.js';
import { writeHfFolder, writeLegacyGgml } from '../support/export-formats.js';
import { FakeHub, sha256 } from '../support/fake-hub.js';
import { testModel } from '../support/models.js';

let tiny: string;
let tinyQ4: string;
let scratch: string;

test.before(async () => {
  tiny = await testModel('tiny', 'f32', { initScale: 4 });
  tinyQ4 = await testModel('tiny', 'q4_0', { initScale: 4 });
  scratch = await mkdtemp(join(tmpdir(), 'gpt2-node-faults-'));
});

test.after.always(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

let dirCount = 0;
async function newDir(): Promise<string> {
  const dir = join(scratch, `d${++dirCount}`);
  await mkdir(dir);
  return dir;
}

/** The child ended on its own with `code`: no signal, no hang. */
const ok = (t: ExecutionContext, r: ChildResult, code = 0) => {
  t.false(r.timedOut, describeChild(r));
  t.is(r.signal, null, describeChild(r));
  t.is(r.code, code, describeChild(r));
};

// ---------------------------------------------------------------------------------------------
// The model file changes after the load

/** A child script: load `path`, generate, run `change` (JS), generate again; prints each step. */
const changeAfterLoad = (path: string, change: string) => `
  const { loadModel } = await import(LIB);
  const fs = await import('node:fs');
  const path = ${JSON.stringify(path)};
  const model = await loadModel(path, { threads: 1 });
  const tokens = async () => Array.from((await model.complete('before and after', { maxTokens: 6, temperature: 0, ignoreEos: true })).tokens).join(',');
  console.log('first ' + await tokens());
  ${change}
  console.log('changed');
  console.log('second ' + await tokens());
  await model.dispose();`;

const lines = (stdout: string) => Object.fromEntries(stdout.trim().split('\n').map((l) => { const i = l.indexOf(' '); return i < 0 ? [l, ''] : [l.slice(0, i), l.slice(i + 1)]; }));

test('a GGUF truncated after the load: the next forward pass dies of SIGBUS (mapped, and repacked too)', async (t) => {
  const dir = await newDir();
  const runs = await Promise.all([tiny, tinyQ4].map(async (src, i) => {
    const f = join(dir, `m${i}.gguf`);
    await copyFile(src, f);
    return runChild(changeAfterLoad(f, 'fs.truncateSync(path, Math.floor(fs.statSync(path).size / 2));'));
  }));
  for (const r of runs) {
    t.false(r.timedOut, describeChild(r));
    t.is(r.signal, 'SIGBUS', describeChild(r));
    t.regex(r.stdout, /^first [\d,]+\nchanged\n$/);
  }
});

test('a GGUF deleted, or replaced by rename (as quantize writes), after the load: generation goes on unchanged', async (t) => {
  const dir = await newDir();
  const deleted = join(dir, 'deleted.gguf');
  const replaced = join(dir, 'replaced.gguf');
  await copyFile(tiny, deleted);
  await copyFile(tiny, replaced);
  const [a, b] = await Promise.all([
    runChild(changeAfterLoad(deleted, 'fs.unlinkSync(path);')),
    runChild(changeAfterLoad(replaced, `
      const { quantize } = await import(LIB);
      await quantize(path, path, { type: 'q8_0' });   // writes path.partial, then renames it over path
      const again = await loadModel(path, { threads: 1 });
      console.log('reloaded ' + again.info.tensorType);
      await again.dispose();`)),
  ]);
  ok(t, a);
  ok(t, b);
  t.is(lines(a.stdout).first, lines(a.stdout).second);
  t.is(lines(b.stdout).first, lines(b.stdout).second);
  t.is(lines(b.stdout).reloaded, 'q8_0');
});

test('a Hugging Face folder and a legacy ggml .bin truncated after the load: their weights were copied, generation goes on', async (t) => {
  const dir = await newDir();
  const folder = join(dir, 'hf');
  const bin = join(dir, 'ggml-model.bin');
  await writeHfFolder(tiny, folder);
  await writeLegacyGgml(tiny, bin);
  const [hf, legacy] = await Promise.all([
    runChild(changeAfterLoad(folder, `for (const f of fs.readdirSync(path)) fs.truncateSync(path + '/' + f, 0);`)),
    runChild(changeAfterLoad(bin, 'fs.truncateSync(path, 0);')),
  ]);
  ok(t, hf);
  ok(t, legacy);
  t.is(lines(hf.stdout).first, lines(hf.stdout).second);
  t.is(lines(legacy.stdout).first, lines(legacy.stdout).second);
});

// ---------------------------------------------------------------------------------------------
// A full disk while writing

// The tiny model's outputs: a GGUF header of ≈ 1.6 MB (the vocabulary), then 5–8 MB of weights.
// `ulimit -f 4096` (2–4 MB, in 512- or 1024-byte blocks by shell) lets the header through and
// fails a weight: write() then fails with EFBIG (Node ignores SIGXFSZ), as ENOSPC on a full disk.
const FILE_LIMIT = 'ulimit -f 4096';

test('convert() and quantize() at a file size limit: ERR_IO, no output, no partial file, the process goes on', async (t) => {
  const dir = await newDir();
  const r = await runChild(`
    const { convert, quantize } = await import(LIB);
    const fs = await import('node:fs');
    const dir = ${JSON.stringify(dir)};
    for (const [name, run] of [
      ['quantize', () => quantize(${JSON.stringify(tiny)}, dir + '/q.gguf', { type: 'q8_0' })],
      ['convert', () => convert(${JSON.stringify(tiny)}, dir + '/c.gguf', { type: 'f16' })],
    ]) {
      try { await run(); console.log(name + ' resolved'); }
      catch (e) { console.log(name + ' ' + JSON.stringify({ name: e.name, code: e.code, message: e.message, files: fs.readdirSync(dir) })); }
    }`, { shell: FILE_LIMIT });
  ok(t, r);
  const out = lines(r.stdout);
  for (const [name, file] of [['quantize', 'q.gguf'], ['convert', 'c.gguf']] as const) {
    const e = JSON.parse(out[name] ?? 'null') as { name: string; code: string; message: string; files: string[] } | null;
    t.like(e, { name: 'Gpt2Error', code: 'ERR_IO', files: [] }, r.stdout);
    t.true(e?.message.startsWith(join(dir, file)), e?.message);
  }
});

test('a hub download at a file size limit: ERR_IO at once (no retry), the partial download removed', async (t) => {
  const hub = await new FakeHub().start();
  try {
    const content = randomBytes(5_000_000);
    hub.addRepo('t/full', { 'm.gguf': { content, lfs: true } });
    const cacheDir = await newDir();
    const r = await runChild(`
      const { downloadModel } = await import(LIB);
      try {
        await downloadModel('hf:t/full/m.gguf', { cacheDir: ${JSON.stringify(cacheDir)}, endpoint: ${JSON.stringify(hub.endpoint)}, token: false });
        console.log('resolved');
      } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })); }`, { shell: FILE_LIMIT });
    ok(t, r);
    t.like(JSON.parse(r.stdout), { name: 'Gpt2Error', code: 'ERR_IO' }, r.stdout);
    t.is(hub.requests('GET', 'cdn').length, 1, 'a local write failure is not retried like a dropped connection');
    t.deepEqual(await readdir(join(cacheDir, 'models--t--full', 'blobs')), [], 'no .incomplete and no .lock left');
  } finally {
    await hub.close();
  }
});

// A real full disk (ENOSPC), where this process may mount a small tmpfs (root on Linux).
function tryMount(dir: string, size: string): boolean {
  if (process.platform !== 'linux') return false;
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' }).status === 0;
}
const canMount = (() => {
  const probe = join(tmpdir(), `gpt2-node-mount-probe-${process.pid}`);
  spawnSync('mkdir', ['-p', probe]);
  const mounted = tryMount(probe, '64k');
  if (mounted) spawnSync('umount', [probe]);
  spawnSync('rmdir', [probe]);
  return mounted;
})();

(canMount ? test.serial : test.serial.skip)('a full disk (a 3 MiB tmpfs): convert, quantize and a hub download reject with ERR_IO and leave nothing', async (t) => {
  const dir = await newDir();
  t.true(tryMount(dir, '3m'));
  const hub = await new FakeHub().start();
  try {
    const disk = join(dir, 'out');
    await mkdir(disk);
    await t.throwsAsync(quantize(tiny, join(disk, 'q.gguf'), { type: 'q8_0' }), { instanceOf: Gpt2Error, code: 'ERR_IO' });
    await t.throwsAsync(convert(tiny, join(disk, 'c.gguf'), { type: 'f16' }), { instanceOf: Gpt2Error, code: 'ERR_IO' });
    t.deepEqual(await readdir(disk), []);
    const content = randomBytes(4_000_000);
    hub.addRepo('t/enospc', { 'm.gguf': { content, lfs: true } });
    const cacheDir = join(dir, 'cache');
    const e = await t.throwsAsync(downloadModel('hf:t/enospc/m.gguf', { cacheDir, endpoint: hub.endpoint, token: false }), { instanceOf: Gpt2Error, code: 'ERR_IO' });
    t.regex(e?.message ?? '', /ENOSPC/);
    t.is(hub.requests('GET', 'cdn', sha256(content)).length, 1);
    t.deepEqual(await readdir(join(cacheDir, 'models--t--enospc', 'blobs')), []);
    // with room again, the same download completes
    await rm(disk, { recursive: true });
    hub.addRepo('t/small', { 'm.gguf': { content: content.subarray(0, 1_000_000), lfs: true } });
    t.truthy(await downloadModel('hf:t/small/m.gguf', { cacheDir, endpoint: hub.endpoint, token: false }));
  } finally {
    await hub.close();
    spawnSync('umount', [dir]);
  }
});

// ---------------------------------------------------------------------------------------------
// Too little memory at load

// Under `ulimit -v` (an address-space limit) an allocation or a mapping is refused, which is
// how the library can see memory run out; --jitless because tsx's WebAssembly lexer cannot
// reserve its memory under the limit. The limit is this machine's baseline (a child that
// loaded the tiny model) plus 160 MiB.
let baselineKb: Promise<number> | undefined;
function baseline(): Promise<number> {
  baselineKb ??= runChild(`
    const { loadModel } = await import(LIB);
    const m = await loadModel(${JSON.stringify(tiny)}, { threads: 1 });
    await m.complete('x', { maxTokens: 2 });
    const fs = await import('node:fs');
    console.log(/VmSize:\\s*(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);`, { nodeArgs: ['--jitless'] })
    .then((r) => {
      if (r.code !== 0) throw new Error(describeChild(r));
      return Number(r.stdout.trim());
    });
  return baselineKb;
}

// Not under AddressSanitizer (scripts/sanitize.sh): its shadow memory takes terabytes of address
// space, and its allocator aborts rather than return null, so an address-space limit tests ASan.
const underAsan = (process.env['LD_PRELOAD'] ?? '').includes('libasan');
const memoryTest = process.platform === 'linux' && !underAsan ? test : test.skip;

/** In a child under the limit: loads `path` with `options`, prints how it ended; then loads the tiny model and generates. */
async function loadUnderLimit(path: string, options: object): Promise<ChildResult> {
  const limit = await baseline() + 160 * 1024;
  return runChild(`
    const { loadModel } = await import(LIB);
    try {
      const m = await loadModel(${JSON.stringify(path)}, ${JSON.stringify({ threads: 1, ...options })});
      console.log('loaded');
      await m.dispose();
    } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })); }
    const small = await loadModel(${JSON.stringify(tiny)}, { threads: 1 });
    console.log('then ' + (await small.complete('still', { maxTokens: 3, temperature: 0, ignoreEos: true })).tokens.length);
    await small.dispose();`, { shell: `ulimit -v ${limit}`, nodeArgs: ['--jitless'] });
}

/** A GGUF whose file is 2 GiB (the tiny model and a sparse tail): more than the limit leaves to map. */
async function hugeFile(): Promise<string> {
  const f = join(await newDir(), 'huge.gguf');
  await copyFile(tiny, f);
  await truncate(f, 2 ** 31);
  return f;
}

memoryTest('a KV cache larger than the memory left: loadModel rejects with ERR_OUT_OF_MEMORY, the process goes on', async (t) => {
  // 4096 sequences × 512 positions × 2 layers × 64 × (K + V) × f16 = 1 GiB
  const r = await loadUnderLimit(tiny, { maxSequences: 4096 });
  ok(t, r);
  const [first, then] = r.stdout.trim().split('\n');
  t.like(JSON.parse(first!), { name: 'Gpt2Error', code: 'ERR_OUT_OF_MEMORY' }, r.stdout);
  t.regex(first!, /KV cache \(4096 sequences × 512 positions\)/);
  t.is(then, 'then 3');
});

memoryTest('a model file larger than the address space left: loadModel rejects with a Gpt2Error, the process goes on', async (t) => {
  const r = await loadUnderLimit(await hugeFile(), {});
  ok(t, r);
  const [first, then] = r.stdout.trim().split('\n');
  t.like(JSON.parse(first!), { name: 'Gpt2Error' }, r.stdout);
  t.true(['ERR_IO', 'ERR_OUT_OF_MEMORY'].includes((JSON.parse(first!) as { code: string }).code), first);
  t.regex(first!, /allocate/i, 'refused for want of memory (the same file loads without the limit)');
  t.is(then, 'then 3');
});

memoryTest('a model file larger than the address space left: the code is ERR_OUT_OF_MEMORY', async (t) => {
  // As built: mmap's ENOMEM is reported as ERR_IO ("cannot map file (Cannot allocate memory)").
  const r = await loadUnderLimit(await hugeFile(), {});
  ok(t, r);
  t.like(JSON.parse(r.stdout.trim().split('\n')[0]!), { name: 'Gpt2Error', code: 'ERR_OUT_OF_MEMORY' }, r.stdout);
});
