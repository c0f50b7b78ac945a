// Native and ggml log lines, silent by default. Enable with setLogger(fn) or NODE_DEBUG=gpt2.
import { debuglog } from 'node:util';

import { binding } from './binding.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const levels: LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** Routes native log lines to `fn` (or turns logging off with null). */
export function setLogger(fn: ((level: LogLevel, source: string, text: string) => void) | null, minLevel: LogLevel = 'info'): void {
  if (fn !== null && typeof fn !== 'function') throw new TypeError('Expected function or null for fn');
  const min = levels.indexOf(minLevel);
  if (min < 0) throw new RangeError(`Expected one of ${levels.join(', ')} for minLevel but received ${String(minLevel)}`);
  binding.setLogger(fn ? (level, source, text) => fn(levels[level] ?? 'info', source, text.replace(/\n$/, '')) : null, min);
}

const debug = debuglog('gpt2');
if (debug.enabled) setLogger((level, source, text) => debug(`[${source}] ${level}: ${text}`), 'debug');
