// Load test of the HTTP server (lib/server): many concurrent clients over loopback TCP, well- and
// ill-behaved, against a server in its own process.
//
//   npx tsx bench/server-load.ts [--clients 256] [--requests 2000] [--slots 16] [--queue 96] [--seed 1]
//
// The server process (this file with --serve) loads a small random-weight model
// (test/support/models.ts: 2 layers, 64 wide, the real GPT-2 vocabulary, a 4096-position context
// so that a stream can outgrow the socket buffers) with --slots KV slots and serves it with
// startServer({ apiKey, maxQueue: --queue, maxBodyBytes: 256 KiB }). This process runs
// --clients clients, each on its own keep-alive connection, sharing --requests requests, each
// one of (deterministic from --seed; the interleaving is not):
//   completions and chat completions, streaming or not, sometimes with n > 1; a client that
//   disconnects mid-stream or while waiting for a plain response; a slow reader (pauses the
//   response between reads, over a stream with logprobs); bodies over the limit (by
//   Content-Length and chunked); malformed JSON; wrong content types; invalid UTF-8 bodies;
//   huge n, max_tokens and logit_bias; a missing or wrong API key; other endpoints, unknown paths
//   and wrong methods. A client that gets 503 waits as its Retry-After says (1 s, plus up to 1 s
//   of jitter) before its next request.
// Besides, one stalled client opens a long streaming request (chat, logprobs with 20
// alternatives, several MB of events: more than loopback TCP buffers) at the start and never
// reads it, so that its generation holds a slot for the whole run; it is dropped after the
// others finish.
//
// Printed: requests answered by status (2xx, each 4xx, 503) and by kind, connection errors, the
// stalled client's slot, the engine's slots in use after everything ended (model.stats():
// activeSequences + queuedSequences, which must be 0) and the server's own in-flight gauges,
// the server process's RSS before and after.
// Exit code 1 on: a leaked slot or in-flight gauge, a 5xx other than 503, a server crash, a
// request unanswered after 60 s, a status outside what its kind allows (e.g. 200 for malformed
// JSON), or a 200 whose body is not a complete response (JSON without choices, a stream without
// [DONE]). A body whose Content-Type is not JSON may get 415 (the server refuses it) or be read as
// JSON (200, or 400 when it is not JSON): both pass.
//
// The default 2,000 requests take about half a minute on two cores.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request, type IncomingMessage } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { loadModel, startServer, type ModelStats } from '../lib/index.js';
import { testModel } from '../test/support/models.js';

import { cpuLine } from './cpu.js';
import { rng } from '../test/support/tokenizer-corpus.js';   // mulberry32

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '256' },
    requests: { type: 'string', default: '2000' },
    slots: { type: 'string', default: '16' },
    queue: { type: 'string', default: '96' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string' },
    serve: { type: 'string' },   // internal: the server process, with the model's path
  },
});
const CLIENTS = Number(values.clients);
const REQUESTS = Number(values.requests);
const SLOTS = Number(values.slots);
const QUEUE = Number(values.queue);
const SEED = Number(values.seed);
const API_KEY = 'soak-key-0123456789';
const MAX_BODY = 256 * 1024;
const REQUEST_TIMEOUT_MS = 60_000;
const MiB = 1024 * 1024;

// ---- the server process ----

type ToServer = { type: 'stats' } | { type: 'close' };
type FromServer =
  | { type: 'ready'; port: number }
  | { type: 'stats'; stats: ModelStats; rss: number; memory: string; metrics: string }
  | { type: 'closed' };

