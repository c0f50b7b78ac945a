// Where the hub is and who we are to it: the endpoint (option, HF_ENDPOINT, or
// https://huggingface.co), the token (option, HF_TOKEN, or the file `huggingface-cli login`
// writes), offline mode (HF_HUB_OFFLINE), request headers and the hub's URLs.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { describe } from '../validate.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

/** The hub's base URL without a trailing slash; a mirror may have a path prefix. */
export function resolveEndpoint(option: string | undefined): string {
  const fromEnv = option === undefined && process.env.HF_ENDPOINT ? process.env.HF_ENDPOINT : undefined;
  const value = option ?? fromEnv ?? DEFAULT_ENDPOINT;
  const name = option !== undefined ? 'endpoint' : 'HF_ENDPOINT';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RangeError(`Expected http(s) URL for ${name} but received ${describe(value)}`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash || url.username || url.password) {
    throw new RangeError(`Expected http(s) URL without query, fragment or credentials for ${name} but received ${describe(value)}`);
  }
  return url.href.replace(/\/+$/, '');
}

/** HF_HOME: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(): string {
  const env = process.env;
  if (env.HF_HOME) return expandHome(env.HF_HOME);
  return join(env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'huggingface');
}

export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/**
 * The access token: the option (`false`: none), else HF_TOKEN (or the older
 * HUGGING_FACE_HUB_TOKEN), else the file at HF_TOKEN_PATH or $HF_HOME/token.
 */
export function resolveToken(option: string | false | undefined): string | undefined {
  if (option === false) return undefined;
  if (option !== undefined) return option.trim() || undefined;
  const env = process.env;
  const fromEnv = env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv !== undefined) return fromEnv.trim() || undefined;
  try {
    return readFileSync(env.HF_TOKEN_PATH ? expandHome(env.HF_TOKEN_PATH) : join(hfHome(), 'token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** HF_HUB_OFFLINE set to 1, true, yes or on. */
export function envOffline(): boolean {
  return /^(1|true|yes|on)$/i.test(process.env.HF_HUB_OFFLINE?.trim() ?? '');
}

export function hubHeaders(token: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    'user-agent': `gpt2-node; node/${process.versions.node}`,
    // The size the hub reports is that of the raw bytes; never ask for a compressed body.
    'accept-encoding': 'identity',
  };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return headers;
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** `{endpoint}/{repo}/resolve/{revision}/{file}`: the file, or a redirect to it (LFS files: a CDN). */
export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint}/${encodePath(repo)}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
}

/** `{endpoint}/api/models/{repo}/revision/{revision}?blobs=true`: the commit and its files with sizes and LFS sha256. */
export function modelInfoUrl(endpoint: string, repo: string, revision: string): string {
  return `${endpoint}/api/models/${encodePath(repo)}/revision/${encodeURIComponent(revision)}?blobs=true`;
}

/** A URL for a message: no credentials and no query (a CDN URL's query holds a signature). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.href;
  } catch {
    return '(invalid URL)';
  }
}
