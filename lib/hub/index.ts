// downloadModel(): a hub specifier (`hf:owner/repo[/file][@revision]`) → a local path in the
// cache (a file, or the snapshot folder of a Hugging Face model), downloading what is missing.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { Gpt2Error } from '../errors.js';
import * as v from '../validate.js';
import { RepoCache, isFile, resolveCacheDir } from './cache.js';
import { type DownloadProgress, type HubContext, downloadFile } from './download.js';
import { DEFAULT_REVISION, envOffline, hubHeaders, resolveEndpoint, resolveToken } from './endpoint.js';
import { aborted, isUnreachable } from './http.js';
import { listRepo } from './listing.js';
import { INDEX_FILE, selectModel, shardsOf } from './select.js';
import { type HubSpecifier, formatSpecifier, parseSpecifier, validRevision } from './specifier.js';

export type { DownloadProgress } from './download.js';
export { isHubSpecifier } from './specifier.js';

/** Options of the hub that loadModel() takes as they are. */
export interface HubOptions {
  /** The cache folder. Default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Use the cache only, never the network. Default: HF_HUB_OFFLINE set to 1/true/yes/on. */
  offline?: boolean;
  /** Access token for private and gated repos; `false`: none. Default: HF_TOKEN, else the file `huggingface-cli login` writes. */
  token?: string | false;
  /** The hub's URL. Default: HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Branch, tag or commit when the specifier names none. Default 'main'. */
  revision?: string;
  /** Aborts the download (ERR_ABORTED); a partial file stays in the cache and a later call resumes it. */
  signal?: AbortSignal;
}

export interface DownloadOptions extends HubOptions {
  /** Called as each file downloads (not for files already in the cache). */
  onProgress?: (progress: DownloadProgress) => void;
}

const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Resolves a hub specifier to a local path, downloading into the cache what is not there:
 * the named file, or the repo's model (see lib/hub/select.ts for which files that is), whose
 * path is then the one .gguf / .bin file or the snapshot folder of a Hugging Face model.
 */
export function downloadModel(specifier: string, options?: DownloadOptions): Promise<string> {
  return resolveSpecifier(specifier, options, 'onProgress');
}

/** downloadModel() with the progress callback under another option name (loadModel's `onDownloadProgress`). */
export async function resolveSpecifier(specifier: unknown, options: unknown, progressName: string): Promise<string> {
  const spec = parseSpecifier(specifier);
  const o = v.object('options', options);
  const cacheDir = o.cacheDir === undefined ? undefined : v.string('cacheDir', o.cacheDir);
  const offline = v.optionalBoolean('offline', o.offline) ?? envOffline();
  if (o.token !== undefined && o.token !== false && typeof o.token !== 'string') {
    throw new TypeError(`Expected string or false for token but received ${v.describe(o.token, true)}`);
  }
  const endpoint = o.endpoint === undefined ? undefined : resolveEndpoint(v.string('endpoint', o.endpoint));
  let revision = spec.revision;
  if (o.revision !== undefined) {
    const r = v.string('revision', o.revision);
    if (!validRevision(r)) throw new RangeError(`Expected branch, tag or commit for revision but received ${v.describe(r)}`);
    if (revision !== undefined && revision !== r) {
      throw new RangeError(`Expected one revision but received ${v.describe(r)} for revision and ${v.describe(revision)} in the specifier`);
    }
    revision = r;
  }
  revision ??= DEFAULT_REVISION;
  const onProgress = o[progressName];
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new TypeError(`Expected function for ${progressName} but received ${v.describe(onProgress, true)}`);
  }
  const signal = v.optionalSignal('signal', o.signal);
  if (signal?.aborted) throw aborted(signal, 'download');

  const cache = new RepoCache(resolveCacheDir(cacheDir), spec.repo);
  if (offline) return fromCache(cache, spec, revision, 'offline mode is on (the offline option or HF_HUB_OFFLINE)');
  // A file at a commit never changes: when the cache has it, it is final.
  if (spec.file !== undefined && COMMIT.test(revision)) {
    const hit = await fromCache(cache, spec, revision, '').catch(() => undefined);
    if (hit !== undefined) return hit;
  }
  const token = resolveToken(o.token as string | false | undefined);
  const ctx: HubContext = {
    endpoint: endpoint ?? resolveEndpoint(undefined), // HF_ENDPOINT is read (and checked) only when it is used
    repo: spec.repo,
    headers: hubHeaders(token),
    hasToken: token !== undefined,
    cache,
    signal,
    onProgress: onProgress as HubContext['onProgress'],
  };
  try {
    return spec.file !== undefined ? await fetchFile(ctx, spec.file, revision) : await fetchModel(ctx, spec, revision);
  } catch (e) {
    // No network at all (not an HTTP error): what the cache has of this revision will do.
    if (e instanceof Gpt2Error && e.code === 'ERR_DOWNLOAD' && isUnreachable(e.cause)) {
      const hit = await fromCache(cache, spec, revision, '').catch(() => undefined);
      if (hit !== undefined) return hit;
    }
    if (e instanceof Gpt2Error && e.code === 'ERR_NOT_FOUND' && revision.includes('/') && e.message.includes(': revision not found')) {
      throw new Gpt2Error(e.code, `${e.message}; everything after @ is the revision, a file goes before it: hf:${spec.repo}/<file>@<revision>`, { cause: e.cause });
    }
    throw cacheIoError(e);
  }
}

