// HTTP plumbing: reading a JSON body under a size limit, writing JSON and errors, the API key.
import type { IncomingMessage, ServerResponse } from 'node:http';

import { nodeCrypto } from '../builtins.js';
import { ApiError } from './errors.js';

/**
 * Whether a Content-Type header names JSON: `application/json`, any case, parameters (charset)
 * allowed. A browser page can send a POST with text/plain (or form types) without a CORS
 * preflight, but not with application/json: requiring it keeps such pages from driving the API.
 */
export function isJsonContentType(value: string): boolean {
  return /^application\/json[ \t]*(;|$)/i.test(value.trim());
}

/**
 * Reads the request body as a JSON object; 415 for a Content-Type other than JSON (a request
 * without one is read as JSON), 413 past `limit` bytes, 400 when it is not JSON.
 */
export async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'];
  if (type !== undefined && !isJsonContentType(type)) {
    req.resume();   // drop the body; the response closes the connection
    throw new ApiError(415, 'invalid_request_error', 'unsupported_media_type',
      `Expected a JSON request body (Content-Type: application/json) but received Content-Type ${JSON.stringify(type)}`);
  }
  const tooLarge = () => new ApiError(413, 'invalid_request_error', 'request_too_large',
    `The request body is larger than the server's limit of ${limit} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();   // drop the body; the response closes the connection
    throw tooLarge();
  }
  // Not `for await`: leaving that loop early destroys the socket, and the 413 could not be sent.
  // Past the limit the rest of the body is read and dropped; the response closes the connection.
  const text = await new Promise<string>((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        parts.length = 0;
        reject(tooLarge());
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => { if (!failed) { failed = true; resolve(Buffer.concat(parts).toString('utf8')); } });
    const gone = (e?: Error) => { if (!failed) { failed = true; reject(e ?? new Error('the client closed the connection')); } };
    req.on('error', gone);
    req.on('close', () => gone());
  });
  return parseJsonBody(text);
}

/** A request body's text as a JSON object; 400 when it is empty, not JSON, or not an object. */
export function parseJsonBody(text: string): Record<string, unknown> {
  if (text.trim() === '') throw new ApiError(400, 'invalid_request_error', 'invalid_json', 'The request body is empty; expected a JSON object');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, 'invalid_request_error', 'invalid_json', `We could not parse the JSON body of your request: ${(e as Error).message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, 'invalid_request_error', 'invalid_type', `Expected a JSON object as the request body but received ${Array.isArray(body) ? 'an array' : JSON.stringify(body)}`);
  }
  return body as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(data), ...headers });
  res.end(data);
}

export function sendError(res: ServerResponse, e: ApiError): void {
  const headers: Record<string, string> = {};
  if (e.status === 401) headers['WWW-Authenticate'] = 'Bearer';
  if (e.status === 503) headers['Retry-After'] = '1';
  // a body that was not read (413, 415) or a server going down: do not keep the connection
  if (e.status === 413 || e.status === 415 || e.code === 'server_shutting_down') headers.Connection = 'close';
  sendJson(res, e.status, e.body(), headers);
}

const digest = (s: string) => nodeCrypto().createHash('sha256').update(s).digest();

/** Checks `Authorization: Bearer <key>` in constant time; 401 otherwise. */
export function checkApiKey(req: IncomingMessage, key: Buffer): void {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  if (!match) {
    throw new ApiError(401, 'invalid_request_error', 'invalid_api_key',
      'Missing API key: send it as "Authorization: Bearer <key>"');
  }
  if (!nodeCrypto().timingSafeEqual(digest(match[1]!), key)) {
    throw new ApiError(401, 'invalid_request_error', 'invalid_api_key', 'Incorrect API key provided');
  }
}

export function apiKeyDigest(key: string): Buffer {
  return digest(key);
}

/** Whether an address the server listens on is this machine's loopback (127.0.0.0/8, ::1). */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^::ffff:/, '');
  return a === '::1' || a === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** The host name of a Host header, without its port, lowercased; IPv6 addresses keep their brackets. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/**
 * A host name as the Host header writes it (lowercased, an IPv6 address in brackets), for
 * comparing names from the options with hostName().
 */
export function normalizeHostName(name: string): string {
  const h = name.trim().toLowerCase();
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

/**
 * DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 reaches a loopback
 * server as same-origin and can read its answers, but its requests say `Host: evil.example`.
 * So a server on a loopback address answers only requests whose Host is one of `allowed`
 * (normalizeHostName() names); a request without Host (not from a browser) passes. 403 otherwise.
 */
export function checkHost(req: IncomingMessage, allowed: ReadonlySet<string>): void {
  const header = req.headers.host;
  if (header === undefined) return;
  const name = hostName(header);
  if (allowed.has(name)) return;
  throw new ApiError(403, 'invalid_request_error', 'host_not_allowed',
    `The Host header ${JSON.stringify(header.slice(0, 100))} does not name this server: it listens on a loopback address and answers ` +
    `requests for ${[...allowed].join(', ')} only (the allowedHosts option adds names)`);
}
