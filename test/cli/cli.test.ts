// The CLI as a user runs it: the compiled bin (dist/, built by npm install and by npm test's
// pretest) in a child process.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { loadModel } from '../../lib/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'dist', 'lib', 'cli', 'main.js');
let dir: string;
let modelPath: string;

function spawnRun(cmd: string, args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

const cli = (args: string[], input?: string) => spawnRun(process.execPath, [bin, ...args], input);

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gpt2-node-cli-'));
  modelPath = join(dir, 'tiny.gguf');
});

test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial('create-model writes a model that info describes', async (t) => {
  const made = await cli(['create-model', '-o', modelPath, '--shape', 'tiny', '--type', 'f16', '--init-scale', '4']);
  t.is(made.code, 0, made.stderr);
  t.regex(made.stderr, /wrote .*tiny\.gguf \(tiny, f16\)/);
  const info = await cli(['info', '-m', modelPath]);
  t.is(info.code, 0, info.stderr);
  t.regex(info.stdout, /architecture\s+gpt2/);
  t.regex(info.stdout, /layers\s+2\n/);
  t.regex(info.stdout, /tensor type\s+f16/);
  t.regex(info.stdout, /vocabulary\s+50257/);
  const json = JSON.parse((await cli(['info', '-m', modelPath, '--json'])).stdout);
  t.is(json.embeddingSize, 64);
  t.is(json.heads, 4);
  t.is(json.contextLength, 512);
});

