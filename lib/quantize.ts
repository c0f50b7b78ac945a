// Converting a GGUF model's weights to another ggml type (quantization), off the JS thread.
import { binding } from './binding.js';
import { progressOption, runFileJob, signalOption } from './file-job.js';
import * as v from './validate.js';

/**
 * The weight types quantize() and convert() write; each is one that loadModel() runs. Known
 * without the addon (the CLI checks its arguments before loading it); the addon's own list,
 * quantizeTypes(), is the same (test/formats/quantize.test.ts).
 */
export const QUANTIZE_TYPES = Object.freeze(
  ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K'] as const);

export type QuantizeType = typeof QUANTIZE_TYPES[number];

export interface QuantizeOptions {
  type: QuantizeType;
  /** Called after each tensor with input bytes processed so far and in all. */
  onProgress?: (done: number, total: number) => void;
  /** Aborting rejects with ERR_ABORTED and leaves no output file. */
  signal?: AbortSignal;
}

export interface QuantizeResult {
  /** 2-D tensors written in the target type. */
  converted: number;
  /** 2-D tensors kept in their type (rows not a multiple of the target's block size). */
  kept: number;
  bytesIn: number;
  bytesOut: number;
}

/** Checks a type name against QUANTIZE_TYPES. */
export function quantizeType(value: unknown): QuantizeType {
  const type = v.string('type', value);
  if (!(QUANTIZE_TYPES as readonly string[]).includes(type)) {
    throw new RangeError(`Expected one of ${QUANTIZE_TYPES.join(', ')} for type but received ${v.describe(type)}`);
  }
  return type as QuantizeType;
}

/**
 * Writes `output`: `input` (a GGUF file) with every 2-D weight converted to `type` (1-D norms
 * and biases stay f32). The output appears only when complete (written to `output.partial`,
 * then renamed).
 */
export async function quantize(input: string, output: string, options: QuantizeOptions): Promise<QuantizeResult> {
  v.string('input', input);
  v.string('output', output);
  const o = v.object('options', options);
  const type = quantizeType(o.type);
  const onProgress = progressOption(o.onProgress);
  const signal = signalOption(o.signal);
  return runFileJob(() => binding.quantize(input, output, type, onProgress), signal, 'quantization');
}
