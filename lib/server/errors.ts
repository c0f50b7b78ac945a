// Errors of the HTTP server in OpenAI's shape: {"error": {"message", "type", "param", "code"}},
// with the HTTP status that goes with them. Handlers throw ApiError; the router writes it.
import { Gpt2Error } from '../errors.js';

export type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'server_error';

export class ApiError extends Error {
  readonly status: number;
  readonly type: ApiErrorType;
  readonly code: string | null;
  readonly param: string | null;

  constructor(status: number, type: ApiErrorType, code: string | null, message: string, param: string | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
  }

  /** The response body. */
  body(): { error: { message: string; type: ApiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 for a request field: wrong type (invalid_type) or bad value (invalid_value). */
export function invalidParam(param: string, message: string, code: 'invalid_type' | 'invalid_value' = 'invalid_value'): ApiError {
  return new ApiError(400, 'invalid_request_error', code, message, param);
}

export function missingParam(param: string): ApiError {
  return new ApiError(400, 'invalid_request_error', 'missing_required_parameter', `Missing required parameter: '${param}'`, param);
}

export function unsupported(param: string, message: string): ApiError {
  return new ApiError(400, 'invalid_request_error', 'unsupported_parameter', message, param);
}

export function contextLengthExceeded(param: string, message: string): ApiError {
  return new ApiError(400, 'invalid_request_error', 'context_length_exceeded', message, param);
}

export function overloaded(message: string): ApiError {
  return new ApiError(503, 'server_error', 'server_overloaded', message);
}

export function shuttingDown(): ApiError {
  return new ApiError(503, 'server_error', 'server_shutting_down', 'The server is shutting down');
}

/** Whatever a handler threw, as an ApiError (TypeError/RangeError from the model's own validation are 400s). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof TypeError) return new ApiError(400, 'invalid_request_error', 'invalid_type', e.message);
  if (e instanceof RangeError) return new ApiError(400, 'invalid_request_error', 'invalid_value', e.message);
  if (e instanceof Gpt2Error && e.code === 'ERR_DISPOSED') return new ApiError(503, 'server_error', 'model_unavailable', 'The model has been unloaded');
  if (e instanceof Gpt2Error && e.code === 'ERR_ABORTED') return shuttingDown();
  const message = e instanceof Error ? e.message : String(e);
  return new ApiError(500, 'server_error', e instanceof Gpt2Error ? e.code : 'internal_error', message);
}
