// The tokenizer test corpus: ≥ 5,000 strings generated in code from a fixed seed (no
// committed data). Each entry says which family it belongs to, so a summary can be printed
// per family and known reference differences can be matched narrowly.

export interface CorpusEntry {
  family: string;
  text: string;
  /** encode with allowedSpecial: 'all' (literal <|endoftext|> becomes 50256) */
  allowSpecial?: boolean;
}

/** mulberry32: small, fast, deterministic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gen {
  readonly next: () => number;
  constructor(seed: number) { this.next = rng(seed); }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]!; }
  chance(p: number): boolean { return this.next() < p; }
  repeat(n: number, f: () => string): string { let s = ''; for (let i = 0; i < n; i++) s += f(); return s; }
}

export const WORDS = (
  'the of and to in is was that for it with as his on be at by he this had not are but from or have an they ' +
  'which one you were her all she there would their we him been has when who will more no if out so said what ' +
  'up its about into than them can only other new some could time these two may then do first any my now such ' +
  'like our over man me even most made after also did many before must through back years where much your way ' +
  'well down should because each just those people how too little state good very make world still own see men ' +
  'work long get here between both life being under never day same another know while last might us great old ' +
  'year off come since against go came right used take three language model token tokenizer transformer ' +
  'attention neural network Paris London Tokyo Mississippi antidisestablishmentarianism supercalifragilistic ' +
  'naïve café résumé coöperate façade jalapeño Zürich Ångström'
).split(' ');

const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "'Re", "'x", "'", "''"];
const PUNCT = ['.', ',', '!', '?', ';', ':', '-', '--', '—', '–', '...', '…', '(', ')', '[', ']', '{', '}', '"', "'", '«', '»', '“', '”', '‘', '’', '@', '#', '$', '%', '^', '&', '*', '_', '+', '=', '|', '\\', '/', '<', '>', '~', '`', '¿', '¡', '§', '¶', '•', '·'];
const SPACES = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\r', '\v', '\f', ' \n', '\n ', '\t\t', '\u00a0', '\u2003', '\u3000', '\u2028', '\u2029', '\u0085', '\u1680', '\u200b', '\ufeff', '\u180e'];
const EMOJI = ['😀', '😁', '🦙', '🚀', '👍', '👍🏽', '👍🏿', '👨‍👩‍👧‍👦', '👩🏽‍💻', '🏳️‍🌈', '🇺🇸', '🇯🇵', '1️⃣', '#️⃣', '❤️', '✅', '🧑🏻‍🤝‍🧑🏿', '😶‍🌫️', '🫠', '🤌🏼', '🐈‍⬛', '☺︎', '©️'];
const SCRIPTS: Record<string, string[]> = {
  chinese: ['我想在', '苹果', '工作', '中华人民共和国', '你好，世界！', '今天天气很好。', '机器学习', '汉字', '龘', '𠀋𡈽𡌛'],
  japanese: ['こんにちは', 'カタカナ', '日本語のテキスト', 'ｶﾀｶﾅ', '東京都', 'です。', 'ゔ', 'ー'],
  korean: ['안녕하세요', '한국어', '세계', '감사합니다', 'ᄀᄁᄂ', '갃'],
  arabic: ['مرحبا', 'بالعالم', 'اللغة العربية', '٣٤٥', 'ـ', 'ﷺ', 'كِتَابٌ'],
  devanagari: ['नमस्ते', 'हिन्दी', 'दुनिया', '१२३', 'क्षत्रिय', 'ॐ'],
  cyrillic: ['нещо', 'на', 'Български', 'Привет', 'мир', 'Ёё'],
  greek: ['Γειά', 'σου', 'κόσμε', 'ΑΒΓ', 'ῼ'],
  thai: ['สวัสดี', 'ภาษาไทย', '๑๒๓'],
  hebrew: ['שלום', 'עולם', 'ספר'],
  khmer: ['កាន់តែពិសេសអាចខលចេញ'],
  combining: ['e\u0301', 'a\u0308', 'n\u0303', 'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319', '\u0301', 'o\u0328\u0304', 'ﬁ', 'Å', 'Å'],
};
const NUM_UNICODE = ['٣', '３', '²', '½', 'Ⅻ', '〇', '𝟙', '⑦', '१', '๓', '𐄇', '፱'];

function prose(g: Gen): string {
  const n = g.int(3, 40);
  let s = '';
  for (let i = 0; i < n; i++) {
    let w = g.pick(WORDS);
    if (i === 0 || g.chance(0.08)) w = w[0]!.toUpperCase() + w.slice(1);
    if (g.chance(0.03)) w = w.toUpperCase();
    s += (i === 0 ? '' : ' ') + w;
    if (g.chance(0.12)) s += g.pick([',', '.', ';', ':', '!', '?', '...']);
  }
  return s + g.pick(['.', '!', '?', '', '\n', ' ']);
}

function contraction(g: Gen): string {
  const parts: string[] = [];
  const n = g.int(1, 8);
  for (let i = 0; i < n; i++) {
    const before = g.pick(['I', 'you', 'DON', 'can', 'she', 'it', '1990', 'x)', '!', ' ', '', 'ROCK', "'", '"', 'é', '日本', '3', '\n']);
    parts.push(before + g.pick(CONTRACTIONS) + g.pick(['', ' ', 'x', 's', 'ss', '!', ' go', "'s", 'S', '\n', '1']));
  }
  return parts.join(g.pick([' ', '', '  ', '\n']));
}

function digits(g: Gen): string {
  const kind = g.int(0, 6);
  switch (kind) {
    case 0: return String(g.int(0, 1e9));
    case 1: return g.repeat(g.int(1, 300), () => String(g.int(0, 9)));
    case 2: return `${g.int(0, 999)}.${g.int(0, 99999)} ${g.int(1, 9)},${g.int(100, 999)},${g.int(100, 999)}`;
    case 3: return g.repeat(g.int(1, 12), () => g.pick(NUM_UNICODE) + g.pick(['', ' ', '1', 'a']));
    case 4: return `${g.pick(WORDS)}${g.int(0, 99999)} ${g.int(0, 9)}${g.pick(WORDS)} 0x${g.int(0, 0xffffff).toString(16)}`;
    case 5: return `  ${g.int(0, 999)}\t${g.int(0, 99)}  ${g.int(0, 9)} `;
    default: return `${g.int(1, 12)}/${g.int(1, 28)}/${g.int(1900, 2100)} ${g.int(0, 23)}:${g.int(10, 59)} +${g.int(1, 99)}%`;
  }
}

function whitespace(g: Gen): string {
  let s = '';
  const n = g.int(1, 10);
  for (let i = 0; i < n; i++) {
    s += g.repeat(g.int(1, 4), () => g.pick(SPACES));
    if (g.chance(0.7)) s += g.pick([g.pick(WORDS), '!', '1', '日本', 'é', '(', '🦙', '=']);
  }
  if (g.chance(0.5)) s += g.repeat(g.int(1, 5), () => g.pick(SPACES));
  return s;
}

function punctuation(g: Gen): string {
  return g.repeat(g.int(1, 12), () => g.repeat(g.int(1, 4), () => g.pick(PUNCT)) + g.pick(['', '', ' ', 'a', '1', '\n', ' x']));
}

function ident(g: Gen): string {
  return g.pick(['x', 'i', 'value', 'tokenIds', 'n_vocab', 'MAX_LEN', '_priv', '$el', 'fooBar2', 'self']);
}

function code(g: Gen): string {
  const ind = g.pick(['  ', '    ', '\t']);
  switch (g.int(0, 3)) {
    case 0:
      return `function ${ident(g)}(${ident(g)}, ${ident(g)}) {\n${ind}const ${ident(g)} = [${g.int(0, 99)}, ${g.int(0, 9)}];\n${ind}if (${ident(g)} !== null && ${ident(g)}.length > ${g.int(0, 9)}) {\n${ind}${ind}return \`\${${ident(g)}}!\`;\n${ind}}\n${ind}// ${prose(g)}\n}\n`;
    case 1:
      return `def ${ident(g)}(${ident(g)}: int = ${g.int(0, 9)}) -> list[str]:\n${ind}"""${prose(g)}"""\n${ind}for ${ident(g)} in range(${g.int(1, 100)}):\n${ind}${ind}yield f"{${ident(g)}!r:>10}"  # ${g.pick(WORDS)}\n\n`;
    case 2:
      return `#include <stdio.h>\nstatic int ${ident(g)}[${g.int(1, 64)}];\nint main(void) {\n${ind}for (int i = 0; i < ${g.int(1, 99)}; ++i) { ${ident(g)}[i] += i * 0x${g.int(0, 255).toString(16)}; }\n${ind}printf("%d\\n", ${ident(g)}[0]); /* ${g.pick(WORDS)} */\n${ind}return 0;\n}\r\n`;
    default:
      return JSON.stringify({ [ident(g)]: g.int(0, 1e6), text: prose(g), list: [g.next(), null, true, g.pick(WORDS)], nested: { 'k-ey': g.pick(EMOJI) } }, null, g.pick([0, 2, 4, '\t']));
  }
}

function url(g: Gen): string {
  const host = `${g.pick(['www.', '', 'api.', 'cdn-2.'])}${g.pick(WORDS).toLowerCase()}.${g.pick(['com', 'org', 'co.uk', 'io', 'de'])}`;
  const path = g.repeat(g.int(0, 4), () => `/${g.pick(WORDS)}${g.chance(0.3) ? g.int(0, 999) : ''}`);
  const q = g.chance(0.5) ? `?q=${encodeURIComponent(prose(g).slice(0, 20))}&page=${g.int(1, 9)}#${g.pick(WORDS)}` : '';
  return `${g.pick(['See ', 'Visit: ', '', '<', '('])}${g.pick(['https://', 'http://', 'ftp://', 'mailto:'])}${host}${path}${q}${g.pick(['', ')', '>', '.', ' now'])}`;
}

