import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InputFile, InputPlan } from '../../src/plan/inspect-input.js';
import { planUnits, unitsOfPart, type WorkUnit } from '../../src/plan/plan-units.js';

/** A plan of files, each a list of [rows, bytes] row groups. */
function plan(files: [number, number][][]): InputPlan {
  let firstRow = 0;
  const planned: InputFile[] = files.map((groups, index) => {
    const rows = groups.reduce((sum, [count]) => sum + count, 0);
    const file: InputFile = {
      path: `f${index}.parquet`,
      size: 0,
      rows,
      firstRow,
      rowGroups: groups.map(([count, bytes], group) => ({ index: group, rows: count, bytes, outputBytes: bytes, streamImages: true })),
      footerSha256: '',
      layout: { kind: 'converted' },
      root: '',
    };
    firstRow += rows;
    return file;
  });
  return { files: planned, rows: firstRow, bytes: 0, outputBytes: 0 };
}

/** Units are contiguous, cover every row once, and keep to their file. */
function assertCovers(units: WorkUnit[], input: InputPlan): void {
  let row = 0;
  for (const [index, unit] of units.entries()) {
    assert.equal(unit.index, index);
    assert.equal(unit.firstRow, row);
    const file = input.files[unit.file];
    assert.ok(file !== undefined && unit.firstRow >= file.firstRow && unit.firstRow + unit.rows <= file.firstRow + file.rows, `unit ${index} keeps to its file`);
    assert.ok(unit.rows > 0);
    row += unit.rows;
  }
  assert.equal(row, input.rows);
}

describe('planUnits', () => {
  it('cuts a large row group into even pieces and merges small ones, never across a file', () => {
    // The source's layout: one large row group a file; and a file of many small row groups.
    const input = plan([[[6000, 1000e6]], [[100, 10e6], [100, 10e6], [100, 10e6], [100, 10e6], [100, 10e6]], [[7, 1e6]]]);
    const units = planUnits(input, 128e6);
    assertCovers(units, input);
    // 1,000 MB in pieces of at most 128 MB: 8 of 750 rows; 50 MB of small groups in one unit; the last file alone.
    assert.deepEqual(units.map((unit) => [unit.file, unit.rows]), [...Array.from({ length: 8 }, () => [0, 750]), [1, 500], [2, 7]]);
    assert.ok(units.every((unit) => unit.bytes <= 128e6));
    assert.deepEqual(planUnits(input, 128e6), units, 'the same footers cut the same way');
  });

  it('shares the units out to parts of about the same size, each unit to exactly one part', () => {
    const input = plan([[[6000, 1000e6]], [[6000, 1000e6]], [[3000, 500e6]], [[300, 50e6]]]);
    const units = planUnits(input, 64e6);
    for (const count of [1, 2, 3, 5, 7]) {
      const parts = Array.from({ length: count }, (_, index) => unitsOfPart(units, count, index));
      assert.deepEqual(parts.flat(), units, `${count} parts cover the units in order`);
      const total = units.reduce((sum, unit) => sum + unit.bytes, 0);
      const largest = Math.max(...units.map((unit) => unit.bytes));
      for (const part of parts) {
        const bytes = part.reduce((sum, unit) => sum + unit.bytes, 0);
        assert.ok(Math.abs(bytes - total / count) <= largest, `${count} parts: ${bytes} against ${total / count}`);
      }
    }
    assert.throws(() => unitsOfPart(units, 3, 3), /part 3 of 3/);
  });
});
