// What every native build of ours shares: the project root, cmake-js, the GPU backends' CMake
// options, and ccache set up so that clones in other folders (CI's clean clone, a worktree) and
// the prebuilt variants reuse each other's objects.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'package.json'));

export const GPUS = ['cpu', 'cuda', 'vulkan', 'metal'];

/** ggml's CMake options for a GPU backend (cmake-js --CD form); null for an unknown name. */
export function gpuFlags(gpu) {
  const flags = {
    cpu: [],
    cuda: ['--CDGGML_CUDA=ON'],
    vulkan: ['--CDGGML_VULKAN=ON'],
    metal: ['--CDGGML_METAL=ON', '--CDGGML_METAL_EMBED_LIBRARY=ON'],
  }[gpu];
  if (!flags) return null;
  // Vulkan headers other than the system's (ggml-vulkan needs 1.3.261 or later; Debian 12 has 1.3.239)
  if (gpu === 'vulkan' && process.env.GPT2_NODE_VULKAN_INCLUDE) {
    flags.push(`--CDVulkan_INCLUDE_DIR=${process.env.GPT2_NODE_VULKAN_INCLUDE}`);
  }
  if (gpu === 'cuda' && process.env.CMAKE_CUDA_ARCHITECTURES) {
    flags.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.CMAKE_CUDA_ARCHITECTURES}`);
  }
  return flags;
}

export function defaultGpu() {
  return process.platform === 'darwin' && process.arch === 'arm64' ? 'metal' : 'cpu';
}

/** Runs a command in the project root with the build environment; exits on failure. */
export function step(cmd, args, { exitOnFailure = true } = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: buildEnv() });
  if (r.error) throw r.error;
  if (r.status !== 0 && exitOnFailure) process.exit(r.status ?? 1);
  return r.status ?? 1;
}

/**
 * cmake-js with a command ('compile': configure once, then build; 'configure': configure again
 * with these options, so a changed --CD takes effect; 'build') and its arguments.
 */
export function cmakeJs(command, args, options) {
  const bin = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  return step(process.execPath, [bin, command, ...args], options);
}

export function materializeVendor() {
  step(process.execPath, [join(root, 'vendor', 'materialize.mjs')]);
}

function buildEnv() {
  // ccache hashes absolute paths unless it may rewrite them relative to a base folder.
  return { ...process.env, CCACHE_BASEDIR: process.env.CCACHE_BASEDIR ?? root };
}
