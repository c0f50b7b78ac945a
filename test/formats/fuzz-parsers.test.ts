// Fuzzing the three model parsers (GGUF through ggml's gguf reader and our checks, the
// safetensors header, the legacy ggml layout) with random and mutated inputs: every load must
// either succeed or reject with a Gpt2Error (ERR_BAD_MODEL); no crash (the test process would
// die), no hang (ava's timeout), and no allocation sized by a corrupt field (it would surface as
// ERR_OUT_OF_MEMORY / ERR_INTERNAL, or kill the process). Deterministic: a fixed seed per
// format, and a failure message names the iteration and the mutation.
//
// The model is the micro GPT-2 (test/support/micro-model.ts: ~10 KB) so that most mutations land
// in headers, where the parsing happens. 1000 mutations per parser by
// default; GPT2_NODE_FUZZ_ITERATIONS=N runs more (8000 each passed on 2026-11-28).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Gpt2Error, loadModel } from '../../lib/index.js';
import { writeHfFolder, writeLegacyGgml } from '../support/export-formats.js';
import { writeMicroModel } from '../support/micro-model.js';

const ITERATIONS = Number(process.env.GPT2_NODE_FUZZ_ITERATIONS ?? 1000);
let dir: string;
let gguf: string;
let hf: string;
let legacy: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gpt2-node-fuzz-'));
  gguf = join(dir, 'micro.gguf');
  hf = join(dir, 'hf');
  legacy = join(dir, 'micro.bin');
  await writeMicroModel(gguf);
  await writeHfFolder(gguf, hf);
  await writeLegacyGgml(gguf, legacy);
});
test.after.always(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

/** xorshift32: a reproducible stream of random integers. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s % n;
  };
}

const EXTREMES = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 1 << 24, 1 << 30];

/** One random mutation of `src` (a copy); returns it and a description. */
function mutateBytes(src: Buffer, r: (n: number) => number, hot: number): [Buffer, string] {
  const b = Buffer.from(src);
  const at = (): number => (r(4) === 0 ? r(b.length) : r(Math.min(hot, b.length)));   // mostly in the header region
  switch (r(5)) {
    case 0: { const n = 1 + r(8); const out: number[] = []; for (let i = 0; i < n; i++) { const p = at(); b[p] = r(256); out.push(p); } return [b, `flip bytes at ${out.join(',')}`]; }
    case 1: { const p = at() & ~3; if (p + 4 <= b.length) b.writeUInt32LE(EXTREMES[r(EXTREMES.length)]!, p); return [b, `u32 extreme at ${p}`]; }
    case 2: { const p = at() & ~7; if (p + 8 <= b.length) b.writeBigUInt64LE(BigInt(EXTREMES[r(EXTREMES.length)]!) << BigInt(r(33)), p); return [b, `u64 extreme at ${p}`]; }
    case 3: { const n = r(b.length); return [b.subarray(0, n), `truncate to ${n}`]; }
    default: { const n = 1 + r(64); const p = at(); return [Buffer.concat([b.subarray(0, p), b.subarray(Math.min(b.length, p + n))]), `delete ${n} at ${p}`]; }
  }
}

/** Mutations of a safetensors header's JSON text (structure-aware: numbers, brackets, quotes). */
function mutateSafetensors(src: Buffer, r: (n: number) => number): [Buffer, string] {
  const len = Number(src.readBigUInt64LE(0));
  let json = src.subarray(8, 8 + len).toString();
  const data = src.subarray(8 + len);
  let what: string;
  const numbers = [...json.matchAll(/\d+/g)];
  switch (r(4)) {
    case 0: {
      const m = numbers[r(numbers.length)]!;
      const big = ['18446744073709551615', '18446744073709551616', '9007199254740993', '4294967296', '-1', '1e300', '0'][r(7)]!;
      json = json.slice(0, m.index) + big + json.slice(m.index! + m[0].length);
      what = `number at ${m.index} → ${big}`;
      break;
    }
    case 1: { const p = r(json.length); const ins = ['[', ']', '{', '}', '"', ',', ':', 'null', '[[[[[[[[', '"dtype":"F32"'][r(10)]!; json = json.slice(0, p) + ins + json.slice(p); what = `insert ${ins} at ${p}`; break; }
    case 2: { const p = r(json.length); const n = 1 + r(16); json = json.slice(0, p) + json.slice(p + n); what = `delete ${n} at ${p}`; break; }
    default: { const [b, w] = mutateBytes(src, r, 64); return [b, `bytes: ${w}`]; }
  }
  const head = Buffer.from(json);
  const l = Buffer.alloc(8);
  l.writeBigUInt64LE(BigInt(head.length));
  return [Buffer.concat([l, head, data]), what];
}

async function loadMust(t: ExecutionContext, path: string, what: string): Promise<boolean> {
  try {
    const m = await loadModel(path, { threads: 1 });
    await m.dispose();
    return true;
  } catch (e) {
    if (!(e instanceof Gpt2Error) || e.code !== 'ERR_BAD_MODEL') {
      t.fail(`${what}: ${e instanceof Gpt2Error ? e.code : 'not a Gpt2Error'}: ${String(e)}`);
    } else if (!e.message.includes(path)) {
      // the documented shape: the message names the file and the failed check
      t.fail(`${what}: the message does not name ${path}: ${e.message}`);
    }
    return false;
  }
}

async function fuzz(t: ExecutionContext, source: string, target: string, seed: number,
  mutate: (b: Buffer, r: (n: number) => number) => [Buffer, string]): Promise<void> {
  const original = await readFile(source);
  t.true(await loadMust(t, source, 'unmutated'), 'the unmutated file loads');
  const r = rng(seed);
  let loaded = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const [bytes, what] = mutate(original, r);
    await writeFile(target, bytes);
    if (await loadMust(t, target, `iteration ${i} (seed ${seed}): ${what}`)) loaded++;
  }
  t.log(`${ITERATIONS} mutations: ${loaded} loaded, ${ITERATIONS - loaded} rejected with ERR_BAD_MODEL`);
  t.true(loaded < ITERATIONS, 'mutations were rejected');
}

