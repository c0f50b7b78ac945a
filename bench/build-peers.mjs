#!/usr/bin/env node
// Builds the peers of the side-by-side benchmark (bench/compare.ts), none of which the project
// itself needs:
//   - llama.cpp's llama-bench, llama-batched-bench, llama-speculative and llama-lookup, from the
//     vendored tree, in the build/ that `npm install` configured: reconfigured with
//     -DGPT2_NODE_LLAMA_TOOLS=ON, the targets built, then reconfigured with the option OFF again so build/ is left as npm install set it
//     up (the binaries stay; ninja finds them up to date next time);
//   - node-llama-cpp 3.21.1 with its prebuilt CPU binary, into the git-ignored bench/peers/
//     (never a dependency of the project).
//
//   node bench/build-peers.mjs [--jobs 2] [--skip-llama] [--skip-node-llama-cpp]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = join(root, 'build');
const peers = join(root, 'bench', 'peers');
export const NODE_LLAMA_CPP_VERSION = '3.21.1';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '2' },
    'skip-llama': { type: 'boolean', default: false },
    'skip-node-llama-cpp': { type: 'boolean', default: false },
  },
});

function run(cmd, args, opts = {}) {
  console.error(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

let failed = false;

if (!values['skip-llama']) {
  if (!existsSync(join(build, 'CMakeCache.txt'))) {
    console.error('gpt2-node: build/ is not configured; run npm install first');
    process.exit(1);
  }
  let status = run('cmake', ['-S', root, '-B', build, '-DGPT2_NODE_LLAMA_TOOLS=ON']);
  if (status === 0) {
    status = run('cmake', ['--build', build, '--config', 'Release', '--target', 'llama-bench', 'llama-batched-bench', 'llama-speculative', 'llama-lookup', '-j', values.jobs]);
  }
  // back to the default configuration, whatever happened
  const back = run('cmake', ['-S', root, '-B', build, '-DGPT2_NODE_LLAMA_TOOLS=OFF'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (status !== 0 || back !== 0) {
    console.error('gpt2-node: building the llama.cpp peers failed (see above)');
    failed = true;
  }
}

if (!values['skip-node-llama-cpp']) {
  mkdirSync(peers, { recursive: true });
  if (!existsSync(join(peers, 'package.json'))) {
    writeFileSync(join(peers, 'package.json'), JSON.stringify({ name: 'gpt2-node-bench-peers', private: true, type: 'module' }, null, 2) + '\n');
  }
  // NODE_LLAMA_CPP_SKIP_DOWNLOAD: use the prebuilt binaries from the npm packages only, never
  // download or compile llama.cpp at install time (these machines reach only the npm registry).
  // Only the CPU prebuilt binary: node-llama-cpp lists every platform's binaries (CUDA and Vulkan
  // ones are hundreds of MB) as optional dependencies; on linux-x64 name the CPU one and omit the rest.
  const cpuOnly = process.platform === 'linux' && process.arch === 'x64'
    ? [`@node-llama-cpp/linux-x64@${NODE_LLAMA_CPP_VERSION}`, '--omit=optional']
    : [];
  const status = run('npm', ['install', '--prefix', peers, '--no-audit', '--no-fund', `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`, ...cpuOnly], {
    env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
  });
  if (status !== 0) {
    console.error('gpt2-node: installing node-llama-cpp failed; bench/compare.ts runs without that peer');
    failed = true;
  } else {
    // check that its prebuilt CPU binary loads, without building anything (from a file: with
    // `node -e`, node-llama-cpp's binary test forks a child that inherits --input-type and fails)
    const probe = join(peers, 'probe.mjs');
    writeFileSync(probe, `import { getLlama } from 'node-llama-cpp';
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
console.log('node-llama-cpp ${NODE_LLAMA_CPP_VERSION} loads its ' + llama.buildType + ' binary (' + llama.gpu + ')');
await llama.dispose();
`);
    const s = run(process.execPath, [probe], { cwd: peers });
    if (s !== 0) {
      console.error('gpt2-node: node-llama-cpp installed but its prebuilt CPU binary does not load; bench/compare.ts runs without that peer');
      failed = true;
    }
  }
}

process.exit(failed ? 1 : 0);
