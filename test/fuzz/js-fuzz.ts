// Runs a JavaScript fuzz target under libFuzzer (scripts/fuzz.mjs starts it):
//   npx tsx test/fuzz/js-fuzz.ts <target.ts> <js_driver.node> [libFuzzer arguments]
// The target module exports fuzzOne(data: Buffer): void, which throws on a finding.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COUNTERS, instrumentedBundle } from './js-coverage.js';

const [target, driverPath, ...args] = process.argv.slice(2);
if (target === undefined || driverPath === undefined) {
  console.error('usage: npx tsx test/fuzz/js-fuzz.ts <target.ts> <js_driver.node> [libFuzzer arguments]');
  process.exit(2);
}
const { code, counters } = await instrumentedBundle(resolve(target));
const file = join(await mkdtemp(join(tmpdir(), 'gpt2-node-js-fuzz-')), 'target.mjs');
await writeFile(file, code);
const region = new Uint8Array(counters);
(globalThis as Record<string, unknown>)[COUNTERS] = region;
const mod = await import(pathToFileURL(file).href) as { fuzzOne?: (data: Buffer) => void };
if (typeof mod.fuzzOne !== 'function') throw new TypeError(`${target} does not export fuzzOne(data)`);
console.error(`js-fuzz: ${target}: ${counters} edge counters`);
const driver = createRequire(import.meta.url)(resolve(driverPath)) as { run(c: Uint8Array, argv: string[], fn: (d: Buffer) => void): number };
process.exitCode = driver.run(region, args, mod.fuzzOne);
