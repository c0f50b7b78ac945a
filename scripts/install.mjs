#!/usr/bin/env node
// `npm install` entry point: materializes the vendored llama.cpp, builds the native addon with
// cmake-js (ggml linked in statically), then compiles the TypeScript when this is a source
// checkout (a published package ships dist/ already).
//
//   GPT2_NODE_GPU=cpu|cuda|vulkan|metal   which ggml GPU backend to build in (default: metal on
//                                         macOS, cpu elsewhere); CMAKE_CUDA_ARCHITECTURES is
//                                         passed through when set.
//   --native-only                         skip the TypeScript step (used by binding.gyp)
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const nativeOnly = process.argv.includes('--native-only');

function step(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function gpuFlags() {
  const gpu = (process.env.GPT2_NODE_GPU ?? (process.platform === 'darwin' ? 'metal' : 'cpu')).toLowerCase();
  const flags = {
    cpu: [],
    cuda: ['--CDGGML_CUDA=ON'],
    vulkan: ['--CDGGML_VULKAN=ON'],
    metal: ['--CDGGML_METAL=ON', '--CDGGML_METAL_EMBED_LIBRARY=ON'],
  }[gpu];
  if (!flags) {
    console.error(`gpt2-node: GPT2_NODE_GPU must be one of cpu, cuda, vulkan, metal but is "${gpu}"`);
    process.exit(1);
  }
  if (process.env.CMAKE_CUDA_ARCHITECTURES) flags.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.CMAKE_CUDA_ARCHITECTURES}`);
  return { gpu, flags };
}

step(process.execPath, [join(root, 'vendor', 'materialize.mjs')]);

const { gpu, flags } = gpuFlags();
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const build = spawnSync(process.execPath, [cmakeJs, 'compile', ...flags], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  if (gpu === 'cuda') {
    console.error('gpt2-node: the CUDA build failed. It needs the CUDA toolkit (nvcc on PATH, or CUDACXX set) ' +
      'and a host compiler it supports. To build for the CPU only, run: GPT2_NODE_GPU=cpu npm install');
  } else if (gpu !== 'cpu') {
    console.error(`gpt2-node: the ${gpu} build failed. To build for the CPU only, run: GPT2_NODE_GPU=cpu npm install`);
  }
  process.exit(build.status ?? 1);
}

if (!nativeOnly && existsSync(join(root, 'tsconfig.build.json'))) {
  let tsc;
  try { tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc'); } catch { tsc = undefined; }
  if (tsc) step(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')]);
  else if (!existsSync(join(root, 'dist'))) {
    console.error('gpt2-node: TypeScript is not installed and dist/ is missing; run `npm install` with dev dependencies');
    process.exit(1);
  }
  linkOwnBin();
}

// npm links package bins for dependencies only; in a source checkout (`npm install` run in this
// folder) link ours too, so `npx gpt2-node` runs this checkout's CLI as the README shows.
function linkOwnBin() {
  const cli = join(root, 'dist', 'lib', 'cli', 'main.js');
  if (process.env.npm_config_local_prefix !== root || !existsSync(cli)) return;
  chmodSync(cli, 0o755);
  if (process.platform === 'win32') return;   // npm's .cmd shims are not worth imitating here
  const binDir = join(root, 'node_modules', '.bin');
  mkdirSync(binDir, { recursive: true });
  const link = join(binDir, 'gpt2-node');
  try { if (lstatSync(link)) rmSync(link); } catch { /* not there */ }
  symlinkSync(join('..', '..', 'dist', 'lib', 'cli', 'main.js'), link);
}
