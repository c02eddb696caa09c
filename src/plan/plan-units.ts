import type { InputPlan } from './inspect-input.js';

/**
 * Units of work: the input cut, from its footers alone, into contiguous row ranges of about the same size. A unit is
 * what a resumed run keeps or redoes and what a part of a multi-machine run converts (issue 11); the cut depends
 * only on the footers and the target size, so every run and every machine cuts the same input the same way.
 */
export interface WorkUnit {
  index: number;
  /** Index of the unit's file in `plan.files`; a unit never spans two files. */
  file: number;
  /** Global index of the unit's first row, and its row count. */
  firstRow: number;
  rows: number;
  /** Uncompressed bytes of its source columns, estimated row by row from its row groups' sizes. */
  bytes: number;
}

/**
 * Cuts the input into units of about `targetBytes` of source data: row groups are split (evenly by rows) when larger,
 * and consecutive small ones of the same file merged until the target is reached.
 */
export function planUnits(plan: InputPlan, targetBytes: number): WorkUnit[] {
  if (!(targetBytes > 0)) throw new RangeError(`targetBytes must be positive, got ${targetBytes}`);
  const units: WorkUnit[] = [];
  for (const [fileIndex, file] of plan.files.entries()) {
    let open: WorkUnit | null = null;
    let row = file.firstRow;
    for (const group of file.rowGroups) {
      // A row group larger than the target is cut into pieces of even rows, each a unit of its own.
      const pieces = Math.max(1, Math.min(group.rows, Math.ceil(group.bytes / targetBytes)));
      for (let piece = 0; piece < pieces; piece++) {
        const rows = Math.floor((group.rows * (piece + 1)) / pieces) - Math.floor((group.rows * piece) / pieces);
        const bytes = group.rows === 0 ? 0 : (group.bytes * rows) / group.rows;
        if (open !== null && (pieces > 1 || open.bytes + bytes > targetBytes)) {
          units.push(open);
          open = null;
        }
        if (open === null) open = { index: units.length, file: fileIndex, firstRow: row, rows: 0, bytes: 0 };
        open.rows += rows;
        open.bytes += bytes;
        row += rows;
        if (pieces > 1) {
          units.push(open);
          open = null;
        }
      }
    }
    if (open !== null && open.rows > 0) units.push(open);
  }
  return units.map((unit, index) => ({ ...unit, index, bytes: Math.round(unit.bytes) }));
}

/**
 * Part `index` of `count` (from 0): a contiguous run of units, the cut made where the running total of bytes crosses
 * each `total × i / count`, so every part does about 1/count of the work. Parts cover the units exactly once.
 */
export function unitsOfPart(units: readonly WorkUnit[], count: number, index: number): WorkUnit[] {
  const [start, end] = partBounds(units, count, index);
  return units.slice(start, end);
}

/** The units of part `index` of `count`, as `[start, end)` indices into `units` (see {@link unitsOfPart}). */
function partBounds(units: readonly WorkUnit[], count: number, index: number): [number, number] {
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`part ${index} of ${count} does not exist`);
  }
  const total = units.reduce((sum, unit) => sum + unit.bytes, 0);
  const start = (part: number): number => {
    if (part === 0) return 0;
    if (part === count) return units.length;
    let before = 0;
    for (const [at, unit] of units.entries()) {
      // A unit goes to the part in which its middle falls.
      if (before + unit.bytes / 2 >= (total * part) / count) return at;
      before += unit.bytes;
    }
    return units.length;
  };
  return [start(index), start(index + 1)];
}

/** How finely the input is cut before it is shared out to parts: a part's share is right to about 1/4096 of it. */
const PART_GRAIN = 4096;

/** The rows of one part of a multi-machine run: `[firstRow, endRow)`. */
export interface PartRange {
  index: number;
  count: number;
  firstRow: number;
  endRow: number;
}

/**
 * The rows part `index` of `count` (from 0) converts: contiguous, about 1/count of the input's bytes, cut from the
 * footers alone and whatever the options, so that every part of a run cuts the input the same way and the parts cover
 * every row exactly once. A part may get no rows (more parts than row groups and rows to cut).
 *
 * @throws {RangeError} when the part does not exist.
 */
export function partRange(plan: InputPlan, count: number, index: number): PartRange {
  const total = plan.files.reduce((sum, file) => sum + file.rowGroups.reduce((bytes, group) => bytes + group.bytes, 0), 0);
  const units = planUnits(plan, Math.max(1, total / PART_GRAIN));
  const [start, end] = partBounds(units, count, index);
  const first = units[start]?.firstRow ?? plan.rows;
  const rows = units.slice(start, end).reduce((sum, unit) => sum + unit.rows, 0);
  return { index, count, firstRow: first, endRow: first + rows };
}

/**
 * The uncompressed bytes of the input before each row, from its row groups' sizes (each row of a group taken as an
 * even share): what progress is measured in, since rows differ in size from file to file.
 */
export function bytesBefore(plan: InputPlan): (row: number) => number {
  const starts: number[] = [];
  const before: number[] = [];
  const perRow: number[] = [];
  let bytes = 0;
  for (const file of plan.files) {
    let row = file.firstRow;
    for (const group of file.rowGroups) {
      starts.push(row);
      before.push(bytes);
      perRow.push(group.rows === 0 ? 0 : group.bytes / group.rows);
      row += group.rows;
      bytes += group.bytes;
    }
  }
  return (row) => {
    let low = 0;
    let high = starts.length - 1;
    if (high < 0) return 0;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((starts[middle] ?? 0) <= row) low = middle;
      else high = middle - 1;
    }
    return Math.round((before[low] ?? 0) + (row - (starts[low] ?? 0)) * (perRow[low] ?? 0));
  };
}
