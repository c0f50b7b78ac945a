#!/usr/bin/env node
// npm test's pretest: builds the parity tests' reference tool (gpt2-llama-ref, on libllama from
// the vendored llama.cpp) in the cmake-js build directory that `npm install` configured. cmake
// only rebuilds what changed, so this is quick when it is up to date. The first build compiles
// libllama (minutes on 2 cores).
//
//   GPT2_NODE_SKIP_REF_TOOL=1   skip (the parity tests then fail with a message saying so)
//   GPT2_NODE_REF_JOBS=N        parallel jobs (default 2)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = join(root, 'build');

if (process.env.GPT2_NODE_SKIP_REF_TOOL === '1') process.exit(0);

if (!existsSync(join(build, 'CMakeCache.txt'))) {
  console.error('gpt2-node: build/ is not configured, so the reference tool for the parity tests cannot be built; run npm install first');
  process.exit(1);
}

const jobs = process.env.GPT2_NODE_REF_JOBS ?? '2';
const r = spawnSync('cmake', ['--build', build, '--target', 'gpt2-llama-ref', '--config', 'Release', '-j', jobs], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  encoding: 'utf8',
});
if (r.error) {
  console.error(`gpt2-node: cannot run cmake (${r.error.message}); it must be on PATH to build the parity tests' reference tool`);
  process.exit(1);
}
if (r.status !== 0) {
  process.stdout.write(r.stdout ?? '');
  console.error('gpt2-node: building gpt2-llama-ref failed (see above)');
  process.exit(r.status ?? 1);
}
// quiet when nothing was rebuilt; show the log when something was
if (/Linking|Building/.test(r.stdout ?? '')) process.stdout.write(r.stdout);
