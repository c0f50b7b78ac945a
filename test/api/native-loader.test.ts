// Which native addon gpt2-node loads (lib/native-loader.ts): every branch of the order
// GPT2_NODE_BINARY → source build → platform package (best CPU variant, GPU packages first, asar
// paths unpacked) → ERR_NO_BINARY, through fake hosts; then the real thing: a damaged binary, a
// platform package made from this checkout's build and packed into an Electron-style app.asar
// with @electron/asar, loaded from app.asar.unpacked and generating.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { createPackageWithOptions, extractFile, statFile } from '@electron/asar';
import test from 'ava';

import { type NativeBinding, realLoaderHost } from '../../lib/binding.js';
import { Gpt2Error, nativeBinary } from '../../lib/index.js';
import { chooseVariant, type LoaderHost, loadNative, platformPackages, unpackedPath } from '../../lib/native-loader.js';
import { testModel } from '../support/models.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);

const AVX2 = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'bmi2'];
const VARIANTS = [
  { name: 'avx512-vnni', file: 'gpt2_node-avx512-vnni.node', requires: [...AVX2, 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni'] },
  { name: 'avx2', file: 'gpt2_node-avx2.node', requires: AVX2 },
  { name: 'x64', file: 'gpt2_node-x64.node', requires: [] },
];

/** A fake host: `files` are the paths that exist; packages maps names to their package.json. */
function host(over: Partial<LoaderHost> & { files?: string[]; packages?: Record<string, unknown>; features?: string[]; broken?: string[] } = {}): LoaderHost & { loaded: string[] } {
  const files = new Set(over.files ?? []);
  const packages = over.packages ?? {};
  const loaded: string[] = [];
  const pkgDir = (name: string) => `/app/node_modules/${name}`;
  for (const [name, pkg] of Object.entries(packages)) {
    files.add(`${pkgDir(name)}/package.json`);
    files.add(`${pkgDir(name)}/cpu_features.node`);
    for (const v of (pkg as { gpt2Node?: { variants?: { file: string }[] } }).gpt2Node?.variants ?? []) files.add(`${pkgDir(name)}/${v.file}`);
  }
  return {
    env: {},
    platform: 'linux',
    arch: 'x64',
    libc: 'glibc',
    cpuModel: 'Test CPU 9000',
    root: '/app/node_modules/gpt2-node',
    version: '1.2.3',
    exists: (p) => files.has(p),
    resolvePackage: (name) => (name in packages ? `${pkgDir(name)}/package.json` : undefined),
    readJson: (p) => packages[p.replace('/app/node_modules/', '').replace(/\/package\.json$/, '')],
    load(p) {
      if (over.broken?.some((b) => p.endsWith(b))) throw new Error(`${p}: invalid ELF header`);
      if (p.endsWith('cpu_features.node')) return { features: () => over.features ?? [] };
      loaded.push(p);
      return { from: p };
    },
    loaded,
    ...over,
  };
}

const platformPkg = (version = '1.2.3', variants: unknown = VARIANTS) => ({ version, gpt2Node: { napi: 8, gpu: 'cpu', variants } });

function noBinary(t: import('ava').ExecutionContext, f: () => unknown, ...includes: string[]) {
  const e = t.throws(f, { instanceOf: Gpt2Error });
  t.is((e as Gpt2Error).code, 'ERR_NO_BINARY');
  for (const s of includes) t.true(e!.message.includes(s), `the message names ${s}:\n${e!.message}`);
}

test('GPT2_NODE_BINARY wins over everything, and a missing one is an error, not a fallback', (t) => {
  const h = host({ env: { GPT2_NODE_BINARY: '/x/mine.node' }, files: ['/x/mine.node', '/app/node_modules/gpt2-node/build/Release/gpt2_node.node'] });
  const r = loadNative(h);
  t.deepEqual(r.info, { path: '/x/mine.node', source: 'env' });
  noBinary(t, () => loadNative(host({ env: { GPT2_NODE_BINARY: '/x/gone.node' }, files: ['/app/node_modules/gpt2-node/build/Release/gpt2_node.node'] })),
    'GPT2_NODE_BINARY names /x/gone.node, which does not exist');
});

test('a source build comes before the platform package', (t) => {
  const h = host({ files: ['/app/node_modules/gpt2-node/build/Release/gpt2_node.node'], packages: { '@gpt2-node/linux-x64': platformPkg() } });
  t.deepEqual(loadNative(h).info, { path: '/app/node_modules/gpt2-node/build/Release/gpt2_node.node', source: 'build' });
});

test('the platform package: the best variant the CPU runs', (t) => {
  const pkgs = { '@gpt2-node/linux-x64': platformPkg() };
  const avx512 = loadNative(host({ packages: pkgs, features: [...VARIANTS[0]!.requires, 'avx512dq'] })).info;
  t.is(avx512.variant, 'avx512-vnni');
  t.is(avx512.source, 'package');
  t.is(avx512.package, '@gpt2-node/linux-x64');
  t.is(avx512.path, '/app/node_modules/@gpt2-node/linux-x64/gpt2_node-avx512-vnni.node');
  t.is(loadNative(host({ packages: pkgs, features: [...AVX2, 'avx512f'] })).info.variant, 'avx2', 'AVX-512F alone is not the VNNI variant');
  t.is(loadNative(host({ packages: pkgs, features: ['sse2'] })).info.variant, 'x64');
});

test('chooseVariant: forcing one (GPT2_NODE_CPU_VARIANT), and refusing one the CPU cannot run', (t) => {
  t.is(chooseVariant(VARIANTS, [...AVX2, 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni'], 'avx2').name, 'avx2');
  noBinary(t, () => chooseVariant(VARIANTS, AVX2, 'avx512-vnni'), 'needs avx512f, avx512bw, avx512vl, avx512_vnni', 'illegal instruction');
  noBinary(t, () => chooseVariant(VARIANTS, AVX2, 'sse9'), 'GPT2_NODE_CPU_VARIANT=sse9 is not a variant', 'avx512-vnni, avx2, x64');
  noBinary(t, () => chooseVariant(VARIANTS.slice(0, 2), ['sse2']), 'no variant of this package runs on this CPU');
  // through the loader, a forced variant the CPU lacks is an error rather than a silent fallback
  noBinary(t, () => loadNative(host({ env: { GPT2_NODE_CPU_VARIANT: 'avx512-vnni' }, packages: { '@gpt2-node/linux-x64': platformPkg() }, features: AVX2 })),
    'which this CPU lacks');
});

test('nothing installed: ERR_NO_BINARY names the platform, the CPU and both ways out', (t) => {
  noBinary(t, () => loadNative(host()),
    'linux-x64', 'Test CPU 9000', 'none of @gpt2-node/linux-x64-cuda, @gpt2-node/linux-x64-vulkan, @gpt2-node/linux-x64 is installed',
    'npm install @gpt2-node/linux-x64@1.2.3', '--omit=optional', 'npx gpt2-node build [--gpu cuda|vulkan]');
});

test('a platform package of another version, without a variant list, or missing its file is passed over with the reason', (t) => {
  noBinary(t, () => loadNative(host({ packages: { '@gpt2-node/linux-x64': platformPkg('1.2.2') } })),
    '@gpt2-node/linux-x64@1.2.2 is installed, but gpt2-node 1.2.3 needs exactly 1.2.3');
  noBinary(t, () => loadNative(host({ packages: { '@gpt2-node/linux-x64': { version: '1.2.3' } } })), 'has no variant list');
  const h = host({ packages: { '@gpt2-node/linux-x64': platformPkg() } });
  const exists = h.exists;
  h.exists = (p) => !p.endsWith('gpt2_node-x64.node') && exists(p);
  noBinary(t, () => loadNative(h), '@gpt2-node/linux-x64 lacks gpt2_node-x64.node');
});

test('a binary that fails to load (damaged, or a GPU package without its driver) falls back to the next package', (t) => {
  const pkgs = { '@gpt2-node/linux-x64-cuda': platformPkg('1.2.3', [VARIANTS[1]]), '@gpt2-node/linux-x64': platformPkg() };
  const gpu = loadNative(host({ packages: pkgs, features: AVX2 }));
  t.is(gpu.info.package, '@gpt2-node/linux-x64-cuda', 'an installed GPU package comes first');
  const fallback = loadNative(host({ packages: pkgs, features: AVX2, broken: ['linux-x64-cuda/gpt2_node-avx2.node'] }));
  t.is(fallback.info.package, '@gpt2-node/linux-x64');
  t.is(fallback.info.variant, 'avx2');
  noBinary(t, () => loadNative(host({ packages: { '@gpt2-node/linux-x64': platformPkg() }, broken: ['gpt2_node-x64.node'] })),
    '@gpt2-node/linux-x64: /app/node_modules/@gpt2-node/linux-x64/gpt2_node-x64.node: invalid ELF header');
});

test('which packages are tried: GPT2_NODE_GPU narrows them, musl has its own', (t) => {
  const base = { platform: 'linux', arch: 'x64', libc: 'glibc', env: {} };
  t.deepEqual(platformPackages(base), ['@gpt2-node/linux-x64-cuda', '@gpt2-node/linux-x64-vulkan', '@gpt2-node/linux-x64']);
  t.deepEqual(platformPackages({ ...base, env: { GPT2_NODE_GPU: 'cpu' } }), ['@gpt2-node/linux-x64']);
  t.deepEqual(platformPackages({ ...base, env: { GPT2_NODE_GPU: 'Vulkan' } }), ['@gpt2-node/linux-x64-vulkan', '@gpt2-node/linux-x64']);
  t.deepEqual(platformPackages({ ...base, libc: 'musl', env: { GPT2_NODE_GPU: 'cpu' } }), ['@gpt2-node/linux-x64-musl']);
  t.deepEqual(platformPackages({ platform: 'darwin', arch: 'arm64', env: { GPT2_NODE_GPU: 'cpu' } }), ['@gpt2-node/darwin-arm64']);
});

test('asar paths are rewritten to app.asar.unpacked, everything else is left alone', (t) => {
  t.is(unpackedPath('/opt/App/resources/app.asar/node_modules/@gpt2-node/linux-x64/x.node'),
    '/opt/App/resources/app.asar.unpacked/node_modules/@gpt2-node/linux-x64/x.node');
  t.is(unpackedPath('C:\\App\\resources\\app.asar\\node_modules\\x.node'), 'C:\\App\\resources\\app.asar.unpacked\\node_modules\\x.node');
  t.is(unpackedPath('/srv/app/node_modules/x.node'), '/srv/app/node_modules/x.node');
  t.is(unpackedPath('/a/app.asar.unpacked/x.node'), '/a/app.asar.unpacked/x.node');
});

test('this process: the addon the real host picks is the one in use', (t) => {
  const info = nativeBinary();
  t.true(existsSync(info.path));
  t.true(['env', 'build', 'package'].includes(info.source));
  const real = realLoaderHost();
  t.is(real.platform, process.platform);
  t.regex(real.version, /^\d+\.\d+\.\d+/);
});

test.serial('a damaged file named by GPT2_NODE_BINARY gives ERR_NO_BINARY with dlopen\'s reason, not a crash', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gpt2-loader-'));
  try {
    const junk = join(dir, 'gpt2_node.node');
    writeFileSync(junk, 'not an ELF file');
    noBinary(t, () => loadNative({ ...realLoaderHost(), env: { GPT2_NODE_BINARY: junk } }), `GPT2_NODE_BINARY at ${junk} does not load`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.serial('GPT2_NODE_BINARY may be relative to the working directory', (t) => {
  const rel = join('build', 'Release', 'gpt2_node.node');
  const abs = join(root, rel);
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const r = loadNative<NativeBinding>({ ...realLoaderHost(), env: { GPT2_NODE_BINARY: rel } });
    t.is(r.info.path, rel);
    t.is(r.binding, require(abs) as NativeBinding, 'the same module as by its absolute path');
  } finally {
    process.chdir(cwd);
  }
});

test.serial('an Electron-style app.asar: the binaries land in app.asar.unpacked and load from there, and the model generates', async (t) => {
  const built = join(root, 'build', 'Release');
  const dir = await mkdtemp(join(tmpdir(), 'gpt2-asar-'));
  try {
    // the app as electron-builder lays it out before packing: gpt2-node and its platform package
    const src = join(dir, 'app');
    const pkgDir = join(src, 'node_modules', '@gpt2-node', 'linux-x64');
    mkdirSync(pkgDir, { recursive: true });
    writeFileSync(join(src, 'package.json'), '{ "name": "demo-app", "version": "1.0.0", "main": "main.js" }');
    writeFileSync(join(src, 'main.js'), '// the app');
    copyFileSync(join(built, 'gpt2_node.node'), join(pkgDir, 'gpt2_node-native.node'));
    copyFileSync(join(built, 'cpu_features.node'), join(pkgDir, 'cpu_features.node'));
    writeFileSync(join(pkgDir, 'package.json'), JSON.stringify(platformPkg('1.2.3', [{ name: 'native', file: 'gpt2_node-native.node', requires: [] }])));
    // electron-builder's asarUnpack / Forge's auto-unpack-natives: native files outside the archive
    const asar = join(dir, 'resources', 'app.asar');
    await createPackageWithOptions(src, asar, { unpack: '*.node' });
    await rm(src, { recursive: true, force: true });
    t.true(existsSync(join(dir, 'resources', 'app.asar.unpacked', 'node_modules', '@gpt2-node', 'linux-x64', 'gpt2_node-native.node')));

    // Electron's fs reads inside the archive; this host does the same through @electron/asar.
    const inner = (p: string) => p.startsWith(`${asar}/`) ? p.slice(asar.length + 1) : undefined;
    const inArchive = (p: string) => { try { return !!statFile(asar, inner(p)!); } catch { return false; } };
    const h: LoaderHost = {
      ...realLoaderHost(),
      env: {},
      version: '1.2.3',
      root: join(asar, 'node_modules', 'gpt2-node'),
      exists: (p) => (inner(p) !== undefined ? inArchive(p) : existsSync(p)),
      resolvePackage: (name) => {
        const p = join(asar, 'node_modules', name, 'package.json');
        return inArchive(p) ? p : undefined;
      },
      readJson: (p) => JSON.parse(extractFile(asar, inner(p)!).toString('utf8')),
      load: (p) => {
        t.false(p.includes('app.asar/'), `dlopen gets a real file, not ${p}`);
        return require(p);
      },
    };
    const { binding, info } = loadNative<NativeBinding>(h);
    t.is(info.path, join(dir, 'resources', 'app.asar.unpacked', 'node_modules', '@gpt2-node', 'linux-x64', 'gpt2_node-native.node'));
    t.is(info.variant, 'native');
    const events: string[] = [];
    const model = await binding.loadModel(await testModel('tiny', 'f32'), { threads: 1 }, (evs) => { for (const e of evs) events.push(e.text); });
    try {
      const tok = await (model.tokenizer()).tokenizeAsync('Hello from the archive', []);
      model.submit({ kind: 'generate', prompt: tok, maxTokens: 4, temperature: 0, ignoreEos: true, credit: 16 });
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => { if (model.stats().generatedTokens >= 4 && model.stats().activeSequences === 0) { clearInterval(poll); resolve(); } }, 10);
      });
      t.is(model.stats().generatedTokens, 4);
    } finally {
      await model.dispose();
    }
    // and its imports: nothing Electron's V8 sandbox forbids (external array buffers)
    const imports = execFileSync('nm', ['-D', '--undefined-only', info.path], { encoding: 'utf8' });
    t.false(/napi_create_external_(arraybuffer|buffer)/.test(imports), 'no napi_create_external_arraybuffer / _buffer');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
