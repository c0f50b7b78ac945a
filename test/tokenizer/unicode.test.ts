// The pre-tokenizer's Unicode classes for all of Unicode: every code point, in contexts where
// its class (letter, number, whitespace, other) changes the split, against tiktoken. And the
// generated table is current with its generator.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { loadTokenizer } from '../../lib/index.js';
import { gpt2VocabGgufPath } from '../support/tokenizer-files.js';
import { sameIds, tiktoken } from '../support/tokenizer-refs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('unicode_tables.inc is what scripts/gen-unicode-tables.mjs generates', (t) => {
  const out = execFileSync(process.execPath, [join(root, 'scripts', 'gen-unicode-tables.mjs'), '--check'], { encoding: 'utf8' });
  t.regex(out, /is up to date \(\d+ ranges\)/);
});

test('every code point splits as in tiktoken', async (t) => {
  const tok = await loadTokenizer(gpt2VocabGgufPath());
  // Around each code point c: after a space (" ?" prefix joins letters, numbers, others),
  // next to letters, digits, a whitespace run and punctuation.
  const chunkSize = 2048;
  let compared = 0;
  const bad: string[] = [];
  for (let start = 0; start <= 0x10ffff; start += chunkSize) {
    let s = '';
    for (let cp = start; cp < start + chunkSize && cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue; // not scalar values
      const c = String.fromCodePoint(cp);
      s += ` ${c}a${c}1${c}  ${c},${c}`;
      compared++;
    }
    if (s === '') continue;
    if (!sameIds(tok.tokenize(s), tiktoken.encode(s, false))) bad.push(`U+${start.toString(16)}..U+${(start + chunkSize - 1).toString(16)}`);
  }
  t.log(`${compared} code points compared, ${bad.length} mismatching blocks`);
  t.true(compared > 1_100_000);
  t.deepEqual(bad, []);
});
