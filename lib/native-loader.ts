// Which native addon file to load, and loading it. The order (docs/distribution.md):
//   1. GPT2_NODE_BINARY, a path set by the user: used as it is, or an error;
//   2. a source build of this checkout (build/Release, build/Debug: `npm install` in a clone,
//      `npx gpt2-node build`);
//   3. the version-matched platform package (@gpt2-node/<platform>-<arch>[-musl][-cuda|-vulkan],
//      an optional dependency; GPU packages only where installed), and within it the best CPU
//      variant this CPU runs, as cpu_features.node reports;
//   4. otherwise ERR_NO_BINARY naming the platform, the CPU and the ways out.
// The choice is a pure function of a LoaderHost, so the tests can walk every branch.
//
// No candidate is test-loaded in a child process first: the only binary that could crash the
// process on load is a variant built for instructions this CPU lacks, and the loader never picks
// one (the probe itself is built for the architecture's baseline). A damaged or foreign file
// fails in dlopen with an error we catch and report.
import { Gpt2Error } from './errors.js';

export interface PrebuiltVariant {
  name: string;
  file: string;
  /** cpu_features.node names (Linux /proc/cpuinfo flags) the variant's code needs. */
  requires: string[];
}

/** The gpt2Node field of a platform package's package.json. */
export interface PrebuiltManifest {
  napi: number;
  gpu: string;
  variants: PrebuiltVariant[];
}

export interface NativeBinaryInfo {
  path: string;
  source: 'env' | 'build' | 'package';
  /** the platform package it came from, e.g. '@gpt2-node/linux-x64' */
  package?: string;
  /** the CPU variant chosen, e.g. 'avx512-vnni' */
  variant?: string;
  /** what the CPU probe reported (platform packages only) */
  cpuFeatures?: string[];
}

/** Everything the choice depends on; the real one is in binding.ts. */
export interface LoaderHost {
  env: Record<string, string | undefined>;
  platform: string;
  arch: string;
  /** 'glibc' | 'musl' on Linux */
  libc?: string;
  cpuModel: string;
  root: string;
  version: string;
  exists(path: string): boolean;
  /** the package.json path of an installed package, resolved from gpt2-node, or undefined */
  resolvePackage(name: string): string | undefined;
  readJson(path: string): unknown;
  /** requires a .node file (throws what dlopen throws) */
  load(path: string): unknown;
}

export const GPU_PACKAGES = ['cuda', 'vulkan'] as const;

export function platformPackageBase(host: Pick<LoaderHost, 'platform' | 'arch' | 'libc'>): string {
  return `${host.platform}-${host.arch}${host.libc === 'musl' ? '-musl' : ''}`;
}

/** Platform packages to try, in order: GPU packages first (installed only by choice), then the CPU one. */
export function platformPackages(host: Pick<LoaderHost, 'platform' | 'arch' | 'libc' | 'env'>): string[] {
  const base = `@gpt2-node/${platformPackageBase(host)}`;
  const gpu = host.env.GPT2_NODE_GPU?.toLowerCase();
  if (gpu === 'cpu') return [base];
  const gpus = gpu && (GPU_PACKAGES as readonly string[]).includes(gpu) ? [gpu] : GPU_PACKAGES;
  return [...gpus.map((g) => `${base}-${g}`), base];
}

/** Electron serves files inside app.asar to fs, but dlopen needs a real file: app.asar.unpacked. */
export function unpackedPath(path: string): string {
  return path.replace(/\.asar([\\/])/, '.asar.unpacked$1');
}

/** The best variant whose requirements the CPU meets (variants are listed best first). */
export function chooseVariant(variants: readonly PrebuiltVariant[], features: readonly string[], forced?: string): PrebuiltVariant {
  const have = new Set(features);
  const missing = (v: PrebuiltVariant) => v.requires.filter((f) => !have.has(f));
  if (forced) {
    const v = variants.find((x) => x.name === forced);
    if (!v) {
      throw new Gpt2Error('ERR_NO_BINARY',
        `GPT2_NODE_CPU_VARIANT=${forced} is not a variant of this package (it has ${variants.map((x) => x.name).join(', ')})`);
    }
    if (missing(v).length) {
      throw new Gpt2Error('ERR_NO_BINARY',
        `GPT2_NODE_CPU_VARIANT=${forced} needs ${missing(v).join(', ')}, which this CPU lacks; it would crash on an illegal instruction`);
    }
    return v;
  }
  const v = variants.find((x) => missing(x).length === 0);
  if (!v) throw new Gpt2Error('ERR_NO_BINARY', `no variant of this package runs on this CPU (variants: ${variants.map((x) => x.name).join(', ')})`);
  return v;
}