async function serve(path: string): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const model = await loadModel(path, { maxSequences: SLOTS, ...(values.threads ? { threads: Number(values.threads) } : {}) });
  const server = await startServer(model, { port: 0, apiKey: API_KEY, maxQueue: QUEUE, maxBodyBytes: MAX_BODY });
  const send = (m: FromServer) => process.send!(m);
  process.on('message', (m: ToServer) => {
    if (m.type === 'stats') {
      gc();
      const m = process.memoryUsage();
      const memory = `V8 heap ${(m.heapTotal / MiB).toFixed(1)} MiB, ${(m.heapUsed / MiB).toFixed(1)} used, external ${(m.external / MiB).toFixed(1)}`;
      send({ type: 'stats', stats: model.stats(), rss: m.rss, memory, metrics: server.metrics() });
    } else if (m.type === 'close') {
      void (async () => {
        await server.close();
        await model.dispose();
        send({ type: 'closed' });
        process.disconnect();
      })();
    }
  });
  send({ type: 'ready', port: server.port });
}

// ---- the clients ----

const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const WORDS = 'the of and to in is was river mountain engine window letter Paris 1999 é 東京 🙂 , . ! ?'.split(' ');

type Kind =
  | 'completion' | 'completion-stream' | 'chat' | 'chat-stream' | 'n-choices'
  | 'disconnect-stream' | 'disconnect-waiting' | 'slow-reader'
  | 'oversized' | 'oversized-chunked' | 'malformed-json' | 'wrong-content-type' | 'invalid-utf8'
  | 'huge-n' | 'huge-max-tokens' | 'huge-logit-bias' | 'bad-auth' | 'other-endpoints';

const KIND_SHARES: [Kind, number][] = [
  ['completion', 18], ['completion-stream', 14], ['chat', 10], ['chat-stream', 12], ['n-choices', 5],
  ['disconnect-stream', 6], ['disconnect-waiting', 4], ['slow-reader', 4],
  ['oversized', 3], ['oversized-chunked', 2], ['malformed-json', 3], ['wrong-content-type', 3], ['invalid-utf8', 3],
  ['huge-n', 2], ['huge-max-tokens', 2], ['huge-logit-bias', 3], ['bad-auth', 3], ['other-endpoints', 3],
];

interface Spec {
  kind: Kind;
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Send the body in chunks, without Content-Length. */
  chunked?: boolean;
  stream?: boolean;
  /** Disconnect after this many server-sent events. */
  disconnectAfterEvents?: number;
  /** Disconnect this many ms after sending (before a plain response comes). */
  disconnectAfterMs?: number;
  /** Pause the response this long after each piece read. */
  pauseMs?: number;
  /** Statuses this request may get. */
  allowed: readonly number[];
  /** Choices a 200 must hold. */
  choices?: number;
}

const GENERATING = [200, 503];

