// A full garbage collection on demand, for the tests that a dropped object is reclaimed: V8's
// gc(), exposed by its flag at run time (ava's workers start without --expose-gc).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { until } from './until.js';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** Collects garbage and lets FinalizationRegistry callbacks run, until cond() holds or timeoutMs passes. */
export function collectUntil(cond: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  return until(() => {
    collect();
    return cond();
  }, timeoutMs);
}
