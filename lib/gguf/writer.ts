// A GGUF v3 writer (little-endian) that streams to a file: the header, metadata and tensor
// infos are written first, then each tensor's data as its source produces it, chunk by chunk,
// so a 1.5 GB model never sits in one Buffer. Encoders for f32, f16, bf16, q8_0 and q4_0 (ggml's
// block layouts, see ggml-common.h); other types come from native quantization, not from here.
// It does not read files (reader.ts) and knows nothing of GPT-2 (lib/testing/random-model.ts).
//
// Layout written (what ggml's gguf reader expects): tensors in the order given, the data
// section starting at a multiple of the alignment, every tensor's data padded with zeros to a
// multiple of the alignment, offsets counted from the start of the data section.
import { open, rm, type FileHandle } from 'node:fs/promises';
import {
  GGML_MAX_DIMS, GGML_MAX_NAME, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_SCALAR_SIZE, GGUF_VERSION,
  GgmlType, GgufType, ggmlBlockLayout, ggmlTensorBytes,
  type GgmlTypeName, type GgufScalarTypeName, type GgufValue,
} from './reader.js';

/** The tensor types this writer can encode from f32 values. */
export type EncodableType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0';

export interface GgufTensorSpec {
  name: string;
  type: GgmlTypeName;
  /** ggml order, ne0 first (ne0 is the contiguous row). */
  shape: readonly number[];
  /**
   * Produces the data in order. Float32Array chunks are encoded to `type` (which must then be
   * encodable, and each chunk's length a multiple of the type's block size); Uint8Array chunks
   * are written as they are (already in `type`'s layout). The total must match the shape.
   */
  data: () => Iterable<Float32Array | Uint8Array> | AsyncIterable<Float32Array | Uint8Array>;
}

export interface GgufWriteOptions {
  /** Metadata in the order to write it; `general.alignment` is added when alignment ≠ 32. */
  kv: ReadonlyArray<readonly [string, GgufValue]> | ReadonlyMap<string, GgufValue>;
  tensors: readonly GgufTensorSpec[];
  /** Power of two; default 32 (GGUF's default). */
  alignment?: number;
}

/** Bad arguments throw TypeError (wrong kind of value) or RangeError (right kind, bad value), as lib/validate.ts. */
function invalid(message: string, kind: 'type' | 'range' = 'range'): never {
  throw kind === 'type' ? new TypeError(message) : new RangeError(message);
}

// ---- scalar encoders -------------------------------------------------------------------------

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** number → IEEE half bits, round to nearest even (as F16C / ggml's FP32_TO_FP16). */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;                                                // overflow → inf
  if (e <= 0) {                                                                      // subnormal or 0
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1) !== 0)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++; // may carry into the exponent: correct
  return sign | h;
}

/** number → bfloat16 bits, round to nearest even, NaN kept quiet (as ggml). */
export function f32ToBf16(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---- tensor encoders: Float32Array → the type's bytes ----------------------------------------

export function encodeF32(src: Float32Array): Uint8Array {
  return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
}

export function encodeF16(src: Float32Array): Uint8Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16(src[i]!);
  return new Uint8Array(out.buffer);
}

export function encodeBF16(src: Float32Array): Uint8Array {
  const out = new Uint16Array(src.length);
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const v = u[i]!;
    out[i] = (v & 0x7fffffff) > 0x7f800000 ? ((v >>> 16) | 0x40) & 0xffff : ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return new Uint8Array(out.buffer);
}

