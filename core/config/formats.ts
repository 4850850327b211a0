/**
 * Value formats for config schemas, registered with convict once. Each format's message is
 * what follows `key: ` in an error, e.g. `train.batchSize: must be an integer >= 1; got 0`.
 */
import convict from 'convict';
import type { FormatName } from '../plugin';

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Each format: a predicate and the rule it states. */
export const FORMATS: Record<FormatName, { test: (v: unknown) => boolean; rule: string }> = {
  nat: { test: (v) => isInt(v) && v >= 0, rule: 'must be an integer >= 0' },
  int: { test: isInt, rule: 'must be an integer' },
  'positive-int': { test: (v) => isInt(v) && v >= 1, rule: 'must be an integer >= 1' },
  number: { test: isNum, rule: 'must be a finite number' },
  'positive-number': { test: (v) => isNum(v) && v > 0, rule: 'must be a positive number' },
  'non-negative-number': { test: (v) => isNum(v) && v >= 0, rule: 'must be a number >= 0' },
  probability: { test: (v) => isNum(v) && v >= 0 && v <= 1, rule: 'must be a number in [0, 1]' },
  boolean: { test: (v) => typeof v === 'boolean', rule: 'must be true or false' },
  string: { test: (v) => typeof v === 'string', rule: 'must be a string' },
  'nat-list': { test: (v) => Array.isArray(v) && v.every((e) => isInt(e) && e >= 0), rule: 'must be a list of integers >= 0' },
  'positive-int-list': {
    test: (v) => Array.isArray(v) && v.every((e) => isInt(e) && e >= 1),
    rule: 'must be a list of integers >= 1',
  },
  'number-list': { test: (v) => Array.isArray(v) && v.every(isNum), rule: 'must be a list of finite numbers' },
  'string-list': { test: (v) => Array.isArray(v) && v.every((e) => typeof e === 'string'), rule: 'must be a list of strings' },
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
        if (!test(value)) throw new Error(`${RULE_MARK}${rule}; got ${JSON.stringify(value)}${RULE_MARK}`);
      },
    });
  }
}

/** The rule text for an enumerated format. */
export function enumRule(values: readonly (string | number)[]): string {
  return `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
}
