// A small GGUF metadata reader: header, key/value metadata and tensor infos, never tensor data.
// Used to take `tokenizer.ggml.*` from a vocab GGUF and to check what the writer wrote. It
// also holds what reader and writer share: the GGUF value types and the ggml tensor types' block
// sizes. The native loader (native/io/) is the one that reads weights; this file is TS-only.
//
// Format (GGUF v3, little-endian):
//   "GGUF" u32 version, i64 n_tensors, i64 n_kv,
//   n_kv × (string key, u32 value type, value),
//   n_tensors × (string name, u32 n_dims, i64 ne[n_dims], u32 ggml type, u64 offset),
//   padding to `general.alignment` (default 32), tensor data (each tensor padded likewise).
//   string = u64 byte length + UTF-8 bytes; array = u32 item type + u64 count + items.
//
// Every length and count is checked against the bytes left in the file before anything is
// allocated for it, and array items against GGUF_MAX_ARRAY_ITEMS (a JS value each), so a
// corrupt or hostile file gives a Gpt2Error ERR_BAD_MODEL, never an out-of-memory. Nested arrays
// are rejected (ggml does not read them either).
import { open, type FileHandle } from 'node:fs/promises';
import { Gpt2Error } from '../errors.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's limits: a tensor name is shorter than GGML_MAX_NAME bytes, at most GGML_MAX_DIMS dims. */
export const GGML_MAX_NAME = 64;
export const GGML_MAX_DIMS = 4;

/** GGUF metadata value types (the u32 stored before each value). */
export const GgufType = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const;
export type GgufTypeName = keyof typeof GgufType;
export type GgufScalarTypeName = Exclude<GgufTypeName, 'array'>;
export type GgufNumberTypeName = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64';
export type GgufBigIntTypeName = 'u64' | 'i64';

const typeNameById: readonly GgufTypeName[] = Object.entries(GgufType)
  .sort((a, b) => a[1] - b[1]).map(([name]) => name as GgufTypeName);

/** Bytes of one scalar on disk; strings are variable (at least 8: their length). */
export const GGUF_SCALAR_SIZE: Readonly<Record<GgufScalarTypeName, number>> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, u64: 8, i64: 8, f64: 8,
};

/** A metadata value with its GGUF type, so a value read from one file can be written unchanged. */
export type GgufValue =
  | { type: GgufNumberTypeName; value: number }
  | { type: GgufBigIntTypeName; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: GgufNumberTypeName; value: readonly number[] }
  | { type: 'array'; itemType: GgufBigIntTypeName; value: readonly bigint[] }
  | { type: 'array'; itemType: 'bool'; value: readonly boolean[] }
  | { type: 'array'; itemType: 'string'; value: readonly string[] };

/** ggml tensor types: id, elements per block, bytes per block (ggml.c's type traits). */
export const GgmlType = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35,
  MXFP4: 39, NVFP4: 40, Q1_0: 41, Q2_0: 42,
} as const;
export type GgmlTypeName = keyof typeof GgmlType;

const blockLayout: Readonly<Record<GgmlTypeName, readonly [blockSize: number, blockBytes: number]>> = {
  F32: [1, 4], F16: [1, 2], Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24],
  Q8_0: [32, 34], Q8_1: [32, 36], Q2_K: [256, 84], Q3_K: [256, 110], Q4_K: [256, 144],
  Q5_K: [256, 176], Q6_K: [256, 210], Q8_K: [256, 292], IQ2_XXS: [256, 66], IQ2_XS: [256, 74],
  IQ3_XXS: [256, 98], IQ1_S: [256, 50], IQ4_NL: [32, 18], IQ3_S: [256, 110], IQ2_S: [256, 82],
  IQ4_XS: [256, 136], I8: [1, 1], I16: [1, 2], I32: [1, 4], I64: [1, 8], F64: [1, 8],
  IQ1_M: [256, 56], BF16: [1, 2], TQ1_0: [256, 54], TQ2_0: [256, 66], MXFP4: [32, 17],
  NVFP4: [64, 36], Q1_0: [128, 18], Q2_0: [64, 18],
};

const ggmlTypeNameById = new Map<number, GgmlTypeName>(
  Object.entries(GgmlType).map(([name, id]) => [id, name as GgmlTypeName]));

