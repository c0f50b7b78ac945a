#!/usr/bin/env node
// The addon built with AddressSanitizer + UndefinedBehaviorSanitizer (ggml's sources and ours),
// then the whole test suite against that build: Node is not instrumented, so the sanitizer's
// runtime is preloaded into every process the suite starts (ava's workers, the CLI and server
// tests' children). Leak detection is off during the suite (Node itself does not free everything
// at exit); a load/dispose loop runs after it with LeakSanitizer on. The memory tests are left out
// (ASan inflates resident memory by design).
//
//   bash scripts/sanitize.sh [ava arguments: files, --match ...]
//   bash scripts/sanitize.sh --tsan [ava arguments]   the engine tests under ThreadSanitizer
// Builds into build/asan or build/tsan (ccache keeps rebuilds short). Ends with
// "sanitize: N passed, N failed", where every sanitizer report counts as a failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { tapSummary } from './lib/check-helpers.mjs';
import { cmakeJs, materializeVendor, root } from './lib/native-build.mjs';

// --tsan: the engine tests under ThreadSanitizer instead (below).
const tsan = process.argv[2] === '--tsan';
const avaArgs = process.argv.slice(tsan ? 3 : 2);
const mode = tsan ? {
  name: 'tsan',
  // ggml knows TSan (GGML_SANITIZE_THREAD: its thread pool then uses atomics TSan can follow
  // instead of fences it cannot)
  sanitize: '-fsanitize=thread -fno-omit-frame-pointer',
  cmake: ['--CDGGML_SANITIZE_THREAD=ON'],
  runtime: 'libtsan.so',
  options: (logDir) => ({
    // exitcode 0: a process's reports are counted from its log (below), not from its exit status
    TSAN_OPTIONS: `halt_on_error=0:exitcode=0:second_deadlock_stack=1:history_size=4:log_path=${join(logDir, 'tsan')}`,
    GPT2_NODE_TEST_TIME_SCALE: '10',   // test/support/until.ts: TSan runs code 5-15 times slower
  }),
  // where the threads are: the engine thread and its thread-safe functions, dispose, workers, the server
  files: ['test/api/lifecycle.test.ts', 'test/api/engine-features.test.ts', 'test/api/model.test.ts', 'test/api/teardown.test.ts', 'test/server/concurrency.test.ts']
    .filter((f) => existsSync(join(root, f))),
} : {
  name: 'asan',
  // Two checks recover (report, then go on) so that the rest of the suite still runs after a
  // report in vendor code; every report still fails the run (below), every other check stops
  // the process.
  sanitize: '-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize-recover=enum,signed-integer-overflow -fno-omit-frame-pointer',
  cmake: ['--CDGGML_SANITIZE_ADDRESS=ON', '--CDGGML_SANITIZE_UNDEFINED=ON'],
  runtime: 'libasan.so',
  options: (logDir) => ({
    // each process writes its reports to a file of its own; the run fails if any is written
    // handle_sigbus=0: a truncated mapped model must die of SIGBUS, as without ASan (faults.test.ts)
    ASAN_OPTIONS: `detect_leaks=0:abort_on_error=1:handle_sigbus=0:log_path=${join(logDir, 'asan')}`,
    UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=0:log_path=${join(logDir, 'ubsan')}`,
    GPT2_NODE_TEST_TIME_SCALE: '3',
  }),
  // The whole suite, but the memory tests: they measure resident memory, which ASan's redzones
  // and quarantine inflate by design.
  files: testFiles(join(root, 'test')).filter((f) => !f.endsWith('memory.test.ts')),
};

const buildDir = join(root, 'build', mode.name);
// NDEBUG as in release builds: ggml's debug asserts reject what it computes on purpose (its GELU
// table's entries for the f16 codes of inf, which our table copies, native/kernels/gelu.cpp)
// (TSan: -O1 -g, for exact stacks in its reports)
const flags = `${tsan ? '-O1 -g' : '-O2 -g1'} -DNDEBUG ${mode.sanitize}`;
materializeVendor();
// configure every time, so that a change of these flags takes effect (then an incremental build)
cmakeJs('configure', [
  '-O', buildDir, ...mode.cmake,
  `--CDCMAKE_C_FLAGS_RELEASE=${flags}`, `--CDCMAKE_CXX_FLAGS_RELEASE=${flags}`,
  `--CDCMAKE_SHARED_LINKER_FLAGS=${mode.sanitize}`,
  '--CDGPT2_NODE_REF_TOOL=OFF',   // the parity tests' reference is the regular build's
]);
cmakeJs('build', ['-O', buildDir]);
const binary = join(buildDir, 'Release', 'gpt2_node.node');
if (!existsSync(binary)) throw new Error(`no ${binary} after the build`);

const runtime = execFileSync('gcc', [`-print-file-name=${mode.runtime}`], { encoding: 'utf8' }).trim();
const logDir = mkdtempSync(join(tmpdir(), `gpt2-node-${mode.name}-`));
const env = { ...process.env, GPT2_NODE_BINARY: binary, LD_PRELOAD: runtime, ...mode.options(logDir) };
// GCC's runtimes name the addon's frames only with llvm-symbolizer's help (clang-14 brings it)
const symbolizer = ['/usr/bin/llvm-symbolizer', '/usr/bin/llvm-symbolizer-14'].find((p) => existsSync(p));
if (symbolizer) for (const k of ['TSAN_OPTIONS', 'ASAN_OPTIONS']) if (env[k]) env[k] += `:external_symbolizer_path=${symbolizer}`;
const files = avaArgs.length > 0 ? avaArgs : mode.files;
const ava = join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const r = spawnSync(process.execPath, [ava, '--tap', '--timeout', '20m', ...files], { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 30 });
process.stdout.write(r.stdout);
process.stderr.write(r.stderr);
const { passed, failed } = tapSummary(r.stdout, r.status);

// The ASan run ends with LeakSanitizer over load/dispose loops (test/native/leak-loop.ts), also
// after a subset of the suite.
let leakFailed = 0;
if (!tsan) leakFailed = leakLoop();

// a report goes to its process's file under logDir; one written to stderr instead counts too
let reports = readdirSync(logDir).map((f) => readFileSync(join(logDir, f), 'utf8'));
if (tsan) {
  // Node itself is not instrumented: TSan sees its locks (intercepted) but not its atomics, so
  // V8's and libuv's own synchronization shows up as races between Node's threads. A report
  // counts when a stack in it passes through the addon (our code or the ggml linked into it);
  // the others are counted and named, not failed (no suppression file: a suppression of Node's
  // frames would also hide a race of ours called from Node).
  const all = reports.flatMap((t) => t.split(/^={18}$/m)).filter((b) => b.includes('WARNING: ThreadSanitizer'));
  reports = all.filter(addonRace);
  const node = all.length - reports.length;
  const where = [...new Set(all.filter((b) => !addonRace(b)).map((b) => (b.match(/^SUMMARY: ThreadSanitizer: .* in (.*)$/m) ?? [])[1] ?? '?'))];
  console.log(`ThreadSanitizer: ${all.length} reports, ${reports.length} where a racing access is the addon's; ${node} within Node only${node ? ` (in ${where.join('; ')})` : ''}`);
}
for (const text of reports) console.log(`\n== sanitizer report\n${text}`);
const inline = tsan ? [] : (r.stdout + r.stderr).match(/runtime error:|ERROR: (Address|Leak|Thread)Sanitizer/g) ?? [];
const findings = reports.length + inline.length;
console.log(`sanitizer findings: ${findings} (reports in ${logDir})`);
console.log(`sanitize: ${passed} passed, ${failed + leakFailed + findings} failed`);
process.exit(failed + leakFailed + findings === 0 ? 0 : 1);

/**
 * Whether a ThreadSanitizer report is the addon's: for a data race, one of the two racing
 * accesses is made by the addon's code (its first frame outside TSan's runtime is in
 * gpt2_node.node); a race between two accesses inside V8 that happens to run under an N-API
 * call of ours is Node's. Any other report (lock order, a mutex misuse) with the addon anywhere.
 */
function addonRace(report) {
  if (!/WARNING: ThreadSanitizer: data race/.test(report)) return report.includes('gpt2_node.node');
  const accesses = report.split(/\n\s*\n/).filter((sec) => /^\s*(Previous )?(atomic )?(read|write|Read|Write|Atomic)/.test(sec));
  return accesses.some((sec) => {
    const frames = sec.split('\n').filter((l) => /^\s+#\d+ /.test(l) && !l.includes('libtsan.so'));
    return frames.length > 0 && frames[0].includes('gpt2_node.node');
  });
}

/**
 * Loads, generates with and disposes models (and tokenizers, sessions, workers) in a loop with
 * leak detection on. Node itself does not free everything at exit, so a leak report counts only
 * when its allocation stack passes through the addon (our code or ggml linked into it); the
 * others are counted and printed, not failed. Returns 1 on a leak of ours, else 0.
 */
function leakLoop() {
  const leakLog = mkdtempSync(join(tmpdir(), 'gpt2-node-lsan-'));
  const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
  const run = spawnSync(process.execPath, ['--expose-gc', tsx, join(root, 'test', 'native', 'leak-loop.ts')], {
    cwd: root, encoding: 'utf8', maxBuffer: 1 << 28,
    // exitcode 0: Node's own leaks are reported too; what counts is decided from the reports below
    env: { ...env, ASAN_OPTIONS: `detect_leaks=1:exitcode=0:abort_on_error=0:fast_unwind_on_malloc=0:malloc_context_size=30:log_path=${join(leakLog, 'lsan')}` },
  });
  process.stdout.write(run.stdout);
  process.stderr.write(run.stderr);
  const text = readdirSync(leakLog).map((f) => readFileSync(join(leakLog, f), 'utf8')).join('\n');
  // one report per leaked allocation site: "Direct leak of N byte(s) in M object(s) allocated from:" + frames
  const leaks = text.split(/\n(?=(?:Direct|Indirect) leak of )/).filter((b) => /^(Direct|Indirect) leak of /.test(b));
  const ours = leaks.filter((b) => b.includes('gpt2_node.node'));
  for (const b of ours) console.log(`\n== leak in the addon\n${b}`);
  console.log(`leak loop: exit ${run.status}; ${leaks.length} leak reports at exit, ${ours.length} with the addon on the allocation stack (${leaks.length - ours.length} are Node's own)`);
  return run.status === 0 && ours.length === 0 ? 0 : 1;
}

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : []);
}
