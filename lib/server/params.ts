// Reading request fields: every field's type is checked and a bad one is a 400 naming the field
// (`param`), with the project's one message shape (lib/validate.ts):
//   Expected integer between 1 and 512 for max_tokens but received "many" of type string
// null counts as absent for optional fields, as in OpenAI's API.
import * as v from '../validate.js';
import { invalidParam, missingParam } from './errors.js';

type Body = Record<string, unknown>;

/** Runs a lib/validate.ts check and turns its TypeError/RangeError into a 400 for `param`. */
function check<T>(param: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TypeError) throw invalidParam(param, e.message, 'invalid_type');
    if (e instanceof RangeError) throw invalidParam(param, e.message, 'invalid_value');
    throw e;
  }
}

export function typeError(param: string, expected: string, value: unknown): never {
  throw invalidParam(param, `Expected ${expected} for ${param} but received ${v.describe(value, true)}`, 'invalid_type');
}

export class Fields {
  readonly body: Body;

  constructor(body: Body) {
    this.body = body;
  }

  #get(name: string): unknown {
    const value = this.body[name];
    return value === null ? undefined : value;
  }

  has(name: string): boolean {
    return this.#get(name) !== undefined;
  }

  integer(name: string, min: number, max: number): number | undefined {
    const value = this.#get(name);
    return value === undefined ? undefined : check(name, () => v.integer(name, value, min, max));
  }

  number(name: string, min: number, max: number): number | undefined {
    const value = this.#get(name);
    return value === undefined ? undefined : check(name, () => v.number(name, value, min, max));
  }

  boolean(name: string): boolean | undefined {
    const value = this.#get(name);
    return value === undefined ? undefined : check(name, () => v.optionalBoolean(name, value));
  }

  string(name: string): string | undefined {
    const value = this.#get(name);
    return value === undefined ? undefined : check(name, () => v.string(name, value));
  }

  object(name: string): Body | undefined {
    const value = this.#get(name);
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) typeError(name, 'object', value);
    return value as Body;
  }

  array(name: string): unknown[] | undefined {
    const value = this.#get(name);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) typeError(name, 'array', value);
    return value;
  }

  required(name: string): unknown {
    const value = this.#get(name);
    if (value === undefined) throw missingParam(name);
    return value;
  }

  /**
   * Fields of OpenAI's API that this server accepts and ignores: their type is still checked,
   * so a client bug does not pass silently. Fields nobody knows are ignored whatever they hold.
   */
  ignored(spec: Readonly<Record<string, 'string' | 'boolean' | 'object' | 'array' | 'integer' | 'number'>>): void {
    for (const [name, type] of Object.entries(spec)) {
      const value = this.#get(name);
      if (value === undefined) continue;
      const ok = type === 'array' ? Array.isArray(value)
        : type === 'object' ? typeof value === 'object' && !Array.isArray(value)
          : type === 'integer' ? Number.isInteger(value)
            : typeof value === type;
      if (!ok) typeError(name, type, value);
    }
  }
}

/** Token ids in a request: integers in [0, vocabSize). */
export function tokenIds(param: string, value: unknown, vocabSize: number): Uint32Array {
  if (!Array.isArray(value)) typeError(param, 'array of token ids', value);
  return check(param, () => v.tokenIds(param, value, vocabSize));
}
