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

/** Choices as a message lists them: `'a' or 'b'`, `'a', 'b' or 'c'`. */
export function choices(allowed: readonly string[]): string {
  const quoted = allowed.map((x) => `'${x}'`);
  return quoted.length < 2 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}

/** One of a fixed set of strings: TypeError for another type, RangeError for another string. */
export function oneOf<const T extends readonly string[]>(name: string, value: unknown, allowed: T): T[number] {
  if (typeof value === 'string' && allowed.includes(value)) return value;
  const message = `Expected ${choices(allowed)} for ${name} but received ${describe(value, true)}`;
  throw typeof value === 'string' ? new RangeError(message) : new TypeError(message);
}

export function optionalOneOf<const T extends readonly string[]>(name: string, value: unknown, allowed: T): T[number] | undefined {
  return value === undefined ? undefined : oneOf(name, value, allowed);
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

// ---- the options of generate() and loadModel() that are more than a number or a flag ----

const DEVICE_PATTERN = /^(auto|cpu|cuda|metal|vulkan)$|^(cuda|metal|vulkan):\d{1,3}$/;

/** loadModel's `device`: 'auto', 'cpu', or a backend with an optional index ('cuda', 'cuda:1'). */
export function optionalDevice(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const message = `Expected ${choices(['auto', 'cpu', 'cuda', 'cuda:N', 'metal', 'vulkan'])} for ${name} but received ${describe(value, true)}`;
  if (typeof value !== 'string') throw new TypeError(message);
  if (!DEVICE_PATTERN.test(value)) throw new RangeError(message);
  return value;
}

/**
 * generate's `logitBias`: an object or Map of token id to bias, flattened into (id, bias) pairs
 * as the binding takes them. A bias may be ±Infinity (-Infinity bans the token), never NaN.
 */
export function optionalLogitBias(name: string, value: unknown, vocabSize: number): Float64Array | undefined {
  if (value === undefined) return undefined;
  let entries: [unknown, unknown][];
  if (value instanceof Map) entries = [...value.entries()];
  else if (value !== null && typeof value === 'object' && !Array.isArray(value)) entries = Object.entries(value);
  else throw new TypeError(`Expected object or Map of token id to bias for ${name} but received ${describe(value, true)}`);
  const out = new Float64Array(entries.length * 2);
  entries.forEach(([key, bias], i) => {
    const id = typeof key === 'string' && /^\d+$/.test(key) ? Number(key) : key;
    out[2 * i] = integer(`${name} key`, id, 0, vocabSize - 1);
    if (typeof bias !== 'number' || Number.isNaN(bias)) {
      throw new TypeError(`Expected number for ${name}[${String(key)}] but received ${describe(bias, true)}`);
    }
    out[2 * i + 1] = bias;
  });
  return out;
}

/**
 * Longest stop string, in characters (UTF-16 code units, JS string length). Matching a stop
 * string costs up to its length squared per token (the engine's filter_stop), so it is bounded;
 * the addon refuses more than 1024 UTF-8 bytes, which 256 units never exceed (768 at most).
 */
export const MAX_STOP_LENGTH = 256;

/** generate's `stop`: a string or an array of up to `max` non-empty strings of at most MAX_STOP_LENGTH characters. */
export function optionalStopStrings(name: string, value: unknown, max: number): string[] | undefined {
  if (value === undefined) return undefined;
  const list: unknown = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
    throw new TypeError(`Expected string or array of strings for ${name} but received ${describe(value, true)}`);
  }
  if (list.some((x) => x.length === 0)) throw new RangeError(`Expected non-empty strings for ${name} but received ""`);
  if (list.length > max) throw new RangeError(`Expected at most ${max} ${name} strings but received ${list.length}`);
  const long = list.find((x) => x.length > MAX_STOP_LENGTH);
  if (long !== undefined) {
    throw new RangeError(`Expected ${name} strings of at most ${MAX_STOP_LENGTH} characters but received one of ${long.length}`);
  }
  return list;
}
