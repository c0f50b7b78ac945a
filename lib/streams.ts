// Stream adapters for a generation. Both pull from the generation only when their consumer
// wants more, so backpressure reaches the engine: a Node stream that is not read (or a piped
// destination that is full) pauses that sequence, as a paused async iterator does.
import { Readable } from 'node:stream';

import type { Chunk } from './generation.js';

/** objectMode: a stream of Chunk objects; otherwise a stream of UTF-8 text. */
export function toReadable(source: AsyncIterableIterator<Chunk>, options: { objectMode?: boolean } = {}): Readable {
  const objectMode = options.objectMode ?? false;
  let reading = false;
  return new Readable({
    objectMode,
    encoding: objectMode ? undefined : 'utf8',
    highWaterMark: 1,
    // Pull one chunk per _read(): the stream asks only when its consumer has room.
    read() {
      if (reading) return;
      reading = true;
      const pump = (): void => {
        source.next().then((r) => {
          if (r.done) { reading = false; this.push(null); return; }
          if (!objectMode && r.value.text.length === 0) { pump(); return; }   // nothing to emit: keep going
          reading = false;
          this.push(objectMode ? r.value : r.value.text);
        }, (err: unknown) => { reading = false; this.destroy(err as Error); });
      };
      pump();
    },
    // destroy() (or an error downstream) cancels the generation and frees its slot, even while
    // a read is pending.
    destroy(err, callback) {
      source.return?.().then(() => callback(err), callback);
    },
  });
}

/** A web ReadableStream of Chunk objects, or of text with { text: true }. */
export function toReadableStream(source: AsyncIterableIterator<Chunk>, options: { text?: boolean } = {}): ReadableStream<Chunk | string> {
  const text = options.text ?? false;
  return new ReadableStream<Chunk | string>({
    async pull(controller) {
      for (;;) {
        const r = await source.next();
        if (r.done) {
          controller.close();
          return;
        }
        if (!text) { controller.enqueue(r.value); return; }
        if (r.value.text.length > 0) { controller.enqueue(r.value.text); return; }
      }
    },
    async cancel() {
      await source.return?.();
    },
  }, { highWaterMark: 0 });
}
