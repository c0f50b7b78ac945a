// The CLI's commands as a user runs them (the compiled bin in a child process): tokenize,
// detokenize, chat over piped stdin, score, perplexity, bench, serve (with SIGTERM), generate's
// sampling options, Ctrl-C during generation and chat, and the one-line usage errors. Outputs
// are compared with the library's API on the same model.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { progressBar } from '../../lib/cli/progress.js';
import { loadModel, type Model } from '../../lib/index.js';
import { testModel } from '../support/models.js';
import { until } from '../support/until.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'dist', 'lib', 'cli', 'main.js');
let dir: string;
let modelPath: string;
let model: Model;

interface Child {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

async function cli(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = start(args);
  c.child.stdin.end(input);
  const { code } = await c.exit;
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gpt2-node-cli-'));
  modelPath = await testModel('tiny', 'f32', { initScale: 4 });
  model = await loadModel(modelPath, { threads: 1 });
});

test.after.always(async () => {
  await model?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('tokenize and detokenize', async (t) => {
  const text = 'Hello world, ünïcode <|endoftext|>';
  const ids = Array.from(model.tokenize(text));
  const plain = await cli(['tokenize', '-m', modelPath, text]);
  t.is(plain.code, 0, plain.stderr);
  t.is(plain.stdout, ids.join(' ') + '\n');
  t.is((await cli(['tokenize', '-m', modelPath, '--json', text])).stdout, JSON.stringify(ids) + '\n');
  t.is((await cli(['tokenize', '-m', modelPath, '--count', text])).stdout, `${ids.length}\n`);
  const special = JSON.parse((await cli(['tokenize', '-m', modelPath, '--json', '--special', text])).stdout);
  t.deepEqual(special, Array.from(model.tokenize(text, { allowedSpecial: 'all' })));
  t.is(special.at(-1), 50256);
  const pieces = JSON.parse((await cli(['tokenize', '-m', modelPath, '--json', '--pieces', 'Hi there'])).stdout);
  t.deepEqual(pieces, [{ id: 17250, piece: 'Hi' }, { id: 612, piece: ' there' }]);
  t.is((await cli(['tokenize', '-m', modelPath, '--pieces', 'Hi there'])).stdout, '17250\t"Hi"\n612\t" there"\n');
  // stdin as it is, the trailing newline included
  t.is((await cli(['tokenize', '-m', modelPath], 'two lines\nhere\n')).stdout, Array.from(model.tokenize('two lines\nhere\n')).join(' ') + '\n');

  const back = await cli(['detokenize', '-m', modelPath, ...ids.map(String)]);
  t.is(back.code, 0, back.stderr);
  t.is(back.stdout, text);
  t.is((await cli(['detokenize', '-m', modelPath], JSON.stringify(ids))).stdout, text);
  t.is((await cli(['detokenize', '-m', modelPath], ids.join(', '))).stdout, text);
  const bad = await cli(['detokenize', '-m', modelPath, '15496', '99999']);
  t.is(bad.code, 2);
  t.is(bad.stderr, 'gpt2-node detokenize: token id 99999 is not in the vocabulary (0 to 50256)\n');
  const word = await cli(['detokenize', '-m', modelPath, '15496', 'x1']);
  t.is(word.code, 2);
  t.is(word.stderr, 'gpt2-node detokenize: expects token ids (non-negative integers) but got "x1"\n');
});

test('chat over piped stdin: one reply per line, as a session gives them; /reset forgets', async (t) => {
  const options = { maxTokens: 8, temperature: 0, ignoreEos: true };
  const session = model.createSession();
  const first = (await session.complete('Hello there', options)).text;
  const second = (await session.complete('How are you?', options)).text;
  const r = await cli(['chat', '-m', modelPath, '-n', '8', '-t', '0', '--ignore-eos'], 'Hello there\nHow are you?\n\n/reset\nHello there\n');
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  t.is(r.stdout, `${first}\n${second}\n${first}\n`);
  // a custom separator
  const sep = model.createSession({ turnSeparator: Array.from(model.tokenize('\n')) });
  const reply = (await sep.complete('Hi', { ...options, stop: ['\n'] })).text;
  const custom = await cli(['chat', '-m', modelPath, '-n', '8', '-t', '0', '--ignore-eos', '--separator', '\\n'], 'Hi\n/exit\nnot read\n');
  t.is(custom.code, 0, custom.stderr);
  t.is(custom.stdout, `${reply}\n`);
});

test('score: log-likelihoods per continuation, best, accuracy', async (t) => {
  const file = join(dir, 'items.jsonl');
  const items = [
    { context: 'The capital of France is', continuations: [' Paris', ' Rome, of course'], label: 0 },
    { context: 'One, two,', continuations: [' three', ' seven'], label: 1 },
  ];
  await writeFile(file, items.map((x) => JSON.stringify(x)).join('\n') + '\n\n');
  const r = await cli(['score', '-m', modelPath, file]);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  let right = 0;
  for (const [i, item] of items.entries()) {
    const expected = await model.score(item.context, item.continuations);
    const sums = expected.map((x) => x.sum);
    const best = sums.indexOf(Math.max(...sums));
    if (best === item.label) right++;
    t.deepEqual(lines[i], { index: i, logprobs: sums, tokens: expected.map((x) => x.tokens.length), best, correct: best === item.label });
  }
  t.is(r.stderr, `accuracy ${(right / 2).toFixed(4)} (${right} of 2)\n`);
  const one = await cli(['score', '-m', modelPath, '--context', 'The capital of France is', ' Paris', ' Rome, of course']);
  const { correct, ...withoutLabel } = lines[0];
  void correct;
  t.deepEqual(JSON.parse(one.stdout), withoutLabel);
  t.is(one.stderr, '');
  await writeFile(file, '{"context": "a", "continuations": ["b"]}\n{"continuations": ["b"]}\n');
  const bad = await cli(['score', '-m', modelPath, file]);
  t.is(bad.code, 2);
  t.is(bad.stderr, 'gpt2-node score: line 2: expected a string "context"\n');
  const none = await cli(['score', '-m', modelPath]);
  t.is(none.code, 2);
  t.is(none.stderr, 'gpt2-node score: expects one JSON-lines file (or - for stdin), or --context <text> <continuation>...\n');
});

test('perplexity of a text file, sliding windows', async (t) => {
  const text = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness. '.repeat(12);
  const file = join(dir, 'text.txt');
  await writeFile(file, text);
  const ids = model.tokenize(text);
  const expected = await model.perplexity(ids, { window: 128, stride: 64 });
  const r = await cli(['perplexity', '-m', modelPath, '--window', '128', '--stride', '64', '--json', file]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { ...expected, window: 128, stride: 64 });
  t.is(r.stderr, '', 'no progress bar when stderr is not a terminal');
  const plain = await cli(['perplexity', '-m', modelPath, '-'], text);
  const whole = await model.perplexity(ids);
  t.is(plain.stdout, `perplexity ${whole.perplexity.toFixed(4)} (${whole.tokens} tokens scored, window 512, stride 256)\n`);
  const bad = await cli(['perplexity', '-m', modelPath, '--window', '1', file]);
  t.is(bad.code, 2);
  t.is(bad.stderr, 'gpt2-node perplexity: Expected integer between 2 and 512 for window but received 1\n');
});

test('bench measures pp and tg', async (t) => {
  const r = await cli(['bench', '-m', modelPath, '-p', '32', '-n', '8', '-r', '2', '--parallel', '2', '--threads', '1', '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.like(out, { tensorType: 'f32', threads: 1, parallel: 2, batchInvariant: true });
  t.deepEqual(out.results.map((x: any) => x.test), ['pp32', 'tg8 x2']);
  for (const x of out.results) {
    t.is(x.samples.length, 2);
    t.true(x.tokensPerSecond > 0 && Number.isFinite(x.stddev));
  }
  const table = await cli(['bench', '-m', modelPath, '-p', '16', '-n', '0', '-r', '1', '--threads', '1']);
  t.is(table.code, 0, table.stderr);
  const rows = table.stdout.trim().split('\n');
  t.regex(rows[0]!, /^\| model +\| type \| +size \| params \| threads \| test +\| +t\/s \|$/);
  t.regex(rows[2]!, /\| pp16 \| +\d+\.\d\d ± 0\.00 \|$/);
  t.is(rows.length, 3);
  const bad = await cli(['bench', '-m', modelPath, '-p', '600']);
  t.is(bad.code, 2);
  t.is(bad.stderr, 'gpt2-node bench: --prompt-tokens must be between 0 and the context size (512) but got 600\n');
});

test('generate: stop strings, logit bias, penalties and logprobs', async (t) => {
  const base = ['generate', '-m', modelPath, '-t', '0', '--ignore-eos', '--json'];
  const full = await model.complete('Options', { maxTokens: 16, temperature: 0, ignoreEos: true });
  const stop = full.text.split(' ').filter((w) => w.length > 2)[2]!;
  const stopped = JSON.parse((await cli([...base, '-n', '16', '--stop', 'zzz never', '--stop', stop, 'Options'])).stdout);
  t.is(stopped.text, full.text.slice(0, full.text.indexOf(stop)));
  t.is(stopped.finishReason, 'stop');
  const first = full.tokens[0]!;
  const biased = JSON.parse((await cli([...base, '-n', '4', '--logit-bias', `${first}=-inf`, 'Options'])).stdout);
  const expected = await model.complete('Options', { maxTokens: 4, temperature: 0, ignoreEos: true, logitBias: { [first]: -Infinity } });
  t.deepEqual(biased.tokens, Array.from(expected.tokens));
  const penalized = JSON.parse((await cli([...base, '-n', '8', '--repeat-penalty', '1.3', '--presence-penalty', '0.5', '--frequency-penalty', '0.5', '--repeat-last-n', '16', 'Options'])).stdout);
  const p = await model.complete('Options', { maxTokens: 8, temperature: 0, ignoreEos: true, repetitionPenalty: 1.3, presencePenalty: 0.5, frequencyPenalty: 0.5, penaltyWindow: 16 });
  t.deepEqual(penalized.tokens, Array.from(p.tokens));
  const lp = JSON.parse((await cli([...base, '-n', '3', '--logprobs', '2', 'Options'])).stdout);
  const api = await model.complete('Options', { maxTokens: 3, temperature: 0, ignoreEos: true, logprobs: 2 });
  t.deepEqual(lp.logprobs, JSON.parse(JSON.stringify(api.logprobs)));
  const badBias = await cli([...base, '--logit-bias', '5:1', 'x']);
  t.is(badBias.code, 2);
  t.is(badBias.stderr, 'gpt2-node generate: --logit-bias expects <token id>=<bias> (e.g. 50256=-inf) but got "5:1"\n');
  const badRange = await cli([...base, '--logprobs', '30', 'x']);
  t.is(badRange.code, 2);
  t.is(badRange.stderr, 'gpt2-node generate: Expected integer between 0 and 20 for logprobs but received 30\n');
});

test('generate with --lookup or --draft-model: the output without them, and the guesses counted', async (t) => {
  const base = ['generate', '-m', modelPath, '-t', '0', '--ignore-eos', '--json', '-n', '24'];
  const plain = JSON.parse((await cli([...base, 'one two three one two three one two'])).stdout);
  for (const extra of [['--lookup', '--draft-max', '4'], ['--draft-model', modelPath, '--draft-p-min', '0']]) {
    const r = await cli([...base, ...extra, 'one two three one two three one two']);
    t.is(r.code, 0, r.stderr);
    const spec = JSON.parse(r.stdout);
    t.deepEqual(spec.tokens, plain.tokens, extra.join(' '));
    t.is(spec.text, plain.text);
    t.is(typeof spec.usage.draftedTokens, 'number');
  }
  t.true(JSON.parse((await cli([...base, '--draft-model', modelPath, '--draft-p-min', '0', 'x'])).stdout).usage.acceptedTokens > 0, 'the model drafting for itself is right');
});

test('serve: listens, answers, and stops on SIGTERM', async (t) => {
  const s = start(['serve', '-m', modelPath, '--port', '0', '--parallel', '2', '--threads', '1', '--model-id', 'cli-model', '--allowed-host', 'api.example'], { GPT2_NODE_API_KEY: 'k' });
  try {
    t.true(await until(() => /listening on /.test(s.stderr()), 30_000), s.stderr());
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+) /.exec(s.stderr())![1]!;
    t.regex(s.stderr(), /\(model "cli-model", 2 slots of 512 positions, queue 128, API key required\)\n$/);
    const denied = await fetch(`${url}/v1/models`);
    t.is(denied.status, 401);
    const r = await fetch(`${url}/v1/completions`, {
      method: 'POST', headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Served', max_tokens: 5, temperature: 0, ignore_eos: true }),
    });
    const body = await r.json() as any;
    t.is(r.status, 200);
    t.is(body.model, 'cli-model');
    t.is(body.choices[0].text, (await model.complete('Served', { maxTokens: 5, temperature: 0, ignoreEos: true })).text);
    // on 127.0.0.1 the Host must be a loopback name or an --allowed-host one
    const statusFor = (host: string) => new Promise<number>((resolve, reject) => {
      const u = new URL('/health', url);
      const req = httpRequest({ hostname: u.hostname, port: u.port, path: u.pathname, headers: { host }, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end();
    });
    t.is(await statusFor('api.example:443'), 200);
    t.is(await statusFor('evil.example'), 403);
    s.child.kill('SIGTERM');
    t.deepEqual(await s.exit, { code: 0, signal: null });
    t.regex(s.stderr(), /gpt2-node serve: SIGTERM: shutting down .*\ngpt2-node serve: stopped\n$/);
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('usage errors are one line, exit code 2, before any model is loaded', async (t) => {
  const cases: [string[], string][] = [
    [['chat'], 'gpt2-node chat: missing -m <model.gguf>'],
    [['serve', '-m', 'x.gguf', '--port', '70000'], 'gpt2-node serve: --port must be between 0 and 65535 but got 70000'],
    [['serve', '-m', 'x.gguf', '--parallel', '0'], 'gpt2-node serve: --parallel must be at least 1 but got 0'],
    [['serve', '-m', 'x.gguf', '--max-queue', 'lots'], 'gpt2-node serve: --max-queue expects an integer but got "lots"'],
    [['bench', '-m', 'x.gguf', '--repetitions', '0'], 'gpt2-node bench: --repetitions must be at least 1 but got 0'],
    [['perplexity', '-m', 'x.gguf'], 'gpt2-node perplexity: expects one text file (or - for stdin)'],
    [['score', '-m', 'x.gguf', '--context', 'c'], 'gpt2-node score: expects at least one continuation after --context'],
    [['chat', '-m', 'x.gguf', '--separator', ''], 'gpt2-node chat: --separator must not be empty'],
    [['tokenize', 'text'], 'gpt2-node tokenize: missing -m <model.gguf>'],
    [['generate', '-m', 'x.gguf', '--top-p', 'high', 'x'], 'gpt2-node generate: --top-p expects a number but got "high"'],
    [['generate', '-m', 'x.gguf', '--lookup', '--draft-model', 'd.gguf', 'x'], 'gpt2-node generate: --lookup and --draft-model exclude each other: pick one predictor'],
    [['generate', '-m', 'x.gguf', '--draft-max', '4', 'x'], 'gpt2-node generate: --draft-max and --draft-p-min go with --lookup or --draft-model'],
    [['generate', '-m', 'x.gguf', '--lookup', '--draft-max', '0', 'x'], 'gpt2-node generate: Expected integer between 1 and 64 for --draft-max but received 0'],
    [['serve', '-m', 'x.gguf', '--draft-model', 'd.gguf', '--draft-p-min', '1.5'], 'gpt2-node serve: Expected number between 0 and 1 for --draft-p-min but received 1.5'],
    [['generate', '-m', 'x.gguf', '--device', 'tpu', 'x'],
      'gpt2-node generate: Expected \'auto\', \'cpu\', \'cuda\', \'cuda:N\', \'metal\' or \'vulkan\' for device but received "tpu" of type string'],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stderr, message + '\n');
    t.is(r.stdout, '');
  }
  const missing = await cli(['generate', '-m', join(dir, 'missing.gguf'), 'x']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^gpt2-node generate: .*missing\.gguf.* \[ERR_NOT_FOUND\]\n$/);
});

test.serial('Ctrl-C stops a generation cleanly: what was generated stays, exit code 130', async (t) => {
  const big = await testModel('124M', 'f16');
  const g = start(['generate', '-m', big, '-n', '400', '--ignore-eos', '--threads', '1', 'Interrupt me']);
  g.child.stdin.end();
  t.true(await until(() => g.stdout().length > 'Interrupt me'.length + 10, 60_000), g.stderr());
  g.child.kill('SIGINT');
  t.deepEqual(await g.exit, { code: 130, signal: null });
  t.true(g.stdout().startsWith('Interrupt me'));
  t.true(g.stdout().endsWith('\n'));
  t.is(g.stderr(), '');
});

test.serial('Ctrl-C in chat stops the reply; Ctrl-C at the prompt leaves', async (t) => {
  const big = await testModel('124M', 'f16');
  const c = start(['chat', '-m', big, '-n', '400', '--ignore-eos', '--threads', '1']);
  c.child.stdin.write('Tell me everything\n');
  t.true(await until(() => c.stdout().length > 10, 60_000), c.stderr());
  c.child.kill('SIGINT');
  t.true(await until(() => c.stdout().endsWith('\n'), 10_000), 'the reply ends');
  t.is(c.child.exitCode, null, 'the chat goes on');
  // now at the prompt, waiting for a line
  c.child.kill('SIGINT');
  t.deepEqual(await c.exit, { code: 0, signal: null });
  t.is(c.stderr(), '');
});

test('the progress bar draws on a terminal only, once per percent, and clears its line', (t) => {
  const writes: string[] = [];
  const stream = (isTTY: boolean) => ({ isTTY, write: (s: string) => { writes.push(s); return true; } }) as unknown as NodeJS.WriteStream;
  const bar = progressBar('working', stream(true));
  bar.update(0, 4);
  bar.update(2, 4);
  bar.update(2, 4);
  bar.update(4, 4);
  bar.end();
  t.is(writes.length, 4);
  t.is(writes[0], '\r\x1b[2Kworking [------------------------------]   0%');
  t.true(writes[1]!.startsWith('\r\x1b[2K'));
  t.regex(writes[1]!.slice('\r\x1b[2K'.length), /^working \[#{15}-{15}\] {2}50% \d+ s left$/);
  t.is(writes[2], '\r\x1b[2Kworking [##############################] 100%');
  t.is(writes[3], '\r\x1b[2K');
  writes.length = 0;
  const quiet = progressBar('working', stream(false));
  quiet.update(1, 2);
  quiet.end();
  t.deepEqual(writes, []);
});

test('build: a bad --gpu is a usage error; without cmake on PATH it says what is missing, and builds nothing', async (t) => {
  const bad = await cli(['build', '--gpu', 'directx']);
  t.is(bad.code, 2);
  t.is(bad.stderr, 'gpt2-node build: --gpu must be one of cpu, cuda, vulkan, metal but got "directx"\n');
  // a PATH holding node alone: the check fails before the build starts
  const onlyNode = join(dir, 'only-node');
  await mkdir(onlyNode, { recursive: true });
  await symlink(process.execPath, join(onlyNode, 'node'));
  const c = start(['build'], { PATH: onlyNode });
  c.child.stdin.end();
  const { code } = await c.exit;
  t.is(code, 1);
  t.is(c.stderr(), 'gpt2-node build: building needs cmake 3.18 or later on PATH (and a C++17 compiler) [ERR_NOT_FOUND]\n');
});
