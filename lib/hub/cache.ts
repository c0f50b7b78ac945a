// The download cache, laid out like huggingface_hub's so both can share one folder:
//
//   <cache>/models--<owner>--<name>/
//     blobs/<etag>                  file contents, named by the hub's ETag: the sha256 of an LFS
//                                   file, the git blob sha1 of a small one
//     blobs/<etag>.incomplete       a download in progress (resumed from its length)
//     blobs/<etag>.lock             held while one process downloads that blob
//     snapshots/<commit>/<path>     relative symlink to the blob (a copy where links fail)
//     refs/<revision>               the commit a branch or tag pointed to when last fetched
//
// The folder: the cacheDir option, else HF_HUB_CACHE, else $HF_HOME/hub, else
// ~/.cache/huggingface/hub.
import { copyFile, mkdir, readFile, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';

import { nodeCrypto } from '../builtins.js';
import { expandHome, hfHome } from './endpoint.js';

export function resolveCacheDir(option: string | undefined): string {
  const env = process.env;
  const dir = option ?? env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE ?? join(hfHome(), 'hub');
  return resolve(expandHome(dir));
}

const SAFE = /^[A-Za-z0-9._-]{1,200}$/;

/** A name usable as one path segment (a commit id, a blob name). */
export function safeSegment(value: string): boolean {
  return SAFE.test(value) && value !== '.' && value !== '..';
}

/** The blob file name of an ETag: the ETag itself (unquoted), or its sha256 where it is not a safe file name. */
export function blobName(etag: string): string {
  return safeSegment(etag) ? etag : nodeCrypto().createHash('sha256').update(etag).digest('hex');
}

export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

export class RepoCache {
  readonly cacheDir: string;
  readonly repo: string;
  /** `<cache>/models--owner--name`. */
  readonly root: string;

  constructor(cacheDir: string, repo: string) {
    this.cacheDir = cacheDir;
    this.repo = repo;
    this.root = join(cacheDir, `models--${repo.split('/').join('--')}`);
  }

  blobPath(etag: string): string {
    return join(this.root, 'blobs', blobName(etag));
  }

  snapshotDir(commit: string): string {
    return join(this.root, 'snapshots', commit);
  }

  pointerPath(commit: string, file: string): string {
    return join(this.snapshotDir(commit), ...file.split('/'));
  }

  refPath(revision: string): string {
    return join(this.root, 'refs', ...revision.split('/'));
  }

  /** The commit of a revision: itself for a full commit id, else what refs/<revision> holds. */
  async commitOf(revision: string): Promise<string | undefined> {
    if (/^[0-9a-f]{40}$/.test(revision)) return revision;
    try {
      const commit = (await readFile(this.refPath(revision), 'utf8')).trim();
      return safeSegment(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Records that `revision` points at `commit` (atomically; nothing to do for a commit id). A
   * cache that is read-only to us (a shared one) keeps its old ref: not an error.
   */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const path = this.refPath(revision);
    try {
      if ((await readFile(path, 'utf8')).trim() === commit) return;
    } catch { /* absent */ }
    const tmp = `${path}.${nodeCrypto().randomUUID()}.tmp`;
    try {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(tmp, commit);
      await rename(tmp, path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') throw e;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Makes snapshots/<commit>/<file> point at the blob: a relative symlink (the cache can move),
   * or a copy where the file system has no symlinks. Created under a temporary name and renamed
   * into place, so a reader never sees a half-made pointer.
   */
  async link(blob: string, pointer: string): Promise<void> {
    try {
      if ((await realpath(pointer)) === (await realpath(blob))) return;
    } catch { /* absent or dangling */ }
    await mkdir(dirname(pointer), { recursive: true });
    const tmp = `${pointer}.${nodeCrypto().randomUUID()}.tmp`;
    try {
      try {
        await symlink(relative(dirname(pointer), blob), tmp);
      } catch {
        await copyFile(blob, tmp);
      }
      try {
        await rename(tmp, pointer);
      } catch (e) {
        // Windows cannot replace a file that is open (a loaded model maps it): keep that one.
        if (!(await isFile(pointer))) throw e;
      }
    } finally {
      await rm(tmp, { force: true });
    }
  }
}
