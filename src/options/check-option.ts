import { invalidOption } from '../errors.js';
import { RANGES, type NumberRange } from './option-table.js';

/** What `range` takes, in the words of the library's messages: `an integer from 1 to 100`, `a positive number`. */
function expected(range: NumberRange): string {
  if (range.whole) {
    if (range.max === undefined) return range.min === 1 ? 'positive integer' : `an integer ${range.min} or more`;
    return `an integer from ${range.min} to ${range.max}${range.why === undefined ? '' : ` (${range.why})`}`;
  }
  if (range.max !== undefined) return `a number from ${range.min} to ${range.max}`;
  if (range.above === true) return range.min === 0 ? 'a positive number' : `a number above ${range.min}`;
  return `a number ${range.min} or more`;
}

/**
 * Checks a numeric option against its range in {@link RANGES}, or against that range with `bounds` laid over it
 * (shardIndex, whose maximum depends on numShards). A whole number from 1 that is not one is told to be expected as a
 * `positive integer`, whatever its maximum.
 *
 * @throws {OptionError} naming the option, what it takes and what was received.
 */
export function checkNumber(name: keyof typeof RANGES, value: unknown, bounds: Partial<NumberRange> = {}): number {
  const range: NumberRange = { ...RANGES[name], ...bounds };
  const number = typeof value === 'number' && (range.whole ? Number.isSafeInteger(value) : Number.isFinite(value)) ? value : NaN;
  if (!(range.above === true ? number > range.min : number >= range.min)) {
    throw invalidOption(name, range.whole && range.min === 1 ? 'positive integer' : expected(range), value);
  }
  if (range.max !== undefined && number > range.max) throw invalidOption(name, expected(range), value);
  return number;
}

/**
 * Checks an option that takes one of a few words.
 *
 * @throws {OptionError} naming the option and the words it takes.
 */
export function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw invalidOption(name, `one of ${allowed.join(', ')}`, value);
  return value as T;
}
