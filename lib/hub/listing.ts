// A repo's files at a revision: GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true
// answers the commit (`sha`) and `siblings`, each with `rfilename` and, with blobs=true, `size`,
// `blobId` (git sha1) and for LFS files `lfs: { sha256, size }`.
import { Gpt2Error } from '../errors.js';
import { safeSegment } from './cache.js';
import { modelInfoUrl, redactUrl } from './endpoint.js';
import { type HubContext, metadataRequest } from './download.js';
import { statusError } from './http.js';
import { validRelativePath } from './specifier.js';

export interface RepoFile {
  /** What the blob is named by: the LFS sha256, else the git blob id. */
  etag: string | undefined;
  size: number | undefined;
}

export interface RepoListing {
  commit: string;
  files: Map<string, RepoFile>;
}

const MAX_LISTING_BYTES = 64 * 1024 * 1024;

export async function listRepo(ctx: HubContext, revision: string): Promise<RepoListing> {
  const url = modelInfoUrl(ctx.endpoint, ctx.repo, revision);
  const what = `repository ${ctx.repo} at ${revision}`;
  const res = await metadataRequest(ctx, 'GET', url, what);
  if (res.status !== 200) throw statusError(res, 'GET', what, ctx.hasToken);
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_LISTING_BYTES) {
      res.body.destroy();
      throw new Gpt2Error('ERR_DOWNLOAD', `the listing of ${what} is larger than ${MAX_LISTING_BYTES} bytes (GET ${redactUrl(url)})`);
    }
    chunks.push(chunk);
  }
  const bad = (why: string) => new Gpt2Error('ERR_DOWNLOAD', `unexpected listing of ${what}: ${why} (GET ${redactUrl(url)})`);
  let info: unknown;
  try {
    info = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  const { sha, siblings } = (info ?? {}) as { sha?: unknown; siblings?: unknown };
  if (typeof sha !== 'string' || !safeSegment(sha)) throw bad('no commit (sha)');
  if (!Array.isArray(siblings)) throw bad('no file list (siblings)');
  const files = new Map<string, RepoFile>();
  for (const s of siblings as { rfilename?: unknown; size?: unknown; blobId?: unknown; lfs?: { sha256?: unknown; size?: unknown } }[]) {
    if (typeof s?.rfilename !== 'string' || !validRelativePath(s.rfilename)) continue; // nothing we would fetch
    const lfsSha = typeof s.lfs?.sha256 === 'string' ? s.lfs.sha256 : undefined;
    const blobId = typeof s.blobId === 'string' ? s.blobId : undefined;
    const size = typeof s.lfs?.size === 'number' ? s.lfs.size : typeof s.size === 'number' ? s.size : undefined;
    files.set(s.rfilename, { etag: lfsSha ?? blobId, size });
  }
  return { commit: sha, files };
}
