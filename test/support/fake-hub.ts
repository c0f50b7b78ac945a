// A local imitation of the Hugging Face hub for download tests, on 127.0.0.1 (two servers: the
// hub and a "CDN" on another port, i.e. another origin, as on the real hub):
//
//   HEAD/GET /{owner}/{name}/resolve/{revision}/{path}
//     small files: 200 with the bytes, ETag "<git blob sha1>", Content-Length, X-Repo-Commit
//     LFS files:   302 to the CDN, with X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit
//     errors as the hub sends them: 401 (X-Error-Code RepoNotFound) without a valid token for a
//     private or unknown repo, 404 RevisionNotFound / EntryNotFound (the latter with X-Repo-Commit)
//     a renamed repo: 307 to the new name with a relative Location
//   GET /api/models/{owner}/{name}/revision/{revision}[?blobs=true]
//     { id, sha, siblings: [{ rfilename, size?, blobId?, lfs?: { sha256, size, pointerSize } }] }
//   CDN: HEAD/GET /cdn/{sha256}?sig=… with its own (different) ETag, Accept-Ranges and Range (206)
//
// Fault injection: drop the connection after N body bytes, serve other bytes than the advertised
// hash, ignore Range, leave out Content-Length, answer an error status, or hold the body
// half-sent until released.
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  content: Buffer;
  /** Stored with LFS: served by the CDN after a redirect. */
  lfs?: boolean;
  /** Bytes served instead of `content` (whose hash and size are advertised): a corrupt download. */
  serve?: Buffer;
}

export interface FakeRepo {
  /** Files of each commit. */
  commits: Record<string, Record<string, FakeFile>>;
  /** Branches and tags → commit. */
  refs: Record<string, string>;
  /** Requests need `Authorization: Bearer <token>`. */
  token?: string;
  /** Files answer 403 GatedRepo (the listing still works, as on the hub). */
  gated?: boolean;
  /** The listing ignores `blobs=true` (no sizes or hashes), as a simple mirror might. */
  plainListing?: boolean;
}

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
}

export interface Fault {
  /** Destroy the socket after this many body bytes of the response. */
  dropAfter?: number;
  /** Send this many body bytes, then hold the rest until `release()` (or `dropHeld()`). */
  holdAfter?: number;
  /** Answer with this status (and no body). */
  status?: number;
  /** Answer 200 with the whole file even when asked for a Range. */
  ignoreRange?: boolean;
  /** Send the body chunked, without Content-Length (so only the hub's listed size bounds it). */
  noLength?: boolean;
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
export const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

/** A 40-hex commit id made from a label. */
export const commitId = (label: string) => createHash('sha1').update(label).digest('hex');

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  /** Old repo id → new repo id (the hub redirects). */
  readonly renamed = new Map<string, string>();
  readonly log: LoggedRequest[] = [];
  /**
   * Faults, used in order: for the next GETs of a blob (key: the sha256 of an LFS file, the path
   * in the repo of a small one), or for any request to the hub (key: `METHOD /path`, without query).
   */
  readonly faults = new Map<string, Fault[]>();
  #hub = http.createServer((q, s) => this.#onHub(q, s));
  #cdn = http.createServer((q, s) => this.#onCdn(q, s));
  #held = new Map<string, { finish: () => void; drop: () => void }[]>();
  #heldWaiters = new Map<string, (() => void)[]>();
  endpoint = '';
  #cdnBase = '';

  /** The CDN's base URL. */
  get cdn(): string {
    return this.#cdnBase;
  }

