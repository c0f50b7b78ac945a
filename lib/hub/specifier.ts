// Hub model specifiers: `hf:owner/repo[/path/in/repo][@revision]` (also `hf://…`).
//
//   hf:openai-community/gpt2                     the model in the repo, at `main`
//   hf:owner/gpt2-GGUF/gpt2.Q8_0.gguf            one file of the repo
//   hf:owner/repo@v1.0   hf:owner/repo/model.gguf@0123abcd…   a branch, tag or commit
//   hf:owner/repo@refs/pr/3                      a pull request's head (a revision may hold `/`)
//
// The revision is everything after the `@`, so a path in the repo cannot hold `@` (name such a
// revision with the `revision` option instead). Every part becomes a path in the cache, so `.`,
// `..`, empty segments and backslashes are refused.
import { describe } from '../validate.js';

export interface HubSpecifier {
  /** `owner/name`. */
  repo: string;
  /** A file in the repo (`/`-separated), or undefined for "the model in the repo". */
  file: string | undefined;
  /** Branch, tag or commit; undefined when the specifier names none. */
  revision: string | undefined;
}

const SYNTAX = 'Hugging Face model specifier hf:owner/repo[/path/in/repo][@revision]';
const NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$/;

/** True when `value` is meant as a hub specifier (starts with `hf:`); it may still be malformed. */
export function isHubSpecifier(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('hf:');
}

/** A repo id part: letters, digits, `-`, `_`, `.`; no `--` or `..` (the cache folder name joins parts with `--`). */
function validName(part: string): boolean {
  return NAME.test(part) && !part.includes('--') && !part.includes('..');
}

/** A `/`-separated relative path with no empty, `.` or `..` segment and no backslash or NUL. */
export function validRelativePath(path: string): boolean {
  if (path.length === 0 || path.length > 1024 || /[\\\0]/.test(path)) return false;
  return path.split('/').every((s) => s.length > 0 && s !== '.' && s !== '..');
}

/** A branch, tag or commit: a relative path of printable characters (it names a file under refs/). */
export function validRevision(revision: string): boolean {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what it refuses
  return validRelativePath(revision) && !/[\s@:*?"<>|~^\x00-\x1f]/.test(revision) && revision.length <= 256;
}

/**
 * Parses a specifier. Not a string: TypeError; malformed: RangeError, both with the shape of
 * validate.ts (`Expected … for specifier but received "…"`).
 */
export function parseSpecifier(value: unknown, name = 'specifier'): HubSpecifier {
  const message = `Expected ${SYNTAX} for ${name} but received ${describe(value, true)}`;
  if (typeof value !== 'string') throw new TypeError(message);
  if (!value.startsWith('hf:')) throw new RangeError(message);
  let rest = value.slice(value.startsWith('hf://') ? 5 : 3);
  let revision: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    revision = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!validRevision(revision)) throw new RangeError(`${message} (bad revision after @)`);
  }
  const parts = rest.split('/');
  if (parts.length < 2 || !validName(parts[0]!) || !validName(parts[1]!)) {
    throw new RangeError(`${message} (bad owner/repo)`);
  }
  const file = parts.length > 2 ? parts.slice(2).join('/') : undefined;
  if (file !== undefined && !validRelativePath(file)) throw new RangeError(`${message} (bad path in the repo)`);
  return { repo: `${parts[0]}/${parts[1]}`, file, revision };
}

/** The canonical text of a specifier (for messages). */
export function formatSpecifier(s: HubSpecifier, revision = s.revision): string {
  return `hf:${s.repo}${s.file !== undefined ? `/${s.file}` : ''}${revision !== undefined ? `@${revision}` : ''}`;
}
