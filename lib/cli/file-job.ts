// A command that writes a model file (convert, quantize): a progress bar on stderr, Ctrl-C aborts
// the job (exit code 130, one line, no output file left: the library removes its partial file),
// a bad argument the library finds is a usage error.
import { Gpt2Error } from '../errors.js';
import { EXIT_INTERRUPTED, UsageError } from './command.js';
import { progressBar } from './progress.js';
import { onInterrupt } from './signals.js';

export interface JobControls {
  signal: AbortSignal;
  onProgress: (done: number, total: number) => void;
}

/**
 * Runs `job` for `command` with the bar labelled `label`; `summary` is the line written when it
 * succeeds, given the seconds it took. Resolves with the exit code.
 */
export async function runFileJob<R>(command: string, label: string, job: (c: JobControls) => Promise<R>, summary: (r: R, seconds: string) => string): Promise<number> {
  const ac = new AbortController();
  const stopListening = onInterrupt(() => ac.abort());
  const bar = progressBar(label);
  const started = Date.now();
  try {
    const r = await job({ signal: ac.signal, onProgress: (d, t) => bar.update(d, t) });
    bar.end();
    process.stderr.write(`${summary(r, ((Date.now() - started) / 1000).toFixed(1))}\n`);
    return 0;
  } catch (e) {
    bar.end();
    if (ac.signal.aborted && e instanceof Gpt2Error && e.code === 'ERR_ABORTED') {
      process.stderr.write(`gpt2-node ${command}: interrupted, no output written\n`);
      return EXIT_INTERRUPTED;
    }
    if (e instanceof RangeError || e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  } finally {
    stopListening();
  }
}