function isManifest(m: unknown): m is PrebuiltManifest {
  const x = m as PrebuiltManifest | undefined;
  return !!x && Array.isArray(x.variants) && x.variants.every((v) => typeof v?.name === 'string' &&
    typeof v.file === 'string' && Array.isArray(v.requires));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}

/**
 * Loads the addon the order above picks. Returns it with where it came from; throws Gpt2Error
 * ERR_NO_BINARY with every reason when nothing loads.
 */
export function loadNative<T>(host: LoaderHost): { binding: T; info: NativeBinaryInfo } {
  const env = host.env.GPT2_NODE_BINARY;
  if (env) {
    if (!host.exists(env)) throw new Gpt2Error('ERR_NO_BINARY', `GPT2_NODE_BINARY names ${env}, which does not exist`);
    return { binding: loadOrThrow<T>(host, env, 'GPT2_NODE_BINARY'), info: { path: env, source: 'env' } };
  }

  for (const build of ['Release', 'Debug']) {
    const path = `${host.root}/build/${build}/gpt2_node.node`;
    if (host.exists(path)) return { binding: loadOrThrow<T>(host, path, 'the source build'), info: { path, source: 'build' } };
  }

  const tried: string[] = [];
  const names = platformPackages(host);
  for (const name of names) {
    const pkgJson = host.resolvePackage(name);
    if (!pkgJson) continue;
    const dir = pkgJson.replace(/[\\/]package\.json$/, '');
    try {
      const pkg = host.readJson(pkgJson) as { version?: string; gpt2Node?: unknown };
      if (pkg.version !== host.version) {
        tried.push(`${name}@${pkg.version} is installed, but gpt2-node ${host.version} needs exactly ${host.version}`);
        continue;
      }
      if (!isManifest(pkg.gpt2Node)) {
        tried.push(`${name} has no variant list in its package.json (damaged?)`);
        continue;
      }
      const features = probe(host, dir);
      const variant = chooseVariant(pkg.gpt2Node.variants, features, host.env.GPT2_NODE_CPU_VARIANT || undefined);
      const path = unpackedPath(`${dir}/${variant.file}`);
      if (!host.exists(path)) {
        tried.push(`${name} lacks ${variant.file}${path.includes('.asar.unpacked') ? ' (not unpacked from the asar archive?)' : ''}`);
        continue;
      }
      const binding = host.load(path) as T;
      return { binding, info: { path, source: 'package', package: name, variant: variant.name, cpuFeatures: features } };
    } catch (e) {
      if (e instanceof Gpt2Error && host.env.GPT2_NODE_CPU_VARIANT) throw e;   // a forced variant that cannot run
      tried.push(`${name}: ${message(e)}`);
    }
  }
  throw noBinary(host, names, tried);
}

function loadOrThrow<T>(host: LoaderHost, path: string, what: string): T {
  try {
    return host.load(path) as T;
  } catch (e) {
    throw new Gpt2Error('ERR_NO_BINARY', `${what} at ${path} does not load: ${message(e)}`, { cause: e });
  }
}

/** cpu_features.node of the package; none (an older or partial package) means the baseline only. */
function probe(host: LoaderHost, dir: string): string[] {
  const path = unpackedPath(`${dir}/cpu_features.node`);
  if (!host.exists(path)) return [];
  const m = host.load(path) as { features(): string[] };
  return m.features();
}

function noBinary(host: LoaderHost, names: string[], tried: string[]): Gpt2Error {
  const base = `@gpt2-node/${platformPackageBase(host)}`;
  const lines = [
    `no gpt2-node native addon for ${platformPackageBase(host)} (CPU: ${host.cpuModel}).`,
    ...(tried.length ? tried.map((t) => `  - ${t}`) : [`  - none of ${names.join(', ')} is installed`]),
    'Either install the prebuilt package, an optional dependency of gpt2-node that an install with',
    `--omit=optional (or --no-optional) leaves out: npm install ${base}@${host.version}`,
    'or build from source (needs cmake and a C++17 compiler): npx gpt2-node build [--gpu cuda|vulkan]',
  ];
  return new Gpt2Error('ERR_NO_BINARY', lines.join('\n'));
}
