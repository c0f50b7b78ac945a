// HTTP helpers for the server tests: requests over TCP or a Unix socket with node:http, and a
// parser for server-sent events.
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ClientRequest } from 'node:http';

/** Where the server listens: a base URL, or a Unix socket path. */
export type Target = { url: string } | { socketPath: string };

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any;
}

// a new connection per request (agent: false), so a closed server is seen as one at once
function options(target: Target, method: string, path: string, headers: Record<string, string>) {
  if ('url' in target) {
    const u = new URL(path, target.url);
    return { hostname: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, agent: false };
  }
  return { socketPath: target.socketPath, path, method, headers, agent: false };
}

/** Starts a request and resolves with the response as soon as its headers arrive (the body is not read). */
export function open(target: Target, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): { req: ClientRequest; res: Promise<IncomingMessage> } {
  const data = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const h: Record<string, string> = { ...headers };
  if (data !== undefined && h['content-type'] === undefined) h['content-type'] = 'application/json';
  let req!: ClientRequest;
  const res = new Promise<IncomingMessage>((resolve, reject) => {
    req = httpRequest(options(target, method, path, h), resolve);
    req.on('error', reject);
  });
  req.end(data);
  return { req, res };
}

export function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => { text += d; });
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}

export async function send(target: Target, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response> {
  const res = await open(target, method, path, body, headers).res;
  const text = await readAll(res);
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.statusCode ?? 0, headers: res.headers, text, json };
}

export const post = (target: Target, path: string, body?: unknown, headers?: Record<string, string>) => send(target, 'POST', path, body, headers);
export const get = (target: Target, path: string, headers?: Record<string, string>) => send(target, 'GET', path, undefined, headers);

/** The data of each event of a server-sent-event stream, and whether it ended with [DONE]. */
export function parseSse(text: string): { events: any[]; done: boolean } {
  const events: any[] = [];
  let done = false;
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    if (done) throw new Error(`an event after [DONE]: ${data}`);
    if (data === '[DONE]') done = true;
    else events.push(JSON.parse(data));
  }
  return { events, done };
}

/** The text of each choice of a completions or chat stream, by index. */
export function streamedTexts(events: any[]): string[] {
  const texts: string[] = [];
  for (const e of events) {
    for (const c of e.choices ?? []) texts[c.index] = (texts[c.index] ?? '') + (c.text ?? c.delta?.content ?? '');
  }
  return texts;
}
