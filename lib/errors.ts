// The one error class of gpt2-node. `code` is a stable string to branch on (one of
// GPT2_ERROR_CODES, each described in docs/api.md#error-codes); `message` is for people and may
// change. native/util/error.h holds the same list for the addon (test/api/errors.test.ts keeps
// the two and the docs equal).

export const GPT2_ERROR_CODES = [
  'ERR_ABORTED',
  'ERR_AMBIGUOUS',
  'ERR_AUTH',
  'ERR_BACKEND',
  'ERR_BAD_MODEL',
  'ERR_BUSY',
  'ERR_CHECKSUM',
  'ERR_COMPUTE',
  'ERR_CONCURRENT_NEXT',
  'ERR_CONTEXT_FULL',
  'ERR_DISPOSED',
  'ERR_DOWNLOAD',
  'ERR_INCOMPATIBLE_MODEL',
  'ERR_INTERNAL',
  'ERR_IO',
  'ERR_NOT_FOUND',
  'ERR_NOT_LISTENING',
  'ERR_NO_BINARY',
  'ERR_NO_DEVICE',
  'ERR_OUT_OF_MEMORY',
  // Carried by the RangeError (not a Gpt2Error) of a failed native re-check of an argument, and
  // by a Gpt2Error only if the decoder's own check of a batch ever fails (a safeguard).
  'ERR_OUT_OF_RANGE',
] as const;

export type Gpt2ErrorCode = typeof GPT2_ERROR_CODES[number];

const codes: ReadonlySet<string> = new Set(GPT2_ERROR_CODES);

export function isGpt2ErrorCode(value: unknown): value is Gpt2ErrorCode {
  return typeof value === 'string' && codes.has(value);
}

export class Gpt2Error extends Error {
  readonly code: Gpt2ErrorCode;

  constructor(code: Gpt2ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'Gpt2Error';
    this.code = code;
  }
}

/**
 * Native errors arrive as plain Errors with a string `code`: make those Gpt2Error (TypeError and
 * RangeError pass through as they are). A code outside the list (none should be: the test above
 * checks every code the addon uses) becomes ERR_INTERNAL.
 */
export function fromNative(e: unknown): unknown {
  if (e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError) && !(e instanceof Gpt2Error)) {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code === 'string') return new Gpt2Error(isGpt2ErrorCode(code) ? code : 'ERR_INTERNAL', e.message);
  }
  return e;
}
