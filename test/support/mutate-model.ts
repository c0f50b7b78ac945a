// Writes a copy of a GGUF model with its metadata or tensor table changed, for the tests of
// what the loader refuses (wrong architecture, missing tensor, wrong shape, ...).
import { readGgufMetadata, readGgufTensorBytes, type GgufValue } from '../../lib/gguf/reader.js';
import { writeGguf, type GgufTensorSpec } from '../../lib/gguf/writer.js';

export interface Mutation {
  kv?: (kv: Map<string, GgufValue>) => void;
  tensors?: (tensors: GgufTensorSpec[]) => GgufTensorSpec[];
}

export async function mutateModel(src: string, dst: string, mutation: Mutation): Promise<void> {
  const meta = await readGgufMetadata(src);
  const kv = new Map(meta.kv);
  kv.delete('general.alignment');
  mutation.kv?.(kv);
  let tensors: GgufTensorSpec[] = meta.tensors.map((t) => ({
    name: t.name,
    type: t.type,
    shape: t.shape,
    data: async function* () {
      const bytes = await readGgufTensorBytes(src, meta, t.name);
      yield new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
  }));
  if (mutation.tensors) tensors = mutation.tensors(tensors);
  await writeGguf(dst, { kv, tensors, alignment: meta.alignment });
}

/** A tensor spec of the given shape filled with zeros (f32). */
export function zeroTensor(name: string, shape: number[]): GgufTensorSpec {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, type: 'F32', shape, data: function* () { yield new Float32Array(n); } };
}
