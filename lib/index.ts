// gpt2-node: run GPT-2-family models in Node.js and Electron.
export { Gpt2Error } from './errors.js';
export { loadModel, Model } from './model.js';
export type { Completion, EvaluateOptions, GenerateOptions, LoadModelOptions, ModelInfo, ModelStats, PerplexityResult, Prompt, ScoreResult } from './model.js';
export { Generation } from './generation.js';
export type { Chunk, FinishReason, TokenLogprob, Usage } from './generation.js';
export { setLogger } from './logger.js';
export type { LogLevel } from './logger.js';
export { loadTokenizer, StreamDecoder, Tokenizer } from './tokenizer.js';
export type { TokenizeOptions } from './tokenizer.js';
export { convert } from './convert.js';
export { getDevices } from './devices.js';
export type { Device } from './devices.js';
export type { ConvertOptions, ConvertResult } from './convert.js';
export { quantize, QUANTIZE_TYPES } from './quantize.js';
export type { QuantizeOptions, QuantizeResult, QuantizeType } from './quantize.js';
export { Session } from './session.js';
export type { SessionOptions, Turn } from './session.js';
