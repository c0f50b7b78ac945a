#!/usr/bin/env node
// Runs the parity, exact-kernel, kernel-path and batch-invariance tests once per CPU variant of the
// prebuilt package that this CPU can execute, each against libllama built on that variant's own
// ggml (the same build folder), and skips the others naming what the CPU lacks. Needs
// scripts/build-prebuilt.mjs first (its build folders and build/packages/<platform>).
//
//   node scripts/variant-check.mjs [--package DIR] [--variants a,b] [--tests parity,exact-kernels,cpu-paths,invariance]
// Ends with "variant-check: N passed, N failed, N skipped" (one per variant).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

import { buildRefTool } from './lib/check-helpers.mjs';
import { root } from './lib/native-build.mjs';

const TESTS = ['test/native/parity.test.ts', 'test/native/exact-kernels.test.ts', 'test/native/cpu-paths.test.ts'];
const INVARIANCE = { file: 'test/api/model.test.ts', match: 'batch invariance*' };

const base = `${process.platform}-${process.arch}`;
const { values: opts } = parseArgs({ options: {
  package: { type: 'string', default: join(root, 'build', 'packages', base) },
  variants: { type: 'string' },
  tests: { type: 'string' },   // a comma-separated subset of the test files (default: all of them)
} });
const pkg = JSON.parse(readFileSync(join(opts.package, 'package.json'), 'utf8'));
const features = createRequire(import.meta.url)(join(opts.package, 'cpu_features.node')).features();
const ava = join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

const counts = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
for (const v of pkg.gpt2Node.variants) {
  if (opts.variants && !opts.variants.split(',').includes(v.name)) continue;
  const missing = v.requires.filter((f) => !features.includes(f));
  if (missing.length) {
    counts.skipped++;
    lines.push(`skip ${v.name}: this CPU lacks ${missing.join(', ')}`);
    continue;
  }
  const buildDir = join(root, 'build', 'prebuilt', basename(opts.package), v.name);
  console.log(`\n== variant ${v.name}: building the reference tool on its ggml`);
  const ref = buildRefTool(buildDir);
  if (!ref) {
    counts.failed++;
    lines.push(`FAIL ${v.name}: the reference tool did not build in ${buildDir}`);
    continue;
  }
  const env = { ...process.env, GPT2_NODE_BINARY: join(opts.package, v.file), GPT2_NODE_REF_TOOL: ref };
  console.log(`== variant ${v.name}: tests`);
  const files = opts.tests ? TESTS.filter((t) => opts.tests.split(',').some((x) => t.includes(x))) : TESTS;
  const r1 = files.length ? spawnSync(process.execPath, [ava, ...files], { cwd: root, env, stdio: 'inherit' }) : { status: 0 };
  const invariance = !opts.tests || opts.tests.includes('invariance');
  const r2 = invariance ? spawnSync(process.execPath, [ava, INVARIANCE.file, '--match', INVARIANCE.match], { cwd: root, env, stdio: 'inherit' }) : { status: 0 };
  const ok = r1.status === 0 && r2.status === 0;
  counts[ok ? 'passed' : 'failed']++;
  lines.push(`${ok ? 'ok  ' : 'FAIL'} ${v.name}: ${[...files.map((t) => basename(t, '.test.ts')), ...(invariance ? ['batch invariance'] : [])].join(', ')}`);
}
console.log(`\n${lines.join('\n')}`);
console.log(`variant-check: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exit(counts.failed ? 1 : 0);