test.serial('generate --json equals the API result; streaming prints the prompt and the same text', async (t) => {
  const r = await cli(['generate', '-m', modelPath, '-n', '12', '-t', '0', '--ignore-eos', '--json', 'Hello there']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const model = await loadModel(modelPath, { threads: 1 });
  try {
    const api = await model.complete('Hello there', { maxTokens: 12, temperature: 0, ignoreEos: true });
    t.deepEqual(out.tokens, Array.from(api.tokens));
    t.is(out.text, api.text);
    t.is(out.finishReason, 'length');
    t.is(out.usage.completionTokens, 12);
    const streamed = await cli(['generate', '-m', modelPath, '-n', '12', '-t', '0', '--ignore-eos', 'Hello there']);
    t.is(streamed.code, 0, streamed.stderr);
    t.is(streamed.stdout, 'Hello there' + api.text + '\n');
    const fromStdin = await cli(['generate', '-m', modelPath, '-n', '12', '-t', '0', '--ignore-eos', '--json'], 'Hello there');
    t.deepEqual(JSON.parse(fromStdin.stdout).tokens, Array.from(api.tokens));
  } finally {
    await model.dispose();
  }
});

test.serial('seeded sampling from the CLI is reproducible', async (t) => {
  const args = ['generate', '-m', modelPath, '-n', '10', '-t', '1', '-s', '5', '--ignore-eos', '--json', 'Seeds'];
  const a = JSON.parse((await cli(args)).stdout);
  const b = JSON.parse((await cli(args)).stdout);
  t.deepEqual(a.tokens, b.tokens);
});

test.serial('quantize converts a model that then generates', async (t) => {
  const out = join(dir, 'tiny-q8.gguf');
  const r = await cli(['quantize', modelPath, out, 'q8_0']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /wrote .*tiny-q8\.gguf: 10 tensors as q8_0, .* MiB → .* MiB in/);
  const info = JSON.parse((await cli(['info', '-m', out, '--json'])).stdout);
  t.is(info.tensorType, 'q8_0');
  const g = await cli(['generate', '-m', out, '-n', '4', '-t', '0', '--ignore-eos', '--json', 'x']);
  t.is(JSON.parse(g.stdout).tokens.length, 4);
  const bad = await cli(['quantize', modelPath, out, 'q7']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^gpt2-node quantize: Expected one of f32, .* for type but received "q7" of type string\n$/);
  const missing = await cli(['quantize', modelPath]);
  t.is(missing.code, 2);
  t.is(missing.stderr, 'gpt2-node quantize: expects <in.gguf> <out.gguf> <type>\n');
});

test.serial('convert: an HF folder and a legacy .bin to GGUF, and its errors', async (t) => {
  const { writeHfFolder, writeLegacyGgml } = await import('../support/export-formats.js');
  const hf = join(dir, 'hf');
  await writeHfFolder(modelPath, hf);
  const out = join(dir, 'from-hf.gguf');
  const r = await cli(['convert', hf, '-o', out, '--type', 'f16']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /^wrote .*from-hf\.gguf: 28 tensors from safetensors, \d+ as f16, [\d.]+ MiB in [\d.]+ s\n$/);
  const info = JSON.parse((await cli(['info', '-m', out, '--json'])).stdout);
  t.is(info.tensorType, 'f16');
  t.is(info.format, 'gguf');
  // the folder itself runs too, and gives the converted file's f32 twin the same tokens
  const fromFolder = JSON.parse((await cli(['generate', '-m', hf, '-n', '6', '-t', '0', '--ignore-eos', '--json', 'x'])).stdout);
  const fromGguf = JSON.parse((await cli(['generate', '-m', modelPath, '-n', '6', '-t', '0', '--ignore-eos', '--json', 'x'])).stdout);
  t.deepEqual(fromFolder.tokens, fromGguf.tokens);

  const legacy = join(dir, 'legacy.bin');
  await writeLegacyGgml(modelPath, legacy);
  const l = await cli(['convert', legacy, '-o', join(dir, 'from-legacy.gguf')]);
  t.is(l.code, 0, l.stderr);
  t.regex(l.stderr, /28 tensors from ggml,/);

  const noOut = await cli(['convert', hf]);
  t.is(noOut.code, 2);
  t.is(noOut.stderr, 'gpt2-node convert: needs -o <out.gguf>\n');
  const badType = await cli(['convert', hf, '-o', join(dir, 'x.gguf'), '--type', 'q7']);
  t.is(badType.code, 2);
  t.regex(badType.stderr, /^gpt2-node convert: Expected one of f32, .* for type but received "q7" of type string\n$/);
  const notModel = await cli(['convert', join(dir, 'nothing'), '-o', join(dir, 'x.gguf')]);
  t.is(notModel.code, 1);
  t.regex(notModel.stderr, /^gpt2-node convert: .*nothing: no such file or folder \[ERR_NOT_FOUND\]\n$/);
});

// Ctrl-C while a command writes a model file: exit code 130 (as a shell reports SIGINT), one line
// that says so, and neither the output nor its temporary file left behind.
for (const command of ['convert', 'quantize'] as const) {
  test.serial(`${command}: Ctrl-C aborts with exit code 130 and leaves no output`, async (t) => {
    const { testModel } = await import('../support/models.js');
    const big = await testModel('124M', 'f16');
    const out = join(dir, `interrupted-${command}.gguf`);
    const args = command === 'convert' ? [big, '-o', out, '--type', 'q4_K'] : [big, out, 'q4_K'];
    const child = spawn(process.execPath, [bin, command, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    // the temporary file appears once writing has begun (124M to q4_K then takes seconds)
    const { existsSync } = await import('node:fs');
    const started = Date.now();
    while (!existsSync(`${out}.partial`) && Date.now() - started < 60_000 && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    t.true(existsSync(`${out}.partial`), `writing began: ${stderr}`);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    t.is(code, 130, stderr);
    t.is(stderr, `gpt2-node ${command}: interrupted, no output written\n`);
    t.false(existsSync(out));
    t.false(existsSync(`${out}.partial`));
  });
}

test.serial('`npx gpt2-node` runs this checkout\'s CLI, as the README shows', async (t) => {
  const out = await spawnRun('npx', ['--no', 'gpt2-node', 'info', '-m', modelPath, '--json']);
  t.is(out.code, 0, out.stderr);
  t.is(JSON.parse(out.stdout).architecture, 'gpt2');
});

test('help for the program and every command', async (t) => {
  const top = await cli(['--help']);
  t.is(top.code, 0);
  t.regex(top.stdout, /Usage: gpt2-node <command>/);
  // every command the program's help lists has its own help, with every option it accepts
  const listed = [...top.stdout.matchAll(/^ {2}([a-z-]+) /gm)].map((m) => m[1]!);
  for (const command of ['generate', 'chat', 'serve', 'info', 'tokenize', 'detokenize', 'score', 'perplexity', 'bench', 'convert', 'quantize', 'create-model']) {
    t.true(listed.includes(command), command);
  }
  for (const command of listed) {
    const h = await cli([command, '--help']);
    t.is(h.code, 0, command);
    t.regex(h.stdout, new RegExp(`^Usage: gpt2-node ${command}`));
    t.regex(h.stdout, /^ {2}-h, --help +show this help$/m);
    t.is((await cli([command, '-h'])).stdout, h.stdout);
  }
  const none = await cli([]);
  t.is(none.code, 1);
});

test('errors are one line and a non-zero exit code', async (t) => {
  const unknown = await cli(['frobnicate']);
  t.is(unknown.code, 2);
  t.is(unknown.stderr, 'gpt2-node: unknown command "frobnicate" (try gpt2-node --help)\n');
  const noModel = await cli(['generate', 'hi']);
  t.is(noModel.code, 2);
  t.is(noModel.stderr, 'gpt2-node generate: missing -m <model.gguf>\n');
  const badOption = await cli(['info', '--nope']);
  t.is(badOption.code, 2);
  t.regex(badOption.stderr, /^gpt2-node info: Unknown option '--nope'.*\n$/);
  const badNumber = await cli(['generate', '-m', 'x.gguf', '-n', 'many', 'hi']);
  t.is(badNumber.code, 2);
  t.is(badNumber.stderr, 'gpt2-node generate: --max-tokens expects an integer but got "many"\n');
  const notModel = join(dir, 'not-a-model.gguf');
  await writeFile(notModel, 'plain text');
  const bad = await cli(['info', '-m', notModel]);
  t.is(bad.code, 1);
  // the reason is the model loader's (its wording belongs to the formats' tests)
  t.true(bad.stderr.startsWith(`gpt2-node info: ${notModel}: `), bad.stderr);
  t.true(bad.stderr.endsWith(' [ERR_BAD_MODEL]\n'), bad.stderr);
  t.is(bad.stderr.split('\n').length, 2, 'one line');
  // a value out of range is the command line's mistake, found before the model loads
  const range = await cli(['generate', '-m', notModel, '-n', '0', 'hi']);
  t.is(range.code, 2);
  t.is(range.stderr, 'gpt2-node generate: Expected integer between 1 and 1000000 for maxTokens but received 0\n');
  const chatRange = await cli(['chat', '-m', notModel, '--temperature=-1']);
  t.is(chatRange.code, 2);
  t.is(chatRange.stderr, 'gpt2-node chat: Expected number between 0 and 100 for temperature but received -1\n');
  const shape = await cli(['create-model', '-o', join(dir, 'x.gguf'), '--shape', 'huge']);
  t.is(shape.code, 2);
  t.is(shape.stderr, 'gpt2-node create-model: --shape must be one of tiny, 124M, 355M, 774M, 1.5B but got "huge"\n');
});
