/**
 * Error families of vaelab. Every message says where (a config key, a file, or a plugin and
 * method), what was expected and what was received, on one line where possible, with no
 * trailing period and no "Error:" prefix. Tests assert the exact text.
 */
import { closest, distance } from 'fastest-levenshtein';

/** Base class: keeps `name` right after transpilation so `instanceof` and logs agree. */
export class VaelabError extends Error {
  /** options.cause keeps the error this one explains (a plugin's or tfjs's), for debugging. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A bad experiment file, config key or value, or CLI argument. */
export class ConfigError extends VaelabError {
  /** The individual problems, one line each (the message joins them). */
  readonly problems: string[];
  constructor(problems: string | string[], file?: string) {
    const list = Array.isArray(problems) ? problems : [problems];
    const where = file ? `${file}: ` : '';
    const message =
      list.length === 1
        ? `${where}${list[0]}`
        : `${where}${list.length} problems\n${list.map((p) => `  - ${p}`).join('\n')}`;
    super(message);
    this.problems = list;
  }
}

/** Tensors whose shapes do not fit together; names the config keys that fix the shapes. */
export class ShapeError extends VaelabError {}

/** A plugin registration that cannot be accepted (duplicate name, bad slot, bad module). */
export class RegistrationError extends VaelabError {}

/** A data set that cannot be found or read. */
export class DataError extends VaelabError {}

/** A training run that cannot go on (non-finite loss, unusable checkpoint). */
export class TrainingError extends VaelabError {}

/**
 * The closest allowed value to `got`, when it is close enough to be a likely typo.
 * Close enough: edit distance at most max(2, a third of the longer word).
 */
export function didYouMean(got: string, allowed: readonly string[]): string | undefined {
  const limit = (a: string) => Math.max(2, Math.floor(Math.max(got.length, a.length) / 3));
  // The distance is at least the difference in length: leaving out candidates that cannot be
  // close enough keeps a 10 MB value from costing seconds of edit distances.
  const near = allowed.filter((a) => Math.abs(a.length - got.length) <= limit(a));
  if (near.length === 0) return undefined;
  const best = closest(got, near);
  return distance(got, best) <= limit(best) ? best : undefined;
}

/** Formats an allowed-values list the way every message does: `"a", "b", "c"`. */
export function quoteList(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

/** `key: unknown X "got". Allowed values: "a", "b". Did you mean "a"?` */
export function unknownValueMessage(key: string, what: string, got: string, allowed: readonly string[]): string {
  const hint = didYouMean(got, allowed);
  const base = `${key}: unknown ${what} ${showValue(got)}. Allowed values: ${quoteList(allowed)}`;
  return hint ? `${base}. Did you mean ${JSON.stringify(hint)}?` : base;
}

/** Longest value a message shows in full; a longer one is cut and its length given. */
export const SHOWN_CHARS = 80;

/**
 * A value as messages show it: JSON, except that non-finite numbers read as written (NaN,
 * Infinity, not null), and cut after SHOWN_CHARS characters with the string's length or the
 * list's number of entries, so that a 10 MB string in an experiment gives a one-line message.
 */
export function showValue(v: unknown): string {
  if (typeof v === 'string' && v.length > SHOWN_CHARS) return `${JSON.stringify(v.slice(0, SHOWN_CHARS))}... (${v.length} characters)`;
  let text: string;
  try {
    // Non-finite numbers become marked strings, which JSON writes as "\u0002NaN\u0002"; unquoted after.
    const marked = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? `\u0002${x}\u0002` : x));
    text = marked === undefined ? String(v) : marked.replace(/"\\u0002(NaN|-?Infinity)\\u0002"/g, '$1');
  } catch {
    text = String(v); // nested too deeply for JSON.stringify (or circular)
  }
  if (text.length <= SHOWN_CHARS) return text;
  return `${text.slice(0, SHOWN_CHARS)}... (${Array.isArray(v) ? `${v.length} entries` : `${text.length} characters`})`;
}
