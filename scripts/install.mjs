#!/usr/bin/env node
// The source build: `npm install` in a clone (npm's `prepare`), `npx gpt2-node build` for users
// on a platform without a prebuilt package. Materializes the vendored llama.cpp, builds the
// native addon for this machine's CPU with cmake-js (ggml linked in statically) into
// build/Release, then compiles the TypeScript when this is a source checkout (a published package
// ships dist/ already). Prebuilt packages are built by scripts/build-prebuilt.mjs instead.
//
//   GPT2_NODE_GPU=cpu|cuda|vulkan|metal   which ggml GPU backend to build in (default: metal on
//                                         Apple Silicon, cpu elsewhere); CMAKE_CUDA_ARCHITECTURES
//                                         is passed through when set; GPT2_NODE_VULKAN_INCLUDE names
//                                         Vulkan headers other than the system's.
//   --gpu <name>                          the same, as an argument (overrides the variable)
//   --native-only                         skip the TypeScript step (used by binding.gyp)
import { chmodSync, existsSync, lstatSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { cmakeJs, defaultGpu, GPUS, gpuFlags, materializeVendor, root, step } from './lib/native-build.mjs';
import { headersNewEnough } from './lib/vulkan.mjs';

const require = createRequire(join(root, 'package.json'));
const args = process.argv.slice(2);
const nativeOnly = args.includes('--native-only');
const gpuArg = args.includes('--gpu') ? args[args.indexOf('--gpu') + 1] : undefined;

const gpu = (gpuArg ?? process.env.GPT2_NODE_GPU ?? defaultGpu()).toLowerCase();
const flags = gpuFlags(gpu);
if (!flags) {
  console.error(`gpt2-node: the GPU backend must be one of ${GPUS.join(', ')} but is "${gpu}"`);
  process.exit(1);
}

if (gpu === 'vulkan' && !process.env.GPT2_NODE_VULKAN_INCLUDE && process.platform === 'linux' && !headersNewEnough('/usr/include')) {
  console.error('gpt2-node: the Vulkan headers in /usr/include are missing or older than 1.3.261 (no VK_EXT_layer_settings), ' +
    'which ggml-vulkan needs. Install newer ones (the LunarG SDK, or Debian 13\'s libvulkan-dev: `npm run test:vulkan` ' +
    'fetches its headers into build/vulkan-headers) and name their folder: GPT2_NODE_VULKAN_INCLUDE=<dir>/include. ' +
    'The build also needs glslc and SPIR-V headers (Debian: glslc spirv-headers libvulkan-dev).');
  process.exit(1);
}

materializeVendor();
const status = cmakeJs('compile', flags, { exitOnFailure: false });
if (status !== 0) {
  if (gpu === 'cuda') {
    console.error('gpt2-node: the CUDA build failed. It needs the CUDA toolkit (nvcc on PATH, or CUDACXX set) ' +
      'and a host compiler it supports. To build for the CPU only, run: GPT2_NODE_GPU=cpu npm install');
  } else if (gpu !== 'cpu') {
    console.error(`gpt2-node: the ${gpu} build failed. To build for the CPU only, run: GPT2_NODE_GPU=cpu npm install`);
  }
  process.exit(status);
}

// A checkout compiles its TypeScript; a published package ships dist/ (and may sit beside an
// app's own TypeScript, which must not recompile it).
const checkout = existsSync(join(root, '.git'));
if (!nativeOnly && checkout) {
  let tsc;
  try { tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc'); } catch { tsc = undefined; }
  if (!tsc) {
    console.error('gpt2-node: TypeScript is not installed; run `npm install` with dev dependencies');
    process.exit(1);
  }
  step(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')]);
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
