// vendor/materialize.mjs: the pinned llama.cpp tree is used as it is when it exists, an
// environment variable can name another checkout, and a wrong one is a clear error.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import test from 'ava';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = join(root, 'vendor', 'materialize.mjs');
const run = promisify(execFile);

test('the pin names the npm package, its integrity and the llama.cpp commit', async (t) => {
  const pin = JSON.parse(await readFile(join(root, 'vendor', 'llama.cpp.pin.json'), 'utf8'));
  t.is(pin.package, 'node-llama-cpp');
  t.is(pin.version, '3.21.1');
  t.is(pin.integrity, 'sha512-E3N0Ev2Va0wzydvXYFwM9Hvyo07PoWjt8T/9GMc43Cvt8YkV/NU/tYUgEMC1grTPv2o9PRjQi0G3Wb5P/awiMg==');
  t.is(pin.commit, '80fb11ac73e66d89eae2c6a91d8a77428fa733ed');
});

test('an existing tree is used as it is, and is at the pinned commit', async (t) => {
  const env = { ...process.env };
  delete env.GPT2_NODE_LLAMA_CPP_DIR;
  const { stdout } = await run(process.execPath, [script], { env });
  const dir = stdout.trim();
  t.is(dir, join(root, 'vendor', 'llama.cpp'));
  const { stdout: head } = await run('git', ['rev-parse', 'HEAD'], { cwd: dir });
  t.is(head.trim(), '80fb11ac73e66d89eae2c6a91d8a77428fa733ed');
});

test('GPT2_NODE_LLAMA_CPP_DIR names a checkout; a folder without one is a clear error', async (t) => {
  const good = join(root, 'vendor', 'llama.cpp');
  const ok = await run(process.execPath, [script], { env: { ...process.env, GPT2_NODE_LLAMA_CPP_DIR: good } });
  t.is(ok.stdout.trim(), good);
  const empty = await mkdtemp(join(tmpdir(), 'gpt2-node-vendor-'));
  try {
    const err = await t.throwsAsync(run(process.execPath, [script], { env: { ...process.env, GPT2_NODE_LLAMA_CPP_DIR: empty } }));
    t.is((err as { code?: number }).code, 1);
    t.is((err as unknown as { stderr: string }).stderr, `gpt2-node: GPT2_NODE_LLAMA_CPP_DIR=${empty} does not hold a llama.cpp checkout (no ggml/CMakeLists.txt)\n`);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});
