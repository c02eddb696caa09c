import { OptionError } from '../errors.js';
import type { NumberRange } from '../options/option-table.js';

/**
 * Strict readers of the CLI's option values, for yargs' `coerce`. Every option arrives as the text the user typed
 * (yargs' own number parsing reads `0x10` as 16, `--num-proc` with no value as a default and a repeated option as a
 * list to sum): each reader accepts exactly one value of its form, or throws an OptionError that names the flag,
 * says what is accepted and shows what was given.
 */
type Reader<T> = (value: unknown) => T;

/** The one text given for `flag`: not repeated, not empty. (yargs calls a coerce only for an option that has a value.) */
function single(flag: string, value: unknown): string {
  if (Array.isArray(value)) {
    throw new OptionError(`${flag} was given ${value.length} times (${value.map(String).join(', ')}); give it once`);
  }
  const text = String(value);
  if (value === undefined || text.trim() === '') throw new OptionError(`${flag} needs a value`);
  return text.trim();
}

/** A plain string option (a path, a name): once, and not empty. */
export function text(flag: string): Reader<string> {
  return (value) => single(flag, value);
}

/** A list option (`-i a b`, `-i a -i b`): at least one value, none empty. */
export function paths(flag: string): Reader<string[]> {
  return (value) => {
    const list = (Array.isArray(value) ? value : [value]).map(String);
    if (list.length === 0 || list.some((item) => item.trim() === '')) throw new OptionError(`${flag} needs a value`);
    return list;
  };
}

/** Digits only (no sign, no exponent, no hex), from `min` up to `max`. */
export function wholeNumber(flag: string, min: number, max = Number.MAX_SAFE_INTEGER): Reader<number> {
  return (value) => {
    const given = single(flag, value);
    const parsed = /^\d+$/.test(given) ? Number(given) : NaN;
    if (!(parsed >= min && parsed <= max)) {
      const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
      throw new OptionError(`${flag} takes a whole number ${range}, got ${JSON.stringify(given)}`);
    }
    return parsed;
  };
}

/** A decimal number such as 0.5, 2 or .25 (no sign, no exponent), from `min` up to `max`. */
function decimal(flag: string, min: number, max = Infinity): Reader<number> {
  return (value) => {
    const given = single(flag, value);
    const parsed = /^(\d+\.?\d*|\.\d+)$/.test(given) ? Number(given) : NaN;
    if (!(parsed >= min && parsed <= max)) {
      const range = max === Infinity ? `${min} or more` : `from ${min} to ${max}`;
      throw new OptionError(`${flag} takes a number ${range} (such as ${min === 0 ? '0.5' : '2.5'}), got ${JSON.stringify(given)}`);
    }
    return parsed;
  };
}

/**
 * The reader of a numeric option's flag, from the option's range in the option table: the CLI's own bounds where it
 * has them (a range taken only `above` its minimum has one), else the library's.
 */
export function inRange(flag: string, range: NumberRange): Reader<number> {
  const min = range.flag?.min ?? range.min;
  const max = range.flag?.max ?? range.max;
  return range.whole ? wholeNumber(flag, min, max) : decimal(flag, min, max);
}

/**
 * `--test-size`, as `datasets`' train_test_split reads it: a number with a decimal point is a fraction of the rows
 * (0.01 gives ceil(n × 0.01) test rows), whole digits a number of rows. 1.0 is the fraction "every row", which
 * leaves nothing to train on, so it is refused as train_test_split refuses it.
 */
export function testSize(value: unknown): number {
  const given = single('--test-size', value);
  if (/^\d+$/.test(given)) return Number(given);
  const fraction = /^(\d+\.\d*|\.\d+)$/.test(given) ? Number(given) : NaN;
  if (fraction >= 1) {
    throw new OptionError(`--test-size ${given} is a fraction of the rows that leaves none to train on; give a fraction below 1 (such as 0.05) or a number of rows (such as 100)`);
  }
  if (!(fraction >= 0)) {
    throw new OptionError(`--test-size takes a fraction of the rows with a decimal point (such as 0.01) or a whole number of rows (such as 100), got ${JSON.stringify(given)}`);
  }
  return fraction;
}
