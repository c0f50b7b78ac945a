// Writing any model gpt2-node loads (a Hugging Face folder, a legacy ggml .bin, GGUF) as a GGUF
// file that llama.cpp loads as well, off the JS thread.
import { binding } from './binding.js';
import { progressOption, runFileJob, signalOption } from './file-job.js';
import { quantizeType, type QuantizeType } from './quantize.js';
import * as v from './validate.js';

export interface ConvertOptions {
  /** Type of the 2-D weights in the output (any of QUANTIZE_TYPES). Default: each tensor keeps its type. */
  type?: QuantizeType;
  /** Called after each tensor with bytes processed so far and in all. */
  onProgress?: (done: number, total: number) => void;
  /** Aborting rejects with ERR_ABORTED and leaves no output file. */
  signal?: AbortSignal;
}

export interface ConvertResult {
  /** The input's format. */
  formatIn: 'gguf' | 'safetensors' | 'ggml';
  /** Tensors written. */
  tensors: number;
  /** 2-D tensors written in another type than the input's. */
  converted: number;
  /** Tensor data bytes written. */
  bytesOut: number;
}

/**
 * Writes `output` as GGUF (llama.cpp's `gpt2` architecture: its keys, tensor names and
 * tokenizer metadata) from `input`: a Hugging Face GPT2LMHeadModel folder (or its
 * model.safetensors), a legacy ggml GPT-2 .bin, or a GGUF file. The input is checked exactly as
 * loadModel() checks it. The output appears only when complete.
 */
export async function convert(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  v.string('input', input);
  v.string('output', output);
  const o = v.object('options', options);
  const type = o.type === undefined ? '' : quantizeType(o.type);
  const onProgress = progressOption(o.onProgress);
  const signal = signalOption(o.signal);
  return runFileJob(() => binding.convert(input, output, type, onProgress), signal, 'conversion');
}