  async start(): Promise<this> {
    for (const server of [this.#hub, this.#cdn]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    }
    this.endpoint = `http://127.0.0.1:${(this.#hub.address() as AddressInfo).port}`;
    this.#cdnBase = `http://127.0.0.1:${(this.#cdn.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.release();
    for (const server of [this.#hub, this.#cdn]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** A repo with one commit (`main` points at it); returns the commit id. */
  addRepo(id: string, files: Record<string, FakeFile>, options: Pick<FakeRepo, 'token' | 'gated' | 'plainListing'> & { commit?: string } = {}): string {
    const commit = options.commit ?? commitId(`${id}@${Object.keys(files).join(',')}`);
    this.repos.set(id, { commits: { [commit]: files }, refs: { main: commit }, token: options.token, gated: options.gated, plainListing: options.plainListing });
    return commit;
  }

  fault(key: string, ...faults: Fault[]): void {
    this.faults.set(key, [...(this.faults.get(key) ?? []), ...faults]);
  }

  #takeHeld(key: string | undefined): { finish: () => void; drop: () => void }[] {
    if (key !== undefined) {
      const held = this.#held.get(key) ?? [];
      this.#held.delete(key);
      return held;
    }
    const all = [...this.#held.values()].flat();
    this.#held.clear();
    return all;
  }

  /** Lets the held responses of a fault key (all, without one) finish. */
  release(key?: string): void {
    for (const r of this.#takeHeld(key)) r.finish();
  }

  /** Drops the connections of the held responses of a fault key (the client has what was sent before). */
  dropHeld(key: string): void {
    for (const r of this.#takeHeld(key)) r.drop();
  }

  /** Resolves once a response for this fault key is being held. */
  whenHeld(key: string): Promise<void> {
    if ((this.#held.get(key)?.length ?? 0) > 0) return Promise.resolve();
    return new Promise((r) => this.#heldWaiters.set(key, [...(this.#heldWaiters.get(key) ?? []), r]));
  }

  /** Logged requests of one kind, e.g. count('GET', 'cdn'). */
  requests(method: string, server?: 'hub' | 'cdn', pathPart = ''): LoggedRequest[] {
    return this.log.filter((r) => r.method === method && (server === undefined || r.server === server) && r.path.includes(pathPart));
  }

  #lfsObjects(): Map<string, FakeFile> {
    const out = new Map<string, FakeFile>();
    for (const repo of this.repos.values()) {
      for (const files of Object.values(repo.commits)) {
        for (const f of Object.values(files)) if (f.lfs) out.set(sha256(f.content), f);
      }
    }
    return out;
  }

  #record(server: 'hub' | 'cdn', q: IncomingMessage): void {
    this.log.push({ server, method: q.method ?? '', path: q.url ?? '', headers: q.headers });
  }

  #onHub(q: IncomingMessage, s: ServerResponse): void {
    this.#record('hub', q);
    const url = new URL(q.url ?? '/', 'http://x');
    const fault = this.faults.get(`${q.method} ${url.pathname}`)?.shift();
    if (fault?.status !== undefined) return error(s, fault.status, 'Fault', 'injected');
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const m = api ?? resolve;
    if (m === null) return error(s, 404, 'NotFound', 'no such route');
    const id = decodeURIComponent(m[1]!);
    const revision = decodeURIComponent(m[2]!);
    const renamed = this.renamed.get(id);
    if (renamed !== undefined) {
      s.writeHead(307, { location: url.pathname.replace(m[1]!, renamed) + url.search });
      return void s.end();
    }
    const repo = this.repos.get(id);
    const auth = q.headers.authorization;
    if (repo === undefined || (repo.token !== undefined && auth !== `Bearer ${repo.token}`)) {
      // The hub does not tell a private repo from a missing one.
      if (repo === undefined && auth !== undefined) return error(s, 404, 'RepoNotFound', 'Repository not found');
      return error(s, 401, 'RepoNotFound', 'Repository not found');
    }
    const commit = repo.refs[revision] ?? (repo.commits[revision] ? revision : undefined);
    if (commit === undefined) return error(s, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
    const files = repo.commits[commit]!;
    if (api) {
      const blobs = url.searchParams.get('blobs') === 'true' && !repo.plainListing;
      const siblings = Object.entries(files).map(([rfilename, f]) => blobs
        ? { rfilename, size: f.content.length, blobId: gitSha1(f.lfs ? Buffer.from(`pointer ${sha256(f.content)}`) : f.content),
          ...(f.lfs ? { lfs: { sha256: sha256(f.content), size: f.content.length, pointerSize: 134 } } : {}) }
        : { rfilename });
      const body = Buffer.from(JSON.stringify({ id, modelId: id, sha: commit, private: repo.token !== undefined, siblings }));
      s.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      return void s.end(q.method === 'HEAD' ? undefined : body);
    }
    const path = decodeURIComponent(m[3]!);
    const file = files[path];
    if (file === undefined) return error(s, 404, 'EntryNotFound', `${path} does not exist on "${revision}"`, { 'x-repo-commit': commit });
    if (repo.gated) return error(s, 403, 'GatedRepo', `Access to model ${id} is restricted and you are not in the authorized list`);
    if (file.lfs) {
      const hash = sha256(file.content);
      s.writeHead(302, {
        location: `${this.#cdnBase}/cdn/${hash}?sig=secret-signature`,
        'x-repo-commit': commit,
        'x-linked-etag': `"${hash}"`,
        'x-linked-size': String(file.content.length),
        etag: `"${gitSha1(Buffer.from(`pointer ${hash}`))}"`,
        'content-length': '0',
      });
      return void s.end();
    }
    this.#send(q, s, file, path, { etag: `"${gitSha1(file.content)}"`, 'x-repo-commit': commit });
  }

  #onCdn(q: IncomingMessage, s: ServerResponse): void {
    this.#record('cdn', q);
    const m = /^\/cdn\/([0-9a-f]{64})$/.exec(new URL(q.url ?? '/', 'http://x').pathname);
    const file = m ? this.#lfsObjects().get(m[1]!) : undefined;
    if (file === undefined) return error(s, 404, 'NotFound', 'no such object');
    // A CDN ETag is not the sha256 of the file (S3's is an MD5).
    this.#send(q, s, file, m![1]!, { etag: `"${createHash('md5').update(file.content).digest('hex')}"` });
  }

  /** The bytes of a file, honouring Range and the next fault for `key`. */
  #send(q: IncomingMessage, s: ServerResponse, file: FakeFile, key: string, headers: Record<string, string>): void {
    const bytes = file.serve ?? file.content;
    const fault = q.method === 'GET' ? this.faults.get(key)?.shift() : undefined;
    if (fault?.status !== undefined) return error(s, fault.status, 'Fault', 'injected');
    const range = /^bytes=(\d+)-$/.exec(q.headers.range ?? '');
    let body = bytes;
    const h: Record<string, string> = { ...headers, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (range && !fault?.ignoreRange) {
      const start = Number(range[1]);
      if (start >= bytes.length) {
        s.writeHead(416, { ...h, 'content-range': `bytes */${bytes.length}` });
        return void s.end();
      }
      body = bytes.subarray(start);
      s.writeHead(206, { ...h, 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}`, ...(fault?.noLength ? {} : { 'content-length': String(body.length) }) });
    } else {
      s.writeHead(200, { ...h, ...(fault?.noLength ? {} : { 'content-length': String(bytes.length) }) });
    }
    if (q.method === 'HEAD') return void s.end();
    if (fault?.dropAfter !== undefined) {
      s.write(body.subarray(0, fault.dropAfter), () => s.socket?.destroy());
      return;
    }
    if (fault?.holdAfter !== undefined) {
      s.write(body.subarray(0, fault.holdAfter));
      const held = { finish: () => s.end(body.subarray(fault.holdAfter)), drop: () => s.socket?.destroy() };
      this.#held.set(key, [...(this.#held.get(key) ?? []), held]);
      for (const w of this.#heldWaiters.get(key) ?? []) w();
      this.#heldWaiters.delete(key);
      return;
    }
    s.end(body);
  }
}

function error(s: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify({ error: message }));
  s.writeHead(status, { ...extra, 'x-error-code': code, 'x-error-message': message, 'content-type': 'application/json', 'content-length': body.length });
  s.end(body);
}
