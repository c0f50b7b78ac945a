// The error codes are one list: GPT2_ERROR_CODES in lib/errors.ts, the constants of
// native/util/error.h, and the table of docs/api.md#error-codes. Every ERR_ literal in lib/ and
// native/ must be one of them (Node's own ERR_PARSE_ARGS aside), and native throw sites name the
// constants rather than string literals.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { fromNative } from '../../lib/errors.js';
import { GPT2_ERROR_CODES, Gpt2Error, type Gpt2ErrorCode } from '../../lib/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && ext.test(e.name))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

test('the list has no duplicates and every code has the ERR_ shape', (t) => {
  t.is(new Set(GPT2_ERROR_CODES).size, GPT2_ERROR_CODES.length);
  for (const code of GPT2_ERROR_CODES) t.regex(code, /^ERR_[A-Z]+(_[A-Z]+)*$/);
  t.true(GPT2_ERROR_CODES.includes('ERR_OUT_OF_RANGE'), 'the code native RangeErrors carry is part of the list');
});

test('docs/api.md#error-codes has one row per code, no more', (t) => {
  const doc = read('docs/api.md');
  const start = doc.indexOf('\n## Error codes\n');
  t.true(start >= 0, 'the section exists');
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  const rows = [...section.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  t.deepEqual([...rows].sort(), [...GPT2_ERROR_CODES].sort());
  t.is(new Set(rows).size, rows.length, 'no code twice');
});

test('the README lists no codes of its own; it links the table', (t) => {
  const readme = read('README.md');
  t.notRegex(readme, /ERR_[A-Z]/);
  t.true(readme.includes('docs/api.md#error-codes'));
});

test('native/util/error.h holds the same codes, in the same order, named after them', (t) => {
  const header = read('native/util/error.h');
  const constants = [...header.matchAll(/inline constexpr const char \* (\w+)\s*= "(ERR_[A-Z_]+)";/g)];
  t.deepEqual(constants.map((m) => m[2]), [...GPT2_ERROR_CODES]);
  for (const [, name, code] of constants) t.is(name, code!.slice(4).toLowerCase());
});

test('every ERR_ literal in lib/ and native/ is a listed code', (t) => {
  const listed = new Set<string>(GPT2_ERROR_CODES);
  const sources = [...files('lib', /\.ts$/), ...files('native', /\.(cpp|h)$/)];
  t.true(sources.length > 50, `found the sources (${sources.length})`);
  const unknown: string[] = [];
  for (const path of sources) {
    read(path).split('\n').forEach((line, i) => {
      for (const [code] of line.matchAll(/\bERR_[A-Z_]+\b/g)) {
        if (listed.has(code)) continue;
        // Node's util.parseArgs errors (ERR_PARSE_ARGS_*), matched where the CLI tells them apart
        if (code === 'ERR_PARSE_ARGS' && path.startsWith(join('lib', 'cli')) && line.includes('.code')) continue;
        unknown.push(`${path}:${i + 1}: ${code}`);
      }
    });
  }
  t.deepEqual(unknown, []);
});

test('native throw sites name the constants, not string literals', (t) => {
  const literals: string[] = [];
  for (const path of files('native', /\.(cpp|h)$/)) {
    if (path === join('native', 'util', 'error.h')) continue;
    read(path).split('\n').forEach((line, i) => {
      if (/"ERR_[A-Z_]*"/.test(line)) literals.push(`${path}:${i + 1}: ${line.trim()}`);
    });
  }
  t.deepEqual(literals, []);
});

test('Gpt2Error.code is typed; fromNative keeps a listed code and maps anything else to ERR_INTERNAL', (t) => {
  const e = new Gpt2Error('ERR_IO', 'x');
  const code: Gpt2ErrorCode = e.code;
  t.is(code, 'ERR_IO');
  // @ts-expect-error: not a code
  t.is(new Gpt2Error('ERR_NOPE', 'x').code, 'ERR_NOPE');

  const native = Object.assign(new Error('a.gguf: truncated'), { code: 'ERR_BAD_MODEL' });
  const wrapped = fromNative(native);
  t.true(wrapped instanceof Gpt2Error);
  t.like(wrapped as Gpt2Error, { code: 'ERR_BAD_MODEL', message: 'a.gguf: truncated' });
  t.like(fromNative(Object.assign(new Error('odd'), { code: 'ERR_SOMETHING_ELSE' })) as Gpt2Error, { code: 'ERR_INTERNAL', message: 'odd' });
  // argument errors pass through as they are, with the code a native RangeError carries
  const range = Object.assign(new RangeError('r'), { code: 'ERR_OUT_OF_RANGE' });
  t.is(fromNative(range), range);
});
