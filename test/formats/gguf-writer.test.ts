// The GGUF writer and metadata reader (lib/gguf/), the tensor encoders, and the random test
// models (lib/testing/random-model.ts): round trips, layout, bounds errors, and llama.cpp
// loading what we write. Weight-free apart from the tiny generated models.
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gpt2Error } from '../../lib/errors.js';
import {
  decodeTensor, f16ToF32, GGUF_MAX_ARRAY_ITEMS, readGgufMetadata, readGgufTensorBytes, type GgufValue,
} from '../../lib/gguf/reader.js';
import {
  encodeQ4_0, encodeQ8_0, f32ToBf16, f32ToF16, writeGguf, type GgufTensorSpec,
} from '../../lib/gguf/writer.js';
import { NormalRng, writeRandomModel } from '../../lib/testing/random-model.js';
import { VOCAB_GGUF } from '../support/models.js';
import { refLogits } from '../support/ref.js';

const dir = mkdtempSync(join(tmpdir(), 'gpt2-gguf-test-'));
test.after.always(() => rm(dir, { recursive: true, force: true }));
let counter = 0;
const tmp = (name: string): string => join(dir, `${counter++}-${name}`);

const f32Tensor = (name: string, shape: number[], values: number[] | Float32Array, type: GgufTensorSpec['type'] = 'F32'): GgufTensorSpec =>
  ({ name, type, shape, data: () => [Float32Array.from(values)] });

function randn(n: number, seed: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  new NormalRng(seed).fill(out, 0, std);
  return out;
}

async function throwsBadModel(t: import('ava').ExecutionContext, path: string, message: RegExp): Promise<void> {
  const err = await t.throwsAsync(readGgufMetadata(path), { instanceOf: Gpt2Error, message });
  t.is(err?.code, 'ERR_BAD_MODEL');
}

// ---- metadata ----------------------------------------------------------------------------------

test('every metadata value type round-trips, string arrays included', async (t) => {
  const kv: Array<[string, GgufValue]> = [
    ['t.u8', { type: 'u8', value: 255 }],
    ['t.i8', { type: 'i8', value: -128 }],
    ['t.u16', { type: 'u16', value: 65535 }],
    ['t.i16', { type: 'i16', value: -32768 }],
    ['t.u32', { type: 'u32', value: 4294967295 }],
    ['t.i32', { type: 'i32', value: -2147483648 }],
    ['t.f32', { type: 'f32', value: Math.fround(0.1) }],
    ['t.bool', { type: 'bool', value: true }],
    ['t.bool0', { type: 'bool', value: false }],
    ['t.string', { type: 'string', value: 'Ġhello wörld 🙂' }],
    ['t.empty', { type: 'string', value: '' }],
    ['t.u64', { type: 'u64', value: (1n << 64n) - 1n }],
    ['t.i64', { type: 'i64', value: -(1n << 63n) }],
    ['t.f64', { type: 'f64', value: Math.PI }],
    ['a.u8', { type: 'array', itemType: 'u8', value: [0, 1, 255] }],
    ['a.i8', { type: 'array', itemType: 'i8', value: [-1, 127] }],
    ['a.u16', { type: 'array', itemType: 'u16', value: [7] }],
    ['a.i16', { type: 'array', itemType: 'i16', value: [-7, 8] }],
    ['a.u32', { type: 'array', itemType: 'u32', value: [1, 50256] }],
    ['a.i32', { type: 'array', itemType: 'i32', value: [1, -1, 3] }],
    ['a.f32', { type: 'array', itemType: 'f32', value: [1.5, -2.25] }],
    ['a.bool', { type: 'array', itemType: 'bool', value: [true, false, true] }],
    ['a.string', { type: 'array', itemType: 'string', value: ['Ġ t', 'h e', '', '日本'] }],
    ['a.u64', { type: 'array', itemType: 'u64', value: [0n, 1n << 40n] }],
    ['a.i64', { type: 'array', itemType: 'i64', value: [-5n] }],
    ['a.f64', { type: 'array', itemType: 'f64', value: [1e300] }],
    ['a.empty', { type: 'array', itemType: 'string', value: [] }],
  ];
  const path = tmp('kv.gguf');
  await writeGguf(path, { kv, tensors: [] });
  const meta = await readGgufMetadata(path);
  t.is(meta.version, 3);
  t.deepEqual([...meta.kv.keys()], kv.map(([k]) => k));
  for (const [key, value] of kv) t.deepEqual(meta.kv.get(key), value, key);
  t.deepEqual(meta.tensors, []);
  // no tensors: no padding after the metadata
  t.is(meta.dataOffset, meta.fileSize);
});

