import { readFileSync } from 'node:fs';

/** The CPU's feature flags as Linux names them in /proc/cpuinfo, or null where it cannot say. */
export function cpuFlags(): Set<string> | null {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return line ? new Set(line.split(':')[1]!.trim().split(/\s+/)) : null;
  } catch {
    return null;
  }
}
