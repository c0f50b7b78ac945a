// One file of a repo into the cache: ask the hub what the file is (HEAD on its resolve URL:
// X-Repo-Commit, X-Linked-Etag / ETag, X-Linked-Size / Content-Length, and for LFS files a
// redirect to the CDN), then GET it into blobs/<etag>.incomplete, resuming with Range after a
// dropped connection, check its size and hash (an LFS ETag is the file's sha256, a small file's
// is its git blob sha1), rename it to blobs/<etag> and point snapshots/<commit>/<file> at it.
import type { Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { nodeCrypto } from '../builtins.js';
import { Gpt2Error } from '../errors.js';
import { type RepoCache, fileSize, isFile, safeSegment } from './cache.js';
import { redactUrl, resolveUrl } from './endpoint.js';
import {
  type Response, aborted, isNetworkError, isRedirect, isUnreachable, location, networkError, requestFollowing,
  retryableStatus, statusError,
} from './http.js';
import { withLock } from './lock.js';

export interface DownloadProgress {
  /** The file's path in the repo. */
  file: string;
  /** Bytes of the file on disk so far (a resumed download starts where the last one stopped). */
  downloadedBytes: number;
  /** The file's size, when the hub says it (it always does). */
  totalBytes: number | undefined;
}

export interface HubContext {
  endpoint: string;
  repo: string;
  /** Request headers (user agent, Authorization when there is a token). */
  headers: Record<string, string>;
  hasToken: boolean;
  cache: RepoCache;
  signal: AbortSignal | undefined;
  onProgress: ((p: DownloadProgress) => void) | undefined;
}

export interface FileMeta {
  commit: string;
  /** The unquoted ETag: sha256 (LFS) or git blob sha1; names the blob. */
  etag: string;
  size: number | undefined;
  /** Where to GET the bytes: the CDN location of an LFS file, else the resolve URL at `commit`. */
  url: string;
}

/** Attempts that add no byte before a download gives up; metadata requests try this often too. */
const MAX_FAILURES = 5;
const METADATA_ATTEMPTS = 3;
const PROGRESS_STEP = 256 * 1024;

function backoff(failures: number): number {
  return Math.min(200 * 2 ** (failures - 1), 3000);
}

export async function pause(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    throw aborted(signal, what);
  }
}

/** ETag → the value it quotes (`W/"x"` and `"x"` → `x`). */
export function normalizeEtag(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const e = v.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  return e.length > 0 ? e : undefined;
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sizeHeader(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

export function describeFile(ctx: HubContext, file: string, revision: string): string {
  return `file ${file} of ${ctx.repo} at ${revision}`;
}

/**
 * A request that is tried again after a dropped connection or a 5xx/429 answer (not when the
 * server is unreachable: that is for the caller to decide, e.g. to use the cache).
 */
export async function metadataRequest(ctx: HubContext, method: 'GET' | 'HEAD', url: string, what: string): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    if (ctx.signal?.aborted) throw aborted(ctx.signal, 'download');
    let res: Response;
    try {
      res = await requestFollowing(method, url, ctx.headers, 'relative', ctx.signal);
    } catch (e) {
      if (ctx.signal?.aborted) throw aborted(ctx.signal, 'download');
      if (e instanceof Gpt2Error) throw e;
      if (attempt >= METADATA_ATTEMPTS || isUnreachable(e) || !isNetworkError(e)) throw networkError(e, method, url);
      await pause(backoff(attempt), ctx.signal, 'download');
      continue;
    }
    if (res.status >= 200 && res.status < 300) return res;
    if (isRedirect(res.status)) return res;
    if (retryableStatus(res.status) && attempt < METADATA_ATTEMPTS) {
      res.body.resume();
      await pause(backoff(attempt), ctx.signal, 'download');
      continue;
    }
    throw statusError(res, method, what, ctx.hasToken);
  }
}

/** HEAD on the resolve URL: the commit the revision is at, the file's ETag, size and download URL. */
export async function fileMetadata(ctx: HubContext, revision: string, file: string): Promise<FileMeta> {
  const url = resolveUrl(ctx.endpoint, ctx.repo, revision, file);
  const what = describeFile(ctx, file, revision);
  const res = await metadataRequest(ctx, 'HEAD', url, what);
  res.body.resume();
  const commit = header(res, 'x-repo-commit')?.trim();
  if (commit === undefined || !safeSegment(commit)) {
    throw new Gpt2Error('ERR_DOWNLOAD', `the answer for ${what} has no valid X-Repo-Commit header: is ${ctx.endpoint} a Hugging Face hub? (HEAD ${redactUrl(res.url)})`);
  }
  const etag = normalizeEtag(header(res, 'x-linked-etag') ?? header(res, 'etag'));
  if (etag === undefined) {
    throw new Gpt2Error('ERR_DOWNLOAD', `the answer for ${what} has no ETag, so the file cannot be checked (HEAD ${redactUrl(res.url)})`);
  }
  // A redirect's Content-Length is that of its own (empty) body, not the file's.
  const redirect = isRedirect(res.status);
  const size = sizeHeader(header(res, 'x-linked-size') ?? (redirect ? undefined : header(res, 'content-length')));
  return { commit, etag, size, url: redirect ? location(res) : resolveUrl(ctx.endpoint, ctx.repo, commit, file) };
}

