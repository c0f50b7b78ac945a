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
