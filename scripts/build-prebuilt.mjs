#!/usr/bin/env node
// Builds this machine's platform package the way a release does: one complete gpt2_node.node per
// CPU variant (ggml with GGML_NATIVE=OFF and the variant's instruction sets, libstdc++ linked in),
// the CPU probe, and a package.json that lists the variants best first with what each requires.
// The loader (lib/native-loader.ts) picks the first whose requirements the CPU meets.
//
//   node scripts/build-prebuilt.mjs [--gpu cuda|vulkan|metal] [--variants a,b] [--out DIR] [--arch arm64]
//
// --arch arm64 on an x86-64 Linux machine cross-compiles the linux-arm64 package with Debian's
// g++-aarch64-linux-gnu (scripts/toolchains/); scripts/arm64-check.mjs runs it under qemu-user.
//
// Output: DIR/<package folder>/ (default DIR: build/packages), e.g. build/packages/linux-x64/.
// Why several whole .node files and not ggml's GGML_BACKEND_DL: docs/distribution.md.
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { cmakeJs, defaultGpu, gpuFlags, materializeVendor, root } from './lib/native-build.mjs';

// ggml's x86 options; each variant turns on the ones it names and off all others (with
// GGML_NATIVE=OFF, ggml would otherwise default SSE4.2 .. AVX2 to on).
const X86_OPTIONS = ['SSE42', 'AVX', 'AVX2', 'BMI2', 'FMA', 'F16C', 'AVX_VNNI', 'AVX512', 'AVX512_VBMI',
  'AVX512_VNNI', 'AVX512_BF16', 'AMX_TILE', 'AMX_INT8', 'AMX_BF16'];
const AVX2 = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'bmi2'];
const AVX512 = [...AVX2, 'avx512f', 'avx512cd', 'avx512vl', 'avx512dq', 'avx512bw'];