type Digest = { algorithm: 'sha256' | 'git-sha1'; expected: string };

/** What the ETag lets us check: 64 hex digits are a sha256 (LFS), 40 a git blob sha1 (needs the size). */
function digestOf(etag: string, size: number | undefined): Digest | undefined {
  if (/^[0-9a-f]{64}$/i.test(etag)) return { algorithm: 'sha256', expected: etag.toLowerCase() };
  if (/^[0-9a-f]{40}$/i.test(etag) && size !== undefined) return { algorithm: 'git-sha1', expected: etag.toLowerCase() };
  return undefined;
}

function newHash(digest: Digest | undefined, size: number | undefined): Hash | undefined {
  if (digest === undefined) return undefined;
  if (digest.algorithm === 'sha256') return nodeCrypto().createHash('sha256');
  return nodeCrypto().createHash('sha1').update(`blob ${size}\0`);
}

/** The hash of the first `bytes` bytes of a file. */
async function hashPrefix(path: string, bytes: number, digest: Digest | undefined, size: number | undefined): Promise<Hash | undefined> {
  const hash = newHash(digest, size);
  if (hash === undefined || bytes === 0) return hash;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1 })) hash.update(chunk as Buffer);
  return hash;
}

/** The partial file cannot be continued (wrong Content-Range, 416): start again from zero. */
class Restart extends Error {}

interface Written {
  /** Bytes in the .incomplete file. */
  bytes: number;
  /** Hash of exactly those bytes. */
  hash: Hash | undefined;
}

function contentRange(value: string | undefined): { start: number; total: number | undefined } | undefined {
  const m = value === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (m === null) return undefined;
  return { start: Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/**
 * One GET of the file into `incomplete`, from `state.bytes` on (Range) where there are any.
 * `state` follows every write, so after an error it still describes the file. Returns the size
 * the server gave for the whole file, if any.
 */
async function transfer(
  ctx: HubContext, meta: FileMeta, what: string, incomplete: string, state: Written,
  fresh: () => Hash | undefined, onBytes: (bytes: number) => void,
): Promise<number | undefined> {
  const headers = { ...ctx.headers };
  if (state.bytes > 0) headers.range = `bytes=${state.bytes}-`;
  const res = await requestFollowing('GET', meta.url, headers, 'all', ctx.signal, new URL(ctx.endpoint).origin);
  let total: number | undefined;
  let flags = 'a';
  if (res.status === 206 && state.bytes > 0) {
    const range = contentRange(header(res, 'content-range'));
    if (range === undefined || range.start !== state.bytes) {
      res.body.resume();
      throw new Restart(`unexpected Content-Range ${header(res, 'content-range')} for bytes=${state.bytes}-`);
    }
    total = range.total;
  } else if (res.status === 200 || res.status === 206) {
    // No resume asked, or the server ignored the Range header: the body is the whole file.
    flags = 'w';
    state.bytes = 0;
    state.hash = fresh();
    total = sizeHeader(header(res, 'content-length'));
  } else if (res.status === 416) {
    res.body.resume();
    throw new Restart(`HTTP 416 for bytes=${state.bytes}-`);
  } else if (retryableStatus(res.status)) {
    res.body.resume();
    throw new Error(`HTTP ${res.status} ${res.body.statusMessage ?? ''}`.trim());
  } else {
    throw statusError(res, 'GET', what, ctx.hasToken);
  }
  if (meta.size !== undefined && total !== undefined && total !== meta.size) {
    res.body.destroy();
    throw new Gpt2Error('ERR_CHECKSUM', `${what}: size mismatch: the hub says ${meta.size} bytes, ${redactUrl(res.url)} serves ${total} (the download was removed)`);
  }
  // Bytes past the announced size (the hub's, else this answer's) are refused before they are
  // written: a broken or hostile server cannot fill the disk.
  const limit = meta.size ?? total;
  // A failed write is this machine's (a full disk, a quota, a file size limit), not the
  // network's: ERR_IO at once, not retried like a dropped connection (fetchBlob removes the file).
  const fh = await open(incomplete, flags).catch((e: unknown) => {
    res.body.destroy();
    throw writeError(incomplete, e);
  });
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (limit !== undefined && chunk.length > limit - state.bytes) {
        res.body.destroy();
        throw new Gpt2Error('ERR_CHECKSUM', `${what}: size mismatch: ${meta.size !== undefined ? 'the hub says' : `${redactUrl(res.url)} announced`} ${limit} bytes, ` +
          `${redactUrl(res.url)} sent more (the download was removed)`);
      }
      try {
        await fh.write(chunk);
      } catch (e) {
        res.body.destroy();
        throw writeError(incomplete, e);
      }
      state.hash?.update(chunk);
      state.bytes += chunk.length;
      onBytes(state.bytes);
    }
  } finally {
    await fh.close();
  }
  return total;
}

