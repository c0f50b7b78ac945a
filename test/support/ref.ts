// Runs the reference tool (test/ref/llama_ref.cpp: libllama's own gpt2 on the same file) and
// parses what it writes. Built by scripts/build-ref-tool.mjs (npm test's pretest).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const exe = process.platform === 'win32' ? 'gpt2-llama-ref.exe' : 'gpt2-llama-ref';

/**
 * Path of the built reference tool, or undefined when it has not been built. GPT2_NODE_REF_TOOL
 * names another build of it (scripts/variant-check.mjs: libllama on a prebuilt variant's ggml).
 */
export function refToolPath(): string | undefined {
  const env = process.env.GPT2_NODE_REF_TOOL;
  if (env) return existsSync(env) ? env : undefined;
  for (const p of [join(root, 'build', exe), join(root, 'build', 'Release', exe), join(root, 'build', 'Debug', exe)]) {
    if (existsSync(p)) return p;
  }
  return undefined;
}

export interface RefOptions {
  /** Logits for every prompt position (default: the last one only). */
  allLogits?: boolean;
  /** Number of greedy tokens to continue with (default 0). */
  greedy?: number;
  threads?: number;
  /** KV cache type (default f32: the most precise reading of the model). */
  kvType?: 'f32' | 'f16';
  flashAttn?: 'off' | 'on' | 'auto';
  /** llama.cpp's weight repacking for its interleaved q4_0 / q4_K kernels (default on, as llama.cpp). */
  repack?: boolean;
  /** Micro-batch size of the prompt's forward passes (default: the whole prompt in one). */
  ubatch?: number;
  /** Layers on the GPU of a build with one (libllama's n_gpu_layers; default 0: the CPU). */
  gpuLayers?: number;
}

export interface RefResult {
  /** nRows × nVocab, row-major. */
  logits: Float32Array;
  nVocab: number;
  nRows: number;
  greedy: Uint32Array;
}

export async function refLogits(model: string, tokens: ArrayLike<number>, opts: RefOptions = {}): Promise<RefResult> {
  const tool = refToolPath();
  if (tool === undefined) throw new Error('gpt2-llama-ref is not built: run `node scripts/build-ref-tool.mjs` (npm test does)');
  const dir = await mkdtemp(join(tmpdir(), 'gpt2-ref-'));
  const out = join(dir, 'out.bin');
  try {
    const args = ['--model', model, '--tokens', Array.from(tokens).join(','), '--out', out,
      '--threads', String(opts.threads ?? 2), '--kv-type', opts.kvType ?? 'f32', '--flash-attn', opts.flashAttn ?? 'off'];
    if (opts.allLogits === true) args.push('--all-logits');
    if (opts.repack === false) args.push('--repack', 'off');
    if (opts.ubatch !== undefined) args.push('--ubatch', String(opts.ubatch));
    if (opts.gpuLayers !== undefined) args.push('--gpu-layers', String(opts.gpuLayers));
    if (opts.greedy !== undefined && opts.greedy > 0) args.push('--greedy', String(opts.greedy));
    try {
      await execFileP(tool, args, { maxBuffer: 1 << 20 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`gpt2-llama-ref failed: ${e.stderr?.trim() || e.message}`, { cause: err });
    }
    const buf = await readFile(out);
    if (buf.length < 8) throw new Error(`gpt2-llama-ref wrote ${buf.length} bytes, less than its header`);
    const nVocab = buf.readUInt32LE(0);
    const nRows = buf.readUInt32LE(4);
    const logitBytes = nVocab * nRows * 4;
    const rest = buf.length - 8 - logitBytes;
    if (rest < 0 || rest % 4 !== 0) throw new Error(`gpt2-llama-ref output has ${buf.length} bytes, inconsistent with ${nRows} rows of ${nVocab}`);
    // copy into fresh aligned arrays (the Buffer's offset may not be a multiple of 4)
    const logits = new Float32Array(nVocab * nRows);
    new Uint8Array(logits.buffer).set(buf.subarray(8, 8 + logitBytes));
    const greedy = new Uint32Array(rest / 4);
    new Uint8Array(greedy.buffer).set(buf.subarray(8 + logitBytes));
    return { logits, nVocab, nRows, greedy };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
