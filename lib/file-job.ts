// Shared by quantize() and convert(): option checks and running a native file job with an
// AbortSignal and a progress callback.
import type { NativeFileJob } from './binding.js';
import { Gpt2Error, fromNative } from './errors.js';
import * as v from './validate.js';

export type ProgressCallback = (done: number, total: number) => void;

export function progressOption(value: unknown): ProgressCallback | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`Expected function for onProgress but received ${v.describe(value, true)}`);
  }
  return value as ProgressCallback | undefined;
}

export function signalOption(value: unknown): AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) {
    throw new TypeError(`Expected AbortSignal for signal but received ${v.describe(value, true)}`);
  }
  return value;
}

/** Awaits the job; an abort cancels it (the partial output is removed natively). */
export async function runFileJob<T>(start: () => NativeFileJob<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (signal?.aborted) throw new Gpt2Error('ERR_ABORTED', `${what} aborted`);
  let job: NativeFileJob<T>;
  try {
    job = start();
  } catch (e) {
    throw fromNative(e);
  }
  const onAbort = (): void => job.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await job.promise;
  } catch (e) {
    throw fromNative(e);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
