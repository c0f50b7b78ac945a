// gpt2-node build: the native addon from source, for a platform without a prebuilt package or for
// a GPU backend the prebuilt packages do not carry. Runs the package's own scripts/install.mjs,
// which builds from the pruned llama.cpp tree the published package carries (no git, no download)
// into build/Release, the loader's second choice after GPT2_NODE_BINARY.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { packageRoot } from '../../binding.js';
import { Gpt2Error } from '../../errors.js';
import { UsageError, type Command } from '../command.js';
import { str } from '../options.js';

const GPUS = ['cpu', 'cuda', 'vulkan', 'metal'];

export const command: Command = {
  name: 'build',
  synopsis: '[--gpu cpu|cuda|vulkan|metal]',
  summary: 'build the native addon from source for this machine (needs cmake and a C++17 compiler)',
  help: `Usage: gpt2-node build [--gpu cpu|cuda|vulkan|metal]

Builds gpt2-node's native addon from the sources the package carries, for this machine's CPU
(and a GPU backend when asked), into the package's build/Release, which is then loaded in
place of any prebuilt package. Needs cmake (3.18 or later), a C++17 compiler, and the optional
peer dependencies cmake-js and node-addon-api (npm install --save-dev cmake-js@8 node-addon-api@8).
No git and no download of llama.cpp: the package carries the pruned tree.

Options:
      --gpu <name>     ${GPUS.join(' | ')} (default: metal on Apple Silicon, cpu elsewhere; or GPT2_NODE_GPU)
  -h, --help           show this help`,
  options: {
    gpu: { type: 'string' },
  },
  async run(values) {
    const gpu = str(values, 'gpu');
    if (gpu !== undefined && !GPUS.includes(gpu.toLowerCase())) throw new UsageError(`--gpu must be one of ${GPUS.join(', ')} but got "${gpu}"`);
    const root = packageRoot();
    const require = createRequire(join(root, 'package.json'));
    const absent = ['cmake-js', 'node-addon-api'].filter((name) => {
      try { require.resolve(`${name}/package.json`); return false; } catch { return true; }
    });
    if (absent.length) {
      throw new Gpt2Error('ERR_NOT_FOUND', `building needs ${absent.join(' and ')} (optional peer dependencies of gpt2-node): ` +
        'npm install --save-dev cmake-js@8 node-addon-api@8');
    }
    const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
    if (cmake.error || cmake.status !== 0) {
      throw new Gpt2Error('ERR_NOT_FOUND', 'building needs cmake 3.18 or later on PATH (and a C++17 compiler)');
    }
    const args = [join(root, 'scripts', 'install.mjs'), '--native-only', ...(gpu ? ['--gpu', gpu.toLowerCase()] : [])];
    const status = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
      child.on('error', () => resolve(1));
      child.on('close', (code) => resolve(code ?? 1));
    });
    if (status !== 0) throw new Gpt2Error('ERR_BACKEND', `the build failed (exit code ${status}; its output is above)`);
    process.stderr.write(`gpt2-node build: built ${join(root, 'build', 'Release', 'gpt2_node.node')}\n`);
    return 0;
  },
};
