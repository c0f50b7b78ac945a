// The CPU a benchmark ran on, for the line above its table: a speed measured on one CPU class says
// nothing about another, so every table names the model, the core count and the SIMD features
// that pick kernels (ours and ggml's).
import { readFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';

// The features that change which kernels run (x86: ggml's variants and ours; ARM: NEON's extensions).
const RELEVANT = [
  'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'avx_vnni',
  'amx_int8', 'amx_bf16', 'asimd', 'asimddp', 'i8mm', 'sve', 'fphp',
];

/** "model (N cores), arch, SIMD: flag flag ..." (the flags from /proc/cpuinfo where there is one). */
export function cpuLine(): string {
  const model = cpus()[0]?.model ?? 'unknown CPU';
  let simd = '';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const line = info.split('\n').find((l) => /^(flags|Features)\s*:/.test(l));
    if (line) {
      const have = new Set(line.split(':')[1]!.trim().split(/\s+/));
      simd = `, SIMD: ${RELEVANT.filter((f) => have.has(f)).join(' ') || 'none of ' + RELEVANT.length + ' listed'}`;
    }
  } catch {
    simd = ', SIMD: unknown (no /proc/cpuinfo)';
  }
  return `${model} (${cpus().length} cores), ${arch()}${simd}`;
}
