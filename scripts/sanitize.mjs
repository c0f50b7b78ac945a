#!/usr/bin/env node
// The addon built with AddressSanitizer + UndefinedBehaviorSanitizer (ggml's sources and ours,
// -fno-sanitize-recover=undefined: the first UB report ends the process), then the whole test
// suite against that build: Node is not instrumented, so the ASan runtime is preloaded into every
// process the suite starts (ava's workers, the CLI and server tests' children). Leak detection is
// off (Node itself does not free everything at exit; a LeakSanitizer run of load/dispose loops is
// not written yet). The memory tests are left out (ASan inflates resident memory by design).
//
//   bash scripts/sanitize.sh [ava arguments: files, --match ...]
// Builds into build/asan (ccache keeps rebuilds short). Ends with the suite's
// "sanitize: N passed, N failed" line; every sanitizer finding counts as a failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { cmakeJs, materializeVendor, root } from './lib/native-build.mjs';

const buildDir = join(root, 'build', 'asan');
// Two checks recover (report, then go on), for vendor code the fuzz tests reach: enum, whose one
// suppression (sanitize.supp) lets execution go on, and signed-integer-overflow (once reported in
// ggml's GGUF parser, now kept from it by our reader: docs/reliability.md), so that the rest of
// the suite still runs under the sanitizers. Every report still fails the run (below); every other check stops the process.
const sanitize = '-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize-recover=enum,signed-integer-overflow -fno-omit-frame-pointer';
// NDEBUG as in release builds: ggml's debug asserts reject what it computes on purpose (its GELU
// table's entries for the f16 codes of inf, which our table copies, native/kernels/gelu.cpp)
const flags = `-O2 -g1 -DNDEBUG ${sanitize}`;
materializeVendor();
// configure every time, so that a change of these flags takes effect (then an incremental build)
cmakeJs('configure', [
  '-O', buildDir,
  '--CDGGML_SANITIZE_ADDRESS=ON', '--CDGGML_SANITIZE_UNDEFINED=ON',
  `--CDCMAKE_C_FLAGS_RELEASE=${flags}`, `--CDCMAKE_CXX_FLAGS_RELEASE=${flags}`,
  `--CDCMAKE_SHARED_LINKER_FLAGS=${sanitize}`,
  '--CDGPT2_NODE_REF_TOOL=OFF',   // the parity tests' reference is the regular build's
]);
cmakeJs('build', ['-O', buildDir]);
const binary = join(buildDir, 'Release', 'gpt2_node.node');
if (!existsSync(binary)) throw new Error(`no ${binary} after the build`);

const libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
const logDir = mkdtempSync(join(tmpdir(), 'gpt2-node-sanitize-'));
const env = {
  ...process.env,
  GPT2_NODE_BINARY: binary,
  LD_PRELOAD: libasan,
  // each process writes its reports to a file of its own; the run fails if any is written
  ASAN_OPTIONS: `detect_leaks=0:abort_on_error=1:log_path=${join(logDir, 'asan')}`,
  UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=0:suppressions=${join(root, 'scripts', 'sanitize.supp')}:log_path=${join(logDir, 'ubsan')}`,
};
// The whole suite, but the memory tests: they measure resident memory, which ASan's redzones and
// quarantine inflate by design.
const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : testFiles(join(root, 'test')).filter((f) => !f.endsWith('memory.test.ts'));
const ava = join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const r = spawnSync(process.execPath, [ava, '--tap', '--timeout', '20m', ...files], { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 30 });
process.stdout.write(r.stdout);
process.stderr.write(r.stderr);
// a report goes to its process's file under logDir; one written to stderr instead counts too
const files_ = readdirSync(logDir);
for (const f of files_) console.log(`\n== sanitizer report ${f}\n${readFileSync(join(logDir, f), 'utf8')}`);
const inline = (r.stdout + r.stderr).match(/runtime error:|ERROR: (Address|Leak|Thread)Sanitizer/g) ?? [];
const findings = files_.length + inline.length;
// TAP, as .ci/run counts it: "ok N - title [# SKIP]" / "not ok N - title"
const lines = r.stdout.split('\n');
const passed = lines.filter((l) => /^ok \d+/.test(l) && !/# (SKIP|TODO)/.test(l)).length;
let failed = lines.filter((l) => /^not ok \d+/.test(l) && !/# (SKIP|TODO)/.test(l)).length;
if (r.status !== 0 && failed === 0) failed = 1;   // a worker that died outside any test
console.log(`sanitizer findings: ${findings} (reports in ${logDir})`);
console.log(`sanitize: ${passed} passed, ${failed + findings} failed`);
process.exit(failed + findings === 0 ? 0 : 1);

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : []);
}
