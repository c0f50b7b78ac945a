// Tokenizer benchmark (not a test): encode/decode throughput of gpt2-node's tokenizer and its
// peers (tiktoken, gpt-tokenizer, js-tiktoken; all r50k_base / GPT-2) on the same ~20 MB of
// mixed text (prose, code, CJK) generated here from a fixed seed, in one run, single thread
// (the JS thread; ours runs synchronously too). Then ours alone per pattern (the slowest
// pattern must stay above 1 MB/s). Prints a Markdown table; --write puts it into the
// "Tokenizer" section of bench/RESULTS.md.
//
//   npx tsx bench/tokenizer.ts [--mb 20] [--write]
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { get_encoding } from 'tiktoken';
import { getEncoding } from 'js-tiktoken';
import * as gptTokenizer from 'gpt-tokenizer/encoding/r50k_base';

import { loadTokenizer } from '../lib/index.js';
import { Gen, WORDS } from '../test/support/tokenizer-corpus.js';
import { gpt2VocabGgufPath } from '../test/support/tokenizer-files.js';

const args = process.argv.slice(2);
const mbArg = args.indexOf('--mb');
const targetMb = mbArg >= 0 ? Number(args[mbArg + 1]) : 20;
const write = args.includes('--write');

// ---- the text ----------------------------------------------------------------------------------

const CJK = '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明'
  + 'ことのにはをたがでてとしれさあるいうもなかよりまするから日本語東京カタカナ한국어안녕하세요세계';

function prose(g: Gen): string {
  let s = '';
  const n = g.int(20, 120);
  for (let i = 0; i < n; i++) {
    let w = g.pick(WORDS);
    if (i === 0 || g.chance(0.06)) w = w[0]!.toUpperCase() + w.slice(1);
    s += (i ? ' ' : '') + w + (g.chance(0.08) ? g.pick([',', '.', ';', ':', '!', '?']) : '');
    if (g.chance(0.02)) s += ` ${g.int(0, 100000)}`;
    if (g.chance(0.01)) s += " don't";
  }
  return s + '.\n\n';
}

function code(g: Gen): string {
  const id = () => g.pick(['x', 'i', 'value', 'tokenIds', 'n_vocab', 'result', 'ctx', 'self', 'buffer', 'index']);
  const ind = g.pick(['  ', '    ', '\t']);
  switch (g.int(0, 2)) {
    case 0: return `function ${id()}(${id()}, ${id()}) {\n${ind}const ${id()} = ${id()}.map((${id()}) => ${id()} * ${g.int(0, 99)});\n${ind}if (${id()} !== null) return ${id()}[${g.int(0, 9)}];\n${ind}return { ${id()}: ${g.int(0, 999)}, ok: true };\n}\n\n`;
    case 1: return `def ${id()}(${id()}, ${id()}=None):\n${ind}for ${id()} in range(${g.int(1, 100)}):\n${ind}${ind}${id()} += ${id()}[${id()}] ** 2  # ${g.pick(WORDS)}\n${ind}return ${id()}\n\n`;
    default: return `static int ${id()}(const char * ${id()}, size_t n) {\n${ind}for (size_t i = 0; i < n; ++i) { if (${id()}[i] == '\\n') return (int) i; }\n${ind}return -1; /* ${g.pick(WORDS)} */\n}\n\n`;
  }
}

function cjk(g: Gen): string {
  let s = '';
  const n = g.int(40, 200);
  for (let i = 0; i < n; i++) s += CJK[g.int(0, CJK.length - 1)]! + (g.chance(0.06) ? g.pick(['，', '。', '、', '「', '」', ' ']) : '');
  return s + '。\n';
}

function mixedText(mb: number): string {
  const g = new Gen(2026);
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < mb * 1e6) {
    const r = g.next();
    const p = r < 0.6 ? prose(g) : r < 0.85 ? code(g) : cjk(g);
    parts.push(p);
    bytes += Buffer.byteLength(p);
  }
  return parts.join('');
}

// ---- measuring -----------------------------------------------------------------------------------

interface Impl {
  name: string;
  encode(text: string): ArrayLike<number>;
  decode(ids: ArrayLike<number>): string;
  prepare?(ids: ArrayLike<number>): ArrayLike<number>;
}

function seconds(f: () => void, minSeconds = 1.5, maxReps = 5): number {
  let best = Infinity;
  let total = 0;
  for (let r = 0; r < maxReps && (r === 0 || total < minSeconds); r++) {
    const t0 = performance.now();
    f();
    const dt = (performance.now() - t0) / 1000;
    best = Math.min(best, dt);
    total += dt;
  }
  return best;
}

const ours = await loadTokenizer(gpt2VocabGgufPath());
const tk = get_encoding('r50k_base');
const jt = getEncoding('r50k_base');
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

const impls: Impl[] = [
  { name: 'gpt2-node', encode: (s) => ours.tokenize(s), decode: (ids) => ours.detokenize(ids as Uint32Array), prepare: (ids) => Uint32Array.from(ids) },
  { name: 'tiktoken 1.0.22 (WASM)', encode: (s) => tk.encode(s, [], []), decode: (ids) => utf8.decode(tk.decode(ids as Uint32Array)), prepare: (ids) => Uint32Array.from(ids) },
  { name: 'gpt-tokenizer 4.0.0', encode: (s) => gptTokenizer.encode(s, { allowedSpecial: new Set(), disallowedSpecial: new Set() }), decode: (ids) => gptTokenizer.decode(ids as number[]), prepare: (ids) => Array.from(ids) },
  { name: 'js-tiktoken 1.0.21', encode: (s) => jt.encode(s, [], []), decode: (ids) => jt.decode(ids as number[]), prepare: (ids) => Array.from(ids) },
];