function emoji(g: Gen): string {
  return g.repeat(g.int(1, 8), () => g.pick(EMOJI) + g.pick(['', '', ' ', 'a', '!', '\u200d']));
}

function scripts(g: Gen): string {
  const keys = Object.keys(SCRIPTS);
  return g.repeat(g.int(1, 8), () => g.pick(SCRIPTS[g.pick(keys)]!) + g.pick(['', ' ', '，', '。', '1', ' a', '\n', '、']));
}

function loneSurrogates(g: Gen): string {
  return g.repeat(g.int(1, 5), () => g.pick(['\ud800', '\udfff', '\udc00', '\ud83d', '\ude00']) + g.pick(['', 'a', ' ', '😀', '\ud83d', '1']));
}

function randomCodePoint(g: Gen): number {
  const r = g.next();
  if (r < 0.3) return g.int(0x20, 0x7e);
  if (r < 0.4) return g.int(0, 0x1f);
  if (r < 0.6) return g.int(0x80, 0x7ff);
  if (r < 0.85) {
    const cp = g.int(0x800, 0xffff);
    return cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp;
  }
  return g.int(0x10000, 0x10ffff);
}

function randomUnicode(g: Gen): string {
  let s = '';
  const n = g.int(1, 60);
  for (let i = 0; i < n; i++) s += String.fromCodePoint(randomCodePoint(g));
  return s;
}

