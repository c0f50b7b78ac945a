#!/usr/bin/env node
// Packs gpt2-node as a release publishes it, into DIR (default build/pack):
//   - gpt2-node-<version>.tgz: dist/, the sources a source build needs (native/, CMakeLists.txt,
//     scripts/install.mjs) and the pruned llama.cpp tree (ggml with its CPU, CUDA, Vulkan and Metal
//     backends, nlohmann/json, the GPT-2 vocabulary GGUF that create-model copies) as
//     vendor/llama.cpp, so that `npx gpt2-node build` needs neither git nor the 35 MB download;
//   - every platform package found under build/packages/ (scripts/build-prebuilt.mjs).
// Packed from a staging folder with --ignore-scripts: `prepare` is for clones only.
//
//   node scripts/pack.mjs [--out DIR]          prints the tarballs' paths, one per line, last
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { root } from './lib/native-build.mjs';

// What a source build of the addon reads from the llama.cpp tree (CMakeLists.txt), and nothing else.
const LLAMA_KEEP = [
  'LICENSE',
  'include/llama.h',                      // marks the folder as a llama.cpp tree (vendor/materialize.mjs)
  'models/ggml-vocab-gpt-2.gguf',         // lib/testing/random-model.ts: create-model's vocabulary
  'vendor/nlohmann',                      // JSON, header only
  'ggml/CMakeLists.txt', 'ggml/cmake', 'ggml/include',
  'ggml/src/ggml-cpu', 'ggml/src/ggml-cuda', 'ggml/src/ggml-vulkan', 'ggml/src/ggml-metal',
];

function npmPack(dir, out) {
  const npm = process.env.npm_execpath;   // the npm running this script, else the one on PATH
  const [cmd, pre] = npm?.endsWith('.js') ? [process.execPath, [npm]] : ['npm', []];
  const json = execFileSync(cmd, [...pre, 'pack', '--ignore-scripts', '--json', '--pack-destination', out],
    { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], shell: process.platform === 'win32' });
  return join(out, JSON.parse(json)[0].filename);
}

/** The pruned llama.cpp tree: every file of ggml/src itself plus the kept folders. */
function stageLlama(from, to) {
  for (const rel of LLAMA_KEEP) cpSync(join(from, rel), join(to, rel), { recursive: true });
  for (const f of readdirSync(join(from, 'ggml', 'src'))) {
    const p = join(from, 'ggml', 'src', f);
    if (statSync(p).isFile()) cpSync(p, join(to, 'ggml', 'src', f));
  }
}

export function packAll(out) {
  mkdirSync(out, { recursive: true });
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  if (!existsSync(join(root, 'dist', 'lib', 'index.js'))) throw new Error('dist/ is missing: run `npm run build:ts` first');
  const llama = process.env.GPT2_NODE_LLAMA_CPP_DIR || join(root, 'vendor', 'llama.cpp');
  if (!existsSync(join(llama, 'ggml', 'CMakeLists.txt'))) throw new Error(`no llama.cpp tree at ${llama}: run npm install first`);

  const stage = join(out, 'stage', 'gpt2-node');
  rmSync(stage, { recursive: true, force: true });
  for (const entry of pkg.files.filter((f) => !f.startsWith('!'))) {
    if (existsSync(join(root, entry))) cpSync(join(root, entry), join(stage, entry), { recursive: true });
  }
  for (const f of ['package.json', 'README.md', 'LICENSE']) {
    if (existsSync(join(root, f))) cpSync(join(root, f), join(stage, f));
  }
  stageLlama(llama, join(stage, 'vendor', 'llama.cpp'));
  pkg.files = [...pkg.files, 'vendor/llama.cpp/'];
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);

  const tarballs = [npmPack(stage, out)];
  const packages = join(root, 'build', 'packages');
  if (existsSync(packages)) {
    for (const d of readdirSync(packages)) {
      if (existsSync(join(packages, d, 'package.json'))) tarballs.push(npmPack(join(packages, d), out));
    }
  }
  rmSync(join(out, 'stage'), { recursive: true, force: true });
  return tarballs;
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: join(root, 'build', 'pack') } } });
  for (const t of packAll(resolve(values.out))) {
    console.log(`${relative(process.cwd(), t)}  ${(statSync(t).size / 1048576).toFixed(2)} MiB`);
  }
}
