// Option validation with one message shape for every option of every API:
//   Expected integer between 1 and 1024 for maxTokens but received 0
// Wrong types throw TypeError, out-of-range values RangeError (rule 2 of the project).

/** How a received value reads in a message; `typed` adds the type to numbers too (for type errors). */
export function describe(value: unknown, typed = false): string {
  if (typeof value === 'string') return `${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)} of type string`;
  if (typeof value === 'number') return typed ? `${value} of type number` : String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an object of type ${value.constructor?.name ?? 'Object'}`;
  return `${String(value)} of type ${typeof value}`;
}

export function integer(name: string, value: unknown, min: number, max: number): number {
  const message = `Expected integer between ${min} and ${max} for ${name} but received ${describe(value)}`;
  if (typeof value !== 'number') throw new TypeError(message);
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(message);
  return value;
}

export function optionalInteger(name: string, value: unknown, min: number, max: number): number | undefined {
  return value === undefined ? undefined : integer(name, value, min, max);
}

export function number(name: string, value: unknown, min: number, max: number): number {
  const message = `Expected number between ${min} and ${max} for ${name} but received ${describe(value)}`;
  if (typeof value !== 'number') throw new TypeError(message);
  if (!Number.isFinite(value) || value < min || value > max) throw new RangeError(message);
  return value;
}

export function optionalNumber(name: string, value: unknown, min: number, max: number): number | undefined {
  return value === undefined ? undefined : number(name, value, min, max);
}

export function optionalBoolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new TypeError(`Expected boolean for ${name} but received ${describe(value, true)}`);
  return value;
}

export function string(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`Expected string for ${name} but received ${describe(value, true)}`);
  return value;
}

export function object(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`Expected object for ${name} but received ${describe(value, true)}`);
  }
  return value as Record<string, unknown>;
}

export function optionalSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw new TypeError(`Expected AbortSignal for ${name} but received ${describe(value, true)}`);
  return value;
}

/** Token ids: an array-like of integers in [0, vocabSize), copied into a Uint32Array. */
export function tokenIds(name: string, value: unknown, vocabSize: number): Uint32Array {
  if (!(value instanceof Uint32Array) && !Array.isArray(value) && !ArrayBuffer.isView(value)) {
    throw new TypeError(`Expected Uint32Array or array of token ids for ${name} but received ${describe(value, true)}`);
  }
  const src = value as ArrayLike<unknown>;
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    const message = `Expected integer between 0 and ${vocabSize - 1} for ${name}[${i}] but received ${describe(v)}`;
    if (typeof v !== 'number') throw new TypeError(message);
    if (!Number.isInteger(v) || v < 0 || v >= vocabSize) throw new RangeError(message);
    out[i] = v;
  }
  return out;
}