function mixed(g: Gen): string {
  const fs = [prose, contraction, digits, whitespace, punctuation, url, emoji, scripts, randomUnicode];
  return g.repeat(g.int(2, 5), () => g.pick(fs)(g) + g.pick(['', ' ', '\n']));
}

function endOfText(g: Gen): string {
  const eot = '<|endoftext|>';
  return g.repeat(g.int(1, 4), () => g.pick(['', eot, ' ' + eot, eot + ' ', '\n' + eot + '\n', '<|endoftext', '|>', '<|' + eot]) + g.pick(['', prose(g), ' ', 'a', '日本']));
}

/** Long words: 10,000+ characters in one pre-tokenizer piece. */
export function longWords(): CorpusEntry[] {
  const g = new Gen(7);
  const letters = g.repeat(12000, () => String.fromCharCode(97 + g.int(0, 25)));
  return [
    { family: 'long', text: 'a'.repeat(10000) },
    { family: 'long', text: letters },
    { family: 'long', text: ' ' + letters.toUpperCase() },
    { family: 'long', text: '7'.repeat(10001) },
    { family: 'long', text: g.repeat(10000, () => String(g.int(0, 9))) },
    { family: 'long', text: '中'.repeat(5000) + '文字'.repeat(2600) },
    { family: 'long', text: ' '.repeat(10000) + 'x' },
    { family: 'long', text: '\n'.repeat(10000) },
    { family: 'long', text: '!?'.repeat(5000) },
    { family: 'long', text: 'é'.repeat(10000) },
    { family: 'long', text: '😀'.repeat(5000) },
  ];
}

export const CORPUS_SEED = 20261128;

export function generateCorpus(seed = CORPUS_SEED): CorpusEntry[] {
  const g = new Gen(seed);
  const out: CorpusEntry[] = [];
  const families: Array<[string, (g: Gen) => string, number]> = [
    ['prose', prose, 700],
    ['contractions', contraction, 500],
    ['digits', digits, 400],
    ['whitespace', whitespace, 600],
    ['punctuation', punctuation, 350],
    ['code', code, 400],
    ['urls', url, 300],
    ['emoji', emoji, 300],
    ['scripts', scripts, 500],
    ['lone-surrogates', loneSurrogates, 100],
    ['random-unicode', randomUnicode, 600],
    ['mixed', mixed, 400],
  ];
  for (const [family, f, n] of families) {
    for (let i = 0; i < n; i++) out.push({ family, text: f(g) });
  }
  for (let i = 0; i < 150; i++) {
    const text = endOfText(g);
    out.push({ family: 'endoftext', text });
    out.push({ family: 'endoftext-allowed', text, allowSpecial: true });
  }
  // Every single code point class boundary the tables care about, in context.
  for (const cp of [0x85, 0xa0, 0xad, 0x2028, 0xfeff, 0x200b, 0x180e, 0x1680, 0x3000, 0x2000, 0x200a, 0x205f, 0x0b, 0x0c, 0x1c, 0x1f]) {
    const c = String.fromCodePoint(cp);
    for (const t of [c, `a${c}b`, `a ${c}b`, `a${c} b`, `a${c}${c}b`, ` ${c}`, `${c} `, `1${c}2`, `!${c}!`]) out.push({ family: 'space-classes', text: t });
  }
  out.push(...longWords());
  return out;
}