const FILE_SYSCALLS = new Set(['open', 'write', 'close', 'mkdir', 'rename', 'symlink', 'copyfile', 'unlink', 'rmdir', 'utime', 'futime', 'fsync']);

/** A file operation of the cache that failed (a full disk, a read-only folder): ERR_IO, like every library error a Gpt2Error. */
function cacheIoError(e: unknown): unknown {
  const syscall = (e as NodeJS.ErrnoException | undefined)?.syscall;
  if (e instanceof Error && !(e instanceof Gpt2Error) && syscall !== undefined && FILE_SYSCALLS.has(syscall)) {
    return new Gpt2Error('ERR_IO', `the hub cache: ${e.message}`, { cause: e });
  }
  return e;
}

async function fetchFile(ctx: HubContext, file: string, revision: string): Promise<string> {
  const { path, commit } = await downloadFile(ctx, revision, file);
  await ctx.cache.writeRef(revision, commit);
  return path;
}

async function fetchModel(ctx: HubContext, spec: HubSpecifier, revision: string): Promise<string> {
  const { commit, files } = await listRepo(ctx, revision);
  const where = formatSpecifier(spec, revision);
  const selection = selectModel(files.keys(), where, (f) => formatSpecifier({ ...spec, file: f }, revision === DEFAULT_REVISION ? undefined : revision));
  const get = (file: string) => downloadFile(ctx, commit, file, { commit, ...files.get(file) });
  if (selection.kind === 'file') {
    const { path } = await get(selection.file);
    await ctx.cache.writeRef(revision, commit);
    return path;
  }
  for (const file of selection.files) await get(file);
  if (selection.index !== undefined) {
    const index = await readFile(ctx.cache.pointerPath(commit, selection.index), 'utf8');
    const shards = shardsOf(index, where);
    const missing = shards.filter((s) => !files.has(s));
    if (missing.length > 0) {
      throw new Gpt2Error('ERR_NOT_FOUND', `${INDEX_FILE} of ${where} names shards the repo does not hold: ${missing.join(', ')}`);
    }
    for (const shard of shards) await get(shard);
  }
  await ctx.cache.writeRef(revision, commit);
  return ctx.cache.snapshotDir(commit);
}

/** Files under a folder (following links to files), as `/`-separated relative paths. */
async function walk(dir: string, prefix = ''): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(join(dir, prefix), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...await walk(dir, rel));
    else if (/\.[0-9a-f-]{36}\.tmp$/.test(e.name)) continue; // a pointer being made
    else if (await isFile(join(dir, rel))) out.push(rel); // a dangling link is no file
  }
  return out;
}

/**
 * The specifier from the cache alone: refs/<revision> (or the commit itself) → the snapshot,
 * and in it the named file, or the model selectModel() picks from the files there.
 * `why`: why the network is not asked (for the message); '' when this is only a shortcut.
 */
async function fromCache(cache: RepoCache, spec: HubSpecifier, revision: string, why: string): Promise<string> {
  const where = formatSpecifier(spec, revision);
  const fail = (missing: string) => new Gpt2Error('ERR_NOT_FOUND', `${where} is not in the cache ${cache.cacheDir}: ${missing}${why ? `, and ${why}` : ''}`);
  const commit = await cache.commitOf(revision);
  if (commit === undefined) throw fail(`no refs/${revision} in ${cache.root}`);
  const snapshot = cache.snapshotDir(commit);
  if (spec.file !== undefined) {
    const pointer = cache.pointerPath(commit, spec.file);
    if (await isFile(pointer)) return pointer;
    throw fail(`snapshot ${commit} has no ${spec.file}`);
  }
  const files = await walk(snapshot);
  if (files.length === 0) throw fail(`no snapshot ${commit}`);
  const selection = selectModel(files, `${where} (cached snapshot ${commit})`, (f) => formatSpecifier({ ...spec, file: f }, revision));
  if (selection.kind === 'file') return cache.pointerPath(commit, selection.file);
  if (selection.index !== undefined) {
    const shards = shardsOf(await readFile(cache.pointerPath(commit, selection.index), 'utf8'), where);
    const have = new Set(files);
    const missing = shards.filter((s) => !have.has(s));
    if (missing.length > 0) throw fail(`snapshot ${commit} lacks ${missing.join(', ')}`);
  }
  return snapshot;
}

/** The hub options loadModel() takes, for a path that is an `hf:` specifier. */
export interface HubLoadOptions extends HubOptions {
  /** Progress of the download of an `hf:` specifier (files already in the cache report nothing). */
  onDownloadProgress?: (progress: DownloadProgress) => void;
}
