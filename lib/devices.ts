// The compute devices this build of gpt2-node can use on this machine.
import { binding, type NativeDevice } from './binding.js';
import { fromNative } from './errors.js';

export type Device = Readonly<NativeDevice>;

/**
 * The CPU, and every GPU of the backends built in (CUDA, Metal, Vulkan: see GPT2_NODE_GPU in the
 * README) that the machine has, with their memory in bytes. Each `id` is a value for
 * loadModel's `device` option.
 */
export async function getDevices(): Promise<Device[]> {
  try {
    return (await binding.getDevices()).map((d) => Object.freeze(d));
  } catch (e) {
    throw fromNative(e);
  }
}