export function ggmlTypeName(id: number): GgmlTypeName | undefined {
  return ggmlTypeNameById.get(id);
}

/** [elements per block, bytes per block] of a ggml type. */
export function ggmlBlockLayout(type: GgmlTypeName): readonly [number, number] {
  return blockLayout[type];
}

/** Bytes of a tensor of `type` and shape `ne` (ne0 first); ne0 must be a multiple of the block. */
export function ggmlTensorBytes(type: GgmlTypeName, ne: readonly number[]): number {
  const [bs, bb] = blockLayout[type];
  const n = ne.reduce((a, b) => a * b, 1);
  return (n / bs) * bb;
}

export interface GgufTensorInfo {
  name: string;
  /** ggml order: ne[0] is the contiguous (row) dimension. */
  shape: number[];
  type: GgmlTypeName;
  /** Offset of the data from the start of the data section. */
  offset: number;
  /** Bytes of the data. */
  size: number;
}

export interface GgufMetadata {
  version: number;
  alignment: number;
  /** Keys in file order. */
  kv: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** Absolute file offset of the tensor data section. */
  dataOffset: number;
  fileSize: number;
}

function bad(path: string, what: string): never {
  throw new Gpt2Error('ERR_BAD_MODEL', `Invalid GGUF file ${path}: ${what}`);
}

/**
 * A forward-only cursor over a file, reading it through a window so that a multi-megabyte
 * vocabulary is not read a value at a time. `need(n)` is called only after `n` was checked
 * against the bytes left in the file.
 */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0; // file offset of buf[0]
  pos = 0;              // file offset of the next byte to read

  constructor(private readonly fh: FileHandle, readonly size: number, private readonly path: string) {}

  get remaining(): number {
    return this.size - this.pos;
  }

  /** Ensure bytes [pos, pos+n) are in the window; fail if the file ends first. */
  async need(n: number, what: string): Promise<void> {
    if (n > this.remaining) bad(this.path, `${what} runs past the end of the file (needs ${n} bytes at offset ${this.pos}, file has ${this.size})`);
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length) return;
    const len = Math.min(Math.max(n, 1 << 20), this.remaining);
    const buf = Buffer.allocUnsafe(len);
    const { bytesRead } = await this.fh.read(buf, 0, len, this.pos);
    if (bytesRead < n) bad(this.path, `short read at offset ${this.pos}`);
    this.buf = buf.subarray(0, bytesRead);
    this.bufStart = this.pos;
  }

  private at(n: number): number {
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }

  async u8(what: string): Promise<number> { await this.need(1, what); return this.buf.readUInt8(this.at(1)); }
  async u32(what: string): Promise<number> { await this.need(4, what); return this.buf.readUInt32LE(this.at(4)); }
  async u64(what: string): Promise<bigint> { await this.need(8, what); return this.buf.readBigUInt64LE(this.at(8)); }
  async i64(what: string): Promise<bigint> { await this.need(8, what); return this.buf.readBigInt64LE(this.at(8)); }

  /** A u64 count or length as a number, no larger than `max`. */
  async length(what: string, max: number): Promise<number> {
    const n = await this.u64(what);
    if (n > BigInt(max)) bad(this.path, `${what} is ${n} but at most ${max} fit in the rest of the file`);
    return Number(n);
  }

  async string(what: string): Promise<string> {
    const n = await this.length(`length of ${what}`, this.remaining - 8);
    await this.need(n, what);
    const o = this.at(n);
    return this.buf.toString('utf8', o, o + n);
  }

  async scalar(type: GgufScalarTypeName, what: string): Promise<number | bigint | boolean | string> {
    if (type === 'string') return this.string(what);
    const size = GGUF_SCALAR_SIZE[type];
    await this.need(size, what);
    const o = this.at(size);
    const b = this.buf;
    switch (type) {
      case 'u8': return b.readUInt8(o);
      case 'i8': return b.readInt8(o);
      case 'u16': return b.readUInt16LE(o);
      case 'i16': return b.readInt16LE(o);
      case 'u32': return b.readUInt32LE(o);
      case 'i32': return b.readInt32LE(o);
      case 'f32': return b.readFloatLE(o);
      case 'f64': return b.readDoubleLE(o);
      case 'u64': return b.readBigUInt64LE(o);
      case 'i64': return b.readBigInt64LE(o);
      case 'bool': {
        const v = b.readUInt8(o);
        if (v > 1) bad(this.path, `${what} is a bool of value ${v}`);
        return v === 1;
      }
    }
  }
}

