#!/usr/bin/env node
// The gpt2-node command line: generate, info, create-model (random weights, for trying things
// offline). Errors are one line on stderr and a non-zero exit code.
import { parseArgs } from 'node:util';

import { Gpt2Error } from '../errors.js';

const HELP = `Usage: gpt2-node <command> [options]

Commands:
  generate -m <model.gguf> [prompt]   stream a continuation of the prompt (or of stdin)
  info -m <model.gguf>                print the model's architecture and sizes
  create-model -o <out.gguf>          write a GPT-2 GGUF with random weights and the real vocabulary
  quantize <in.gguf> <out.gguf> <type>  convert the weights to another type (q8_0, q4_K, ...)

Run gpt2-node <command> --help for the command's options.`;

const COMMANDS: Record<string, { help: string; options: NonNullable<Parameters<typeof parseArgs>[0]>['options']; run: (values: Record<string, unknown>, positionals: string[]) => Promise<void> }> = {
  generate: {
    help: `Usage: gpt2-node generate -m <model.gguf> [options] [prompt]

Streams generated text to stdout. Without a prompt argument, the prompt is read from stdin.

Options:
  -m, --model <path>        GGUF model file (required)
  -n, --max-tokens <n>      tokens to generate at most (default 128)
  -t, --temperature <x>     0 is greedy (default 0.8)
      --top-k <n>           keep the k most likely tokens (default 40; 0 = off)
      --top-p <x>           nucleus sampling (default 0.95)
      --min-p <x>           drop tokens below x · p(best) (default 0)
  -s, --seed <n>            sampler seed (default: random)
      --threads <n>         compute threads
      --ignore-eos          keep going after <|endoftext|>
      --json                print one JSON object (text, tokens, finishReason, usage) instead of streaming
  -h, --help                show this help`,
    options: {
      model: { type: 'string', short: 'm' },
      'max-tokens': { type: 'string', short: 'n' },
      temperature: { type: 'string', short: 't' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'min-p': { type: 'string' },
      seed: { type: 'string', short: 's' },
      threads: { type: 'string' },
      'ignore-eos': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    run: runGenerate,
  },
  info: {
    help: `Usage: gpt2-node info -m <model.gguf> [--json]

Prints the model's architecture, sizes and tensor type.

Options:
  -m, --model <path>   GGUF model file (required)
      --json           print JSON
  -h, --help           show this help`,
    options: { model: { type: 'string', short: 'm' }, json: { type: 'boolean' } },
    run: runInfo,
  },
  'create-model': {
    help: `Usage: gpt2-node create-model -o <out.gguf> [options]

Writes a GPT-2 GGUF with random weights (GPT-2's initialization), real GPT-2 shapes and the
real GPT-2 vocabulary, so everything can be tried offline. Its text is gibberish.

Options:
  -o, --output <path>     file to write (required)
      --shape <name>      tiny | 124M | 355M | 774M | 1.5B (default 124M)
      --type <type>       f32 | f16 | bf16 | q8_0 | q4_0 (default f16)
      --seed <n>          weight seed (default 1)
      --init-scale <x>    multiplies the init's standard deviations (default 1; 4 gives livelier text)
  -h, --help              show this help`,
    options: {
      output: { type: 'string', short: 'o' },
      shape: { type: 'string' },
      type: { type: 'string' },
      seed: { type: 'string' },
      'init-scale': { type: 'string' },
    },
    run: runCreateModel,
  },
  quantize: {
    help: `Usage: gpt2-node quantize <in.gguf> <out.gguf> <type>

Writes out.gguf with every 2-D weight of in.gguf converted to <type>; norms and biases stay f32.
Types: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K.

Options:
  -h, --help   show this help`,
    options: {},
    run: runQuantize,
  },
};

class UsageError extends Error {}

function num(values: Record<string, unknown>, key: string, fallback: number | undefined, integer = false): number | undefined {
  const raw = values[key];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${key} expects ${integer ? 'an integer' : 'a number'} but got "${String(raw)}"`);
  }
  return n;
}

function requireModel(values: Record<string, unknown>): string {
  if (typeof values.model !== 'string' || values.model === '') throw new UsageError('missing -m <model.gguf>');
  return values.model;
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

async function runGenerate(values: Record<string, unknown>, positionals: string[]): Promise<void> {
  const { loadModel } = await import('../model.js');
  const modelPath = requireModel(values);
  const prompt = positionals.length > 0 ? positionals.join(' ') : process.stdin.isTTY ? '' : await readStdin();
  const options = {
    maxTokens: num(values, 'max-tokens', 128, true),
    temperature: num(values, 'temperature', 0.8),
    topK: num(values, 'top-k', 40, true),
    topP: num(values, 'top-p', 0.95),
    minP: num(values, 'min-p', 0),
    seed: num(values, 'seed', Math.floor(Math.random() * 2 ** 31), true),
    ignoreEos: values['ignore-eos'] === true,
  };
  const model = await loadModel(modelPath, { threads: num(values, 'threads', undefined, true) });
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    if (values.json) {
      const result = await model.complete(prompt, { ...options, signal: controller.signal });
      process.stdout.write(JSON.stringify({ text: result.text, tokens: Array.from(result.tokens), finishReason: result.finishReason, usage: result.usage }) + '\n');
    } else {
      process.stdout.write(prompt);
      for await (const chunk of model.generate(prompt, { ...options, signal: controller.signal })) {
        if (chunk.text) process.stdout.write(chunk.text);
      }
      process.stdout.write('\n');
    }
  } finally {
    process.off('SIGINT', onSigint);
    await model.dispose();
  }
}

async function runInfo(values: Record<string, unknown>): Promise<void> {
  const { loadModel } = await import('../model.js');
  const model = await loadModel(requireModel(values), { maxSequences: 1, contextSize: 16 });
  try {
    const { contextSize, maxSequences, batchSize, threads, kvCacheBytes, computeBufferBytes, ...info } = model.info;
    void contextSize; void maxSequences; void batchSize; void threads; void kvCacheBytes; void computeBufferBytes;
    if (values.json) {
      process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    } else {
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      const rows: [string, string][] = [
        ['file', info.path], ['name', info.name || '(none)'], ['architecture', info.architecture],
        ['parameters', `${(info.parameterCount / 1e6).toFixed(1)}M`], ['tensor type', info.tensorType],
        ['weights', mib(info.weightBytes)], ['layers', String(info.layers)], ['embedding size', String(info.embeddingSize)],
        ['heads', String(info.heads)], ['feed-forward size', String(info.feedForwardSize)],
        ['context length', String(info.contextLength)], ['vocabulary', String(info.vocabSize)],
        ['LM head', info.tiedOutput ? 'tied to token embedding' : 'separate output.weight'],
      ];
      const w = Math.max(...rows.map(([k]) => k.length));
      for (const [k, val] of rows) process.stdout.write(`${k.padEnd(w)}  ${val}\n`);
    }
  } finally {
    await model.dispose();
  }
}

async function runCreateModel(values: Record<string, unknown>): Promise<void> {
  const { writeRandomModel, MODEL_SHAPES } = await import('../testing/random-model.js');
  const out = values.output;
  if (typeof out !== 'string' || out === '') throw new UsageError('missing -o <out.gguf>');
  const shape = (values.shape as string | undefined) ?? '124M';
  if (!(shape in MODEL_SHAPES)) throw new UsageError(`--shape must be one of ${Object.keys(MODEL_SHAPES).join(', ')} but got "${shape}"`);
  const type = (values.type as string | undefined) ?? 'f16';
  if (!['f32', 'f16', 'bf16', 'q8_0', 'q4_0'].includes(type)) throw new UsageError(`--type must be one of f32, f16, bf16, q8_0, q4_0 but got "${type}"`);
  const started = Date.now();
  await writeRandomModel(out, {
    shape: shape as keyof typeof MODEL_SHAPES,
    type: type as 'f32',
    seed: num(values, 'seed', 1, true),
    initScale: num(values, 'init-scale', 1),
  });
  process.stderr.write(`wrote ${out} (${shape}, ${type}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

function progressBar(label: string): { update(done: number, total: number): void; end(): void } {
  const tty = process.stderr.isTTY === true;
  let last = -1;
  return {
    update(done, total) {
      if (!tty) return;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      if (pct === last) return;
      last = pct;
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      process.stderr.write(`\r${label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(pct).padStart(3)}%`);
    },
    end() { if (tty && last >= 0) process.stderr.write('\n'); },
  };
}

async function runQuantize(_values: Record<string, unknown>, positionals: string[]): Promise<void> {
  const { quantize } = await import('../quantize.js');
  if (positionals.length !== 3) throw new UsageError('expects <in.gguf> <out.gguf> <type>');
  const [input, output, type] = positionals as [string, string, string];
  const bar = progressBar('quantizing');
  const started = Date.now();
  try {
    const r = await quantize(input, output, { type: type as 'q8_0', onProgress: (d, t) => bar.update(d, t) });
    bar.end();
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    process.stderr.write(`wrote ${output}: ${r.converted} tensors as ${type}${r.kept ? `, ${r.kept} kept (rows not a multiple of the block size)` : ''}, ` +
      `${mib(r.bytesIn)} → ${mib(r.bytesOut)} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } catch (e) {
    bar.end();
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP + '\n');
    return command === undefined ? 1 : 0;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    process.stderr.write(`gpt2-node: unknown command "${command}" (try gpt2-node --help)\n`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { ...spec.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    if (values.help) {
      process.stdout.write(spec.help + '\n');
      return 0;
    }
    await spec.run(values as Record<string, unknown>, positionals);
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`gpt2-node ${command}: ${e.message}\n`);
      return 2;
    }
    const code = e instanceof Gpt2Error ? ` [${e.code}]` : '';
    process.stderr.write(`gpt2-node ${command}: ${e instanceof Error ? e.message : String(e)}${code}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
