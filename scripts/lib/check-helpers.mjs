// What the check scripts (pack-check, arm64-check, variant-check, bench/install-time) share:
// commands run without blocking the event loop, files from npm registry packages cached once, the
// parity tests' reference tool built in a given build folder.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Runs a command to its end without blocking the event loop (pack-check's registry lives in the
 * same process): resolves with its exit status and its stdout and stderr together.
 */
export function runAsync(cmd, args, { cwd, env, input } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', (e) => resolve({ status: -1, out: `${out}${e.message}` }));
    child.on('close', (status) => resolve({ status, out }));
    child.stdin.end(input ?? '');
  });
}

/** The JSON object a script printed last, or undefined. */
export function lastJson(out) {
  try {
    return JSON.parse(out.trim().split('\n').pop());
  } catch {
    return undefined;
  }
}

/** The path of `entry` inside the npm registry package `spec`, unpacked once into `cache`. */
export function registryPackageFile(spec, entry, cache) {
  const dir = join(cache, spec.replace(/[@/]/g, '_'));
  if (!existsSync(join(dir, 'package', entry))) {
    mkdirSync(dir, { recursive: true });
    const file = execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', dir], { encoding: 'utf8' }).trim().split('\n').pop();
    execFileSync('tar', ['-xzf', join(dir, file), '-C', dir]);
    rmSync(join(dir, file));
  }
  return join(dir, 'package', entry);
}

/** Builds gpt2-llama-ref in a configured build folder; its path, or undefined if that failed. */
export function buildRefTool(buildDir) {
  const exe = process.platform === 'win32' ? 'gpt2-llama-ref.exe' : 'gpt2-llama-ref';
  const b = spawnSync('cmake', ['--build', buildDir, '--target', 'gpt2-llama-ref', '-j', '2'], { stdio: 'inherit' });
  if (b.status !== 0) return undefined;
  return [join(buildDir, exe), join(buildDir, 'Release', exe)].find((p) => existsSync(p));
}

/**
 * Counts of ava's TAP output as .ci/run counts them ("ok N - title [# SKIP]" / "not ok N -
 * title"): a skip or todo is neither passed nor failed; a run that failed outside any test
 * (a worker that died, an uncaught exception) counts as one failure.
 */
export function tapSummary(stdout, status) {
  const lines = stdout.split('\n');
  const passed = lines.filter((l) => /^ok \d+/.test(l) && !/# (SKIP|TODO)/.test(l)).length;
  let failed = lines.filter((l) => /^not ok \d+/.test(l) && !/# (SKIP|TODO)/.test(l)).length;
  if (status !== 0 && failed === 0) failed = 1;
  return { passed, failed };
}
