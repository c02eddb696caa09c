import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FileMetaData } from 'hyparquet';
import type { InputFile, InputPlan, InputRowGroup } from '../plan/inspect-input.js';
import { readFooter } from '../parquet/read-column-pages.js';
import type { GroupBatch, SourceBatch, Stretch } from './source-batch.js';
import { pagedGroupBatches } from './paged-row-group.js';
import { dataError, wasmGroupBatches } from './wasm-batches.js';

/**
 * Reads the stretches of a row group (in order) in batches of at most `batchSize` rows, never across a stretch's end.
 * With the image column paged, the text columns are read once from the first stretch to the end of the last, and the
 * rows between stretches dropped; otherwise each stretch is read by itself (its batches hold the image bytes).
 */
function readRowGroup(
  input: InputFile,
  group: InputRowGroup,
  batchSize: number,
  paged: { handle: FileHandle; footer: FileMetaData } | null,
  stretches: readonly Stretch[],
  limits: Pick<ReadRange, 'maxBatchBytes' | 'onHeld'>,
): AsyncGenerator<GroupBatch> {
  return paged === null ? wasmGroupBatches(input, group, batchSize, stretches) : pagedGroupBatches(input, group, batchSize, paged, stretches, limits);
}

/** The directory image paths are taken from, for a file whose image column holds paths. */
function imageDirOf(file: InputFile): { imageDir?: string; imageRoot?: string } {
  return file.layout.kind === 'source' && file.layout.image === 'path' ? { imageDir: path.dirname(path.resolve(file.path)), imageRoot: file.root } : {};
}

/** Which rows to read, and rows at which batches must end (the ends of units of work, where checkpoints are taken). */
export interface ReadRange {
  /** Row ranges `[start, end)` (global indices), in order and apart. Default: every row. */
  ranges?: readonly (readonly [number, number])[];
  cuts?: readonly number[];
  /**
   * The most a batch may hold: its pages, when its worker reads them (else the column is read here), or its images,
   * when they are read here (a batch ends before they pass it; a row alone may). Default 64 MiB.
   */
  maxBatchBytes?: number;
  /** Told of image bytes the reader itself holds (a dictionary's entries not yet used): more, or fewer when negative. */
  onHeld?: (delta: number) => void;
}

/** The stretches of a row group that lie in `ranges`, cut at `cuts` (global row indices). */
function stretchesOf(group: InputRowGroup, groupFirstRow: number, ranges: readonly (readonly [number, number])[], cuts: readonly number[]): Stretch[] {
  const groupEnd = groupFirstRow + group.rows;
  const stretches: Stretch[] = [];
  for (const [rangeStart, rangeEnd] of ranges) {
    const start = Math.max(rangeStart, groupFirstRow);
    const end = Math.min(rangeEnd, groupEnd);
    if (start >= end) continue;
    const bounds = [start, ...cuts.filter((cut) => cut > start && cut < end), end];
    for (let at = 1; at < bounds.length; at++) {
      const from = bounds[at - 1] ?? start;
      stretches.push({ offset: from - groupFirstRow, rows: (bounds[at] ?? end) - from });
    }
  }
  return stretches;
}

/**
 * Reads the planned files in order, one row group at a time, and yields batches of at most `batchSize` rows of the
 * source columns, never crossing a row group nor a cut, of the rows in `ranges`. parquet-wasm loads a row group whole, so
 * each stretch is read once; in large row groups the image column is read a page at a time instead (see
 * read-column-pages), which keeps memory near one page however large the row group.
 *
 * @throws {InputError} when a file's data cannot be read although its footer could.
 */
export async function* readBatches(plan: InputPlan, batchSize: number, range: ReadRange = {}): AsyncGenerator<SourceBatch> {
  const ranges = range.ranges ?? [[0, plan.rows]];
  const cuts = range.cuts ?? [];
  for (const file of plan.files) {
    if (!ranges.some(([start, end]) => start < file.firstRow + file.rows && end > file.firstRow)) continue;
    await plan.ready?.(file);
    let paged: { handle: FileHandle; footer: FileMetaData } | null = null;
    try {
      let groupFirstRow = file.firstRow;
      for (const group of file.rowGroups) {
        const stretches = stretchesOf(group, groupFirstRow, ranges, cuts);
        groupFirstRow += group.rows;
        if (group.streamImages && paged === null && stretches.length > 0) {
          const handle = await open(file.path, 'r');
          paged = { handle, footer: await readFooter(handle, file.size) };
        }
        let read = 0;
        for await (const batch of readRowGroup(file, group, batchSize, group.streamImages ? paged : null, stretches, range)) {
          const { offset, ...rest } = batch;
          const firstRow = groupFirstRow - group.rows + offset;
          yield { ...rest, firstRow, file: file.path, ...imageDirOf(file), origin: { file, group, batchSize, stretch: { offset, rows: batch.rows } } };
          read += batch.rows;
        }
        const wanted = stretches.reduce((sum, stretch) => sum + stretch.rows, 0);
        if (read !== wanted) {
          throw dataError(file.path, group.index, new Error(`it yielded ${read} of the ${wanted} rows asked for, which its footer says it has`));
        }
      }
    } finally {
      await paged?.handle.close();
    }
  }
}

/**
 * Reads one batch again from its file, the same rows, for a retry after its worker died with it. Decodes its row
 * group's text columns up to the batch: slow, but only ever done for a batch that failed.
 */
export async function rereadBatch(batch: SourceBatch): Promise<SourceBatch> {
  const { file, group, batchSize, stretch } = batch.origin;
  let paged: { handle: FileHandle; footer: FileMetaData } | null = null;
  try {
    if (group.streamImages) {
      const handle = await open(file.path, 'r');
      paged = { handle, footer: await readFooter(handle, file.size) };
    }
    for await (const again of readRowGroup(file, group, batchSize, paged, [stretch], {})) {
      const { offset: _offset, ...rest } = again;
      return { ...rest, firstRow: batch.firstRow, file: batch.file, ...imageDirOf(file), origin: batch.origin };
    }
    throw dataError(file.path, group.index, new Error(`rows ${stretch.offset} to ${stretch.offset + stretch.rows} are no longer there`));
  } finally {
    await paged?.handle.close();
  }
}
