// An OpenAI-compatible HTTP server for a loaded model, on node:http:
//   POST /v1/completions, POST /v1/chat/completions (both with stream: true as server-sent
//   events), GET /v1/models, POST /tokenize, POST /detokenize, GET /health, GET /metrics.
// Every request shares the model's engine (continuous batching over its maxSequences slots);
// generations beyond the slots wait in a bounded queue, and past it requests get 503. A client
// that disconnects cancels its generations at once; a client that reads slowly stalls only its
// own stream. Errors are OpenAI's {"error": {message, type, param, code}}.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setMaxListeners } from 'node:events';
import { basename } from 'node:path';

import { nodeHttp } from '../builtins.js';
import { Gpt2Error } from '../errors.js';
import { speculationRequest } from '../generate-request.js';
import { Model, type SpeculationOptions } from '../model.js';
import * as v from '../validate.js';
import { chatCompletions } from './chat.js';
import { ChatTemplate, type ChatFormat } from './chat-format.js';
import type { RequestContext } from './choices.js';
import { completions } from './completions.js';
import { ApiError, invalidParam, overloaded, shuttingDown, toApiError } from './errors.js';
import { apiKeyDigest, checkApiKey, checkHost, isLoopbackAddress, normalizeHostName, readJson, sendError, sendJson } from './http.js';
import { Pieces } from './logprobs.js';
import { Metrics } from './metrics.js';
import { detokenize, tokenize } from './tokenize.js';

export interface ServerOptions {
  /** Interface to listen on. Default '127.0.0.1' (this machine only); '0.0.0.0' for every IPv4 interface. */
  host?: string;
  /** Default 8080; 0 picks a free port (see `server.port` after listen()). */
  port?: number;
  /** Require `Authorization: Bearer <apiKey>` on every endpoint but /health. Default: none. */
  apiKey?: string;
  /** Generations that may wait for a slot beyond the model's maxSequences running ones; past it, 503. Default 128. */
  maxQueue?: number;
  /** Largest request body in bytes; larger ones get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** The model's name in responses and /v1/models. Default: the file name without .gguf. */
  modelId?: string;
  /** How chat messages become a prompt. Default: DialoGPT's (each turn ends with <|endoftext|>, no roles). */
  chatFormat?: ChatFormat;
  /**
   * While the server listens on a loopback address, requests must name it in their Host header
   * as localhost, 127.0.0.1, [::1] or the address itself (any port), else 403: a defence against
   * DNS rebinding. More host names (without port) to accept, e.g. a proxy's public name; '*'
   * accepts any. Not used on other addresses.
   */
  allowedHosts?: readonly string[];
  /**
   * Speculative decoding for every generation ([docs/speculative.md](../../docs/speculative.md)):
   * the same responses, sooner for a lone stream. Usage then reports
   * `completion_tokens_details.accepted_prediction_tokens` / `rejected_prediction_tokens`.
   */
  speculation?: SpeculationOptions;
}

/** ServerOptions.speculation checked up front: a mistake there is the server's, not a request's. */
function readSpeculation(model: Model, value: unknown): SpeculationOptions | undefined {
  if (value === undefined) return undefined;
  const s = speculationRequest(value);
  if (s.predictor === 'draft') {
    if (!(s.draft instanceof Model)) throw new TypeError(`Expected a loaded Model for speculation.draft but received ${v.describe(s.draft, true)}`);
    if (s.draft.info.vocabSize !== model.info.vocabSize || s.draft.info.eosTokenId !== model.info.eosTokenId) {
      throw new Gpt2Error('ERR_INCOMPATIBLE_MODEL', "the draft model's vocabulary differs from this model's");
    }
  }
  return { ...(value as SpeculationOptions) };
}

export interface CloseOptions {
  /** Milliseconds in-flight requests may take to finish before they are aborted. Default 0: abort at once. */
  timeoutMs?: number;
}

interface Route {
  method: 'GET' | 'POST';
  /** Behind the API key (all but /health). */
  auth: boolean;
  /** A generation endpoint (counts toward active requests and cancellations). */
  generates?: boolean;
  run(ctx: RequestContext, body: Record<string, unknown>, path: string): Promise<void> | void;
}

/** At close(), how long responses that ended may take to reach their clients before connections are cut. */
const FLUSH_MS = 1000;

/** Host names a server on a loopback address always answers to (with any port). */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** The reason of a request's signal when its client went away. */
const DISCONNECTED = new Error('client disconnected');

