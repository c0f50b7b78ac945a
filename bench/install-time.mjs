#!/usr/bin/env node
// Install time of gpt2-node's prebuilt against node-llama-cpp's CPU prebuilt, side by side on this
// machine: `npm install <package>` into an empty folder, alternating, each run with an empty npm
// cache of its own (cold: every tarball downloaded) and then again from that cache with
// --prefer-offline (warm: what a reinstall or CI with a cache costs). gpt2-node is not on the
// registry yet, so its two tarballs (scripts/pack.mjs, from build/packages) come from a registry
// on loopback; node-llama-cpp (3.21.1, its postinstall included, as npm 11 runs it) comes from
// registry.npmjs.org: the cold figures favour us by the network, the warm ones do not.
//
//   node bench/install-time.mjs [--rounds 3]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { runAsync } from '../scripts/lib/check-helpers.mjs';
import { startRegistry } from '../scripts/lib/local-registry.mjs';
import { packAll } from '../scripts/pack.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const work = mkdtempSync(join(tmpdir(), 'gpt2-install-time-'));
const registry = await startRegistry(packAll(join(work, 'pack')));
const version = JSON.parse(spawnSync('tar', ['-xzOf', join(work, 'pack', 'gpt2-node-0.1.0.tgz'), 'package/package.json'], { encoding: 'utf8' }).stdout).version;

const sides = {
  'gpt2-node': { spec: `gpt2-node@${version}`, registry: registry.url },
  'node-llama-cpp': { spec: 'node-llama-cpp@3.21.1', registry: 'https://registry.npmjs.org/' },
};

async function install(name, round, cache, warm) {
  const app = join(work, `${name}-${round}-${warm ? 'warm' : 'cold'}`);
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'package.json'), '{ "name": "app", "version": "1.0.0", "private": true }\n');
  const t0 = process.hrtime.bigint();
  // not spawnSync: the loopback registry runs in this process
  const { status } = await runAsync('npm', ['install', sides[name].spec, '--no-audit', '--no-fund', `--registry=${sides[name].registry}`,
    `--cache=${cache}`, ...(warm ? ['--prefer-offline'] : [])], { cwd: app });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (status !== 0) throw new Error(`npm install ${sides[name].spec} failed (${status})`);
  const du = spawnSync('du', ['-sm', join(app, 'node_modules')], { encoding: 'utf8' }).stdout.split('\t')[0];
  rmSync(app, { recursive: true, force: true });
  return { s, mb: Number(du) };
}

const results = { 'gpt2-node': { cold: [], warm: [], mb: 0 }, 'node-llama-cpp': { cold: [], warm: [], mb: 0 } };
for (let r = 0; r < Number(values.rounds); r++) {
  const order = r % 2 === 0 ? ['gpt2-node', 'node-llama-cpp'] : ['node-llama-cpp', 'gpt2-node'];
  for (const name of order) {
    const cache = join(work, `cache-${name}-${r}`);
    const cold = await install(name, r, cache, false);
    const warm = await install(name, r, cache, true);
    results[name].cold.push(cold.s);
    results[name].warm.push(warm.s);
    results[name].mb = warm.mb;
    rmSync(cache, { recursive: true, force: true });
  }
}
registry.close();
rmSync(work, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const npmVersion = spawnSync('npm', ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`npm ${npmVersion}, node ${process.version}, ${values.rounds} alternating rounds, medians in seconds (min-max)\n`);
console.log('| npm install | cold cache | warm cache (--prefer-offline) | node_modules |');
console.log('| --- | ---: | ---: | ---: |');
const fmt = (xs) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
for (const [name, r] of Object.entries(results)) console.log(`| ${sides[name].spec} | ${fmt(r.cold)} | ${fmt(r.warm)} | ${r.mb} MB |`);
const ratio = (k) => (median(results['gpt2-node'][k]) / median(results['node-llama-cpp'][k])).toFixed(2);
console.log(`\ngpt2-node / node-llama-cpp: cold ${ratio('cold')}, warm ${ratio('warm')} (lower is faster)`);