test('GGUF', async (t) => {
  await fuzz(t, gguf, join(dir, 'fuzz.gguf'), 0x9e3779b9, (b, r) => mutateBytes(b, r, 6000));
});

test('safetensors header', async (t) => {
  const file = join(hf, 'model.safetensors');
  await fuzz(t, file, file, 0x85ebca6b, mutateSafetensors);
});

test('legacy ggml', async (t) => {
  await fuzz(t, legacy, join(dir, 'fuzz.bin'), 0xc2b2ae35, (b, r) => mutateBytes(b, r, 3000));
});

// At most 516 bytes cannot hold a GPT-2 model (its tensors alone take more): every one must be
// rejected, and with ERR_BAD_MODEL (loadMust fails the test on any other outcome).
test('random bytes of random lengths are rejected with ERR_BAD_MODEL', async (t) => {
  const r = rng(12345);
  const path = join(dir, 'random.bin');
  const prefixes = [Buffer.from('GGUF'), Buffer.from([0x6c, 0x6d, 0x67, 0x67]), Buffer.from([0x20, 0, 0, 0, 0, 0, 0, 0, 0x7b]), Buffer.alloc(0)];
  for (let i = 0; i < ITERATIONS; i++) {
    const body = Buffer.from(Array.from({ length: r(512) }, () => r(256)));
    const prefix = prefixes[r(prefixes.length)]!;
    await writeFile(path, Buffer.concat([prefix, body]));
    t.false(await loadMust(t, path, `random file ${i}`), `random file ${i} (${prefix.length + body.length} bytes) loaded`);
  }
});
