// The one error class of gpt2-node. `code` is a stable string (ERR_BAD_MODEL, ERR_ABORTED,
// ERR_DISPOSED, ERR_CONTEXT_FULL, ...) to branch on; `message` is for people and may change.

export class Gpt2Error extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'Gpt2Error';
    this.code = code;
  }
}

/**
 * Native errors arrive as plain Errors with a string `code`: make those Gpt2Error (TypeError and
 * RangeError pass through as they are).
 */
export function fromNative(e: unknown): unknown {
  if (e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError) && !(e instanceof Gpt2Error)) {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code === 'string') return new Gpt2Error(code, e.message);
  }
  return e;
}
