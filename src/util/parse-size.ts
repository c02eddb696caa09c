import { invalidOption } from '../errors.js';

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * Parses a size the way `datasets` reads `max_shard_size`: `500MB` is 500 × 10^6 bytes, `1GiB` is 2^30; a plain
 * number is bytes.
 *
 * @throws {OptionError} naming `name` when the value is not a positive size.
 */
export function parseSize(value: string | number, name: string): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value > 0) return value;
    throw invalidOption(name, 'a positive whole number of bytes or a size such as 500MB', value);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(value);
  const unit = UNITS[(match?.[2] ?? 'b').toLowerCase()];
  const bytes = match === null || unit === undefined ? Number.NaN : Math.floor(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw invalidOption(name, 'a positive size such as 500MB, 1GiB or a number of bytes', value);
  }
  return bytes;
}