const loadAtStart = loadavg()[0]!;
const text = mixedText(targetMb);
const mb = Buffer.byteLength(text) / 1e6;
console.error(`text: ${mb.toFixed(1)} MB (UTF-8), ${text.length} UTF-16 units`);

interface Row { name: string; encMBs: number; encTps: number; decMBs: number; decTps: number; tokens: number; same: boolean }
const rows: Row[] = [];
let reference: ArrayLike<number> | undefined;
for (const impl of impls) {
  let ids: ArrayLike<number> = [];
  const reps = impl.name.startsWith('gpt2-node') ? 3 : impl.name.startsWith('tiktoken') ? 2 : 1;
  const enc = seconds(() => { ids = impl.encode(text); }, 0, reps);
  const prepared = impl.prepare ? impl.prepare(ids) : ids;
  let back = '';
  const dec = seconds(() => { back = impl.decode(prepared); }, 0, reps);
  reference ??= ids;
  let same = ids.length === reference.length;
  for (let i = 0; same && i < ids.length; i++) same = ids[i] === reference[i];
  if (back !== text) console.error(`${impl.name}: decode did not round-trip`);
  rows.push({ name: impl.name, encMBs: mb / enc, encTps: ids.length / enc, decMBs: mb / dec, decTps: ids.length / dec, tokens: ids.length, same });
  console.error(`${impl.name}: encode ${(mb / enc).toFixed(1)} MB/s, decode ${(mb / dec).toFixed(1)} MB/s`);
}
tk.free();

// Ours per pattern: the worst case must stay above 1 MB/s.
const g = new Gen(3);
const N = 2_000_000;
const patterns: Array<[string, string]> = [
  ['English prose', Array.from({ length: 2000 }, () => prose(g)).join('')],
  ['one 2 MB word (a-z)', Array.from({ length: N }, () => String.fromCharCode(97 + g.int(0, 25))).join('')],
  ['one 2 MB word (aaaa…)', 'a'.repeat(N)],
  ['one 2 MB number', Array.from({ length: N }, () => String(g.int(0, 9))).join('')],
  ['2 MB of CJK without spaces', Array.from({ length: N / 3 }, () => CJK[g.int(0, CJK.length - 1)]).join('')],
  ['2 MB of spaces', ' '.repeat(N)],
  ['2 MB of newlines', '\n'.repeat(N)],
  ['2 MB of punctuation', Array.from({ length: N }, () => '!@#$%^&*()'[g.int(0, 9)]).join('')],
  ['emoji ZWJ sequences', '👨‍👩‍👧‍👦👍🏽'.repeat(N / 33)],
  ['random BMP code points', Array.from({ length: N / 3 }, () => { const c = g.int(0x20, 0xfffd); return String.fromCharCode(c >= 0xd800 && c < 0xe000 ? 0x41 : c); }).join('')],
];
const patternRows: Array<[string, number, number]> = [];
for (const [name, s] of patterns) {
  const bytes = Buffer.byteLength(s) / 1e6;
  const t = seconds(() => ours.tokenize(s), 0, 2);
  patternRows.push([name, bytes, bytes / t]);
  console.error(`pattern ${name}: ${(bytes / t).toFixed(1)} MB/s`);
}

// ---- report --------------------------------------------------------------------------------------

const base = rows.find((r) => r.name.startsWith('tiktoken'))!;
const fmt = (x: number, d = 1) => x.toFixed(d);
const table = [
  '| tokenizer | encode MB/s | encode tokens/s | decode MB/s | decode tokens/s | encode vs tiktoken | decode vs tiktoken | same ids as ours |',
  '|---|---:|---:|---:|---:|---:|---:|:---:|',
  ...rows.map((r) => `| ${r.name} | ${fmt(r.encMBs)} | ${(r.encTps / 1e6).toFixed(2)} M | ${fmt(r.decMBs)} | ${(r.decTps / 1e6).toFixed(2)} M | ${fmt(r.encMBs / base.encMBs, 2)}× | ${fmt(r.decMBs / base.decMBs, 2)}× | ${r.same ? 'yes' : 'NO'} |`),
].join('\n');
const patternTable = [
  '| pattern (gpt2-node, encode) | MB | MB/s |',
  '|---|---:|---:|',
  ...patternRows.map(([n, b, s]) => `| ${n} | ${fmt(b)} | ${fmt(s)} |`),
].join('\n');

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const section = `## Tokenizer

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${cpu}, ${cpus().length} cores, Node ${process.version}; single thread (all four encode on the JS thread); load average ${loadAtStart.toFixed(1)} when the run started
- Command: \`npx tsx bench/tokenizer.ts --mb ${targetMb} --write\`
- Text: ${fmt(mb)} MB of mixed text generated by the bench (fixed seed): ~60% English prose, ~25% code (JS, Python, C), ~15% CJK. Best of 3 runs for gpt2-node, of 2 for tiktoken, 1 run for the pure-JS peers (they take 10–50 s per pass). Decode produces a JS string from a Uint32Array (tiktoken: bytes + TextDecoder).
- Targets: encode ≥ 3× tiktoken, decode ≥ 2× tiktoken, no pattern below 1 MB/s.

${table}

${patternTable}
`;
console.log(section);

if (write) {
  const path = join(dirname(fileURLToPath(import.meta.url)), 'RESULTS.md');
  let md = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmark results\n';
  const re = /## Tokenizer\n[\s\S]*?(?=\n## |$)/;
  md = re.test(md) ? md.replace(re, section) : `${md.trimEnd()}\n\n${section}`;
  writeFileSync(path, md);
  console.error(`wrote ${path}`);
}