export class ApiServer implements AsyncDisposable {
  /** The underlying node:http server. */
  readonly http: Server;
  readonly #model: Model;
  readonly #modelId: string;
  readonly #host: string;
  readonly #port: number;
  readonly #key: Buffer | undefined;
  readonly #maxQueue: number;
  readonly #maxBody: number;
  readonly #slots: number;
  readonly #allowedHosts: readonly string[] | '*';
  /** The Host names accepted for the address listened on (null: no check), cached by that address. */
  #hostCheck: { address: string; allowed: ReadonlySet<string> | null } | undefined;
  readonly #chat: ChatTemplate;
  readonly #speculation: SpeculationOptions | undefined;
  readonly #pieces: Pieces;
  readonly #metrics = new Metrics();
  readonly #routes: Readonly<Record<string, Route>>;
  readonly #created = Math.floor(Date.now() / 1000);
  /** Requests being handled, with the controller that aborts them. */
  readonly #inFlight = new Map<Promise<void>, AbortController>();
  readonly #sockets = new Set<Socket>();
  #generating = 0;
  #sequences = 0;
  #closing: Promise<void> | undefined;
  #endGrace: (() => void) | undefined;

  /** @internal use createServer() or startServer() */
  constructor(model: Model, options?: ServerOptions) {
    if (!(model instanceof Model)) throw new TypeError(`Expected Model for model but received ${v.describe(model, true)}`);
    const o = v.object('options', options);
    this.#model = model;
    this.#host = o.host === undefined ? '127.0.0.1' : v.string('host', o.host);
    this.#port = v.optionalInteger('port', o.port, 0, 65535) ?? 8080;
    if (o.apiKey !== undefined && v.string('apiKey', o.apiKey) === '') throw new RangeError('Expected non-empty string for apiKey but received ""');
    this.#key = o.apiKey === undefined ? undefined : apiKeyDigest(o.apiKey as string);
    this.#maxQueue = v.optionalInteger('maxQueue', o.maxQueue, 0, 1_000_000) ?? 128;
    this.#maxBody = v.optionalInteger('maxBodyBytes', o.maxBodyBytes, 1, 2 ** 31 - 1) ?? 1 << 20;
    this.#modelId = o.modelId === undefined ? basename(model.info.path).replace(/\.gguf$/i, '') : v.string('modelId', o.modelId);
    this.#slots = model.info.maxSequences;
    this.#allowedHosts = readAllowedHosts(o.allowedHosts);
    this.#chat = new ChatTemplate(model, o.chatFormat as ChatFormat | undefined);
    this.#pieces = new Pieces(model.tokenizer);
    this.#speculation = readSpeculation(model, o.speculation);
    this.#routes = {
      '/v1/completions': { method: 'POST', auth: true, generates: true, run: completions },
      '/v1/chat/completions': { method: 'POST', auth: true, generates: true, run: chatCompletions },
      '/v1/models': { method: 'GET', auth: true, run: (ctx) => sendJson(ctx.res, 200, { object: 'list', data: [this.#modelObject()] }) },
      '/v1/models/': { method: 'GET', auth: true, run: (ctx, _body, path) => this.#getModel(ctx, path) },
      '/tokenize': { method: 'POST', auth: true, run: tokenize },
      '/detokenize': { method: 'POST', auth: true, run: detokenize },
      // ok while the model is usable (stats() throws ERR_DISPOSED once it is not: 503)
      '/health': { method: 'GET', auth: false, run: (ctx) => { ctx.model.stats(); sendJson(ctx.res, 200, { status: 'ok' }); } },
      '/metrics': { method: 'GET', auth: true, run: (ctx) => this.#sendMetrics(ctx.res) },
    };
    this.http = nodeHttp().createServer((req, res) => this.#request(req, res));
    this.http.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts listening; resolves with the address. */
  listen(): Promise<{ host: string; port: number; url: string }> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.http.once('error', onError);
      this.http.listen(this.#port, this.#host, () => {
        this.http.off('error', onError);
        resolve({ host: this.#host, port: this.port, url: this.url });
      });
    });
  }

  /** The port listened on (after listen()). */
  get port(): number {
    const a = this.http.address() as AddressInfo | string | null;
    if (!a) throw new Gpt2Error('ERR_NOT_LISTENING', 'the server is not listening');
    if (typeof a === 'string') throw new Gpt2Error('ERR_NOT_LISTENING', `the server listens on ${a}, not on a TCP port`);
    return a.port;
  }

  /** Base URL, e.g. http://127.0.0.1:8080 (after listen()); OpenAI clients take `${url}/v1`. */
  get url(): string {
    const host = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    return `http://${host}:${this.port}`;
  }

  /** The model's name in the API. */
  get modelId(): string {
    return this.#modelId;
  }

  /** The /metrics text (Prometheus format). */
  metrics(): string {
    let stats;
    try { stats = this.#model.stats(); } catch { /* disposed */ }
    return this.#metrics.render({ requestsActive: this.#generating, sequencesInFlight: this.#sequences, maxQueue: this.#maxQueue }, stats);
  }

  /**
   * Stops accepting connections and requests (new ones get 503 server_shutting_down), lets
   * in-flight requests finish for `timeoutMs`, then aborts them (a stream ends with an error
   * event, a waiting request gets 503), gives the last responses a second to reach their
   * clients, closes every connection and resolves. The model is not disposed: it belongs to the
   * caller. Idempotent; a second call with timeoutMs 0 ends the first one's grace period.
   */
  close(options?: CloseOptions): Promise<void> {
    const o = v.object('options', options);
    const timeoutMs = v.optionalInteger('timeoutMs', o.timeoutMs, 0, 2 ** 31 - 1) ?? 0;
    if (this.#closing) {
      // a second close() with timeoutMs 0 cuts the first one's grace period short
      if (timeoutMs === 0) this.#endGrace?.();
      return this.#closing;
    }
    this.#closing = (async () => {
      // stop accepting (http's close() also closes the connections that are idle now)
      const closed = new Promise<void>((resolve) => {
        if (!this.http.listening) resolve();
        else this.http.close(() => resolve());
      });
      if (timeoutMs > 0 && this.#inFlight.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([this.#settled(), new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
          this.#endGrace = resolve;
        })]);
        clearTimeout(timer);
        this.#endGrace = undefined;
      }
      for (const controller of this.#inFlight.values()) controller.abort(shuttingDown());
      await this.#settled();
      // Ended responses may still be on their way to slow clients: end each connection after
      // its data (not closeIdleConnections(): it destroys a socket whose response has ended but
      // not flushed), give them a moment, then cut.
      for (const socket of this.#sockets) socket.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((resolve) => { timer = setTimeout(resolve, FLUSH_MS); })]);
      clearTimeout(timer);
      this.http.closeAllConnections();
      await closed;
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight.keys()]);
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    const controller = new AbortController();
    // one signal for all of a request's choices (n × prompts of them, each listening): past
    // Node's default of 10 listeners it would warn of a leak that is not one
    setMaxListeners(0, controller.signal);
    const done = this.#handle(req, res, controller).catch(() => { /* #handle reports its own errors */ });
    this.#inFlight.set(done, controller);
    void done.finally(() => this.#inFlight.delete(done));
  }

  async #handle(req: IncomingMessage, res: ServerResponse, controller: AbortController): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!.replace(/(.)\/+$/, '$1');
    const route = this.#routes[path] ?? (path.startsWith('/v1/models/') ? this.#routes['/v1/models/'] : undefined);
    const endpoint = route ? (path.startsWith('/v1/models/') ? '/v1/models/{id}' : path) : 'other';
    let releaseAll = () => {};
    res.on('close', () => {
      // 'close' before the response ended: the client went away
      if (!res.writableFinished) {
        controller.abort(DISCONNECTED);
        if (route?.generates) this.#metrics.cancelled++;
      }
      this.#metrics.request(endpoint, res.headersSent ? res.statusCode : 499);
    });
    // while closing, a connection ends with its response (it would otherwise idle on keep-alive)
    res.on('finish', () => { if (this.#closing) res.socket?.end(); });
    if (route?.generates) this.#generating++;
    try {
      const allowedHosts = this.#allowedHostsNow();
      if (allowedHosts) checkHost(req, allowedHosts);
      if (this.#closing) {
        res.setHeader('Connection', 'close');
        throw shuttingDown();
      }
      if (!route) throw new ApiError(404, 'invalid_request_error', 'not_found', `Invalid URL (${req.method} ${path})`);
      if (req.method !== route.method) {
        res.setHeader('Allow', route.method);
        throw new ApiError(405, 'invalid_request_error', 'method_not_allowed', `Method ${req.method} is not allowed for ${path}; use ${route.method}`);
      }
      if (route.auth && this.#key) checkApiKey(req, this.#key);
      const body = route.method === 'POST' ? await readJson(req, this.#maxBody) : {};
      const ctx: RequestContext = {
        model: this.#model,
        modelId: this.#modelId,
        pieces: this.#pieces,
        chat: this.#chat,
        ...(this.#speculation !== undefined ? { speculation: this.#speculation } : {}),
        metrics: this.#metrics,
        res,
        signal: controller.signal,
        checkAdmit: (sequences) => this.#checkAdmit(sequences),
        admit: (sequences) => {
          const release = this.#admit(sequences);
          releaseAll = () => { for (let i = 0; i < sequences; i++) release(); };
          return release;
        },
      };
      await route.run(ctx, body, path);
    } catch (e) {
      if (controller.signal.reason === DISCONNECTED || res.destroyed) return;
      if (res.headersSent) {
        res.end();
        return;
      }
      sendError(res, toApiError(e));
    } finally {
      releaseAll();
      if (route?.generates) this.#generating--;
    }
  }

  /** Throws what #admit would for `sequences` generations now (400 never fits, 503 not now), taking nothing. */
  #checkAdmit(sequences: number): void {
    const limit = this.#slots + this.#maxQueue;
    if (sequences > limit) {
      throw invalidParam('n', `This request needs ${sequences} generations (prompts × n) but the server runs ${this.#slots} at once and queues at most ${this.#maxQueue}`);
    }
    if (this.#sequences + sequences > limit) {
      this.#metrics.rejected++;
      throw overloaded(`The server is overloaded: ${Math.max(0, this.#sequences - this.#slots)} generations are waiting for a slot ` +
        `and the queue holds ${this.#maxQueue}; try again later`);
    }
  }

  /** Takes places for `sequences` generations or throws 503; the returned function frees one (extra calls do nothing). */
  #admit(sequences: number): () => void {
    this.#checkAdmit(sequences);
    this.#sequences += sequences;
    let left = sequences;
    return () => {
      if (left === 0) return;
      left--;
      this.#sequences--;
    };
  }

  /** The Host names to accept while listening on a loopback address; null on other addresses, a Unix socket, or with '*'. */
  #allowedHostsNow(): ReadonlySet<string> | null {
    const a = this.http.address();
    const address = a === null ? '' : typeof a === 'string' ? `unix:${a}` : a.address;
    if (this.#hostCheck?.address !== address) {
      const loopback = a !== null && typeof a !== 'string' && isLoopbackAddress(a.address);
      const allowed = !loopback || this.#allowedHosts === '*' ? null
        : new Set([...LOOPBACK_HOSTS, normalizeHostName((a as AddressInfo).address), ...this.#allowedHosts]);
      this.#hostCheck = { address, allowed };
    }
    return this.#hostCheck.allowed;
  }

  #modelObject(): Record<string, unknown> {
    const i = this.#model.info;
    return {
      id: this.#modelId, object: 'model', created: this.#created, owned_by: 'gpt2-node',
      meta: {
        architecture: i.architecture, parameters: i.parameterCount, tensor_type: i.tensorType, vocab_size: i.vocabSize,
        context_length: i.contextLength, context_size: i.contextSize, max_sequences: i.maxSequences, layers: i.layers, embedding_size: i.embeddingSize,
      },
    };
  }

  #getModel(ctx: RequestContext, path: string): void {
    let id = path.slice('/v1/models/'.length);
    try { id = decodeURIComponent(id); } catch { /* not percent-encoded: as it is */ }
    if (id !== this.#modelId) throw new ApiError(404, 'invalid_request_error', 'model_not_found', `The model '${id}' does not exist`, 'model');
    sendJson(ctx.res, 200, this.#modelObject());
  }

  #sendMetrics(res: ServerResponse): void {
    const text = this.metrics();
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }
}

/** A host name or address without port: a name or IPv4 address (no ':'), an IPv6 address with or without brackets. */
function isHostName(h: string): boolean {
  if (h === '' || /[\s/@?#]/.test(h)) return false;
  if (h.startsWith('[')) return /^\[[0-9a-f:.]+\]$/i.test(h);
  const colons = h.split(':').length - 1;
  return colons === 0 || (colons >= 2 && /^[0-9a-f:.]+$/i.test(h));
}

/** ServerOptions.allowedHosts: names normalized as Host headers write them, or '*' for any. */
function readAllowedHosts(value: unknown): readonly string[] | '*' {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((x) => typeof x === 'string')) {
    throw new TypeError(`Expected array of strings for allowedHosts but received ${v.describe(value, true)}`);
  }
  if (value.includes('*')) return '*';
  const bad = value.find((x) => !isHostName(x.trim()));
  if (bad !== undefined) {
    throw new RangeError(`Expected host names without port (or '*') for allowedHosts but received ${v.describe(bad)}`);
  }
  return value.map(normalizeHostName);
}

/** An OpenAI-compatible server for `model`, not listening yet: call `await server.listen()`. */
export function createServer(model: Model, options?: ServerOptions): ApiServer {
  return new ApiServer(model, options);
}

/** createServer() and listen(): resolves when the server accepts connections. */
export async function startServer(model: Model, options?: ServerOptions): Promise<ApiServer> {
  const server = new ApiServer(model, options);
  await server.listen();
  return server;
}

export type { ChatFormat, ChatMessage, ChatRole } from './chat-format.js';
export { ApiError } from './errors.js';
