// Runs a script in a child Node process (TypeScript through tsx, so it imports lib/ from source),
// so that a crash, an abort or a hang is observed from outside instead of taking the test
// process down. The script is an ES module body with top-level await; `LIB` (the URL of
// lib/index.ts) and `TSX_API` (tsx's ESM registration API, for worker threads: a worker does not
// inherit the parent's --import=tsx) are defined before it runs.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TIME_SCALE } from './until.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LIB_URL = pathToFileURL(join(ROOT, 'lib', 'index.ts')).href;
export const TSX_API_URL = import.meta.resolve('tsx/esm/api');

export interface ChildResult {
  /** Exit code, null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The child outlived timeoutMs (× TIME_SCALE under a sanitizer) and was killed (SIGKILL): a hang. */
  timedOut: boolean;
  ms: number;
}

export interface ChildOptions {
  /** Killed after this long (default 30 s); the result then says timedOut. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * Shell commands run before Node in the same process (`ulimit -v 1000000`, `ulimit -f 64`):
   * the child is then `sh -c '<shell>; exec node ...'`, so the limits apply to Node itself.
   */
  shell?: string;
  /**
   * Node options before the script (e.g. '--jitless': under `ulimit -v`, tsx's WebAssembly
   * lexer cannot reserve its memory; without WebAssembly tsx takes its JavaScript one).
   */
  nodeArgs?: string[];
}

/** A script body with LIB and TSX_API defined. */
export function childScript(body: string): string {
  return `const LIB = ${JSON.stringify(LIB_URL)};\nconst TSX_API = ${JSON.stringify(TSX_API_URL)};\n${body}`;
}

export function runChild(body: string, options: ChildOptions = {}): Promise<ChildResult> {
  const nodeArgs = [...options.nodeArgs ?? [], '--import=tsx', '--input-type=module', '-e', childScript(body)];
  const [cmd, args] = options.shell === undefined
    ? [process.execPath, nodeArgs]
    : ['/bin/sh', ['-c', `${options.shell}\nexec "$0" "$@"`, process.execPath, ...nodeArgs]];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, (options.timeoutMs ?? 30_000) * TIME_SCALE);
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

/** One line for assertion messages: how the child ended and what it printed. */
export function describeChild(r: ChildResult): string {
  const how = r.timedOut ? `hung (killed after ${r.ms} ms)` : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  return `${how}\n--- stdout ---\n${r.stdout.slice(-3000)}\n--- stderr ---\n${r.stderr.slice(-3000)}`;
}

/**
 * Worker-thread source (eval: true; CommonJS or, under --input-type=module, ESM) that registers tsx, imports lib/ and runs `body`
 * (an async function body with `loadModel`, `lib`, `parentPort` and `workerData` in scope).
 * For use inside a child script, where TSX_API and LIB are defined.
 */
export const WORKER_PRELUDE = `
  (async () => {
    const { parentPort, workerData } = await import('node:worker_threads');
    const { register } = await import(workerData.TSX_API);
    register();
    const lib = await import(workerData.LIB);
    const { loadModel } = lib;
    /*BODY*/
  })().catch(async (e) => {
    (await import('node:worker_threads')).parentPort.postMessage({ error: String(e && e.stack || e) });
  });`;
