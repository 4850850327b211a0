/**
 * Value formats for config schemas, registered with convict once. Each format's message is
 * what follows `key: ` in an error, e.g. `train.batchSize: must be an integer in [1, 2147483647]; got 0`.
 *
 * Every format is bounded, so that no value that passes can fail later inside a library without
 * naming its key: integers lie in [-2^31, 2^31 - 1] (MAX_INT; tfjs shapes and the generators'
 * seeds are 32-bit), lists hold at most MAX_LIST_ENTRIES entries and strings at most
 * MAX_STRING_CHARS characters. Whether a model of valid sizes fits in memory is checked when its
 * weights are allocated (core/nn.ts, parameter budget).
 */
import convict from 'convict';
import { showValue } from '../errors';
import type { FormatName } from '../plugin';

/** Largest value of an integer format: 2^31 - 1, the largest int32 (tfjs shapes and sizes are int32). */
export const MAX_INT = 2 ** 31 - 1;
/** Most entries in a list format (layer widths, channels): far more than any network has layers. */
export const MAX_LIST_ENTRIES = 1024;
/** Most characters in a string format (names, paths, descriptions); 4096 is Linux's PATH_MAX. */
export const MAX_STRING_CHARS = 4096;

const isInt = (v: unknown, lo: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= MAX_INT;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_STRING_CHARS;
const isList = (v: unknown, entry: (e: unknown) => boolean): boolean => Array.isArray(v) && v.length <= MAX_LIST_ENTRIES && v.every(entry);

/** Each format: a predicate and the rule it states. */
export const FORMATS: Record<FormatName, { test: (v: unknown) => boolean; rule: string }> = {
  nat: { test: (v) => isInt(v, 0), rule: `must be an integer in [0, ${MAX_INT}]` },
  int: { test: (v) => isInt(v, -MAX_INT - 1), rule: `must be an integer in [${-MAX_INT - 1}, ${MAX_INT}]` },
  'positive-int': { test: (v) => isInt(v, 1), rule: `must be an integer in [1, ${MAX_INT}]` },
  number: { test: isNum, rule: 'must be a finite number' },
  'positive-number': { test: (v) => isNum(v) && v > 0, rule: 'must be a positive number' },
  'non-negative-number': { test: (v) => isNum(v) && v >= 0, rule: 'must be a number >= 0' },
  probability: { test: (v) => isNum(v) && v >= 0 && v <= 1, rule: 'must be a number in [0, 1]' },
  boolean: { test: (v) => typeof v === 'boolean', rule: 'must be true or false' },
  string: { test: isStr, rule: `must be a string of at most ${MAX_STRING_CHARS} characters` },
  'nat-list': {
    test: (v) => isList(v, (e) => isInt(e, 0)),
    rule: `must be a list of at most ${MAX_LIST_ENTRIES} integers in [0, ${MAX_INT}]`,
  },
  'positive-int-list': {
    test: (v) => isList(v, (e) => isInt(e, 1)),
    rule: `must be a list of at most ${MAX_LIST_ENTRIES} integers in [1, ${MAX_INT}]`,
  },
  'number-list': { test: (v) => isList(v, isNum), rule: `must be a list of at most ${MAX_LIST_ENTRIES} finite numbers` },
  'string-list': {
    test: (v) => isList(v, isStr),
    rule: `must be a list of at most ${MAX_LIST_ENTRIES} strings of at most ${MAX_STRING_CHARS} characters`,
  },
};

/** Marker that lets the reformatter recognise our own messages inside convict's report. */
export const RULE_MARK = '\u0001';

let registered = false;

/** Registers the formats with convict (idempotent). Names are prefixed to avoid convict's built-ins. */
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  for (const [name, { test, rule }] of Object.entries(FORMATS)) {
    convict.addFormat({
      name: `vae:${name}`,
      validate(value: unknown) {
        if (!test(value)) throw new Error(`${RULE_MARK}${rule}; got ${showValue(value)}${RULE_MARK}`);
      },
    });
  }
}

/** The rule text for an enumerated format. */
export function enumRule(values: readonly (string | number)[]): string {
  return `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
}
