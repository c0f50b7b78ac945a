#!/usr/bin/env node
// clang-format over our C++ (native/, test/ref/) with the repository's .clang-format, from the
// @wasm-fmt/clang-format dev dependency (no system clang-format needed).
//
//   node scripts/format.mjs           rewrite the files in place
//   node scripts/format.mjs --check   change nothing; list the files that differ, exit 1 if any
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(cpp|h)$/.test(e.name) ? [p] : [];   // not unicode_tables.inc: generated
  });
}

const require = createRequire(join(root, 'package.json'));
const bin = join(dirname(require.resolve('@wasm-fmt/clang-format/package.json')), 'clang-format-cli.cjs');
const files = [...sources(join(root, 'native')), ...sources(join(root, 'test', 'ref'))];
const args = check ? ['--dry-run', '--Werror', '--style=file'] : ['-i', '--style=file'];
const r = spawnSync(process.execPath, [bin, ...args, ...files], { cwd: root, encoding: 'utf8' });
if (r.error) throw r.error;
if (check && r.status !== 0) {
  const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');   // its colours
  const bad = [...new Set([...r.stderr.replace(ansi, '').matchAll(/^(.+?):\d+:\d+: error/gm)].map((m) => relative(root, m[1])))];
  console.error(`clang-format: ${bad.length} file(s) differ from .clang-format (run npm run format):\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
if (r.status !== 0) { process.stderr.write(r.stderr); process.exit(r.status ?? 1); }
if (!check) console.log(`clang-format: ${files.length} files formatted`);
