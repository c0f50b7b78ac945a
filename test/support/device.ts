// The device the device tests run on: GPT2_NODE_TEST_DEVICE when set (`npm run test:vulkan` sets
// vulkan:0, Mesa's lavapipe where no GPU is), else the first GPU this build and machine have.
// Without one those tests are listed as skipped, not passed. A GPT2_NODE_TEST_DEVICE this build
// does not list is an error, so that a broken device build cannot pass as "skipped".
import test from 'ava';
import { getDevices, type Device } from '../../lib/index.js';

export const devices = await getDevices();

function pick(): Device | undefined {
  const want = process.env.GPT2_NODE_TEST_DEVICE;
  if (want) {
    const d = devices.find((x) => x.id === want);
    if (!d) throw new Error(`GPT2_NODE_TEST_DEVICE is ${want}, but this build lists only ${devices.map((x) => x.id).join(', ')}`);
    return d;
  }
  return devices.find((d) => d.type === 'gpu' || d.type === 'igpu');
}

export const testDevice = pick();

/** test.serial on the test device, test.serial.skip without one. */
export const onDevice = testDevice ? test.serial : test.serial.skip;

/** The largest absolute difference of two arrays, and the largest magnitude of `want`. */
export function maxDiff(got: ArrayLike<number>, want: ArrayLike<number>): { diff: number; scale: number } {
  if (got.length !== want.length) throw new Error(`lengths differ: ${got.length} and ${want.length}`);
  let diff = 0, scale = 0;
  for (let i = 0; i < got.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return { diff, scale };
}