async function readType(c: Cursor, path: string, what: string): Promise<GgufTypeName> {
  const id = await c.u32(`type of ${what}`);
  const name = typeNameById[id];
  if (name === undefined) bad(path, `${what} has unknown value type ${id}`);
  return name;
}

/**
 * Most array items a file's metadata may hold, all arrays together. Each becomes a JS value (8
 * bytes or more of heap for one byte of file), so what fits the file could still exhaust the heap;
 * a vocabulary needs a few hundred thousand (GPT-2: 3 arrays of ~50k).
 */
export const GGUF_MAX_ARRAY_ITEMS = 1 << 24;

async function readValue(c: Cursor, path: string, key: string, budget: { read: number }): Promise<GgufValue> {
  const type = await readType(c, path, `key '${key}'`);
  if (type !== 'array') {
    return { type, value: await c.scalar(type, `value of '${key}'`) } as GgufValue;
  }
  const itemType = await readType(c, path, `items of '${key}'`);
  if (itemType === 'array') bad(path, `key '${key}' is a nested array, which is not supported`);
  const n = await c.length(`item count of '${key}'`, Math.floor((c.remaining - 8) / GGUF_SCALAR_SIZE[itemType]));
  if (n > GGUF_MAX_ARRAY_ITEMS - budget.read) {
    const left = budget.read === 0 ? '' : `the ${GGUF_MAX_ARRAY_ITEMS - budget.read} left of `;
    bad(path, `item count of '${key}' is ${n}, more than ${left}the limit of ${GGUF_MAX_ARRAY_ITEMS} array items per file`);
  }
  budget.read += n;
  const items: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) items[i] = await c.scalar(itemType, `item ${i} of '${key}'`);
  return { type: 'array', itemType, value: items } as GgufValue;
}