/** round half away from zero, like C's roundf */
function roundAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * q8_0: blocks of 32 values → 34 bytes: f16 scale d = amax/127, then 32 int8 q = round(x/d).
 * x ≈ d·q; the error is at most d/2 (+ d's own f16 rounding, relative 2⁻¹¹).
 */
export function encodeQ8_0(src: Float32Array): Uint8Array {
  if (src.length % 32 !== 0) invalid(`Expected a multiple of 32 values for q8_0 but received ${src.length}`);
  const nb = src.length / 32;
  const out = new Uint8Array(nb * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const base = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[base + j]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    dv.setUint16(b * 34, f32ToF16(d), true);
    for (let j = 0; j < 32; j++) dv.setInt8(b * 34 + 2 + j, roundAway(Math.fround(src[base + j]! * id)));
  }
  return out;
}

/**
 * q4_0: blocks of 32 values → 18 bytes: f16 scale d = m/-8 where m is the value of largest
 * magnitude (sign kept, so m maps to -8 exactly), then 16 bytes of 4-bit q = x/d + 8 clamped
 * to [0, 15]; byte j holds value j in its low nibble and value j+16 in its high nibble.
 */
export function encodeQ4_0(src: Float32Array): Uint8Array {
  if (src.length % 32 !== 0) invalid(`Expected a multiple of 32 values for q4_0 but received ${src.length}`);
  const nb = src.length / 32;
  const out = new Uint8Array(nb * 18);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const base = b * 32;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = src[base + j]!;
      if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    dv.setUint16(b * 18, f32ToF16(d), true);
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, Math.trunc(Math.fround(src[base + j]! * id) + 8.5));
      const hi = Math.min(15, Math.trunc(Math.fround(src[base + 16 + j]! * id) + 8.5));
      out[b * 18 + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

const encoders: Readonly<Record<EncodableType, (src: Float32Array) => Uint8Array>> = {
  F32: encodeF32, F16: encodeF16, BF16: encodeBF16, Q8_0: encodeQ8_0, Q4_0: encodeQ4_0,
};

export function isEncodable(type: GgmlTypeName): type is EncodableType {
  return Object.hasOwn(encoders, type);
}

/** Encode f32 values to `type`'s bytes. */
export function encodeTensor(type: EncodableType, src: Float32Array): Uint8Array {
  return encoders[type](src);
}

// ---- metadata serialization ------------------------------------------------------------------

/** Grows a Buffer as metadata is appended (metadata is small: a vocabulary is ~2 MB). */
class ByteSink {
  buf = Buffer.alloc(1 << 16);
  len = 0;

  /** Make room for n more bytes; returns their offset. Call it before reading `this.buf`. */
  private reserve(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    const o = this.len;
    this.len += n;
    return o;
  }

  u8(v: number): void { const o = this.reserve(1); this.buf.writeUInt8(v, o); }
  u32(v: number): void { const o = this.reserve(4); this.buf.writeUInt32LE(v, o); }
  u64(v: number | bigint): void { const o = this.reserve(8); this.buf.writeBigUInt64LE(BigInt(v), o); }
  i64(v: number | bigint): void { const o = this.reserve(8); this.buf.writeBigInt64LE(BigInt(v), o); }
  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    const o = this.reserve(n);
    this.buf.write(s, o, n, 'utf8');
  }
  pad(alignment: number): void {
    const n = (alignment - (this.len % alignment)) % alignment;
    const o = this.reserve(n);
    this.buf.fill(0, o, o + n);
  }

  scalar(type: GgufScalarTypeName, v: unknown, what: string): void {
    const expect = (kind: string, ok: boolean): void => {
      if (ok) return;
      const typeOk = kind.startsWith('integer') || kind === 'number' ? typeof v === 'number' : kind.startsWith('bigint') ? typeof v === 'bigint' : true;
      invalid(`Expected ${kind} for ${what} but received ${typeof v === 'bigint' ? `${v}n` : JSON.stringify(v)} of type ${typeof v}`, typeOk ? 'range' : 'type');
    };
    const int = (lo: number, hi: number): number => {
      expect(`integer between ${lo} and ${hi}`, Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi);
      return this.reserve(GGUF_SCALAR_SIZE[type]);
    };
    const num = (): number => {
      expect('number', typeof v === 'number');
      return this.reserve(GGUF_SCALAR_SIZE[type]);
    };
    const big = (lo: bigint, hi: bigint): number => {
      expect(`bigint between ${lo} and ${hi}`, typeof v === 'bigint' && v >= lo && v <= hi);
      return this.reserve(8);
    };
    const n = v as number;
    switch (type) {
      case 'u8': { const o = int(0, 0xff); this.buf.writeUInt8(n, o); return; }
      case 'i8': { const o = int(-0x80, 0x7f); this.buf.writeInt8(n, o); return; }
      case 'u16': { const o = int(0, 0xffff); this.buf.writeUInt16LE(n, o); return; }
      case 'i16': { const o = int(-0x8000, 0x7fff); this.buf.writeInt16LE(n, o); return; }
      case 'u32': { const o = int(0, 0xffffffff); this.buf.writeUInt32LE(n, o); return; }
      case 'i32': { const o = int(-0x80000000, 0x7fffffff); this.buf.writeInt32LE(n, o); return; }
      case 'f32': { const o = num(); this.buf.writeFloatLE(n, o); return; }
      case 'f64': { const o = num(); this.buf.writeDoubleLE(n, o); return; }
      case 'u64': { const o = big(0n, (1n << 64n) - 1n); this.buf.writeBigUInt64LE(v as bigint, o); return; }
      case 'i64': { const o = big(-(1n << 63n), (1n << 63n) - 1n); this.buf.writeBigInt64LE(v as bigint, o); return; }
      case 'bool': if (typeof v !== 'boolean') invalid(`Expected boolean for ${what} but received ${JSON.stringify(v)} of type ${typeof v}`, 'type');
        this.u8(v ? 1 : 0); return;
      case 'string': if (typeof v !== 'string') invalid(`Expected string for ${what} but received ${JSON.stringify(v)} of type ${typeof v}`, 'type');
        this.string(v); return;
    }
  }

  value(key: string, kv: GgufValue): void {
    const id = GgufType[kv.type] as number | undefined;
    if (id === undefined) invalid(`Expected a GGUF value type for '${key}' but received ${String(kv.type)}`);
    this.u32(id);
    if (kv.type !== 'array') {
      this.scalar(kv.type, kv.value, `'${key}'`);
      return;
    }
    const itemId = GgufType[kv.itemType] as number | undefined;
    if (itemId === undefined || kv.itemType === ('array' as string)) {
      invalid(`Expected a scalar item type for array '${key}' but received ${String(kv.itemType)}`);
    }
    this.u32(itemId);
    this.u64(kv.value.length);
    for (let i = 0; i < kv.value.length; i++) this.scalar(kv.itemType, kv.value[i], `item ${i} of '${key}'`);
  }
}

// ---- the file --------------------------------------------------------------------------------

function checkTensor(t: GgufTensorSpec, names: Set<string>): void {
  const nameBytes = Buffer.byteLength(t.name);
  if (nameBytes === 0 || nameBytes >= GGML_MAX_NAME) invalid(`Expected a tensor name of 1 to ${GGML_MAX_NAME - 1} bytes but received '${t.name}'`);
  if (names.has(t.name)) invalid(`Expected unique tensor names but '${t.name}' appears twice`);
  names.add(t.name);
  if (!Object.hasOwn(GgmlType, t.type)) invalid(`Expected a ggml type for tensor '${t.name}' but received ${String(t.type)}`);
  if (t.shape.length < 1 || t.shape.length > GGML_MAX_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 1)) {
    invalid(`Expected 1 to ${GGML_MAX_DIMS} positive integer dimensions for tensor '${t.name}' but received [${t.shape.join(', ')}]`);
  }
  const [bs] = ggmlBlockLayout(t.type);
  if (t.shape[0]! % bs !== 0) invalid(`Expected ne0 of tensor '${t.name}' to be a multiple of ${bs} for type ${t.type} but received ${t.shape[0]}`);
}

