// HTTP for the hub: one request at a time over node:http(s), redirects followed by hand (the
// hub's answer to a HEAD is the redirect itself, and a token must not follow a redirect to
// another origin), status codes mapped to Gpt2Error codes, messages that never hold the token.
import type { IncomingMessage } from 'node:http';

import { nodeHttp, nodeHttps } from '../builtins.js';
import { Gpt2Error } from '../errors.js';
import { redactUrl } from './endpoint.js';

/** A socket that delivers nothing for this long is treated as dropped. */
const IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 10;

export interface Response {
  status: number;
  headers: IncomingMessage['headers'];
  /** The URL that answered (after redirects). */
  url: string;
  body: IncomingMessage;
}

export function aborted(signal: AbortSignal | undefined, what: string): Gpt2Error {
  return new Gpt2Error('ERR_ABORTED', `${what} aborted`, { cause: signal?.reason });
}

/** One request, no redirects followed. Rejects on connection errors (their `code` kept). */
export function request(method: 'GET' | 'HEAD', url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? nodeHttps() : nodeHttp();
    const req = lib.request(u, { method, headers, signal, timeout: IDLE_TIMEOUT_MS });
    req.on('timeout', () => {
      req.destroy(Object.assign(new Error(`no data for ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' }));
    });
    req.on('error', reject);
    req.on('response', (res) => {
      // A stalled body is a dropped connection too.
      res.socket?.setTimeout(IDLE_TIMEOUT_MS);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
    });
    req.end();
  });
}

export function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** The Location of a redirect, resolved against the URL that answered. */
export function location(res: Response): string {
  const loc = res.headers.location;
  if (loc === undefined) {
    throw new Gpt2Error('ERR_DOWNLOAD', `HTTP ${res.status} without a Location header for ${redactUrl(res.url)}`);
  }
  const next = new URL(loc, res.url);
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new Gpt2Error('ERR_DOWNLOAD', `redirect to a non-HTTP URL from ${redactUrl(res.url)}`);
  }
  return next.href;
}

/**
 * Follows redirects: all of them (`'all'`), or only those with a relative Location (`'relative'`:
 * the hub's answer for a renamed repo; its redirect of an LFS file to the CDN has an absolute one
 * and is returned as it is, with the file's X-Linked-* headers). The Authorization header goes to
 * `authOrigin` (the hub's) only.
 */
export async function requestFollowing(
  method: 'GET' | 'HEAD', url: string, headers: Record<string, string>, follow: 'all' | 'relative', signal?: AbortSignal,
  authOrigin = new URL(url).origin,
): Promise<Response> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const h = new URL(current).origin === authOrigin ? headers : withoutAuthorization(headers);
    const res = await request(method, current, h, signal);
    if (!isRedirect(res.status)) return res;
    const next = location(res);
    const relative = !/^([a-z][a-z0-9+.-]*:|\/\/)/i.test(String(res.headers.location).trim());
    if (follow === 'relative' && !relative) return res;
    res.body.resume();
    if (hop >= MAX_REDIRECTS) throw new Gpt2Error('ERR_DOWNLOAD', `more than ${MAX_REDIRECTS} redirects from ${redactUrl(url)}`);
    current = next;
  }
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const { authorization: _, ...rest } = headers;
  return rest;
}

/** Worth another try: the server is overloaded or failed, not the request. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

const OFFLINE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN']);

/** The network or the server is not there at all (as opposed to a connection that dropped). */
export function isUnreachable(e: unknown): boolean {
  return typeof e === 'object' && e !== null && OFFLINE_CODES.has((e as { code?: string }).code ?? '');
}

/** A connection-level failure (not an HTTP status, not an abort). */
export function isNetworkError(e: unknown): boolean {
  return e instanceof Error && !(e instanceof Gpt2Error) && e.name !== 'AbortError';
}

export function networkError(e: unknown, method: string, url: string): Gpt2Error {
  const code = (e as { code?: string }).code;
  let text = e instanceof Error ? e.message : String(e);
  if (text === 'aborted' || text === 'socket hang up') text = 'the connection dropped';
  return new Gpt2Error('ERR_DOWNLOAD', `${method} ${redactUrl(url)} failed: ${text}${code && !text.includes(code) ? ` (${code})` : ''}`, { cause: e });
}

/** What the hub says about a failed request (X-Error-Code / X-Error-Message), for messages. */
function hubReason(res: Response): { code: string; text: string } {
  const code = String(res.headers['x-error-code'] ?? '');
  const message = String(res.headers['x-error-message'] ?? '').replace(/[\r\n]+/g, ' ').slice(0, 200);
  return { code, text: message ? `: ${message}` : '' };
}

/**
 * The Gpt2Error for an unsuccessful status: 401/403 ERR_AUTH, 404 ERR_NOT_FOUND, anything else
 * ERR_DOWNLOAD. `what` names the thing asked for (`file config.json of owner/repo at main`).
 */
export function statusError(res: Response, method: string, what: string, hadToken: boolean): Gpt2Error {
  res.body.resume();
  const status = `HTTP ${res.status}${res.body.statusMessage ? ` ${res.body.statusMessage}` : ''} for ${method} ${redactUrl(res.url)}`;
  const { code, text } = hubReason(res);
  if (res.status === 401 || res.status === 403) {
    let advice: string;
    if (code === 'GatedRepo') advice = 'the repository is gated: accept its conditions on the hub with the account of your token';
    else if (hadToken) advice = 'the token was refused or cannot read this repository (does it exist?)';
    else advice = 'the repository does not exist, or is private or gated: set HF_TOKEN (or the token option) to a token that can read it';
    return new Gpt2Error('ERR_AUTH', `cannot access ${what}: ${advice} (${status}${text})`);
  }
  if (res.status === 404) {
    const kind = code === 'RepoNotFound' ? 'repository not found'
      : code === 'RevisionNotFound' ? 'revision not found'
        : code === 'EntryNotFound' ? 'no such file'
          : 'not found';
    return new Gpt2Error('ERR_NOT_FOUND', `${what}: ${kind} (${status}${text})`);
  }
  return new Gpt2Error('ERR_DOWNLOAD', `cannot download ${what} (${status}${text})`);
}