/** Read a GGUF file's header, metadata and tensor infos (not the tensor data). */
export async function readGgufMetadata(path: string): Promise<GgufMetadata> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new Gpt2Error('ERR_BAD_MODEL', `Cannot open GGUF file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = (await fh.stat()).size;
    const c = new Cursor(fh, size, path);

    if (size < 24) bad(path, `file is ${size} bytes, shorter than a GGUF header (24)`);
    const magic = await c.u32('magic');
    if (magic !== GGUF_MAGIC) bad(path, 'not a GGUF file (magic is not "GGUF")');
    const version = await c.u32('version');
    if (version !== 2 && version !== 3) bad(path, `unsupported GGUF version ${version} (expected 2 or 3)`);
    // each tensor info takes at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes,
    // each key/value at least 8 (key) + 4 (type) + 1 (value)
    const nTensorsBig = await c.i64('tensor count');
    const nKvBig = await c.i64('key/value count');
    if (nKvBig < 0n || nKvBig > BigInt(Math.floor(c.remaining / 13))) bad(path, `key/value count ${nKvBig} does not fit in the file`);
    if (nTensorsBig < 0n || nTensorsBig > BigInt(Math.floor(c.remaining / 24))) bad(path, `tensor count ${nTensorsBig} does not fit in the file`);
    const nKv = Number(nKvBig);
    const nTensors = Number(nTensorsBig);

    const kv = new Map<string, GgufValue>();
    const budget = { read: 0 };
    for (let i = 0; i < nKv; i++) {
      const key = await c.string(`key ${i}`);
      if (key.length === 0) bad(path, `key ${i} is empty`);
      if (kv.has(key)) bad(path, `duplicate key '${key}'`);
      kv.set(key, await readValue(c, path, key, budget));
    }

    let alignment = GGUF_DEFAULT_ALIGNMENT;
    const al = kv.get('general.alignment');
    if (al !== undefined) {
      if (al.type !== 'u32') bad(path, `general.alignment must be of type u32 but is ${al.type}`);
      alignment = al.value;
      if (alignment === 0 || (alignment & (alignment - 1)) !== 0) bad(path, `general.alignment ${alignment} is not a power of 2`);
    }

    const tensors: GgufTensorInfo[] = [];
    const names = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const name = await c.string(`name of tensor ${i}`);
      if (Buffer.byteLength(name) >= GGML_MAX_NAME) bad(path, `tensor name '${name}' is ${Buffer.byteLength(name)} bytes, at most ${GGML_MAX_NAME - 1} allowed`);
      if (names.has(name)) bad(path, `duplicate tensor name '${name}'`);
      names.add(name);
      const nDims = await c.u32(`dimension count of '${name}'`);
      if (nDims > GGML_MAX_DIMS) bad(path, `tensor '${name}' has ${nDims} dimensions, at most ${GGML_MAX_DIMS} allowed`);
      const shape: number[] = [];
      let n = 1;
      for (let d = 0; d < nDims; d++) {
        const ne = await c.i64(`dimension ${d} of '${name}'`);
        if (ne < 0n) bad(path, `tensor '${name}' dimension ${d} is ${ne}`);
        if (ne > BigInt(size)) bad(path, `tensor '${name}' dimension ${d} is ${ne}, more elements than the file has bytes`);
        shape.push(Number(ne));
        n *= Number(ne);
      }
      const typeId = await c.u32(`type of '${name}'`);
      const type = ggmlTypeName(typeId);
      if (type === undefined) bad(path, `tensor '${name}' has unknown ggml type ${typeId}`);
      const [bs, bb] = blockLayout[type];
      const ne0 = shape[0] ?? 1;
      if (ne0 % bs !== 0) bad(path, `tensor '${name}' of type ${type} has ${ne0} elements per row, not a multiple of the block size ${bs}`);
      const bytes = (n / bs) * bb;
      if (!Number.isSafeInteger(bytes) || bytes > size) bad(path, `tensor '${name}' of ${n} elements does not fit in the file`);
      const offset = await c.u64(`offset of '${name}'`);
      if (offset > BigInt(size)) bad(path, `tensor '${name}' offset ${offset} is past the end of the file`);
      if (Number(offset) % alignment !== 0) bad(path, `tensor '${name}' offset ${offset} is not a multiple of the alignment ${alignment}`);
      tensors.push({ name, shape, type, offset: Number(offset), size: bytes });
    }

    const dataOffset = nTensors > 0 ? Math.ceil(c.pos / alignment) * alignment : c.pos;
    for (const t of tensors) {
      if (dataOffset + t.offset + t.size > size) {
        bad(path, `data of tensor '${t.name}' (${t.size} bytes at offset ${dataOffset + t.offset}) runs past the end of the file (${size} bytes)`);
      }
    }
    return { version, alignment, kv, tensors, dataOffset, fileSize: size };
  } finally {
    await fh.close();
  }
}

/** Read one tensor's raw bytes (for tests and tools; the engine maps the file natively). */
export async function readGgufTensorBytes(path: string, meta: GgufMetadata, name: string): Promise<Buffer> {
  const t = meta.tensors.find((x) => x.name === name);
  if (t === undefined) throw new Gpt2Error('ERR_BAD_MODEL', `Invalid GGUF file ${path}: no tensor '${name}'`);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(t.size);
    const { bytesRead } = await fh.read(buf, 0, t.size, meta.dataOffset + t.offset);
    if (bytesRead !== t.size) bad(path, `short read of tensor '${name}'`);
    return buf;
  } finally {
    await fh.close();
  }
}

// ---- decoders of the tensor types the writer encodes (inverse of writer.ts's encoders) ----

/** IEEE half (bits) to number. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function decodeTensor(type: GgmlTypeName, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(i * 2, true));
      return out;
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(i * 2, true) << 16;
      return out;
    }
    case 'Q8_0':
      for (let b = 0; b < n / 32; b++) {
        const d = f16ToF32(dv.getUint16(b * 34, true));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = d * dv.getInt8(b * 34 + 2 + j);
      }
      return out;
    case 'Q4_0':
      for (let b = 0; b < n / 32; b++) {
        const d = f16ToF32(dv.getUint16(b * 18, true));
        for (let j = 0; j < 16; j++) {
          const q = dv.getUint8(b * 18 + 2 + j);
          out[b * 32 + j] = d * ((q & 0x0f) - 8);
          out[b * 32 + 16 + j] = d * ((q >> 4) - 8);
        }
      }
      return out;
    default:
      throw new Gpt2Error('ERR_BAD_MODEL', `Cannot decode tensors of type ${type} in TypeScript`);
  }
}
