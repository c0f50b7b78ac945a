// One downloader per blob: within the process a promise chain, across processes a lock file
// (`<blob>.lock`, created exclusively). The holder touches it while it works; a waiter takes over
// a lock whose holder died (same host, pid gone) or that nobody touched for a minute.
import { open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

import { aborted } from './http.js';

const STALE_MS = 60_000;
const TOUCH_MS = 10_000;
const POLL_MS = 200;

const chains = new Map<string, Promise<void>>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function stale(path: string): Promise<boolean> {
  try {
    const [text, s] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const [host, pid] = text.split('\n');
    if (host === hostname() && Number(pid) > 0 && !alive(Number(pid))) return true;
    return Date.now() - s.mtimeMs > STALE_MS;
  } catch {
    return false; // gone already (or being written): try again
  }
}

async function acquire(path: string, signal: AbortSignal | undefined): Promise<() => Promise<void>> {
  for (;;) {
    if (signal?.aborted) throw aborted(signal, 'download');
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(`${hostname()}\n${process.pid}\n`);
      } catch (e) {
        // (a full disk) an empty lock left behind would make the next call wait for it to go stale
        await fh.close().catch(() => {});
        await rm(path, { force: true });
        throw e;
      }
      await fh.close();
      const timer = setInterval(() => { const now = new Date(); utimes(path, now, now).catch(() => {}); }, TOUCH_MS);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await rm(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (await stale(path)) {
      await rm(path, { force: true });
      continue;
    }
    try {
      await sleep(POLL_MS, undefined, { signal });
    } catch {
      throw aborted(signal, 'download');
    }
  }
}

/** Waits for `p`, or rejects with ERR_ABORTED as soon as the signal aborts. */
function waitOrAbort(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.reject(aborted(signal, 'download'));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(aborted(signal, 'download'));
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/**
 * Runs `fn` holding the lock `path`: after the calls of this process that asked for it before
 * (a waiter that is aborted leaves the queue at once), and while no other process holds it.
 */
export async function withLock<T>(path: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const previous = chains.get(path) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => { done = resolve; });
  const tail = previous.then(() => mine); // who comes next waits for those before and for us
  chains.set(path, tail);
  try {
    await waitOrAbort(previous, signal);
    const release = await acquire(path, signal);
    try {
      return await fn();
    } finally {
      await release();
    }
  } finally {
    done();
    void tail.then(() => { if (chains.get(path) === tail) chains.delete(path); });
  }
}
