// HTTP plumbing: reading a JSON body under a size limit, writing JSON and errors, the API key.
import type { IncomingMessage, ServerResponse } from 'node:http';

import { nodeCrypto } from '../builtins.js';
import { ApiError } from './errors.js';

/** Reads the request body as a JSON object; 413 past `limit` bytes, 400 when it is not JSON. */
export async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
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
  // a body that was not read (413) or a server going down: do not keep the connection
  if (e.status === 413 || e.code === 'server_shutting_down') headers.Connection = 'close';
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
