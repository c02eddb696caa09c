import { createRandom, randomInt } from '../util/random.js';
import { invalidOption } from '../errors.js';

export interface SplitPlan {
  /** One byte per global row index: 1 for the test split, 0 for train. */
  testMask: Uint8Array;
  testRows: number;
  trainRows: number;
}

/**
 * How many rows go to the test split: `ceil(rows * testSize)` for a fraction in (0, 1), exactly `testSize` for a
 * whole number >= 1, as `datasets.train_test_split` does.
 *
 * @throws {OptionError} when testSize is negative, not a number, or leaves no row to train on.
 */
export function countTestRows(rows: number, testSize: number): number {
  if (!Number.isFinite(testSize) || testSize < 0) {
    throw invalidOption('testSize', 'a fraction in [0, 1) or a whole number of rows', testSize);
  }
  let count: number;
  if (testSize < 1) count = Math.ceil(rows * testSize);
  else if (Number.isInteger(testSize)) count = testSize;
  else throw invalidOption('testSize', 'a fraction in [0, 1) or a whole number of rows', testSize);
  // As datasets' train_test_split: a split that leaves nothing to train on is refused, however it is written.
  if (count >= rows && rows > 0) {
    throw invalidOption('testSize', `fewer test rows than the ${rows} input rows (${count} would leave none to train on)`, testSize);
  }
  return count;
}

/**
 * Decides, before any row is read, which global row indices form the test split: the first `testRows` positions of a
 * seeded Fisher-Yates permutation of all indices. The same rows, seed and test size always give the same split.
 */
export function planSplit(rows: number, testSize: number, seed: number): SplitPlan {
  const testRows = countTestRows(rows, testSize);
  const order = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) order[i] = i;
  const random = createRandom(seed);
  const testMask = new Uint8Array(rows);
  for (let i = 0; i < testRows; i++) {
    const j = i + randomInt(random, rows - i);
    const picked = order[j] as number;
    order[j] = order[i] as number;
    order[i] = picked;
    testMask[picked] = 1;
  }
  return { testMask, testRows, trainRows: rows - testRows };
}