// Best first. `requires` uses cpu_features.node's names (Linux /proc/cpuinfo flags).
const VARIANTS = {
  x64: [
    // Sapphire Rapids and later Xeons: also half-precision arithmetic, which ggml's f16 vector
    // ops use where the compiler targets it (no ggml option: compiler flags; f16 lone rows without
    // batch invariance 1.3x the avx512-vnni variant there). AMX stays off (CMakeLists.txt says why).
    { name: 'avx512-fp16', requires: [...AVX512, 'avx512vbmi', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16'],
      ggml: ['SSE42', 'AVX', 'AVX2', 'BMI2', 'FMA', 'F16C', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16'],
      flags: '-mavx512fp16' },
    // Ice Lake / Zen 4 and later: 512-bit vectors and int8 dot products (VNNI)
    { name: 'avx512-vnni', requires: [...AVX512, 'avx512vbmi', 'avx512_vnni'],
      ggml: ['SSE42', 'AVX', 'AVX2', 'BMI2', 'FMA', 'F16C', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI'] },
    // Skylake-SP / Cascade Lake
    { name: 'avx512', requires: AVX512, ggml: ['SSE42', 'AVX', 'AVX2', 'BMI2', 'FMA', 'F16C', 'AVX512'] },
    // Alder Lake and later desktops: AVX2 with VEX-coded VNNI, no AVX-512
    { name: 'avx2-vnni', requires: [...AVX2, 'avx_vnni'], ggml: ['SSE42', 'AVX', 'AVX2', 'BMI2', 'FMA', 'F16C', 'AVX_VNNI'] },
    // Haswell / Zen 1-3
    { name: 'avx2', requires: AVX2, ggml: ['SSE42', 'AVX', 'AVX2', 'BMI2', 'FMA', 'F16C'] },
    // any x86-64 CPU (SSE2)
    { name: 'x64', requires: [], ggml: [] },
  ],
  arm64: (platform) => platform === 'darwin'
    ? [{ name: 'apple', requires: [], cmake: [] }]   // every Apple Silicon CPU has dotprod and fp16
    : [
      { name: 'armv8.2-dotprod', requires: ['asimdhp', 'asimddp'], cmake: ['--CDGGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16'] },
      { name: 'armv8', requires: [], cmake: ['--CDGGML_CPU_ARM_ARCH=armv8-a'] },
    ],
};

function variantFlags(v) {
  if (v.cmake) return v.cmake;
  // cmake-js sets CMAKE_CXX_FLAGS itself: extra C++ flags go into the Release ones
  const extra = v.flags ? [`--CDCMAKE_C_FLAGS=${v.flags}`, `--CDCMAKE_CXX_FLAGS_RELEASE=-O3 -DNDEBUG ${v.flags}`] : [];
  return [...X86_OPTIONS.map((o) => `--CDGGML_${o}=${v.ggml.includes(o) ? 'ON' : 'OFF'}`), ...extra];
}

/** 'glibc' | 'musl' on Linux (glibc reports its version to process.report), else undefined. */
function libc() {
  if (process.platform !== 'linux') return undefined;
  return process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
}

const { values: opts } = parseArgs({
  options: {
    gpu: { type: 'string', default: defaultGpu() },
    variants: { type: 'string' },
    out: { type: 'string', default: join(root, 'build', 'packages') },
    arch: { type: 'string', default: process.arch },
  },
});
const arch = opts.arch;
const cross = arch !== process.arch;
if (cross && !(process.platform === 'linux' && process.arch === 'x64' && arch === 'arm64')) {
  throw new Error(`cross-compiling is set up for linux x64 → arm64 only, not ${process.arch} → ${arch}`);
}
const crossFlags = cross ? [`--CDCMAKE_TOOLCHAIN_FILE=${join(root, 'scripts', 'toolchains', 'aarch64-linux-gnu.cmake')}`] : [];
const gpu = opts.gpu.toLowerCase();
const gpuArgs = gpuFlags(gpu);
if (!gpuArgs) throw new Error(`--gpu must be one of cpu, cuda, vulkan, metal, not "${opts.gpu}"`);
const table = VARIANTS[arch];
const all = typeof table === 'function' ? table(process.platform) : table;
if (!all) throw new Error(`no CPU variants are defined for ${arch}`);
// A GPU package carries one CPU variant (the GPU does the heavy work): the widest x86 baseline
// users with such a GPU have, AVX2. Without it the loader falls back to the CPU package.
let variants = gpu !== 'cpu' && gpu !== 'metal' && arch === 'x64' ? all.filter((v) => v.name === 'avx2') : all;
if (opts.variants) {
  const want = opts.variants.split(',');
  const unknown = want.filter((n) => !all.some((v) => v.name === n));
  if (unknown.length) throw new Error(`unknown variant(s) ${unknown.join(', ')}; known: ${all.map((v) => v.name).join(', ')}`);
  variants = all.filter((v) => want.includes(v.name));
}

const c = libc();
const folder = [process.platform, arch, ...(c === 'musl' ? ['musl'] : []),
  ...(gpu !== 'cpu' && gpu !== 'metal' ? [gpu] : [])].join('-');
const pkgDir = resolve(opts.out, folder);
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

materializeVendor();
rmSync(pkgDir, { recursive: true, force: true });
mkdirSync(pkgDir, { recursive: true });
// The parity tests' reference tool stays configured (not built: scripts/variant-check.mjs builds it
// on each variant's ggml).
const common = ['--CDGGML_NATIVE=OFF', '--CDGPT2_NODE_STATIC_RUNTIME=ON', '--CDGPT2_NODE_REF_TOOL=ON', ...gpuArgs, ...crossFlags];
const listed = [];
for (const v of variants) {
  const buildDir = join(root, 'build', 'prebuilt', folder, v.name);
  console.log(`\n== gpt2-node prebuilt ${folder}: variant ${v.name}`);
  cmakeJs('configure', ['-O', buildDir, ...common, ...variantFlags(v)]);
  cmakeJs('build', ['-O', buildDir]);
  const file = `gpt2_node-${v.name}.node`;
  copyFileSync(join(buildDir, 'Release', 'gpt2_node.node'), join(pkgDir, file));
  if (listed.length === 0) copyFileSync(join(buildDir, 'Release', 'cpu_features.node'), join(pkgDir, 'cpu_features.node'));
  listed.push({ name: v.name, file, requires: v.requires });
}

const pkg = {
  name: `@gpt2-node/${folder}`,
  version,
  description: `gpt2-node's native addon for ${folder}, prebuilt (${listed.length} CPU variant${listed.length > 1 ? 's' : ''})`,
  license: 'MIT',
  os: [process.platform],
  cpu: [arch],
  ...(c ? { libc: [c] } : {}),
  files: ['*.node', 'README.md'],
  // read by gpt2-node's loader: best variant first
  gpt2Node: { napi: 8, gpu, variants: listed },
};
writeFileSync(join(pkgDir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
writeFileSync(join(pkgDir, 'README.md'), `# ${pkg.name}\n\n${pkg.description}. Installed by \`gpt2-node\` as an ` +
  'optional dependency and loaded by it; not meant to be used on its own.\n\nVariants, best first: ' +
  `${listed.map((v) => `\`${v.name}\``).join(', ')}.\n`);

console.log(`\n${pkg.name}@${version} in ${pkgDir}`);
for (const f of ['cpu_features.node', ...listed.map((v) => v.file)]) {
  console.log(`  ${f.padEnd(28)} ${(statSync(join(pkgDir, f)).size / 1048576).toFixed(2)} MiB`);
}
