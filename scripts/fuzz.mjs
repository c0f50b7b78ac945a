#!/usr/bin/env node
// Coverage-guided fuzzing with libFuzzer (clang from Debian's packages: clang-14 and
// libclang-rt-14-dev, installed here when missing and this is root; otherwise the script says what
// to install). Builds the harnesses of test/fuzz/ with ASan + UBSan into build/fuzz (ccache
// keeps rebuilds short), generates their seed corpora once (test/fuzz/seeds.ts), then runs one
// harness for the given time:
//
//   bash scripts/fuzz.sh <harness> <seconds> [libFuzzer flags]
//
// The corpus grows in build/fuzz/corpus/<harness> across runs; a failing input is saved in
// build/fuzz/artifacts/<harness>/ (copy it to test/fuzz/regressions/<harness>/ once fixed: CI
// replays those, test/formats/fuzz-regressions.test.ts). The last line is
// "N executions, N crashes, N timeouts". libFuzzer stops at the first crash or timeout, so either
// count is 0 or 1 per run; an allocation over 2 GiB or resident memory over 2.5 GiB is a crash
// (an allocation sized by a corrupt field).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { materializeVendor, root } from './lib/native-build.mjs';

// native harnesses (test/fuzz/<name>.cpp) and JavaScript ones (test/fuzz/<name>.target.ts, run by
// js-fuzz.ts under libFuzzer through js_driver.node)
const NATIVE = ['gguf', 'safetensors', 'legacy', 'tokenizer', 'stream-decoder'];
const JS = ['server-params'];
const HARNESSES = [...NATIVE, ...JS];
const [harness, secondsArg, ...extra] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!HARNESSES.includes(harness) || !Number.isInteger(seconds) || seconds < 1) {
  console.error(`usage: bash scripts/fuzz.sh <${HARNESSES.join('|')}> <seconds> [libFuzzer flags]`);
  process.exit(2);
}
const js = JS.includes(harness);
const target = js ? 'js_driver' : `fuzz-${harness.replace('-', '_')}`;
const buildDir = join(root, 'build', 'fuzz');

const clang = ensureClang();
materializeVendor();
const env = { ...process.env, CCACHE_BASEDIR: process.env.CCACHE_BASEDIR ?? root, CC: clang.cc, CXX: clang.cxx };
const generator = hasCommand('ninja') ? ['-G', 'Ninja'] : [];
const nodeInclude = join(dirname(dirname(process.execPath)), 'include', 'node');
run('cmake', ['-S', join(root, 'test', 'fuzz'), '-B', buildDir, ...(existsSync(join(buildDir, 'CMakeCache.txt')) ? [] : generator), `-DNODE_INCLUDE_DIR=${nodeInclude}`], env);
run('cmake', ['--build', buildDir, '--target', target, '--parallel', '2'], env);

const seeds = join(buildDir, 'seeds');
if (!existsSync(join(seeds, 'server_params.dict'))) run(process.execPath, [join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(root, 'test', 'fuzz', 'seeds.ts'), seeds], env);
const corpus = join(buildDir, 'corpus', harness);
const artifacts = join(buildDir, 'artifacts', harness);
mkdirSync(corpus, { recursive: true });
mkdirSync(artifacts, { recursive: true });
const before = new Set(readdirSync(artifacts));

const args = [
  `-max_total_time=${seconds}`, '-timeout=10', '-rss_limit_mb=2560', '-malloc_limit_mb=2048',
  '-print_final_stats=1', `-artifact_prefix=${artifacts}/`,
  // longer texts only repeat what the pre-tokenizer splits into words anyway
  ...(harness === 'tokenizer' ? ['-max_len=1024'] : harness === 'stream-decoder' ? ['-max_len=2048'] : []),
  ...extra,
  ...(js ? [`-dict=${join(seeds, `${harness.replace('-', '_')}.dict`)}`] : []),
  corpus, join(seeds, harness.replace('-', '_')),
];
const fuzzEnv = {
  ...process.env,
  GPT2_FUZZ_HF_FOLDER: join(seeds, 'hf-folder'),
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};
const [bin, binArgs] = js
  ? [process.execPath, [join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(root, 'test', 'fuzz', 'js-fuzz.ts'),
    join(root, 'test', 'fuzz', `${harness}.target.ts`), join(buildDir, 'js_driver.node'), ...args]]
  : [join(buildDir, target), args];
console.log(`fuzz ${harness}: ${bin} ${binArgs.join(' ')}`);
const child = spawn(bin, binArgs, { env: fuzzEnv, stdio: ['ignore', 'inherit', 'pipe'] });
let log = '';
child.stderr.on('data', (d) => { log += d; process.stderr.write(d); });
const status = await new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)));

const stat = (name) => Number((log.match(new RegExp(`stat::${name}:\\s*(\\d+)`)) ?? [])[1] ?? NaN);
// final stats are missing when the run ended in a crash: then the last status line counts
const lastCount = Number([...log.matchAll(/^#(\d+)\s/gm)].at(-1)?.[1] ?? 0);
const executions = Number.isNaN(stat('number_of_executed_units')) ? lastCount : stat('number_of_executed_units');
const fresh = readdirSync(artifacts).filter((f) => !before.has(f));
const crashes = fresh.filter((f) => /^(crash|oom|leak)-/.test(f)).length + (status !== 0 && fresh.length === 0 ? 1 : 0);
const timeouts = fresh.filter((f) => /^timeout-/.test(f)).length;
const rss = stat('peak_rss_mb');
const elapsed = Number((log.match(/Done \d+ runs in (\d+) second/) ?? [])[1] ?? seconds) || seconds;
const cpu = (readFileSafe('/proc/cpuinfo').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? process.arch;
console.log(`\nfuzz ${harness}: ${elapsed} s on ${cpu}, corpus ${readdirSync(corpus).length} inputs, peak RSS ${rss} MiB, ${Math.round(executions / elapsed)} executions/s`);
for (const f of fresh) console.log(`  failing input: ${join(artifacts, f)}`);
console.log(`${executions} executions, ${crashes} crashes, ${timeouts} timeouts`);
process.exit(crashes + timeouts === 0 ? 0 : 1);

function run(cmd, argv, runEnv) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', env: runEnv });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function hasCommand(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function readFileSafe(path) {
  try { return execFileSync('cat', [path], { encoding: 'utf8' }); } catch { return ''; }
}

/** clang with libFuzzer's runtime: clang-14 from Debian 12 (or a newer clang on PATH). */
function ensureClang() {
  const candidates = [['clang-14', 'clang++-14'], ['clang', 'clang++']];
  const usable = () => candidates.find(([cc, cxx]) => hasCommand(cc) && hasCommand(cxx) &&
    existsSync(execFileSync(cc, ['-print-file-name=libclang_rt.fuzzer-x86_64.a'], { encoding: 'utf8' }).trim()));
  let found = usable();
  if (!found && process.getuid?.() === 0 && hasCommand('apt-get')) {
    console.log('fuzz: installing clang-14 and libclang-rt-14-dev (Debian packages)');
    run('apt-get', ['install', '-y', '--no-install-recommends', 'clang-14', 'libclang-rt-14-dev'], { ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
    found = usable();
  }
  if (!found) {
    console.error('fuzz: needs clang with libFuzzer (Debian/Ubuntu: apt-get install clang-14 libclang-rt-14-dev)');
    process.exit(1);
  }
  return { cc: found[0], cxx: found[1] };
}