function spec(i: number): Spec {
  const r = rng(SEED * 1_000_003 + i * 2_654_435_761);
  const total = KIND_SHARES.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  let kind: Kind = KIND_SHARES[0]![0];
  for (const [k, w] of KIND_SHARES) {
    if (x < w) { kind = k; break; }
    x -= w;
  }
  const words = (n: number) => Array.from({ length: n }, () => pick(r, WORDS)).join(' ');
  const auth = { authorization: `Bearer ${API_KEY}` };
  const json = (path: string, body: unknown, extra: Partial<Spec> = {}): Spec => ({
    kind, method: 'POST', path, headers: { ...auth, 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)), allowed: GENERATING, ...extra,
  });
  const sampling = () => ({ max_tokens: int(r, 1, 32), temperature: pick(r, [0, 0.7, 1]), seed: int(r, 0, 1e6), ...(r() < 0.2 ? { stop: ['.'] } : {}) });
  const messages = () => [{ role: 'system', content: words(3) }, { role: 'user', content: words(int(r, 1, 12)) }];
  switch (kind) {
    case 'completion': return json('/v1/completions', { prompt: words(int(r, 1, 20)), ...sampling() }, { choices: 1 });
    case 'completion-stream': return json('/v1/completions', { prompt: words(int(r, 1, 20)), ...sampling(), stream: true, stream_options: { include_usage: r() < 0.5 } }, { stream: true });
    case 'chat': return json('/v1/chat/completions', { messages: messages(), ...sampling() }, { choices: 1 });
    case 'chat-stream': return json('/v1/chat/completions', { messages: messages(), ...sampling(), stream: true }, { stream: true });
    case 'n-choices': {
      const n = int(r, 2, 4);
      const stream = r() < 0.5;
      return json('/v1/completions', { prompt: [words(3), words(5)], n, max_tokens: int(r, 1, 16), temperature: 1, seed: int(r, 0, 1e6), stream }, stream ? { stream } : { choices: 2 * n });
    }
    case 'disconnect-stream':
      return json(r() < 0.5 ? '/v1/completions' : '/v1/chat/completions',
        { prompt: words(5), messages: messages(), max_tokens: int(r, 32, 256), ignore_eos: true, temperature: 1, stream: true },
        { stream: true, disconnectAfterEvents: int(r, 1, 12) });
    case 'disconnect-waiting':
      return json('/v1/completions', { prompt: words(8), max_tokens: int(r, 64, 256), ignore_eos: true }, { disconnectAfterMs: int(r, 0, 50) });
    case 'slow-reader':
      return json('/v1/completions', { prompt: words(4), max_tokens: int(r, 64, 200), ignore_eos: true, logprobs: 5, temperature: 1, stream: true },
        { stream: true, pauseMs: int(r, 5, 40) });
    case 'oversized': {
      const body = Buffer.from(JSON.stringify({ prompt: 'x'.repeat(MAX_BODY + int(r, 1, MAX_BODY)), max_tokens: 1 }));
      return json('/v1/completions', {}, { body, allowed: [413] });
    }
    case 'oversized-chunked': {
      const body = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'y'.repeat(MAX_BODY + int(r, 1, MAX_BODY)) }] }));
      return json('/v1/chat/completions', {}, { body, chunked: true, allowed: [413] });
    }
    case 'malformed-json': {
      const bad = pick(r, ['{"prompt": "unterminated', '{prompt: 1}', '[1, 2', '{"prompt": "a",}', 'null', '', '   ', '{"a":1}{"b":2}', '"just a string"', '[]']);
      // null, a string and [] are JSON but not an object: 400 too
      return json(pick(r, ['/v1/completions', '/v1/chat/completions']), {}, { body: Buffer.from(bad), allowed: [400] });
    }
    case 'wrong-content-type': {
      const v = int(r, 0, 2);
      // 415 (a Content-Type other than JSON is refused); a server that reads any body as JSON
      // answers the JSON one as usual and the others with 400
      if (v === 0) {
        return { ...json('/v1/completions', { prompt: words(3), max_tokens: 2 }, { choices: 1, allowed: [415, 200, 503] }), headers: { ...auth, 'content-type': 'text/plain' } };
      }
      if (v === 1) {
        return { kind, method: 'POST', path: '/v1/completions', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from('prompt=hello&max_tokens=3'), allowed: [415, 400] };
      }
      return { kind, method: 'POST', path: '/v1/chat/completions', headers: { ...auth, 'content-type': 'multipart/form-data; boundary=xyz' },
        body: Buffer.from('--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhi\r\n--xyz--\r\n'), allowed: [415, 400] };
    }
    case 'invalid-utf8': {
      const v = int(r, 0, 3);
      const inside = [Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80])][v]!;
      if (r() < 0.3) {   // not even the JSON around it: raw bytes
        return json('/v1/completions', {}, { body: Buffer.concat([inside, Buffer.from('garbage'), inside]), allowed: [400] });
      }
      // inside a JSON string: decoded as U+FFFD, a valid prompt
      const body = Buffer.concat([Buffer.from('{"prompt":"abc'), inside, Buffer.from('def","max_tokens":3}')]);
      return json('/v1/completions', {}, { body, choices: 1 });
    }
    case 'huge-n': {
      const n = pick(r, [1000, 129, 128, 64, SLOTS + QUEUE + 1, 2 ** 31, 1e300]);
      // n beyond 128, or beyond slots + queue (could never fit), is a 400; otherwise it may be refused for a full queue
      return json('/v1/completions', { prompt: 'n', n, max_tokens: 2 }, { allowed: n > SLOTS + QUEUE ? [400] : [200, 503], choices: n });
    }
    case 'huge-max-tokens': {
      // over the limit of the field (1e6): 400; within it but past the context: 400, or 503 when
      // the queue is full (counted before the prompt is read)
      const max = pick(r, [1e6, 1_000_001, 2 ** 53, 1e308, -1, 4097, 5000]);
      return json(pick(r, ['/v1/completions', '/v1/chat/completions']), { prompt: 'm', messages: messages(), max_tokens: max },
        { allowed: max >= 1 && max <= 1e6 ? [400, 503] : [400] });
    }
    case 'huge-logit-bias': {
      const v = int(r, 0, 2);
      const bias: Record<string, number> = {};
      if (v === 0) {   // 10,000 entries (about 120 KB): under the body limit, valid
        for (let k = 0; k < 10_000; k++) bias[String(int(r, 0, 50256))] = int(r, -100, 100);
        return json('/v1/completions', { prompt: words(3), max_tokens: 4, logit_bias: bias }, { choices: 1 });
      }
      if (v === 1) {   // every token: over the body limit
        for (let k = 0; k < 50257; k++) bias[String(k)] = -100;
        return json('/v1/completions', { prompt: words(3), max_tokens: 4, logit_bias: bias }, { allowed: [413] });
      }
      const bad = pick(r, [{ 50257: 1 }, { '-1': 1 }, { 1: 1000 }, { 1: 'x' }, { abc: 1 }, { 1e30: 1 }]);
      return json('/v1/chat/completions', { messages: messages(), max_tokens: 4, logit_bias: bad }, { allowed: [400] });
    }
    case 'bad-auth': {
      const s = json('/v1/completions', { prompt: 'a', max_tokens: 2 }, { allowed: [401] });
      const h: Record<string, string> = pick<Record<string, string>>(r, [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${API_KEY}` }, { authorization: 'Bearer ' }]);
      return { ...s, headers: { 'content-type': 'application/json', ...h } };
    }
    case 'other-endpoints': {
      const v = int(r, 0, 6);
      const get = (path: string, allowed: number[]): Spec => ({ kind, method: 'GET', path, headers: auth, allowed });
      if (v === 0) return get('/v1/models', [200]);
      if (v === 1) return get('/health', [200]);
      if (v === 2) return get('/metrics', [200]);
      if (v === 3) return get('/v1/nothing-here', [404]);
      if (v === 4) return { ...get('/v1/completions', [405]) };
      if (v === 5) return { ...json('/tokenize', { content: words(10), with_pieces: true }), allowed: [200] };
      return { ...json('/v1/models', {}), method: 'PUT', allowed: [405] };
    }
  }
}

interface Outcome {
  status?: number;
  body?: string;
  /** A connection error (not one we caused), by code. */
  error?: string;
  /** We disconnected on purpose. */
  disconnected?: boolean;
  timedOut?: boolean;
}

function exchange(port: number, agent: Agent, s: Spec): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    let ours = false;
    let status: number | undefined;
    const finish = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = request({ host: '127.0.0.1', port, method: s.method, path: s.path, headers: s.headers, agent });
    const disconnect = () => {
      ours = true;
      req.destroy();
      finish({ status, disconnected: true });
    };
    const timer = setTimeout(() => { ours = true; req.destroy(); finish({ status, timedOut: true }); }, REQUEST_TIMEOUT_MS);
    req.on('error', (e: NodeJS.ErrnoException) => { if (!ours) finish({ status, error: e.code ?? e.message }); });
    req.on('response', (res: IncomingMessage) => {
      status = res.statusCode;
      const parts: Buffer[] = [];
      let events = 0;
      res.on('data', (d: Buffer) => {
        parts.push(d);
        if (s.disconnectAfterEvents !== undefined) {
          events += d.toString('latin1').split('\n\n').length - 1;
          if (events >= s.disconnectAfterEvents) disconnect();
        }
        if (s.pauseMs !== undefined) {
          res.pause();
          setTimeout(() => res.resume(), s.pauseMs);
        }
      });
      res.on('end', () => finish({ status, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', (e: NodeJS.ErrnoException) => { if (!ours) finish({ status, error: e.code ?? e.message }); });
      res.on('aborted', () => { if (!ours) finish({ status, error: 'aborted' }); });
    });
    if (s.disconnectAfterMs !== undefined) setTimeout(disconnect, s.disconnectAfterMs);
    if (s.chunked && s.body) {
      for (let k = 0; k < s.body.length; k += 16 * 1024) req.write(s.body.subarray(k, k + 16 * 1024));
      req.end();
    } else {
      req.end(s.body);
    }
  });
}

/** Whether a 200 holds a complete response: JSON with its choices, or a stream ending with [DONE]. */
function complete(s: Spec, body: string): string | undefined {
  if (s.stream) {
    if (!body.endsWith('data: [DONE]\n\n')) return `a stream without [DONE] (ends ${JSON.stringify(body.slice(-120))})`;
    for (const block of body.split('\n\n')) {
      if (block === '' || block === 'data: [DONE]') continue;
      if (!block.startsWith('data: ')) return `an event that is not data: ${JSON.stringify(block.slice(0, 80))}`;
      try { JSON.parse(block.slice(6)); } catch { return `an event that is not JSON: ${JSON.stringify(block.slice(0, 80))}`; }
    }
    return undefined;
  }
  let json: { choices?: unknown[] };
  try { json = JSON.parse(body); } catch { return `a body that is not JSON: ${JSON.stringify(body.slice(0, 80))}`; }
  if (s.choices !== undefined && (!Array.isArray(json.choices) || json.choices.length !== s.choices)) {
    return `${Array.isArray(json.choices) ? json.choices.length : 'no'} choices where ${s.choices} were asked for`;
  }
  return undefined;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const modelPath = await testModel({ nLayer: 2, nEmbd: 64, nHead: 4, nCtx: 4096 }, 'f32', { initScale: 4 });
  const self = fileURLToPath(import.meta.url);
  const root = join(dirname(self), '..');
  const args = ['--import', 'tsx', self, '--serve', modelPath, '--slots', String(SLOTS), '--queue', String(QUEUE)];
  if (values.threads) args.push('--threads', values.threads);
  const child: ChildProcess = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let closing = false;
  let crashed = '';
  const failures: string[] = [];
  const fail = (m: string) => { if (failures.length < 30) failures.push(m); };
  const waiters: ((m: FromServer) => void)[] = [];
  child.on('message', (m: FromServer) => waiters.shift()?.(m));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => {
    if (!closing) crashed = `the server process exited (code ${code}, signal ${signal}) before it was told to`;
    resolve(code);
  }));
  const next = (): Promise<FromServer> => new Promise((resolve, reject) => {
    waiters.push(resolve);
    void exited.then(() => reject(new Error(crashed || 'the server process exited')));
  });
  child.on('error', (e) => { if (!closing) crashed ||= `the server process: ${e.message}`; });
  const ask = async (m: ToServer): Promise<FromServer> => {
    if (!child.connected) throw new Error(crashed || 'the server process is gone');
    const p = next();
    child.send(m);
    return p;
  };
  type Stats = Extract<FromServer, { type: 'stats' }>;
  /** The server's stats, or undefined when it is gone. */
  const stats = () => ask({ type: 'stats' }).then((m) => m as Stats, () => undefined);
  const ready = await next();
  if (ready.type !== 'ready') throw new Error('unexpected first message');
  const port = ready.port;

  // warm up: a few requests of most kinds (not the slow ones), then the RSS before
  const warm = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0, n = 0; n < 16; i++) {
    const s = spec(1_000_000 + i);
    if (s.pauseMs !== undefined || s.disconnectAfterMs !== undefined) continue;
    await exchange(port, warm, s);
    n++;
  }
  warm.destroy();
  const before = (await stats())!;

  // the stalled client: a long stream it never reads, holding a slot
  const stalledReq = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, agent: false });
  let stalledStatus: number | undefined;
  let stalledRes: IncomingMessage | undefined;
  stalledReq.on('response', (res) => { stalledStatus = res.statusCode; stalledRes = res; res.pause(); });
  stalledReq.on('error', () => { /* dropped on purpose at the end */ });
  stalledReq.end(JSON.stringify({
    messages: [{ role: 'user', content: 'Tell me everything.' }], max_tokens: 4000, ignore_eos: true,
    logprobs: true, top_logprobs: 20, temperature: 1, seed: 7, stream: true,
  }));

  // the load
  const statuses = new Map<string, number>();   // `${kind} ${status}` → count
  const byStatus = new Map<number, number>();
  const errors = new Map<string, number>();      // `${kind} ${code}` → count
  let disconnects = 0;
  let timeouts = 0;
  let badBodies = 0;
  let unexpected = 0;
  let served = 0;
  let nextRequest = 0;
  const tLoad = performance.now();
  const add = <K>(m: Map<K, number>, k: K) => m.set(k, (m.get(k) ?? 0) + 1);
  let stalledHeld = false;
  const probe = setInterval(() => {
    void ask({ type: 'stats' }).then((m) => {
      if (m.type === 'stats' && m.stats.activeSequences > 0 && stalledStatus === 200) stalledHeld ||= /stream_stalls_total [1-9]/.test(m.metrics);
    }, () => {});
  }, 2000);
  async function client(c: number): Promise<void> {
    const backoff = rng(SEED * 31 + c);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (;;) {
      const i = nextRequest++;
      if (i >= REQUESTS) break;
      const s = spec(i);
      const o = await exchange(port, agent, s);
      if (o.timedOut) {
        timeouts++;
        fail(`request ${i} (${s.kind}) unanswered after ${REQUEST_TIMEOUT_MS / 1000} s (status ${o.status ?? 'none'})`);
        continue;
      }
      if (o.disconnected) { disconnects++; add(statuses, `${s.kind} disconnected${o.status === undefined ? '' : ` after ${o.status}`}`); }
      if (o.error) add(errors, `${s.kind} ${o.error}`);
      if (o.status !== undefined) {
        add(statuses, `${s.kind} ${o.status}`);
        add(byStatus, o.status);
        if (o.status >= 200 && o.status < 300) served++;
        if (o.status >= 500 && o.status !== 503) fail(`request ${i} (${s.kind}): ${o.status} ${o.body?.slice(0, 300) ?? ''}`);
        else if (!s.allowed.includes(o.status)) {
          unexpected++;
          fail(`request ${i} (${s.kind}): status ${o.status}, expected ${s.allowed.join(' or ')}: ${o.body?.slice(0, 200) ?? ''}`);
        }
        if (o.status === 200 && o.body !== undefined && !o.disconnected && !o.error && (s.stream || s.choices !== undefined)) {
          const bad = complete(s, o.body);
          if (bad) { badBodies++; fail(`request ${i} (${s.kind}): 200 with ${bad}`); }
        }
        // as a client should: wait after a 503 as Retry-After says (1 s), with jitter
        if (o.status === 503) await sleep(1000 + int(backoff, 0, 1000));
      }
    }
    agent.destroy();
  }
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  const loadSeconds = (performance.now() - tLoad) / 1000;
  clearInterval(probe);

  // the stalled client: does it hold a slot now? then drop it
  const beforeDrop = await stats();
  const stalledActive = beforeDrop?.stats.activeSequences ?? 0;
  stalledHeld ||= stalledStatus === 200 && stalledActive > 0;
  stalledRes?.destroy();
  stalledReq.destroy();

  // every slot free again (the engine publishes its stats after a step: give it a moment)
  const gauge = (m: string, name: string) => Number(new RegExp(`^gpt2_node_${name} (\\S+)$`, 'm').exec(m)?.[1]);
  let after = await stats();
  for (let k = 0; k < 100 && after; k++) {
    if (after.stats.activeSequences + after.stats.queuedSequences === 0 && gauge(after.metrics, 'sequences_in_flight') === 0 && gauge(after.metrics, 'requests_active') === 0) break;
    await sleep(50);
    after = await stats();
  }
  let leaked: number | undefined;
  if (after) {
    leaked = after.stats.activeSequences + after.stats.queuedSequences;
    const inFlight = gauge(after.metrics, 'sequences_in_flight');
    const active = gauge(after.metrics, 'requests_active');
    if (leaked > 0) fail(`${leaked} slots still in use (activeSequences ${after.stats.activeSequences}, queuedSequences ${after.stats.queuedSequences})`);
    if (inFlight !== 0 || active !== 0) fail(`the server still counts ${inFlight} sequences in flight and ${active} requests active`);
    if (after.stats.kvUsed !== 0) fail(`${after.stats.kvUsed} KV positions still in use`);
    closing = true;
    await ask({ type: 'close' }).catch(() => undefined);
  }
  const code = await exited;
  if (crashed) fail(crashed);
  else if (code !== 0) fail(`the server process exited with code ${code}`);

  const sum = (pred: (s: number) => boolean) => [...byStatus].filter(([st]) => pred(st)).reduce((n, [, c]) => n + c, 0);
  const metricLines = (after?.metrics ?? '').split('\n').filter((l) => /^gpt2_node_(requests_cancelled|requests_rejected|stream_stalls)_total /.test(l));
  console.log(`server-load: ${cpuLine()}, node ${process.version}`);
  console.log(`model ${modelPath.split('/').pop()}, ${SLOTS} slots, queue ${QUEUE}, body limit ${MAX_BODY / 1024} KiB; ` +
    `${CLIENTS} clients, ${REQUESTS} requests in ${loadSeconds.toFixed(1)} s (${((performance.now() - t0) / 1000).toFixed(1)} s in all)`);
  console.log(`requests served (2xx): ${served}`);
  console.log(`4xx given: ${sum((s) => s >= 400 && s < 500)} (${[...byStatus].filter(([s]) => s >= 400 && s < 500).sort(([a], [b]) => a - b).map(([s, c]) => `${s}: ${c}`).join(', ')})`);
  console.log(`503 given: ${byStatus.get(503) ?? 0}; other 5xx: ${sum((s) => s >= 500 && s !== 503)}`);
  console.log(`connection errors: ${[...errors.values()].reduce((a, b) => a + b, 0)}${errors.size ? ` (${[...errors].map(([k, c]) => `${k}: ${c}`).join(', ')})` : ''}; ` +
    `disconnects by the clients: ${disconnects}; unanswered: ${timeouts}`);
  console.log(`unexpected statuses: ${unexpected}; incomplete 200 bodies: ${badBodies}`);
  console.log(`by kind (status, or disconnected by the client): ${[...statuses].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, c]) => `${k}: ${c}`).join(', ')}`);
  console.log(`server counters: ${metricLines.map((l) => l.replace('gpt2_node_', '')).join(', ')}`);
  console.log(`stalled client: status ${stalledStatus ?? 'none'}, held a slot while stalled: ${stalledHeld ? 'yes' : 'no'} ` +
    `(${stalledActive} sequences active when the others had finished)`);
  console.log(`server RSS: ${(before.rss / MiB).toFixed(1)} MiB before (${before.memory}), ` +
    `${after ? `${(after.rss / MiB).toFixed(1)} MiB after (${after.memory})` : '? after (the server is gone)'}, each after a full GC`);
  for (const f of failures) console.log(`FAIL ${f}`);
  console.log(failures.length === 0 ? 'PASS' : 'FAIL');
  console.log(`slots leaked: ${leaked ?? '? (the server is gone)'}`);
  process.exit(failures.length === 0 ? 0 : 1);
}

if (values.serve !== undefined) await serve(values.serve);
else await main();
