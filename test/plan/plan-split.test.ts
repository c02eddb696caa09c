import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countTestRows, planSplit } from '../../src/plan/plan-split.js';

describe('countTestRows', () => {
  it('rounds a fraction up as datasets does: 832 test rows of 83,132 at 0.01', () => {
    assert.equal(countTestRows(83_132, 0.01), 832);
    assert.equal(countTestRows(2000, 0.01), 20);
    assert.equal(countTestRows(101, 0.01), 2);
    assert.equal(countTestRows(10, 0), 0);
  });

  it('takes a whole number as a row count', () => {
    assert.equal(countTestRows(500, 7), 7);
  });

  it('refuses a count above the rows, a negative size and a non-integer above 1', () => {
    assert.throws(() => countTestRows(5, 6), /testSize/);
    // However it is written, a test split of every row leaves nothing to train on: refused, as 1.0 is.
    assert.throws(() => countTestRows(1000, 1000), /would leave none to train on/);
    assert.throws(() => countTestRows(1, 0.5), /would leave none to train on/);
    assert.equal(countTestRows(1000, 999), 999);
    assert.throws(() => countTestRows(5, -0.1), /testSize/);
    assert.throws(() => countTestRows(5, 1.5), /testSize/);
  });
});

describe('planSplit', () => {
  it('marks exactly the planned number of test rows', () => {
    const plan = planSplit(2000, 0.01, 42);
    assert.equal(plan.testRows, 20);
    assert.equal(plan.trainRows, 1980);
    assert.equal(plan.testMask.reduce((sum, value) => sum + value, 0), 20);
  });

  it('gives the same split for the same seed and another for another seed', () => {
    const a = planSplit(1000, 0.05, 42).testMask;
    const b = planSplit(1000, 0.05, 42).testMask;
    const c = planSplit(1000, 0.05, 43).testMask;
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('spreads test rows over the whole input rather than taking a block', () => {
    const mask = planSplit(10_000, 0.01, 42).testMask;
    const positions = [...mask.keys()].filter((index) => mask[index] === 1);
    assert.ok((positions[0] ?? 0) < 2500, 'some test rows in the first quarter');
    assert.ok((positions.at(-1) ?? 0) > 7500, 'some test rows in the last quarter');
  });
});
