// What a Vulkan build of the addon needs on a Debian-like machine, found or installed: the Vulkan
// loader and headers, glslc (ggml-vulkan compiles its shaders at build time), SPIR-V headers, and
// Mesa's lavapipe, a conformant Vulkan driver that runs on the CPU (what `npm run test:vulkan`
// runs on where no GPU is).
//
// Two things Debian 12 ships too old, fetched from Debian's archive with a private apt state (the
// machine's sources, lists and package database untouched) and unpacked under build/, not
// installed:
// - the Vulkan headers: the pinned ggml-vulkan uses VK_EXT_layer_settings, which Debian 12's
//   (1.3.239) lack; Debian 13's libvulkan-dev is header files (the loader stays the system's);
// - lavapipe: Mesa 22.3's frees state that its queue thread still reads when a compute pipeline
//   is created while a submission runs, which ggml-vulkan does (it compiles pipelines when a
//   graph first needs them). Seen as heap corruption ("double free or corruption") in 3 of 3
//   runs of a score-then-perplexity script and 2 of 3 of 32 concurrent prompts, and by valgrind
//   as reads of memory freed by vkCreateComputePipelines; with bookworm-backports' Mesa 25.0
//   (built for Debian 12), in 0 of 4 and 0 of 5. The tests point the Vulkan loader at that
//   driver (VK_DRIVER_FILES).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const VULKAN_PACKAGES = ['libvulkan-dev', 'glslc', 'glslang-tools', 'spirv-headers', 'mesa-vulkan-drivers', 'vulkan-tools'];

/** True when this include folder has Vulkan headers new enough for the pinned ggml-vulkan. */
export function headersNewEnough(includeDir) {
  const core = join(includeDir, 'vulkan', 'vulkan_core.h');
  return existsSync(core) && readFileSync(core, 'utf8').includes('VK_EXT_LAYER_SETTINGS_EXTENSION_NAME');
}

function missingPackages() {
  return VULKAN_PACKAGES.filter((p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout !== 'install ok installed');
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) throw new Error(`${what} failed (${cmd} ${args.join(' ')}: exit ${r.status ?? r.error?.message})`);
}

/** Installs the Debian packages a Vulkan build and lavapipe need, where some are missing. */
export function installVulkanPackages() {
  if (!existsSync('/usr/bin/apt-get')) {
    console.log('vulkan: not a Debian-like system; the Vulkan loader and headers (>= 1.3.261), glslc, SPIR-V headers and a Vulkan driver must be installed by hand');
    return;
  }
  const missing = missingPackages();
  if (missing.length === 0) return;
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  console.log(`vulkan: installing ${missing.join(' ')}`);
  const [cmd, ...pre] = [...sudo, 'apt-get'];
  // a stale package index (a fresh machine) cannot find the packages: update once, then retry
  const install = () => spawnSync(cmd, [...pre, 'install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  if (install()) return;
  run(cmd, [...pre, 'update'], 'apt-get update');
  if (!install()) throw new Error(`vulkan: apt-get could not install ${missing.join(' ')}`);
}

/**
 * Downloads Debian packages from `suite` with a private apt state under `dir` and unpacks them
 * into dir/root; returns that folder.
 */
function unpackDebian(dir, suite, packages) {
  if (!existsSync('/usr/bin/apt-get')) throw new Error(`vulkan: apt-get is not here to fetch ${packages.join(' ')} from Debian ${suite}`);
  rmSync(dir, { recursive: true, force: true });
  const lists = join(dir, 'lists');
  mkdirSync(join(lists, 'partial'), { recursive: true });
  mkdirSync(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
  const sources = join(dir, 'sources.list');
  writeFileSync(sources, `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${suite} main\n`);
  const apt = ['-o', `Dir::Etc::SourceList=${sources}`, '-o', 'Dir::Etc::SourceParts=/dev/null', '-o', `Dir::State::Lists=${lists}`,
    '-o', `Dir::Cache=${join(dir, 'cache')}`, '-o', 'Dir::State::status=/dev/null', '-o', 'APT::Sandbox::User=root'];
  run('apt-get', [...apt, 'update'], `apt-get update (Debian ${suite} index)`);
  execFileSync('apt-get', [...apt, 'download', ...packages], { cwd: dir, stdio: 'inherit' });
  const root = join(dir, 'root');
  for (const deb of readdirSync(dir).filter((f) => f.endsWith('.deb'))) run('dpkg', ['-x', join(dir, deb), root], `unpacking ${deb}`);
  return root;
}

/**
 * An include folder with Vulkan headers new enough for ggml-vulkan: the system's when they are,
 * else Debian 13's, downloaded once into `cacheDir`.
 */
export function vulkanIncludeDir(cacheDir) {
  if (headersNewEnough('/usr/include')) return '/usr/include';
  const include = join(cacheDir, 'root', 'usr', 'include');
  if (headersNewEnough(include)) return include;
  console.log('vulkan: the system\'s Vulkan headers are too old for ggml-vulkan (no VK_EXT_layer_settings); fetching Debian 13\'s libvulkan-dev headers');
  unpackDebian(cacheDir, 'trixie', ['libvulkan-dev']);
  if (!headersNewEnough(include)) throw new Error('vulkan: Debian 13\'s libvulkan-dev has no VK_EXT_layer_settings either');
  return include;
}

/** The system's Mesa version (major), or undefined without its Vulkan drivers. */
function systemMesaMajor() {
  const v = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8' }).stdout;
  const major = Number.parseInt(v ?? '', 10);
  return Number.isFinite(major) ? major : undefined;
}

/**
 * The environment that makes the Vulkan loader use a lavapipe without Mesa 22.3's race: none
 * where the system's Mesa is 24 or newer; on Debian 12, bookworm-backports' lavapipe, downloaded
 * once into `cacheDir` (with the libdrm it needs), as the only driver.
 */
export function lavapipeEnv(cacheDir) {
  const major = systemMesaMajor();
  if (major === undefined || major >= 24) return {};
  const lib = join(cacheDir, 'root', 'usr', 'lib', 'x86_64-linux-gnu');
  const icd = join(cacheDir, 'lvp_icd.json');
  if (!existsSync(join(lib, 'libvulkan_lvp.so')) || !existsSync(icd)) {
    if (process.arch !== 'x64') throw new Error(`vulkan: the system's Mesa ${major} lavapipe has a known race and no newer one is fetched for ${process.arch}`);
    console.log(`vulkan: the system's Mesa ${major} lavapipe races its queue thread (scripts/lib/vulkan.mjs); fetching bookworm-backports' Mesa`);
    unpackDebian(cacheDir, 'bookworm-backports', ['mesa-vulkan-drivers', 'libdrm2', 'libdrm-amdgpu1']);
    const json = JSON.parse(readFileSync(join(cacheDir, 'root', 'usr', 'share', 'vulkan', 'icd.d', 'lvp_icd.json'), 'utf8'));
    json.ICD.library_path = join(lib, 'libvulkan_lvp.so');
    writeFileSync(icd, JSON.stringify(json));
  }
  return { VK_DRIVER_FILES: icd, LD_LIBRARY_PATH: [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
}