/** A failed write of the download (ENOSPC, EDQUOT, EFBIG, ...): ERR_IO. */
function writeError(path: string, e: unknown): Gpt2Error {
  const text = e instanceof Error ? e.message : String(e);
  return new Gpt2Error('ERR_IO', `${path}: cannot write the download: ${text} (the download was removed)`, { cause: e });
}

/**
 * The blob of a file, downloaded unless it is in the cache. One downloader per blob (lock); an
 * interrupted download resumes from blobs/<etag>.incomplete, here or in a later run. Nothing
 * reaches blobs/<etag> before its size and hash check out.
 */
export async function fetchBlob(ctx: HubContext, file: string, meta: FileMeta, what: string): Promise<string> {
  const blob = ctx.cache.blobPath(meta.etag);
  if (await isFile(blob)) return blob;
  await mkdir(dirname(blob), { recursive: true });
  return withLock(`${blob}.lock`, ctx.signal, async () => {
    if (await isFile(blob)) return blob; // another downloader finished it while we waited
    const incomplete = `${blob}.incomplete`;
    const digest = digestOf(meta.etag, meta.size);
    const fresh = () => newHash(digest, meta.size);
    let total = meta.size;
    let lastReported = -1;
    const report = (bytes: number, force: boolean) => {
      if (ctx.onProgress === undefined || bytes === lastReported) return;
      if (!force && bytes - lastReported < PROGRESS_STEP && bytes !== total) return;
      lastReported = bytes;
      ctx.onProgress({ file, downloadedBytes: bytes, totalBytes: total });
    };

    // Bytes left by an earlier run are checked with the rest; when the whole fails the check,
    // they may be the culprit, so the file is fetched once more from zero before giving up.
    let resumed = ((await fileSize(incomplete)) ?? 0) > 0;
    for (;;) {
      const state: Written = { bytes: -1, hash: undefined };
      let failures = 0;
      for (;;) {
        if (ctx.signal?.aborted) throw aborted(ctx.signal, 'download');
        const have = (await fileSize(incomplete)) ?? 0;
        if (state.bytes !== have) state.hash = await hashPrefix(incomplete, have, digest, meta.size);
        state.bytes = have;
        report(have, true);
        if (total !== undefined && have >= total) break;
        try {
          const t = await transfer(ctx, meta, what, incomplete, state, fresh, (n) => report(n, false));
          total ??= t ?? state.bytes;
          if (state.bytes >= total) break;
          throw new Error(`the connection closed after ${state.bytes} of ${total} bytes`);
        } catch (e) {
          if (ctx.signal?.aborted) throw aborted(ctx.signal, 'download');
          if (e instanceof Gpt2Error) {
            // A failed write removes the partial file too: on a full disk it is what fills it.
            if (e.code === 'ERR_CHECKSUM' || e.code === 'ERR_IO') await rm(incomplete, { force: true });
            throw e;
          }
          if (e instanceof Restart) {
            await rm(incomplete, { force: true });
            state.bytes = -1;
          }
          const now = (await fileSize(incomplete)) ?? 0;
          failures = now > have ? 1 : failures + 1;
          if (failures >= MAX_FAILURES) throw networkError(e, 'GET', meta.url);
          await pause(backoff(failures), ctx.signal, 'download');
        }
      }
      const size = (await fileSize(incomplete)) ?? 0;
      if (state.bytes !== size) state.hash = await hashPrefix(incomplete, size, digest, meta.size);
      const got = state.hash?.digest('hex');
      const problem = meta.size !== undefined && size !== meta.size
        ? `size mismatch: expected ${meta.size} bytes, received ${size}`
        : digest !== undefined && got !== digest.expected
          ? `${digest.algorithm} mismatch: expected ${digest.expected}, received ${got}`
          : undefined;
      if (problem === undefined) {
        await rename(incomplete, blob);
        return blob;
      }
      await rm(incomplete, { force: true });
      if (resumed) {
        resumed = false;
        continue;
      }
      throw new Gpt2Error('ERR_CHECKSUM', `${what}: ${problem} (from ${redactUrl(meta.url)}; the download was removed)`);
    }
  });
}

/**
 * A file of the repo in the cache: snapshots/<commit>/<file>, downloaded unless there. `known`:
 * what a repo listing already said (commit, ETag, size), sparing the HEAD request.
 */
export async function downloadFile(ctx: HubContext, revision: string, file: string, known?: Partial<FileMeta>): Promise<{ path: string; commit: string }> {
  const what = describeFile(ctx, file, revision);
  let meta: FileMeta;
  if (known?.commit !== undefined && known.etag !== undefined && known.size !== undefined) {
    meta = { commit: known.commit, etag: known.etag, size: known.size, url: known.url ?? resolveUrl(ctx.endpoint, ctx.repo, known.commit, file) };
  } else {
    meta = await fileMetadata(ctx, revision, file);
  }
  const pointer = ctx.cache.pointerPath(meta.commit, file);
  if (!(await isFile(pointer))) {
    const blob = await fetchBlob(ctx, file, meta, what);
    await ctx.cache.link(blob, pointer);
  }
  return { path: pointer, commit: meta.commit };
}
