// Server-sent events on one response, with backpressure: send() resolves at once while the
// socket takes data and waits for 'drain' when it does not, so a slow reader stalls only the
// generations writing to its own response (their iterators stop pulling, the engine stops
// scheduling them) and nothing is buffered without bound.
import type { ServerResponse } from 'node:http';

export class EventStream {
  readonly #res: ServerResponse;
  readonly #onStall: () => void;
  readonly #signal: AbortSignal;
  #drain: Promise<void> | undefined;

  /** `signal` (the request's): once aborted, send() drops its events and stops waiting for the client. */
  constructor(res: ServerResponse, signal: AbortSignal, onStall: () => void) {
    this.#res = res;
    this.#signal = signal;
    this.#onStall = onStall;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
  }

  /** The client is gone or the stream has ended: nothing more can be sent. */
  get closed(): boolean {
    return this.#res.destroyed || this.#res.writableEnded;
  }

  /** Sends one event; resolves when the socket can take more. */
  async send(data: unknown): Promise<void> {
    if (this.closed || this.#signal.aborted) return;
    if (this.#res.write(`data: ${JSON.stringify(data)}\n\n`)) return;
    if (!this.#drain) {
      this.#onStall();
      this.#drain = new Promise<void>((resolve) => {
        const done = () => {
          this.#res.off('drain', done);
          this.#res.off('close', done);
          this.#signal.removeEventListener('abort', done);
          this.#drain = undefined;
          resolve();
        };
        this.#res.on('drain', done);
        this.#res.on('close', done);
        this.#signal.addEventListener('abort', done);
      });
    }
    await this.#drain;
  }

  /** Ends the stream with `data: [DONE]` (OpenAI's end marker). */
  done(): void {
    if (!this.closed) this.#res.end('data: [DONE]\n\n');
  }

  /** Ends the stream with an error event instead of [DONE] (the response is already 200). */
  fail(body: unknown): void {
    if (!this.closed) this.#res.end(`data: ${JSON.stringify(body)}\n\n`);
  }
}