/** Write a GGUF file. On failure the partial file is removed and the error rethrown. */
export async function writeGguf(path: string, opts: GgufWriteOptions): Promise<void> {
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment < 1 || alignment > 0x40000000 || (alignment & (alignment - 1)) !== 0) {
    invalid(`Expected a power of 2 for alignment but received ${alignment}`);
  }
  const kv = new Map<string, GgufValue>(opts.kv instanceof Map ? opts.kv : new Map(opts.kv as ReadonlyArray<[string, GgufValue]>));
  const al = kv.get('general.alignment');
  if (al !== undefined && (al.type !== 'u32' || al.value !== alignment)) {
    invalid(`Expected general.alignment to be the u32 ${alignment} but received ${al.type} ${String(al.value)}`);
  }
  if (al === undefined && alignment !== GGUF_DEFAULT_ALIGNMENT) kv.set('general.alignment', { type: 'u32', value: alignment });

  const names = new Set<string>();
  for (const t of opts.tensors) checkTensor(t, names);

  // header, metadata, tensor infos: all offsets are known from the shapes before any data
  const head = new ByteSink();
  head.u32(GGUF_MAGIC);
  head.u32(GGUF_VERSION);
  head.i64(opts.tensors.length);
  head.i64(kv.size);
  for (const [key, value] of kv) {
    if (key.length === 0) invalid('Expected a non-empty metadata key');
    head.string(key);
    head.value(key, value);
  }
  const sizes = opts.tensors.map((t) => ggmlTensorBytes(t.type, t.shape));
  let offset = 0;
  opts.tensors.forEach((t, i) => {
    head.string(t.name);
    head.u32(t.shape.length);
    for (const d of t.shape) head.i64(d);
    head.u32(GgmlType[t.type]);
    head.u64(offset);
    offset += Math.ceil(sizes[i]! / alignment) * alignment;
  });
  if (opts.tensors.length > 0) head.pad(alignment);

  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'w');
    await writeFully(fh, head.buf.subarray(0, head.len));
    const zeros = new Uint8Array(alignment);
    for (const [i, t] of opts.tensors.entries()) {
      const written = await writeTensorData(fh, t);
      if (written !== sizes[i]) {
        invalid(`Expected ${sizes[i]} bytes of data for tensor '${t.name}' but its source produced ${written}`);
      }
      const padding = (alignment - (written % alignment)) % alignment;
      if (padding > 0) await writeFully(fh, zeros.subarray(0, padding));
    }
    await fh.close();
    fh = undefined;
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await rm(path, { force: true }).catch(() => undefined);
    throw err;
  }
}

async function writeFully(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

async function writeTensorData(fh: FileHandle, t: GgufTensorSpec): Promise<number> {
  const [bs] = ggmlBlockLayout(t.type);
  let written = 0;
  for await (const chunk of t.data()) {
    let bytes: Uint8Array;
    if (chunk instanceof Float32Array) {
      if (!isEncodable(t.type)) invalid(`Expected encoded bytes for tensor '${t.name}' of type ${t.type}: it cannot be encoded from f32 here`);
      if (chunk.length % bs !== 0) invalid(`Expected chunks of a multiple of ${bs} values for tensor '${t.name}' but received ${chunk.length}`);
      bytes = encodeTensor(t.type, chunk);
    } else if (chunk instanceof Uint8Array) {
      bytes = chunk;
    } else {
      invalid(`Expected Float32Array or Uint8Array chunks for tensor '${t.name}'`, 'type');
    }
    await writeFully(fh, bytes);
    written += bytes.length;
  }
  return written;
}