test('tensor infos, offsets, alignment padding and data', async (t) => {
  const path = tmp('tensors.gguf');
  const a = [1, 2, 3];                    // 12 bytes: padded to 32
  const b = Array.from({ length: 40 }, (_, i) => i - 20);
  await writeGguf(path, {
    kv: [['general.architecture', { type: 'string', value: 'gpt2' }]],
    tensors: [f32Tensor('a', [3], a), f32Tensor('b', [8, 5], b, 'F16'), f32Tensor('c', [2, 2, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8], 'BF16')],
  });
  const meta = await readGgufMetadata(path);
  t.is(meta.alignment, 32);
  t.false(meta.kv.has('general.alignment'));
  t.is(meta.dataOffset % 32, 0);
  t.deepEqual(meta.tensors.map((x) => [x.name, x.type, x.shape, x.offset, x.size]), [
    ['a', 'F32', [3], 0, 12],
    ['b', 'F16', [8, 5], 32, 80],
    ['c', 'BF16', [2, 2, 1, 2], 128, 16],
  ]);
  t.is(meta.fileSize, meta.dataOffset + 160); // the last tensor is padded too
  const raw = readFileSync(path);
  t.true(raw.subarray(meta.dataOffset + 12, meta.dataOffset + 32).every((x) => x === 0), 'padding is zeros');
  t.deepEqual(Array.from(decodeTensor('F32', await readGgufTensorBytes(path, meta, 'a'), 3)), a);
  t.deepEqual(Array.from(decodeTensor('F16', await readGgufTensorBytes(path, meta, 'b'), 40)), b);
  t.deepEqual(Array.from(decodeTensor('BF16', await readGgufTensorBytes(path, meta, 'c'), 8)), [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('a non-default alignment is written as general.alignment and honoured', async (t) => {
  const path = tmp('align.gguf');
  await writeGguf(path, { kv: [], tensors: [f32Tensor('x', [1], [1]), f32Tensor('y', [1], [2])], alignment: 256 });
  const meta = await readGgufMetadata(path);
  t.deepEqual(meta.kv.get('general.alignment'), { type: 'u32', value: 256 });
  t.is(meta.alignment, 256);
  t.is(meta.dataOffset % 256, 0);
  t.deepEqual(meta.tensors.map((x) => x.offset), [0, 256]);
});

test('writer validation messages', async (t) => {
  const path = tmp('bad.gguf');
  const cases: Array<[Parameters<typeof writeGguf>[1], string, ErrorConstructor?]> = [
    [{ kv: [], tensors: [], alignment: 24 }, 'Expected a power of 2 for alignment but received 24'],
    [{ kv: [['k', { type: 'u8', value: 256 }]], tensors: [] }, "Expected integer between 0 and 255 for 'k' but received 256 of type number"],
    [{ kv: [['k', { type: 'u64', value: 1 as unknown as bigint }]], tensors: [] }, "Expected bigint between 0 and 18446744073709551615 for 'k' but received 1 of type number", TypeError],
    [{ kv: [['k', { type: 'array', itemType: 'string', value: ['a', 2 as unknown as string] }]], tensors: [] }, "Expected string for item 1 of 'k' but received 2 of type number", TypeError],
    [{ kv: [['general.alignment', { type: 'u32', value: 64 }]], tensors: [] }, 'Expected general.alignment to be the u32 32 but received u32 64'],
    [{ kv: [], tensors: [f32Tensor('x', [32], new Float32Array(32)), f32Tensor('x', [32], new Float32Array(32))] }, "Expected unique tensor names but 'x' appears twice"],
    [{ kv: [], tensors: [f32Tensor('q', [16], new Float32Array(16), 'Q8_0')] }, "Expected ne0 of tensor 'q' to be a multiple of 32 for type Q8_0 but received 16"],
    [{ kv: [], tensors: [f32Tensor('x'.repeat(64), [1], [1])] }, `Expected a tensor name of 1 to 63 bytes but received '${'x'.repeat(64)}'`],
    [{ kv: [], tensors: [f32Tensor('x', [1, 1, 1, 1, 1], [1])] }, "Expected 1 to 4 positive integer dimensions for tensor 'x' but received [1, 1, 1, 1, 1]"],
    [{ kv: [], tensors: [f32Tensor('x', [4], [1, 2])] }, "Expected 16 bytes of data for tensor 'x' but its source produced 8"],
    [{ kv: [], tensors: [f32Tensor('k', [256], new Float32Array(256), 'Q4_K')] }, "Expected encoded bytes for tensor 'k' of type Q4_K: it cannot be encoded from f32 here"],
  ];
  for (const [opts, message, kind = RangeError] of cases) {
    await t.throwsAsync(writeGguf(path, opts), { instanceOf: kind, message });
  }
  // a failed write leaves no partial file
  t.throws(() => readFileSync(path), { code: 'ENOENT' });
});

// ---- encoders ----------------------------------------------------------------------------------

test('f32 → f16 rounds to nearest even, with subnormals, overflow and NaN', (t) => {
  const cases: Array<[number, number]> = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [1e9, 0x7c00],
    [-Infinity, 0xfc00], [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66], [2 ** -14 - 2 ** -25, 0x0400],
  ];
  for (const [x, h] of cases) t.is(f32ToF16(x), h, `f16(${x})`);
  t.true(Number.isNaN(f16ToF32(f32ToF16(NaN))));
  for (const h of [0x0001, 0x03ff, 0x0400, 0x3555, 0x7bff, 0xbc00]) t.is(f32ToF16(f16ToF32(h)), h);
});

test('f32 → bf16 rounds to nearest even and keeps NaN quiet', (t) => {
  t.is(f32ToBf16(1), 0x3f80);
  t.is(f32ToBf16(-2), 0xc000);
  t.is(f32ToBf16(1 + 2 ** -8), 0x3f80);            // tie, even stays
  t.is(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);        // tie, odd rounds up
  t.is(f32ToBf16(NaN) & 0x7fc0, 0x7fc0);
});

test('q8_0 encodes each block within half a step of its scale amax/127', (t) => {
  const x = randn(32 * 64, 7, 0.05);
  x.fill(0, 64, 96);                     // an all-zero block: scale 0, exact zeros
  const q = encodeQ8_0(x);
  t.is(q.length, 64 * 34);
  const y = decodeTensor('Q8_0', q, x.length);
  let maxRel = 0;
  for (let b = 0; b < 64; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = amax / 127;
    for (let j = 0; j < 32; j++) {
      const err = Math.abs(x[b * 32 + j]! - y[b * 32 + j]!);
      // half a step, plus the f16 rounding of d applied to up to 127 steps
      t.true(err <= d / 2 + 127 * d * 2 ** -11 + 1e-12, `block ${b}: |Δ| ${err} vs step ${d}`);
      if (amax > 0) maxRel = Math.max(maxRel, err / amax);
    }
  }
  t.deepEqual(Array.from(y.subarray(64, 96)), new Array(32).fill(0));
  t.true(maxRel > 0 && maxRel < 0.005, `max |Δ|/amax = ${maxRel}`);
  t.log(`q8_0 max |Δ|/amax = ${maxRel.toExponential(2)}`);
});

test('q8_0 block layout: f16 scale then 32 int8, round half away from zero', (t) => {
  const x = Float32Array.from({ length: 32 }, (_, i) => (i - 15) / 2);   // amax 8 → d = 8/127
  const q = encodeQ8_0(x);
  t.is(new DataView(q.buffer).getUint16(0, true), f32ToF16(8 / 127));
  const qs = Array.from(new Int8Array(q.buffer, 2, 32));
  t.deepEqual(qs, Array.from(x, (v) => { const r = v * Math.fround(1 / Math.fround(8 / 127)); return Math.sign(r) * Math.round(Math.abs(r)); }));
  t.is(qs[0], -119);   // -7.5·127/8 = -119.06
  t.is(qs[31], 127);
});

test('q4_0 encodes each block within one step of its scale and packs nibbles as ggml', (t) => {
  const x = randn(32 * 64, 11, 0.05);
  const y = decodeTensor('Q4_0', encodeQ4_0(x), x.length);
  let maxRel = 0;
  for (let b = 0; b < 64; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = amax / 8;
    for (let j = 0; j < 32; j++) {
      const err = Math.abs(x[b * 32 + j]! - y[b * 32 + j]!);
      // half a step, except at the clamped end (+8 steps stored as +7): one step
      t.true(err <= d * (1 + 2 ** -10) + 1e-12, `block ${b}: |Δ| ${err} vs step ${d}`);
      maxRel = Math.max(maxRel, err / amax);
    }
  }
  t.log(`q4_0 max |Δ|/amax = ${maxRel.toExponential(2)}`);

  // layout: value j in the low nibble of byte j, value j+16 in the high nibble; the largest
  // magnitude maps to q = 0 (-8 steps) exactly
  const z = new Float32Array(32);
  z[0] = -8; z[16] = 4; z[1] = 1; z[17] = 8 - 0.01;
  const q = encodeQ4_0(z);
  t.is(f16ToF32(new DataView(q.buffer).getUint16(0, true)), 1);   // d = -8 / -8
  t.is(q[2], 0 | ((4 + 8) << 4));
  t.is(q[3], (1 + 8) | (15 << 4));                                   // 7.99 + 8 clamps to 15
  t.is(q[4], 8 | (8 << 4));                                          // zeros are 8
});

// ---- bounds errors -----------------------------------------------------------------------------

/** A GGUF header followed by `body`; counts as given. */
function ggufBytes(nTensors: bigint, nKv: bigint, body: Buffer, version = 3): Buffer {
  const h = Buffer.alloc(24);
  h.write('GGUF', 0, 'latin1');
  h.writeUInt32LE(version, 4);
  h.writeBigInt64LE(nTensors, 8);
  h.writeBigInt64LE(nKv, 16);
  return Buffer.concat([h, body]);
}
const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const u64 = (v: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };
const str = (s: string): Buffer => Buffer.concat([u64(BigInt(Buffer.byteLength(s))), Buffer.from(s)]);

test('reader rejects corrupt files with ERR_BAD_MODEL and a precise message', async (t) => {
  const write = (b: Buffer): string => { const p = tmp('corrupt.gguf'); writeFileSync(p, b); return p; };
  await throwsBadModel(t, join(dir, 'missing.gguf'), /^Cannot open GGUF file .*missing\.gguf: ENOENT/);
  await throwsBadModel(t, write(Buffer.from('GGUF')), /: file is 4 bytes, shorter than a GGUF header \(24\)$/);
  await throwsBadModel(t, write(Buffer.alloc(64)), /: not a GGUF file \(magic is not "GGUF"\)$/);
  await throwsBadModel(t, write(ggufBytes(0n, 0n, Buffer.alloc(0), 1)), /: unsupported GGUF version 1 \(expected 2 or 3\)$/);
  await throwsBadModel(t, write(ggufBytes(0n, 1n << 40n, Buffer.alloc(16))), /: key\/value count 1099511627776 does not fit in the file$/);
  await throwsBadModel(t, write(ggufBytes(1n << 50n, 0n, Buffer.alloc(16))), /: tensor count 1125899906842624 does not fit in the file$/);
  await throwsBadModel(t, write(ggufBytes(0n, -1n, Buffer.alloc(16))), /: key\/value count -1 does not fit in the file$/);
  // a key whose length claims more than the file holds
  await throwsBadModel(t, write(ggufBytes(0n, 1n, Buffer.concat([u64(1n << 62n), Buffer.alloc(16)]))),
    /: length of key 0 is 4611686018427387904 but at most 16 fit in the rest of the file$/);
  // a string value longer than the file
  await throwsBadModel(t, write(ggufBytes(0n, 1n, Buffer.concat([str('k'), u32(8), u64(1000n), Buffer.from('abc')]))),
    /: length of value of 'k' is 1000 but at most 3 fit in the rest of the file$/);
  // an array count larger than the file could hold
  await throwsBadModel(t, write(ggufBytes(0n, 1n, Buffer.concat([str('k'), u32(9), u32(4), u64(1n << 33n), Buffer.alloc(8)]))),
    /: item count of 'k' is 8589934592 but at most 2 fit in the rest of the file$/);
  await throwsBadModel(t, write(ggufBytes(0n, 1n, Buffer.concat([str('k'), u32(13), Buffer.alloc(8)]))), /: key 'k' has unknown value type 13$/);
  await throwsBadModel(t, write(ggufBytes(0n, 1n, Buffer.concat([str('k'), u32(9), u32(9), u64(1n), Buffer.alloc(8)]))),
    /: key 'k' is a nested array, which is not supported$/);
  await throwsBadModel(t, write(ggufBytes(0n, 1n, Buffer.concat([str('k'), u32(7), Buffer.from([2])]))), /: value of 'k' is a bool of value 2$/);
  await throwsBadModel(t, write(ggufBytes(0n, 2n, Buffer.concat([str('k'), u32(0), Buffer.from([1]), str('k'), u32(0), Buffer.from([1])]))),
    /: duplicate key 'k'$/);
  await throwsBadModel(t, write(ggufBytes(0n, 1n, Buffer.concat([str('general.alignment'), u32(4), u32(48)]))),
    /: general\.alignment 48 is not a power of 2$/);
  await throwsBadModel(t, write(ggufBytes(0n, 1n, Buffer.concat([str('general.alignment'), u32(5), u32(64)]))),
    /: general\.alignment must be of type u32 but is i32$/);
  // truncated in the middle of a value
  await throwsBadModel(t, write(ggufBytes(0n, 1n, Buffer.concat([str('k'), u32(4), Buffer.from([1, 2])]))),
    /: value of 'k' runs past the end of the file \(needs 4 bytes at offset 37, file has 39\)$/);
  // tensor infos
  const info = (name: string, dims: bigint[], type: number, offset: bigint): Buffer =>
    Buffer.concat([str(name), u32(dims.length), ...dims.map((d) => { const b = Buffer.alloc(8); b.writeBigInt64LE(d); return b; }), u32(type), u64(offset)]);
  const pad = Buffer.alloc(64);
  await throwsBadModel(t, write(ggufBytes(1n, 0n, Buffer.concat([info('w', [1n, 1n, 1n, 1n, 1n], 0, 0n), pad]))), /: tensor 'w' has 5 dimensions, at most 4 allowed$/);
  await throwsBadModel(t, write(ggufBytes(1n, 0n, Buffer.concat([info('w', [-1n], 0, 0n), pad]))), /: tensor 'w' dimension 0 is -1$/);
  await throwsBadModel(t, write(ggufBytes(1n, 0n, Buffer.concat([info('w', [4n], 99, 0n), pad]))), /: tensor 'w' has unknown ggml type 99$/);
  await throwsBadModel(t, write(ggufBytes(1n, 0n, Buffer.concat([info('w', [16n], 8, 0n), pad]))),
    /: tensor 'w' of type Q8_0 has 16 elements per row, not a multiple of the block size 32$/);
  await throwsBadModel(t, write(ggufBytes(1n, 0n, Buffer.concat([info('w', [4n], 0, 8n), pad]))), /: tensor 'w' offset 8 is not a multiple of the alignment 32$/);
  await throwsBadModel(t, write(ggufBytes(1n, 0n, Buffer.concat([info('w', [1n << 20n], 0, 0n), pad]))),
    /: tensor 'w' dimension 0 is 1048576, more elements than the file has bytes$/);
  await throwsBadModel(t, write(ggufBytes(1n, 0n, Buffer.concat([info('w', [16n, 16n], 0, 0n), pad]))),
    /: tensor 'w' of 256 elements does not fit in the file$/);
  await throwsBadModel(t, write(ggufBytes(1n, 0n, Buffer.concat([info('w', [16n], 0, 32n), pad]))),
    /: data of tensor 'w' \(64 bytes at offset 96\) runs past the end of the file \(\d+ bytes\)$/);
  await throwsBadModel(t, write(ggufBytes(2n, 0n, Buffer.concat([info('w', [1n], 0, 0n), info('w', [1n], 0, 32n), pad]))), /: duplicate tensor name 'w'$/);
});

test('reader caps array items (a JS value each) at 2^24 per file, before making them', async (t) => {
  const write = (b: Buffer): string => { const p = tmp('items.gguf'); writeFileSync(p, b); return p; };
  const u8Array = (key: string, n: number): Buffer => Buffer.concat([str(key), u32(9), u32(0), u64(BigInt(n)), Buffer.alloc(n)]);
  const limit = GGUF_MAX_ARRAY_ITEMS;
  t.is(limit, 2 ** 24);
  // one array past the limit: its bytes fit the file, its JS values might not fit the heap
  await throwsBadModel(t, write(ggufBytes(0n, 1n, u8Array('big', limit + 1))),
    /: item count of 'big' is 16777217, more than the limit of 16777216 array items per file$/);
  // arrays under the limit each, over it together
  const half = limit / 2;
  await throwsBadModel(t, write(ggufBytes(0n, 2n, Buffer.concat([u8Array('a', half), u8Array('b', half + 1)]))),
    /: item count of 'b' is 8388609, more than the 8388608 left of the limit of 16777216 array items per file$/);
  // exactly the limit is read
  const meta = await readGgufMetadata(write(ggufBytes(0n, 2n, Buffer.concat([u8Array('a', half), u8Array('b', half)]))));
  const b = meta.kv.get('b');
  t.is(b?.type === 'array' ? b.value.length : -1, half);
});

// ---- random models ---------------------------------------------------------------------------

test('random model: llama.cpp gpt2 names, shapes, types and metadata', async (t) => {
  const path = tmp('tiny-q8.gguf');
  await writeRandomModel(path, { shape: 'tiny', type: 'q8_0', seed: 3, tiedOutput: false });
  const meta = await readGgufMetadata(path);
  const vocab = await readGgufMetadata(VOCAB_GGUF);
  const str = (k: string): unknown => meta.kv.get(k)?.value;
  t.is(str('general.architecture'), 'gpt2');
  t.is(str('general.name'), 'gpt2-random-tiny');
  t.is(str('general.file_type'), 7);
  t.is(str('gpt2.context_length'), 512);
  t.is(str('gpt2.embedding_length'), 64);
  t.is(str('gpt2.feed_forward_length'), 256);
  t.is(str('gpt2.block_count'), 2);
  t.is(str('gpt2.attention.head_count'), 4);
  t.is(str('gpt2.attention.layer_norm_epsilon'), Math.fround(1e-5));
  for (const [k, v] of vocab.kv) if (k.startsWith('tokenizer.ggml.')) t.deepEqual(meta.kv.get(k), v, k);
  t.is(str('tokenizer.ggml.model'), 'gpt2');
  t.is(str('tokenizer.ggml.eos_token_id'), 50256);
  const shapes = Object.fromEntries(meta.tensors.map((x) => [x.name, `${x.type} ${x.shape.join('x')}`]));
  const expected: Record<string, string> = {
    'token_embd.weight': 'Q8_0 64x50257', 'position_embd.weight': 'Q8_0 64x512',
    'output_norm.weight': 'F32 64', 'output_norm.bias': 'F32 64', 'output.weight': 'Q8_0 64x50257',
  };
  for (const b of ['blk.0', 'blk.1']) {
    Object.assign(expected, {
      [`${b}.attn_norm.weight`]: 'F32 64', [`${b}.attn_norm.bias`]: 'F32 64',
      [`${b}.attn_qkv.weight`]: 'Q8_0 64x192', [`${b}.attn_qkv.bias`]: 'F32 192',
      [`${b}.attn_output.weight`]: 'Q8_0 64x64', [`${b}.attn_output.bias`]: 'F32 64',
      [`${b}.ffn_norm.weight`]: 'F32 64', [`${b}.ffn_norm.bias`]: 'F32 64',
      [`${b}.ffn_up.weight`]: 'Q8_0 64x256', [`${b}.ffn_up.bias`]: 'F32 256',
      [`${b}.ffn_down.weight`]: 'Q8_0 256x64', [`${b}.ffn_down.bias`]: 'F32 64',
    });
  }
  t.deepEqual(shapes, expected);
});

test('random model: deterministic by seed, GPT-2 init statistics, norms never exactly 1 or 0', async (t) => {
  const [a, b, c] = [tmp('a.gguf'), tmp('b.gguf'), tmp('c.gguf')];
  await writeRandomModel(a, { shape: 'tiny', seed: 5 });
  await writeRandomModel(b, { shape: 'tiny', seed: 5 });
  await writeRandomModel(c, { shape: 'tiny', seed: 6 });
  t.true(readFileSync(a).equals(readFileSync(b)), 'same seed, same bytes');
  t.false(readFileSync(a).equals(readFileSync(c)), 'different seed, different bytes');

  const meta = await readGgufMetadata(a);
  t.false(meta.tensors.some((x) => x.name === 'output.weight'), 'tied by default');
  const stats = async (name: string): Promise<{ mean: number; std: number; values: Float32Array }> => {
    const info = meta.tensors.find((x) => x.name === name)!;
    const n = info.shape.reduce((p, q) => p * q, 1);
    const values = decodeTensor(info.type, await readGgufTensorBytes(a, meta, name), n);
    let s = 0, s2 = 0;
    for (const v of values) { s += v; s2 += v * v; }
    const mean = s / n;
    return { mean, std: Math.sqrt(s2 / n - mean * mean), values };
  };
  const near = (x: number, want: number, rel: number, what: string): void => {
    t.true(Math.abs(x - want) <= rel * want, `${what}: ${x} vs ${want}`);
  };
  const embd = await stats('token_embd.weight');
  near(embd.std, 0.02, 0.01, 'token_embd std');
  t.true(Math.abs(embd.mean) < 1e-4);
  near((await stats('blk.0.attn_qkv.weight')).std, 0.02, 0.05, 'attn_qkv std');
  near((await stats('blk.1.ffn_down.weight')).std, 0.02 / Math.sqrt(4), 0.05, 'ffn_down std (residual scaling)');
  near((await stats('blk.0.attn_output.weight')).std, 0.02 / Math.sqrt(4), 0.05, 'attn_output std (residual scaling)');
  for (const norm of ['blk.0.attn_norm', 'blk.1.ffn_norm', 'output_norm']) {
    const w = await stats(`${norm}.weight`);
    const bias = await stats(`${norm}.bias`);
    t.false(w.values.some((v) => v === 1), `${norm}.weight has no exact 1`);
    t.false(bias.values.some((v) => v === 0), `${norm}.bias has no exact 0`);
    t.true(Math.abs(w.mean - 1) < 0.05 && w.std > 0.05 && w.std < 0.15, `${norm}.weight ~ 1 + N(0, 0.1): mean ${w.mean} std ${w.std}`);
    t.true(bias.std > 0.01 && bias.std < 0.03, `${norm}.bias ~ N(0, 0.02): std ${bias.std}`);
  }
  // initScale multiplies the standard deviations
  const big = tmp('big.gguf');
  await writeRandomModel(big, { shape: { nLayer: 1, nEmbd: 32, nHead: 2, nCtx: 16 }, initScale: 4, seed: 5 });
  const bm = await readGgufMetadata(big);
  const info = bm.tensors.find((x) => x.name === 'token_embd.weight')!;
  const v = decodeTensor('F32', await readGgufTensorBytes(big, bm, info.name), 32 * 50257);
  let s2 = 0;
  for (const x of v) s2 += x * x;
  near(Math.sqrt(s2 / v.length), 0.08, 0.01, 'initScale 4 std');
});

test('random model option validation messages', async (t) => {
  const path = tmp('never.gguf');
  const cases: Array<[Parameters<typeof writeRandomModel>[1], string]> = [
    [{ shape: 'huge' as 'tiny' }, 'Expected one of tiny, 124M, 355M, 774M, 1.5B or {nLayer, nEmbd, nHead, nCtx} for shape but received "huge"'],
    [{ shape: { nLayer: 0, nEmbd: 64, nHead: 4, nCtx: 8 } }, 'Expected integer between 1 and 1024 for shape.nLayer but received 0'],
    [{ shape: { nLayer: 1, nEmbd: 64, nHead: 3, nCtx: 8 } }, 'Expected shape.nEmbd (64) to be a multiple of shape.nHead (3)'],
    [{ shape: { nLayer: 1, nEmbd: 48, nHead: 3, nCtx: 8 }, type: 'q4_0' }, 'Expected shape.nEmbd to be a multiple of 32 for type q4_0 but received 48'],
    [{ shape: 'tiny', type: 'q5_0' as 'f32' }, 'Expected one of f32, f16, bf16, q8_0, q4_0 for type but received "q5_0"'],
    [{ shape: 'tiny', seed: -1 }, 'Expected integer between 0 and 4294967295 for seed but received -1'],
    [{ shape: 'tiny', initScale: 0 }, 'Expected positive number for initScale but received 0'],
  ];
  for (const [opts, message] of cases) {
    const err = await t.throwsAsync(writeRandomModel(path, opts), { instanceOf: RangeError });
    t.is(err?.message, message);
  }
  await t.throwsAsync(writeRandomModel(path, { shape: 'tiny', seed: '1' as unknown as number }), {
    instanceOf: TypeError, message: 'Expected integer between 0 and 4294967295 for seed but received 1',
  });
  const err = await t.throwsAsync(writeRandomModel(path, { shape: 'tiny', vocabGguf: join(dir, 'nope.gguf') }), { instanceOf: Gpt2Error });
  t.is(err?.code, 'ERR_BAD_MODEL');
  t.regex(err?.message ?? '', /^Vocabulary GGUF not found at .*nope\.gguf/);
});

test('llama.cpp loads every type we write and gives finite, deterministic logits', async (t) => {
  const tokens = [464, 3616, 286, 1204, 318];
  let lastOnly: string | undefined;
  for (const type of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'] as const) {
    const path = tmp(`ll-${type}.gguf`);
    lastOnly ??= path;
    await writeRandomModel(path, { shape: 'tiny', type, seed: 9, tiedOutput: type !== 'f16' });
    const r1 = await refLogits(path, tokens, { allLogits: true, greedy: 3 });
    const r2 = await refLogits(path, tokens, { allLogits: true, greedy: 3 });
    t.is(r1.nVocab, 50257, type);
    t.is(r1.nRows, tokens.length, type);
    t.is(r1.greedy.length, 3, type);
    t.true(r1.logits.every(Number.isFinite), `${type}: finite logits`);
    t.deepEqual(r1.logits, r2.logits, `${type}: deterministic`);
    let spread = 0;
    for (const v of r1.logits) spread = Math.max(spread, Math.abs(v));
    t.true(spread > 0.05, `${type}: logits are not flat (max |logit| ${spread})`);
  }
  const last = await refLogits(lastOnly!, tokens);
  t.is(last.nRows, 1);
});
