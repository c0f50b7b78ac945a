// Hugging Face hub downloads (lib/hub) against a local imitation of the hub (test/support/
// fake-hub.ts): specifiers, the cache layout, redirects to the CDN, resume after a dropped
// connection, checksums, locks, offline mode, auth, errors, progress, abort, and loadModel('hf:…').
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { Gpt2Error, downloadModel, loadModel, type DownloadProgress } from '../../lib/index.js';
import { downloadProgressBar } from '../../lib/cli/download-progress.js';
import { resolveCacheDir } from '../../lib/hub/cache.js';
import { parseSpecifier } from '../../lib/hub/specifier.js';
import { FakeHub, commitId, gitSha1, sha256 } from '../support/fake-hub.js';
import { testModel } from '../support/models.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// No developer token, endpoint or cache from the environment leaks into these tests.
for (const name of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE']) {
  delete process.env[name];
}

let hub: FakeHub;
let scratch: string;

test.before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'gpt2-node-hub-'));
  process.env.HF_HOME = join(scratch, 'hf-home');
  hub = await new FakeHub().start();
});

test.after.always(async () => {
  await hub?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

let dirCount = 0;
async function newCache(): Promise<string> {
  const dir = join(scratch, `cache-${++dirCount}`);
  await mkdir(dir);
  return dir;
}

const opts = (cacheDir: string, extra: Record<string, unknown> = {}) => ({ endpoint: hub.endpoint, cacheDir, token: false as const, ...extra });

/** Everything under a folder, as relative paths (symlinks not followed). */
async function tree(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

const repoDir = (cache: string, repo: string) => join(cache, `models--${repo.replace('/', '--')}`);

// ---------------------------------------------------------------------------------------------
// Specifiers and options

test('specifiers: repo, file, revision', (t) => {
  t.deepEqual(parseSpecifier('hf:openai-community/gpt2'), { repo: 'openai-community/gpt2', file: undefined, revision: undefined });
  t.deepEqual(parseSpecifier('hf:o/r/sub/model.Q8_0.gguf'), { repo: 'o/r', file: 'sub/model.Q8_0.gguf', revision: undefined });
  t.deepEqual(parseSpecifier('hf:o/r@v1.0'), { repo: 'o/r', file: undefined, revision: 'v1.0' });
  t.deepEqual(parseSpecifier('hf:o/r/m.gguf@refs/pr/3'), { repo: 'o/r', file: 'm.gguf', revision: 'refs/pr/3' });
  t.deepEqual(parseSpecifier('hf://o/r'), { repo: 'o/r', file: undefined, revision: undefined });
});

test('malformed specifiers: TypeError or RangeError naming the syntax', (t) => {
  const syntax = 'Expected Hugging Face model specifier hf:owner/repo[/path/in/repo][@revision] for specifier but received';
  t.throws(() => parseSpecifier(42), { instanceOf: TypeError, message: `${syntax} 42 of type number` });
  t.throws(() => parseSpecifier('gpt2.gguf'), { instanceOf: RangeError, message: `${syntax} "gpt2.gguf" of type string` });
  t.throws(() => parseSpecifier('hf:gpt2'), { instanceOf: RangeError, message: `${syntax} "hf:gpt2" of type string (bad owner/repo)` });
  t.throws(() => parseSpecifier('hf:a--b/c'), { instanceOf: RangeError, message: `${syntax} "hf:a--b/c" of type string (bad owner/repo)` });
  t.throws(() => parseSpecifier('hf:o/r/../x.gguf'), { instanceOf: RangeError, message: `${syntax} "hf:o/r/../x.gguf" of type string (bad path in the repo)` });
  t.throws(() => parseSpecifier('hf:o/r/'), { instanceOf: RangeError, message: `${syntax} "hf:o/r/" of type string (bad path in the repo)` });
  t.throws(() => parseSpecifier('hf:o/r@'), { instanceOf: RangeError, message: `${syntax} "hf:o/r@" of type string (bad revision after @)` });
  t.throws(() => parseSpecifier('hf:o/r@a/../b'), { instanceOf: RangeError, message: `${syntax} "hf:o/r@a/../b" of type string (bad revision after @)` });
});

test('option validation', async (t) => {
  const cacheDir = await newCache();
  await t.throwsAsync(downloadModel('hf:o/r', { cacheDir: 1 as never }), { instanceOf: TypeError, message: 'Expected string for cacheDir but received 1 of type number' });
  await t.throwsAsync(downloadModel('hf:o/r', { cacheDir, offline: 'yes' as never }), { instanceOf: TypeError, message: 'Expected boolean for offline but received "yes" of type string' });
  await t.throwsAsync(downloadModel('hf:o/r', { cacheDir, token: 5 as never }), { instanceOf: TypeError, message: 'Expected string or false for token but received 5 of type number' });
  await t.throwsAsync(downloadModel('hf:o/r', { cacheDir, endpoint: 'ftp://x' }), { instanceOf: RangeError, message: 'Expected http(s) URL without query, fragment or credentials for endpoint but received "ftp://x" of type string' });
  await t.throwsAsync(downloadModel('hf:o/r', { cacheDir, endpoint: 'nope' }), { instanceOf: RangeError, message: 'Expected http(s) URL for endpoint but received "nope" of type string' });
  await t.throwsAsync(downloadModel('hf:o/r', { cacheDir, revision: '../x' }), { instanceOf: RangeError, message: 'Expected branch, tag or commit for revision but received "../x" of type string' });
  await t.throwsAsync(downloadModel('hf:o/r@a', { cacheDir, revision: 'b' }), { instanceOf: RangeError, message: 'Expected one revision but received "b" of type string for revision and "a" of type string in the specifier' });
  await t.throwsAsync(downloadModel('hf:o/r', { cacheDir, onProgress: 1 as never }), { instanceOf: TypeError, message: 'Expected function for onProgress but received 1 of type number' });
  await t.throwsAsync(downloadModel('hf:o/r', { cacheDir, signal: {} as never }), { instanceOf: TypeError, message: 'Expected AbortSignal for signal but received an object of type Object' });
  await t.throwsAsync(downloadModel('hf:o/r', 'x' as never), { instanceOf: TypeError, message: 'Expected object for options but received "x" of type string' });
  await t.throwsAsync(loadModel('hf:gpt2'), { instanceOf: RangeError, message: /^Expected Hugging Face model specifier .* "hf:gpt2" of type string \(bad owner\/repo\)$/ });
  await t.throwsAsync(loadModel('hf:o/r', { onDownloadProgress: 1 as never }), { instanceOf: TypeError, message: 'Expected function for onDownloadProgress but received 1 of type number' });
});

test.serial('cache folder: option, HF_HUB_CACHE, HF_HOME, ~/.cache/huggingface', (t) => {
  const names = ['HF_HUB_CACHE', 'HF_HOME', 'XDG_CACHE_HOME'] as const;
  const saved = names.map((n) => process.env[n]);
  try {
    t.is(resolveCacheDir('/x/y'), '/x/y');
    process.env.HF_HUB_CACHE = '/a/hub';
    t.is(resolveCacheDir(undefined), '/a/hub');
    delete process.env.HF_HUB_CACHE;
    process.env.HF_HOME = '/b/hf';
    t.is(resolveCacheDir(undefined), '/b/hf/hub');
    delete process.env.HF_HOME;
    delete process.env.XDG_CACHE_HOME;
    t.is(resolveCacheDir(undefined), join(process.env.HOME ?? '', '.cache', 'huggingface', 'hub'));
  } finally {
    names.forEach((n, i) => { if (saved[i] === undefined) delete process.env[n]; else process.env[n] = saved[i]; });
  }
});

// ---------------------------------------------------------------------------------------------
// One file

test('an LFS file: HEAD at the hub, GET from the CDN, huggingface_hub cache layout', async (t) => {
  const content = randomBytes(300_000);
  const commit = hub.addRepo('t/lfs', { 'model.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const path = await downloadModel('hf:t/lfs/model.gguf', opts(cacheDir));
  const repo = repoDir(cacheDir, 't/lfs');
  t.is(path, join(repo, 'snapshots', commit, 'model.gguf'));
  t.deepEqual(await readFile(path), content);
  t.is(await readlink(path), join('..', '..', 'blobs', sha256(content)), 'a relative link to the blob named by the sha256');
  t.is(await readFile(join(repo, 'refs', 'main'), 'utf8'), commit);
  t.deepEqual(await tree(repo), ['blobs', `blobs/${sha256(content)}`, 'refs', 'refs/main', 'snapshots', `snapshots/${commit}`, `snapshots/${commit}/model.gguf`]);
  t.is(hub.requests('HEAD', 'hub', '/t/lfs/resolve/main/model.gguf').length, 1);
  t.is(hub.requests('GET', 'cdn', sha256(content)).length, 1);
});

test('a small (non-LFS) file comes from the hub itself, its blob named by the git blob sha1', async (t) => {
  const content = Buffer.from(JSON.stringify({ model_type: 'gpt2', n: randomBytes(8).toString('hex') }));
  const commit = hub.addRepo('t/small', { 'config.json': { content } });
  const cacheDir = await newCache();
  const path = await downloadModel('hf:t/small/config.json', opts(cacheDir));
  t.deepEqual(await readFile(path), content);
  t.is(await readlink(path), join('..', '..', 'blobs', gitSha1(content)));
  t.is(path, join(repoDir(cacheDir, 't/small'), 'snapshots', commit, 'config.json'));
  t.is(hub.requests('GET', 'hub', '/t/small/resolve/').length, 1);
});

test('a file in a folder of the repo', async (t) => {
  const content = randomBytes(1000);
  const commit = hub.addRepo('t/nested', { 'q/8/model.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const path = await downloadModel('hf:t/nested/q/8/model.gguf', opts(cacheDir));
  t.is(path, join(repoDir(cacheDir, 't/nested'), 'snapshots', commit, 'q', '8', 'model.gguf'));
  t.is(await readlink(path), join('..', '..', '..', '..', 'blobs', sha256(content)));
  t.deepEqual(await readFile(path), content);
});

test('the cache is reused: a second call asks HEAD only, and no file bytes', async (t) => {
  const content = randomBytes(50_000);
  hub.addRepo('t/reuse', { 'm.gguf': { content, lfs: true }, 'config.json': { content: Buffer.from('{}') } });
  const cacheDir = await newCache();
  const first = await downloadModel('hf:t/reuse/m.gguf', opts(cacheDir));
  const second = await downloadModel('hf:t/reuse/m.gguf', opts(cacheDir));
  t.is(second, first);
  t.is(hub.requests('GET', 'cdn', sha256(content)).length, 1);
  t.is(hub.requests('GET', 'hub', '/t/reuse/').length, 0);
  t.is(hub.requests('HEAD', 'hub', '/t/reuse/resolve/main/m.gguf').length, 2);
});

test('a file at a commit that is cached needs no request at all', async (t) => {
  const content = randomBytes(2000);
  const commit = hub.addRepo('t/pinned', { 'm.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const path = await downloadModel(`hf:t/pinned/m.gguf@${commit}`, opts(cacheDir));
  const before = hub.log.length;
  t.is(await downloadModel(`hf:t/pinned/m.gguf@${commit}`, opts(cacheDir)), path);
  t.deepEqual(hub.log.slice(before).filter((r) => r.path.includes('t/pinned') || r.path.includes(sha256(content))), []);
  t.false(existsSync(join(repoDir(cacheDir, 't/pinned'), 'refs', commit)), 'no ref for a commit id');
});

test('revisions: a tag in the specifier or the option, and refs/pr/N (URL-encoded, nested under refs/)', async (t) => {
  const v1 = randomBytes(1000);
  const pr = randomBytes(1000);
  const main = randomBytes(1000);
  const c1 = commitId('tags-v1');
  const cpr = commitId('tags-pr');
  const cmain = hub.addRepo('t/tags', { 'm.gguf': { content: main, lfs: true } });
  const repo = hub.repos.get('t/tags')!;
  repo.commits[c1] = { 'm.gguf': { content: v1, lfs: true } };
  repo.commits[cpr] = { 'm.gguf': { content: pr, lfs: true } };
  repo.refs['v1'] = c1;
  repo.refs['refs/pr/1'] = cpr;
  const cacheDir = await newCache();
  t.deepEqual(await readFile(await downloadModel('hf:t/tags/m.gguf@v1', opts(cacheDir))), v1);
  t.deepEqual(await readFile(await downloadModel('hf:t/tags/m.gguf', opts(cacheDir, { revision: 'refs/pr/1' }))), pr);
  t.deepEqual(await readFile(await downloadModel('hf:t/tags/m.gguf', opts(cacheDir))), main);
  t.is(hub.requests('HEAD', 'hub', '/t/tags/resolve/refs%2Fpr%2F1/m.gguf').length, 1);
  const refs = join(repoDir(cacheDir, 't/tags'), 'refs');
  t.is(await readFile(join(refs, 'v1'), 'utf8'), c1);
  t.is(await readFile(join(refs, 'refs', 'pr', '1'), 'utf8'), cpr);
  t.is(await readFile(join(refs, 'main'), 'utf8'), cmain);
});

test('a renamed repo: the hub\'s relative redirect is followed', async (t) => {
  const content = randomBytes(3000);
  hub.addRepo('t/new-name', { 'm.gguf': { content, lfs: true } });
  hub.renamed.set('t/old-name', 't/new-name');
  const cacheDir = await newCache();
  t.deepEqual(await readFile(await downloadModel('hf:t/old-name/m.gguf', opts(cacheDir))), content);
  t.deepEqual(await readFile(await downloadModel('hf:t/old-name', opts(cacheDir))), content);
});

// ---------------------------------------------------------------------------------------------
// Faults

// The server sends 256 KiB and holds; once they are on disk (progress says so), it drops the
// connection: the next request must ask for exactly the rest.
const KIB256 = 262_144;

test('a connection dropped mid-file: resumed with Range (206) and verified', async (t) => {
  const content = randomBytes(700_000);
  const key = sha256(content);
  hub.addRepo('t/drop', { 'm.gguf': { content, lfs: true } });
  hub.fault(key, { holdAfter: KIB256 }, { holdAfter: KIB256 });
  const cacheDir = await newCache();
  const seen: DownloadProgress[] = [];
  const path = await downloadModel('hf:t/drop/m.gguf', opts(cacheDir, {
    onProgress: (p: DownloadProgress) => {
      seen.push(p);
      if (p.downloadedBytes === KIB256 || p.downloadedBytes === 2 * KIB256) hub.dropHeld(key);
    },
  }));
  t.deepEqual(await readFile(path), content);
  t.deepEqual(hub.requests('GET', 'cdn', key).map((r) => r.headers.range), [undefined, `bytes=${KIB256}-`, `bytes=${2 * KIB256}-`]);
  t.true(seen.every((p, i) => i === 0 || p.downloadedBytes > seen[i - 1]!.downloadedBytes), 'progress never goes back');
  t.deepEqual(seen.at(-1), { file: 'm.gguf', downloadedBytes: content.length, totalBytes: content.length });
  t.deepEqual(await tree(join(repoDir(cacheDir, 't/drop'), 'blobs')), [key], 'no .incomplete or .lock left');
});

test('a small file dropped mid-way resumes from the hub too', async (t) => {
  const content = randomBytes(400_000);
  hub.addRepo('t/drop-small', { 'vocab.json': { content } });
  hub.fault('vocab.json', { holdAfter: KIB256 });
  const cacheDir = await newCache();
  const onProgress = (p: DownloadProgress) => { if (p.downloadedBytes === KIB256) hub.dropHeld('vocab.json'); };
  t.deepEqual(await readFile(await downloadModel('hf:t/drop-small/vocab.json', opts(cacheDir, { onProgress }))), content);
  t.deepEqual(hub.requests('GET', 'hub', '/t/drop-small/').map((r) => r.headers.range), [undefined, `bytes=${KIB256}-`]);
});

test('a connection that drops at once, again and again: ERR_DOWNLOAD after five tries', async (t) => {
  const content = randomBytes(100_000);
  hub.addRepo('t/drop-always', { 'm.gguf': { content, lfs: true } });
  hub.fault(sha256(content), ...Array.from({ length: 5 }, () => ({ dropAfter: 0 })));
  const cacheDir = await newCache();
  await t.throwsAsync(downloadModel('hf:t/drop-always/m.gguf', opts(cacheDir)), {
    instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD',
    message: new RegExp(`^GET ${hub.cdn}/cdn/${sha256(content)} failed: (the connection dropped \\(ECONNRESET\\)|the connection closed after 0 of 100000 bytes)$`),
  });
  t.is(hub.requests('GET', 'cdn', sha256(content)).length, 5);
});

test('a server that ignores Range after a drop: the file starts over and still checks out', async (t) => {
  const content = randomBytes(300_000);
  hub.addRepo('t/norange', { 'm.gguf': { content, lfs: true } });
  hub.fault(sha256(content), { dropAfter: 120_000 }, { ignoreRange: true });
  const cacheDir = await newCache();
  t.deepEqual(await readFile(await downloadModel('hf:t/norange/m.gguf', opts(cacheDir))), content);
  t.is(hub.requests('GET', 'cdn', sha256(content)).length, 2);
});

test('a 503 from the CDN is tried again; five in a row give ERR_DOWNLOAD', async (t) => {
  const content = randomBytes(10_000);
  hub.addRepo('t/busy', { 'm.gguf': { content, lfs: true } });
  hub.fault(sha256(content), { status: 503 });
  const cacheDir = await newCache();
  t.deepEqual(await readFile(await downloadModel('hf:t/busy/m.gguf', opts(cacheDir))), content);

  const other = randomBytes(10_000);
  hub.addRepo('t/down', { 'm.gguf': { content: other, lfs: true } });
  hub.fault(sha256(other), ...Array.from({ length: 5 }, () => ({ status: 503 })));
  const err = await t.throwsAsync(downloadModel('hf:t/down/m.gguf', opts(cacheDir)), {
    instanceOf: Gpt2Error,
    message: `GET ${hub.cdn}/cdn/${sha256(other)} failed: HTTP 503 Service Unavailable`,
  });
  t.is(err.code, 'ERR_DOWNLOAD');
  t.false(err.message.includes('secret-signature'), 'the signed query of the CDN URL is not in the message');
});

test('a corrupt file (bytes that do not match the sha256): ERR_CHECKSUM, nothing left in the cache', async (t) => {
  const content = randomBytes(100_000);
  const served = Buffer.from(content);
  served[5000]! ^= 0xff;
  hub.addRepo('t/corrupt', { 'm.gguf': { content, lfs: true, serve: served } });
  const cacheDir = await newCache();
  const err = await t.throwsAsync(downloadModel('hf:t/corrupt/m.gguf', opts(cacheDir)), { instanceOf: Gpt2Error });
  t.is(err.code, 'ERR_CHECKSUM');
  t.is(err.message, `file m.gguf of t/corrupt at main: sha256 mismatch: expected ${sha256(content)}, received ${sha256(served)} ` +
    `(from ${hub.cdn}/cdn/${sha256(content)}; the download was removed)`);
  const repo = repoDir(cacheDir, 't/corrupt');
  t.deepEqual(await tree(join(repo, 'blobs')), [], 'no blob, no .incomplete, no lock');
  t.deepEqual(await tree(join(repo, 'snapshots')), []);
  t.deepEqual(await tree(join(repo, 'refs')), []);
});

test('a corrupt small file fails its git blob sha1', async (t) => {
  const content = Buffer.from('{"a": 1}');
  hub.addRepo('t/corrupt-small', { 'config.json': { content, serve: Buffer.from('{"a": 2}') } });
  const cacheDir = await newCache();
  await t.throwsAsync(downloadModel('hf:t/corrupt-small/config.json', opts(cacheDir)), {
    instanceOf: Gpt2Error,
    code: 'ERR_CHECKSUM',
    message: `file config.json of t/corrupt-small at main: git-sha1 mismatch: expected ${gitSha1(content)}, received ${gitSha1(Buffer.from('{"a": 2}'))} ` +
      `(from ${hub.endpoint}/t/corrupt-small/resolve/${hub.repos.get('t/corrupt-small')!.refs.main}/config.json; the download was removed)`,
  });
  t.deepEqual(await tree(join(repoDir(cacheDir, 't/corrupt-small'), 'blobs')), []);
});

test('a file of another size than the hub says: ERR_CHECKSUM before anything is written', async (t) => {
  const content = randomBytes(20_000);
  hub.addRepo('t/size', { 'm.gguf': { content, lfs: true, serve: content.subarray(0, 15_000) } });
  const cacheDir = await newCache();
  const err = await t.throwsAsync(downloadModel('hf:t/size/m.gguf', opts(cacheDir)), { instanceOf: Gpt2Error });
  t.is(err.code, 'ERR_CHECKSUM');
  t.regex(err.message, /^file m\.gguf of t\/size at main: size mismatch: the hub says 20000 bytes, http:\/\/127\.0\.0\.1:\d+\/cdn\/[0-9a-f]{64} serves 15000 \(the download was removed\)$/);
  t.deepEqual(await tree(join(repoDir(cacheDir, 't/size'), 'blobs')), []);
});

test('a body that runs past the size the hub says (no Content-Length): ERR_CHECKSUM at once, the partial file removed', async (t) => {
  const content = randomBytes(20_000);
  const served = Buffer.concat([content, randomBytes(1_000_000)]);
  hub.addRepo('t/endless', { 'm.gguf': { content, lfs: true, serve: served } });
  // chunked, and everything past 100 kB held back: the download must fail without waiting for it
  hub.fault(sha256(content), { noLength: true, holdAfter: 100_000 });
  const cacheDir = await newCache();
  try {
    const err = await t.throwsAsync(downloadModel('hf:t/endless/m.gguf', opts(cacheDir)), { instanceOf: Gpt2Error });
    t.is(err.code, 'ERR_CHECKSUM');
    t.regex(err.message, /^file m\.gguf of t\/endless at main: size mismatch: the hub says 20000 bytes, http:\/\/127\.0\.0\.1:\d+\/cdn\/[0-9a-f]{64} sent more \(the download was removed\)$/);
    t.false(err.message.includes('secret-signature'));
    t.deepEqual(await tree(join(repoDir(cacheDir, 't/endless'), 'blobs')), [], 'no blob, no .incomplete, no lock');
    t.is(hub.requests('GET', 'cdn', sha256(content)).length, 1, 'not tried again');
  } finally {
    hub.dropHeld(sha256(content));
  }
});

test('a partial file from an earlier run that does not match is fetched again from zero', async (t) => {
  const content = randomBytes(100_000);
  hub.addRepo('t/bad-partial', { 'm.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const blobs = join(repoDir(cacheDir, 't/bad-partial'), 'blobs');
  await mkdir(blobs, { recursive: true });
  await writeFile(join(blobs, `${sha256(content)}.incomplete`), randomBytes(30_000));
  t.deepEqual(await readFile(await downloadModel('hf:t/bad-partial/m.gguf', opts(cacheDir))), content);
  t.deepEqual(hub.requests('GET', 'cdn', sha256(content)).map((r) => r.headers.range), ['bytes=30000-', undefined]);
});

// ---------------------------------------------------------------------------------------------
// Errors of the hub

test('404s: no such file, revision or repo → ERR_NOT_FOUND with status and URL', async (t) => {
  hub.addRepo('t/nf', { 'm.gguf': { content: randomBytes(10), lfs: true } });
  const cacheDir = await newCache();
  const e = hub.endpoint;
  await t.throwsAsync(downloadModel('hf:t/nf/other.gguf', opts(cacheDir)), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: `file other.gguf of t/nf at main: no such file (HTTP 404 Not Found for HEAD ${e}/t/nf/resolve/main/other.gguf: other.gguf does not exist on "main")`,
  });
  await t.throwsAsync(downloadModel('hf:t/nf/m.gguf@nope', opts(cacheDir)), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: `file m.gguf of t/nf at nope: revision not found (HTTP 404 Not Found for HEAD ${e}/t/nf/resolve/nope/m.gguf: Invalid rev id: nope)`,
  });
  await t.throwsAsync(downloadModel('hf:t/nf@nope', opts(cacheDir)), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: `repository t/nf at nope: revision not found (HTTP 404 Not Found for GET ${e}/api/models/t/nf/revision/nope: Invalid rev id: nope)`,
  });
  await t.throwsAsync(downloadModel('hf:t/nf@v1/m.gguf', opts(cacheDir)), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: `repository t/nf at v1/m.gguf: revision not found (HTTP 404 Not Found for GET ${e}/api/models/t/nf/revision/v1%2Fm.gguf: Invalid rev id: v1/m.gguf)` +
      '; everything after @ is the revision, a file goes before it: hf:t/nf/<file>@<revision>',
  });
  await t.throwsAsync(downloadModel('hf:t/missing', opts(cacheDir, { token: 'hf_valid' })), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: `repository t/missing at main: repository not found (HTTP 404 Not Found for GET ${e}/api/models/t/missing/revision/main: Repository not found)`,
  });
  t.deepEqual(await tree(cacheDir).then((f) => f.filter((p) => p.includes('blobs/'))), []);
});

test('a private repo: 401 without a token → ERR_AUTH saying to set HF_TOKEN; a wrong token is refused; never in a message', async (t) => {
  const content = randomBytes(5000);
  hub.addRepo('t/private', { 'm.gguf': { content, lfs: true } }, { token: 'hf_secret_token' });
  const cacheDir = await newCache();
  const e = hub.endpoint;
  await t.throwsAsync(downloadModel('hf:t/private/m.gguf', opts(cacheDir)), {
    instanceOf: Gpt2Error, code: 'ERR_AUTH',
    message: 'cannot access file m.gguf of t/private at main: the repository does not exist, or is private or gated: set HF_TOKEN (or the token option) ' +
      `to a token that can read it (HTTP 401 Unauthorized for HEAD ${e}/t/private/resolve/main/m.gguf: Repository not found)`,
  });
  const wrong = await t.throwsAsync(downloadModel('hf:t/private', opts(cacheDir, { token: 'hf_wrong_token' })), {
    instanceOf: Gpt2Error, code: 'ERR_AUTH',
    message: 'cannot access repository t/private at main: the token was refused or cannot read this repository (does it exist?) ' +
      `(HTTP 401 Unauthorized for GET ${e}/api/models/t/private/revision/main: Repository not found)`,
  });
  t.false(wrong!.message.includes('hf_wrong_token'));
  const path = await downloadModel('hf:t/private/m.gguf', opts(cacheDir, { token: 'hf_secret_token' }));
  t.deepEqual(await readFile(path), content);
  t.is(hub.requests('HEAD', 'hub', '/t/private/').at(-1)!.headers.authorization, 'Bearer hf_secret_token');
  const cdn = hub.requests('GET', 'cdn', sha256(content));
  t.is(cdn.length, 1);
  t.is(cdn[0]!.headers.authorization, undefined, 'the token does not follow the redirect to the CDN');
});

test.serial('HF_TOKEN and HF_ENDPOINT from the environment', async (t) => {
  const content = randomBytes(5000);
  hub.addRepo('t/env', { 'm.gguf': { content, lfs: true } }, { token: 'hf_env_token' });
  const cacheDir = await newCache();
  process.env.HF_TOKEN = 'hf_env_token';
  process.env.HF_ENDPOINT = `${hub.endpoint}/`;
  try {
    t.deepEqual(await readFile(await downloadModel('hf:t/env/m.gguf', { cacheDir })), content);
  } finally {
    delete process.env.HF_TOKEN;
    delete process.env.HF_ENDPOINT;
  }
  t.is(hub.requests('HEAD', 'hub', '/t/env/')[0]!.headers.authorization, 'Bearer hf_env_token');
});

test.serial('the token file of huggingface-cli login ($HF_HOME/token)', async (t) => {
  const content = randomBytes(5000);
  hub.addRepo('t/token-file', { 'm.gguf': { content, lfs: true } }, { token: 'hf_file_token' });
  await mkdir(process.env.HF_HOME!, { recursive: true });
  await writeFile(join(process.env.HF_HOME!, 'token'), 'hf_file_token\n');
  try {
    t.deepEqual(await readFile(await downloadModel('hf:t/token-file/m.gguf', { endpoint: hub.endpoint, cacheDir: await newCache() })), content);
  } finally {
    await rm(join(process.env.HF_HOME!, 'token'));
  }
});

test('a server that is no hub, or answers oddly: ERR_DOWNLOAD', async (t) => {
  const server = http.createServer((q, s) => {
    const path = q.url ?? '';
    if (path.includes('/loop/')) s.writeHead(302, { location: path });
    else if (path.includes('/noloc/')) s.writeHead(302);
    else if (path.includes('/ftp/')) s.writeHead(302, { location: 'ftp://x/y' });
    else if (path.includes('/noetag/')) s.writeHead(200, { 'x-repo-commit': commitId('noetag'), 'content-length': '5' });
    else if (path.includes('/api/models/a/nosha/')) s.writeHead(200, { 'content-type': 'application/json' });
    else if (path.includes('/api/models/a/nosiblings/')) s.writeHead(200, { 'content-type': 'application/json' });
    else s.writeHead(200, { 'content-type': 'text/plain' });
    s.end(path.includes('/nosha/') ? '{}' : path.includes('/nosiblings/') ? `{"sha":"${commitId('x')}"}` : q.method === 'HEAD' ? undefined : 'hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const o = { cacheDir: await newCache(), endpoint, token: false as const };
  try {
    await t.throwsAsync(downloadModel('hf:a/b/m.gguf', o), {
      instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD',
      message: `the answer for file m.gguf of a/b at main has no valid X-Repo-Commit header: is ${endpoint} a Hugging Face hub? (HEAD ${endpoint}/a/b/resolve/main/m.gguf)`,
    });
    await t.throwsAsync(downloadModel('hf:a/noetag/m.gguf', o), {
      instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD',
      message: `the answer for file m.gguf of a/noetag at main has no ETag, so the file cannot be checked (HEAD ${endpoint}/a/noetag/resolve/main/m.gguf)`,
    });
    await t.throwsAsync(downloadModel('hf:a/loop/m.gguf', o), {
      instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD', message: `more than 10 redirects from ${endpoint}/a/loop/resolve/main/m.gguf`,
    });
    await t.throwsAsync(downloadModel('hf:a/noloc/m.gguf', o), {
      instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD', message: `HTTP 302 without a Location header for ${endpoint}/a/noloc/resolve/main/m.gguf`,
    });
    await t.throwsAsync(downloadModel('hf:a/ftp/m.gguf', o), {
      instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD', message: `redirect to a non-HTTP URL from ${endpoint}/a/ftp/resolve/main/m.gguf`,
    });
    await t.throwsAsync(downloadModel('hf:a/b', o), {
      instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD', message: `unexpected listing of repository a/b at main: not JSON (GET ${endpoint}/api/models/a/b/revision/main)`,
    });
    await t.throwsAsync(downloadModel('hf:a/nosha', o), {
      instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD', message: `unexpected listing of repository a/nosha at main: no commit (sha) (GET ${endpoint}/api/models/a/nosha/revision/main)`,
    });
    await t.throwsAsync(downloadModel('hf:a/nosiblings', o), {
      instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD', message: `unexpected listing of repository a/nosiblings at main: no file list (siblings) (GET ${endpoint}/api/models/a/nosiblings/revision/main)`,
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('a gated repo: ERR_AUTH saying to accept its conditions', async (t) => {
  hub.addRepo('t/gated', { 'm.gguf': { content: randomBytes(100), lfs: true } }, { gated: true });
  await t.throwsAsync(downloadModel('hf:t/gated/m.gguf', opts(await newCache(), { token: 'hf_someone' })), {
    instanceOf: Gpt2Error, code: 'ERR_AUTH',
    message: 'cannot access file m.gguf of t/gated at main: the repository is gated: accept its conditions on the hub with the account of your token ' +
      `(HTTP 403 Forbidden for HEAD ${hub.endpoint}/t/gated/resolve/main/m.gguf: Access to model t/gated is restricted and you are not in the authorized list)`,
  });
});

test('the hub failing (500): tried again; three in a row give ERR_DOWNLOAD', async (t) => {
  const content = randomBytes(1000);
  hub.addRepo('t/flaky-api', { 'm.gguf': { content, lfs: true } });
  hub.fault('GET /api/models/t/flaky-api/revision/main', { status: 500 });
  hub.fault('HEAD /t/flaky-api/resolve/main/m.gguf', { status: 502 }, { status: 502 });
  const cacheDir = await newCache();
  t.deepEqual(await readFile(await downloadModel('hf:t/flaky-api', opts(cacheDir))), content);
  t.deepEqual(await readFile(await downloadModel('hf:t/flaky-api/m.gguf', opts(cacheDir))), content);
  hub.fault('GET /api/models/t/flaky-api/revision/main', { status: 500 }, { status: 500 }, { status: 500 });
  await t.throwsAsync(downloadModel('hf:t/flaky-api', opts(cacheDir)), {
    instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD',
    message: `cannot download repository t/flaky-api at main (HTTP 500 Internal Server Error for GET ${hub.endpoint}/api/models/t/flaky-api/revision/main: injected)`,
  });
});

// ---------------------------------------------------------------------------------------------
// Offline

async function closedPort(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}`;
}

test('offline: a cached file or model is found without any request; a missing one is ERR_NOT_FOUND', async (t) => {
  const content = randomBytes(5000);
  const commit = hub.addRepo('t/offline', { 'm.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const file = await downloadModel('hf:t/offline/m.gguf', opts(cacheDir));
  const count = () => hub.log.filter((r) => r.path.includes('t/offline') || r.path.includes(sha256(content))).length;
  const before = count();
  t.is(await downloadModel('hf:t/offline/m.gguf', opts(cacheDir, { offline: true })), file);
  t.is(await downloadModel('hf:t/offline', opts(cacheDir, { offline: true })), file, 'the one .gguf of the snapshot');
  t.is(count(), before, 'no request in offline mode');

  const repo = repoDir(cacheDir, 't/offline');
  await t.throwsAsync(downloadModel('hf:t/offline/other.gguf', opts(cacheDir, { offline: true })), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: `hf:t/offline/other.gguf@main is not in the cache ${cacheDir}: snapshot ${commit} has no other.gguf, and offline mode is on (the offline option or HF_HUB_OFFLINE)`,
  });
  await t.throwsAsync(downloadModel('hf:t/offline/m.gguf@v2', opts(cacheDir, { offline: true })), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: `hf:t/offline/m.gguf@v2 is not in the cache ${cacheDir}: no refs/v2 in ${repo}, and offline mode is on (the offline option or HF_HUB_OFFLINE)`,
  });
  await t.throwsAsync(downloadModel('hf:t/never', opts(cacheDir, { offline: true })), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: `hf:t/never@main is not in the cache ${cacheDir}: no refs/main in ${repoDir(cacheDir, 't/never')}, and offline mode is on (the offline option or HF_HUB_OFFLINE)`,
  });
});

test.serial('offline from HF_HUB_OFFLINE=1', async (t) => {
  const content = randomBytes(5000);
  hub.addRepo('t/offline-env', { 'm.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  process.env.HF_HUB_OFFLINE = '1';
  try {
    await t.throwsAsync(downloadModel('hf:t/offline-env/m.gguf', opts(cacheDir)), { instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND', message: /offline mode is on/ });
    t.is(hub.requests('HEAD', 'hub', '/t/offline-env/').length, 0);
    const path = await downloadModel('hf:t/offline-env/m.gguf', opts(cacheDir, { offline: false }));
    t.is(await downloadModel('hf:t/offline-env/m.gguf', opts(cacheDir)), path);
  } finally {
    delete process.env.HF_HUB_OFFLINE;
  }
});

test('no network at all: the cached revision is used; without it, ERR_DOWNLOAD', async (t) => {
  const content = randomBytes(5000);
  hub.addRepo('t/unreachable', { 'm.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const path = await downloadModel('hf:t/unreachable/m.gguf', opts(cacheDir));
  const endpoint = await closedPort();
  t.is(await downloadModel('hf:t/unreachable/m.gguf', { cacheDir, endpoint }), path);
  await t.throwsAsync(downloadModel('hf:t/unreachable/other.gguf', { cacheDir, endpoint }), {
    instanceOf: Gpt2Error, code: 'ERR_DOWNLOAD',
    message: new RegExp(`^HEAD ${endpoint}/t/unreachable/resolve/main/other\\.gguf failed: .*ECONNREFUSED`),
  });
});

// ---------------------------------------------------------------------------------------------
// Concurrency, locks, progress, abort

test('concurrent downloads of one file in a process: one GET, the same file', async (t) => {
  const content = randomBytes(500_000);
  hub.addRepo('t/concurrent', { 'm.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const paths = await Promise.all([1, 2, 3].map(() => downloadModel('hf:t/concurrent/m.gguf', opts(cacheDir))));
  t.is(new Set(paths).size, 1);
  t.deepEqual(await readFile(paths[0]!), content);
  t.is(hub.requests('GET', 'cdn', sha256(content)).length, 1);
});

test('a download waiting for another one of the same file can be aborted', async (t) => {
  const content = randomBytes(600_000);
  const key = sha256(content);
  hub.addRepo('t/abort-waiting', { 'm.gguf': { content, lfs: true } });
  hub.fault(key, { holdAfter: 100_000 });
  const cacheDir = await newCache();
  const first = downloadModel('hf:t/abort-waiting/m.gguf', opts(cacheDir));
  await hub.whenHeld(key);
  const controller = new AbortController();
  const second = downloadModel('hf:t/abort-waiting/m.gguf', opts(cacheDir, { signal: controller.signal }));
  while (hub.requests('HEAD', 'hub', '/t/abort-waiting/').length < 2) await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  await t.throwsAsync(second, { instanceOf: Gpt2Error, code: 'ERR_ABORTED', message: 'download aborted' });
  hub.release(key); // only now does the first one finish
  t.deepEqual(await readFile(await first), content);
  t.is(hub.requests('GET', 'cdn', key).length, 1);
});

test('two processes download one file at once: the lock file lets one fetch it', async (t) => {
  const content = randomBytes(600_000);
  hub.addRepo('t/processes', { 'm.gguf': { content, lfs: true } });
  hub.fault(sha256(content), { holdAfter: 200_000 });
  const cacheDir = await newCache();
  const script = `const { downloadModel } = await import(${JSON.stringify(join(root, 'lib', 'hub', 'index.ts'))});
    console.log(await downloadModel('hf:t/processes/m.gguf', { cacheDir: ${JSON.stringify(cacheDir)}, endpoint: ${JSON.stringify(hub.endpoint)}, token: false }));`;
  const run = () => new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.on('close', (code) => resolve({ code, out }));
  });
  const a = run();
  const b = run();
  await hub.whenHeld(sha256(content)); // one process is mid-download, holding the lock
  const heads = () => hub.requests('HEAD', 'hub', '/t/processes/').length;
  while (heads() < 2) await new Promise((r) => setTimeout(r, 10)); // the other asked the hub too, and now waits
  hub.release(sha256(content));
  const [ra, rb] = await Promise.all([a, b]);
  t.is(ra.code, 0, ra.out);
  t.is(rb.code, 0, rb.out);
  t.is(ra.out, rb.out);
  t.deepEqual(await readFile(ra.out.trim()), content);
  t.is(hub.requests('GET', 'cdn', sha256(content)).length, 1);
  t.deepEqual(await tree(join(repoDir(cacheDir, 't/processes'), 'blobs')), [sha256(content)]);
});

test('a lock left by a dead process is taken over', async (t) => {
  const content = randomBytes(5000);
  hub.addRepo('t/stale-lock', { 'm.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const blobs = join(repoDir(cacheDir, 't/stale-lock'), 'blobs');
  await mkdir(blobs, { recursive: true });
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  await writeFile(join(blobs, `${sha256(content)}.lock`), `${hostname()}\n${dead}\n`);
  t.deepEqual(await readFile(await downloadModel('hf:t/stale-lock/m.gguf', opts(cacheDir))), content);
  t.deepEqual(await tree(blobs), [sha256(content)]);
});

test('progress: from 0, never back, ends at the total; nothing for a cached file', async (t) => {
  const content = randomBytes(1_500_000);
  hub.addRepo('t/progress', { 'm.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const seen: DownloadProgress[] = [];
  await downloadModel('hf:t/progress/m.gguf', opts(cacheDir, { onProgress: (p: DownloadProgress) => seen.push({ ...p }) }));
  t.true(seen.length >= 3, `${seen.length} events`);
  t.deepEqual(seen[0], { file: 'm.gguf', downloadedBytes: 0, totalBytes: content.length });
  t.true(seen.every((p, i) => i === 0 || p.downloadedBytes > seen[i - 1]!.downloadedBytes));
  t.true(seen.every((p) => p.file === 'm.gguf' && p.totalBytes === content.length));
  t.deepEqual(seen.at(-1), { file: 'm.gguf', downloadedBytes: content.length, totalBytes: content.length });
  const again: DownloadProgress[] = [];
  await downloadModel('hf:t/progress/m.gguf', opts(cacheDir, { onProgress: (p: DownloadProgress) => again.push(p) }));
  t.deepEqual(again, []);
});

test('abort: ERR_ABORTED, the partial file stays and the next call resumes it', async (t) => {
  const content = randomBytes(1_000_000);
  hub.addRepo('t/abort', { 'm.gguf': { content, lfs: true } });
  hub.fault(sha256(content), { holdAfter: 400_000 });
  const cacheDir = await newCache();
  const controller = new AbortController();
  const download = downloadModel('hf:t/abort/m.gguf', opts(cacheDir, {
    signal: controller.signal,
    onProgress: (p: DownloadProgress) => { if (p.downloadedBytes >= 262_144) controller.abort(); },
  }));
  await t.throwsAsync(download, { instanceOf: Gpt2Error, code: 'ERR_ABORTED', message: 'download aborted' });
  const blobs = join(repoDir(cacheDir, 't/abort'), 'blobs');
  const partial = (await lstat(join(blobs, `${sha256(content)}.incomplete`))).size;
  t.true(partial >= 262_144 && partial <= 400_000, `${partial} bytes kept`);
  t.deepEqual(await tree(blobs), [`${sha256(content)}.incomplete`], 'no blob and no lock');
  hub.release(sha256(content));

  t.deepEqual(await readFile(await downloadModel('hf:t/abort/m.gguf', opts(cacheDir))), content);
  t.is(hub.requests('GET', 'cdn', sha256(content)).at(-1)!.headers.range, `bytes=${partial}-`);

  const already = AbortSignal.abort();
  const before = hub.log.length;
  await t.throwsAsync(downloadModel('hf:t/abort/m.gguf', opts(cacheDir, { signal: already })), { instanceOf: Gpt2Error, code: 'ERR_ABORTED', message: 'download aborted' });
  t.deepEqual(hub.log.slice(before).filter((r) => r.path.includes('/t/abort/') || r.path.includes(sha256(content))), [], 'an aborted signal makes no request');
});

// ---------------------------------------------------------------------------------------------
// Repos without a file named: which files make the model

const cfg = Buffer.from('{"model_type":"gpt2","n_layer":2}');

test('a Hugging Face model folder: config, weights, tokenizer and optional files; nothing else', async (t) => {
  const weights = randomBytes(200_000);
  const files = {
    'config.json': { content: cfg },
    'model.safetensors': { content: weights, lfs: true },
    'vocab.json': { content: Buffer.from('{"a":0}') },
    'merges.txt': { content: Buffer.from('#version: 0.2\n') },
    'tokenizer.json': { content: Buffer.from('{"model":{}}') },
    'generation_config.json': { content: Buffer.from('{}') },
    'tokenizer_config.json': { content: Buffer.from('{"x":1}') },
    'README.md': { content: Buffer.from('# readme') },
    'pytorch_model.bin': { content: randomBytes(1000), lfs: true },
    'onnx/model.onnx': { content: randomBytes(1000), lfs: true },
  };
  const commit = hub.addRepo('t/folder', files);
  const cacheDir = await newCache();
  const path = await downloadModel('hf:t/folder', opts(cacheDir));
  t.is(path, join(repoDir(cacheDir, 't/folder'), 'snapshots', commit));
  t.deepEqual(await tree(path), ['config.json', 'generation_config.json', 'merges.txt', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json']);
  t.deepEqual(await readFile(join(path, 'model.safetensors')), weights);
  t.is(hub.requests('GET', 'hub', '/api/models/t/folder/revision/main?blobs=true').length, 1);
  t.is(hub.requests('HEAD', 'hub', '/t/folder/').length, 0, 'the listing gave every size and hash');
  t.is(await readFile(join(repoDir(cacheDir, 't/folder'), 'refs', 'main'), 'utf8'), commit);

  // Again: only the listing; offline: nothing.
  const before = hub.log.length;
  t.is(await downloadModel('hf:t/folder', opts(cacheDir)), path);
  const mine = hub.log.slice(before).filter((r) => r.path.includes('/t/folder/') || r.path.includes(sha256(weights)));
  t.deepEqual(mine.map((r) => `${r.method} ${r.path}`), ['GET /api/models/t/folder/revision/main?blobs=true']);
  t.is(await downloadModel('hf:t/folder', opts(cacheDir, { offline: true })), path);
});

test('a sharded model: the index and the shards it names', async (t) => {
  const shard1 = randomBytes(50_000);
  const shard2 = randomBytes(60_000);
  const index = Buffer.from(JSON.stringify({ metadata: {}, weight_map: { 'h.0.w': 'model-00001-of-00002.safetensors', 'h.1.w': 'model-00002-of-00002.safetensors', wte: 'model-00001-of-00002.safetensors' } }));
  const commit = hub.addRepo('t/sharded', {
    'config.json': { content: cfg },
    'model.safetensors.index.json': { content: index },
    'model-00001-of-00002.safetensors': { content: shard1, lfs: true },
    'model-00002-of-00002.safetensors': { content: shard2, lfs: true },
    'tokenizer.json': { content: Buffer.from('{}') },
  });
  const cacheDir = await newCache();
  const path = await downloadModel('hf:t/sharded', opts(cacheDir));
  t.is(path, join(repoDir(cacheDir, 't/sharded'), 'snapshots', commit));
  t.deepEqual(await tree(path), ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'tokenizer.json']);
  t.deepEqual(await readFile(join(path, 'model-00002-of-00002.safetensors')), shard2);

  // Offline with a shard missing from the snapshot.
  await rm(join(path, 'model-00002-of-00002.safetensors'));
  await t.throwsAsync(downloadModel('hf:t/sharded', opts(cacheDir, { offline: true })), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: `hf:t/sharded@main is not in the cache ${cacheDir}: snapshot ${commit} lacks model-00002-of-00002.safetensors, and offline mode is on (the offline option or HF_HUB_OFFLINE)`,
  });
});

test('an index naming a shard the repo lacks: ERR_NOT_FOUND', async (t) => {
  const index = Buffer.from(JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
  hub.addRepo('t/shard-missing', {
    'config.json': { content: cfg },
    'model.safetensors.index.json': { content: index },
    'model-00001-of-00002.safetensors': { content: randomBytes(100), lfs: true },
    'tokenizer.json': { content: Buffer.from('{}') },
  });
  await t.throwsAsync(downloadModel('hf:t/shard-missing', opts(await newCache())), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: 'model.safetensors.index.json of hf:t/shard-missing@main names shards the repo does not hold: model-00002-of-00002.safetensors',
  });
});

test('a GGUF repo: the one .gguf; several: ERR_AMBIGUOUS listing them', async (t) => {
  const content = randomBytes(3000);
  const commit = hub.addRepo('t/gguf-one', { 'README.md': { content: Buffer.from('x') }, 'config.json': { content: cfg }, 'gpt2.Q8_0.gguf': { content, lfs: true } });
  const cacheDir = await newCache();
  const path = await downloadModel('hf:t/gguf-one', opts(cacheDir));
  t.is(path, join(repoDir(cacheDir, 't/gguf-one'), 'snapshots', commit, 'gpt2.Q8_0.gguf'));
  t.deepEqual(await tree(join(repoDir(cacheDir, 't/gguf-one'), 'snapshots', commit)), ['gpt2.Q8_0.gguf']);

  hub.addRepo('t/gguf-many', { 'gpt2.f16.gguf': { content: randomBytes(10), lfs: true }, 'gpt2.Q4_K_M.gguf': { content: randomBytes(10), lfs: true } });
  await t.throwsAsync(downloadModel('hf:t/gguf-many', opts(cacheDir)), {
    instanceOf: Gpt2Error, code: 'ERR_AMBIGUOUS',
    message: 'hf:t/gguf-many@main holds 2 GGUF files: gpt2.Q4_K_M.gguf, gpt2.f16.gguf; name one, as in hf:t/gguf-many/gpt2.Q4_K_M.gguf',
  });
  await t.throwsAsync(downloadModel('hf:t/gguf-many@main', opts(cacheDir, { offline: true })), { instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND' });
});

test('a legacy ggml .bin repo', async (t) => {
  const content = randomBytes(3000);
  const commit = hub.addRepo('t/ggml', { 'ggml-model-f16.bin': { content, lfs: true }, 'README.md': { content: Buffer.from('x') } });
  const cacheDir = await newCache();
  t.is(await downloadModel('hf:t/ggml', opts(cacheDir)), join(repoDir(cacheDir, 't/ggml'), 'snapshots', commit, 'ggml-model-f16.bin'));
});

test('a repo without a model we load, or without a tokenizer: ERR_NOT_FOUND listing what it holds', async (t) => {
  hub.addRepo('t/pytorch', { 'config.json': { content: cfg }, 'pytorch_model.bin': { content: randomBytes(10), lfs: true }, 'vocab.json': { content: Buffer.from('{}') } });
  await t.throwsAsync(downloadModel('hf:t/pytorch', opts(await newCache())), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: 'hf:t/pytorch@main holds no model in a format gpt2-node loads (a .gguf, a ggml .bin, or config.json with model.safetensors); it holds: config.json, pytorch_model.bin, vocab.json',
  });
  hub.addRepo('t/no-tokenizer', { 'config.json': { content: cfg }, 'model.safetensors': { content: randomBytes(10), lfs: true }, 'vocab.json': { content: Buffer.from('{}') } });
  await t.throwsAsync(downloadModel('hf:t/no-tokenizer@main', opts(await newCache())), {
    instanceOf: Gpt2Error, code: 'ERR_NOT_FOUND',
    message: 'hf:t/no-tokenizer@main has config.json and model.safetensors but no tokenizer (vocab.json + merges.txt, or tokenizer.json)',
  });
});

test('a listing without sizes and hashes (a simple mirror): each file is asked with HEAD at the commit', async (t) => {
  const weights = randomBytes(20_000);
  const commit = hub.addRepo('t/plain-listing', {
    'config.json': { content: cfg }, 'model.safetensors': { content: weights, lfs: true }, 'tokenizer.json': { content: Buffer.from('{}') },
  }, { plainListing: true });
  const path = await downloadModel('hf:t/plain-listing', opts(await newCache()));
  t.deepEqual(await readFile(join(path, 'model.safetensors')), weights);
  t.deepEqual(hub.requests('HEAD', 'hub', '/t/plain-listing/').map((r) => r.path).sort(),
    ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => `/t/plain-listing/resolve/${commit}/${f}`));
});

test('an index without a weight_map: ERR_BAD_MODEL', async (t) => {
  hub.addRepo('t/bad-index', {
    'config.json': { content: cfg },
    'model.safetensors.index.json': { content: Buffer.from('{"metadata":{}}') },
    'tokenizer.json': { content: Buffer.from('{}') },
  });
  await t.throwsAsync(downloadModel('hf:t/bad-index', opts(await newCache())), {
    instanceOf: Gpt2Error, code: 'ERR_BAD_MODEL', message: 'model.safetensors.index.json of hf:t/bad-index@main has no weight_map object',
  });
  hub.addRepo('t/bad-shard', {
    'config.json': { content: cfg },
    'model.safetensors.index.json': { content: Buffer.from('{"weight_map":{"a":"../x.safetensors"}}') },
    'tokenizer.json': { content: Buffer.from('{}') },
  });
  await t.throwsAsync(downloadModel('hf:t/bad-shard', opts(await newCache())), {
    instanceOf: Gpt2Error, code: 'ERR_BAD_MODEL', message: 'model.safetensors.index.json of hf:t/bad-shard@main names a shard that is not a .safetensors path: "../x.safetensors"',
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI's progress line

test('the CLI progress line: drawn on a terminal, silent otherwise', (t) => {
  let clock = 0;
  const fake = (isTTY: boolean) => {
    const out: string[] = [];
    return { out, stream: { isTTY, columns: 100, write: (s: string) => { out.push(s); return true; } } as unknown as NodeJS.WriteStream };
  };
  const tty = fake(true);
  const bar = downloadProgressBar(tty.stream, () => clock);
  bar.onProgress({ file: 'model.safetensors', downloadedBytes: 0, totalBytes: 2 * 2 ** 20 });
  clock = 50;
  bar.onProgress({ file: 'model.safetensors', downloadedBytes: 2 ** 19, totalBytes: 2 * 2 ** 20 }); // within 100 ms: not drawn
  clock = 1000;
  bar.onProgress({ file: 'model.safetensors', downloadedBytes: 2 ** 20, totalBytes: 2 * 2 ** 20 });
  clock = 1001;
  bar.onProgress({ file: 'model.safetensors', downloadedBytes: 2 * 2 ** 20, totalBytes: 2 * 2 ** 20 }); // the end is always drawn
  bar.onProgress({ file: 'vocab.json', downloadedBytes: 0, totalBytes: 1000 });
  bar.end();
  t.deepEqual(tty.out, [
    '\rmodel.safetensors [--------------------]   0%  0.0/2.0 MiB\x1b[K',
    '\rmodel.safetensors [##########----------]  50%  1.0/2.0 MiB  1.0 MiB/s\x1b[K',
    '\rmodel.safetensors [####################] 100%  2.0/2.0 MiB  2.0 MiB/s\x1b[K',
    '\n',
    '\rvocab.json [--------------------]   0%  0.0/0.0 MiB\x1b[K',
    '\n',
  ]);
  const pipe = fake(false);
  const quiet = downloadProgressBar(pipe.stream, () => clock);
  quiet.onProgress({ file: 'm.gguf', downloadedBytes: 10, totalBytes: 10 });
  quiet.end();
  t.deepEqual(pipe.out, []);
});

// ---------------------------------------------------------------------------------------------
// End to end

test('loadModel("hf:…") downloads a real GGUF into the cache, loads it and generates', async (t) => {
  const gguf = await readFile(await testModel('tiny', 'f32'));
  const commit = hub.addRepo('t/tiny-gpt2-GGUF', { 'README.md': { content: Buffer.from('# tiny') }, 'tiny-f32.gguf': { content: gguf, lfs: true } });
  const cacheDir = await newCache();
  const seen: DownloadProgress[] = [];
  const model = await loadModel('hf:t/tiny-gpt2-GGUF', {
    endpoint: hub.endpoint, cacheDir, token: false, threads: 1, onDownloadProgress: (p) => seen.push(p),
  });
  try {
    t.is(model.info.layers, 2);
    const out = await model.complete('Hello', { maxTokens: 4, temperature: 0, ignoreEos: true });
    t.is(out.tokens.length, 4);
  } finally {
    await model.dispose();
  }
  t.deepEqual(seen.at(-1), { file: 'tiny-f32.gguf', downloadedBytes: gguf.length, totalBytes: gguf.length });
  t.true(existsSync(join(repoDir(cacheDir, 't/tiny-gpt2-GGUF'), 'blobs', sha256(gguf))));
  t.is(await readFile(join(repoDir(cacheDir, 't/tiny-gpt2-GGUF'), 'refs', 'main'), 'utf8'), commit);
  // Offline, from the cache.
  const again = await loadModel('hf:t/tiny-gpt2-GGUF/tiny-f32.gguf', { cacheDir, offline: true, threads: 1 });
  t.is(again.info.layers, 2);
  await again.dispose();
});

test('loadModel("hf:…") of a Hugging Face model folder repo fetches just the model\'s files and loads them', async (t) => {
  const { mkdtemp, readdir, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { writeHfFolder } = await import('../support/export-formats.js');
  const gguf = await testModel('tiny', 'f32', { initScale: 4 });
  const folder = await mkdtemp(join(tmpdir(), 'gpt2-node-hf-repo-'));
  t.teardown(() => rm(folder, { recursive: true, force: true }));
  await writeHfFolder(gguf, folder, { shards: 2 });
  const files: Record<string, { content: Buffer; lfs?: boolean }> = { 'README.md': { content: Buffer.from('# tiny') }, 'pytorch_model.bin': { content: Buffer.from([0x80, 2]), lfs: true } };
  for (const f of await readdir(folder)) files[f] = { content: await readFile(join(folder, f)), lfs: f.endsWith('.safetensors') };
  hub.addRepo('t/tiny-gpt2', files);
  const cacheDir = await newCache();
  const model = await loadModel('hf:t/tiny-gpt2', { endpoint: hub.endpoint, cacheDir, token: false, threads: 1 });
  try {
    t.is(model.info.format, 'safetensors');
    const direct = await loadModel(gguf, { threads: 1 });
    const ids = model.tokenize('Hello there');
    t.deepEqual(await model.evaluate(ids), await direct.evaluate(ids));
    await direct.dispose();
  } finally {
    await model.dispose();
  }
  // the pickle was not downloaded
  t.is(hub.requests('GET', undefined, 'pytorch_model.bin').length, 0);
});
