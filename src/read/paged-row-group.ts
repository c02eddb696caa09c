import type { FileHandle } from 'node:fs/promises';
import type { FileMetaData } from 'hyparquet';
import { InputError } from '../errors.js';
import type { InputFile, InputRowGroup } from '../plan/inspect-input.js';
import { columnsOf, imageLeaves } from '../source/source-layout.js';
import { MAX_BATCH_BYTES, pageRange, pagesForWorkers, type ImagePageRange } from './page-range.js';
import { readColumnPages, scanColumnPages, type ColumnPages } from '../parquet/read-column-pages.js';
import { readSourceRows } from './source-rows-from-arrow.js';
import { streamColumnValues } from '../parquet/stream-column-values.js';
import type { SourceRow } from '../source/source-row.js';
import type { GroupBatch, Stretch } from './source-batch.js';
import { dataError, wasmBatches } from './wasm-batches.js';

/** Values of one paged column, taken `count` at a time across page boundaries. */
class PagedValues {
  readonly #pages: AsyncGenerator<(Uint8Array | string | null)[]>;
  #page: (Uint8Array | string | null)[] = [];
  #at = 0;

  constructor(pages: AsyncGenerator<(Uint8Array | string | null)[]>) {
    this.#pages = pages;
  }

  async take(count: number): Promise<(Uint8Array | string | null)[]> {
    const out: (Uint8Array | string | null)[] = [];
    await this.#walk(count, (values) => out.push(...values));
    return out;
  }

  /** Stops reading: the pages' generator finishes (and lets go of what it holds). */
  async close(): Promise<void> {
    await this.#pages.return(undefined);
  }

  /** Passes over `count` values without keeping them; how many there were. */
  async skip(count: number): Promise<number> {
    let skipped = 0;
    await this.#walk(count, (values) => (skipped += values.length));
    return skipped;
  }

  async #walk(count: number, use: (values: (Uint8Array | string | null)[]) => void): Promise<void> {
    for (let done = 0; done < count; ) {
      if (this.#at >= this.#page.length) {
        const next = await this.#pages.next();
        if (next.done === true) break;
        this.#page = next.value;
        this.#at = 0;
        continue;
      }
      const take = Math.min(count - done, this.#page.length - this.#at);
      use(this.#page.slice(this.#at, this.#at + take));
      this.#at += take;
      done += take;
    }
    // What is passed is not kept: a page of values of its own is let go once taken.
    if (this.#at >= this.#page.length) this.#page = [];
  }
}

/** The rows of one batch read by parquet-wasm (the row group's rows `at` to `at + rows`) that lie in one stretch: `from` to `to`. */
interface StretchPart {
  from: number;
  to: number;
  at: number;
  rows: number;
  data: SourceRow[];
  imagePaths: (string | null)[];
}

/** How a streamed image column fails: it ends before `row` has its image, or its bytes do not read. */
interface StreamFailures {
  endedAt: (row: number) => InputError;
  bytes: (error: unknown) => InputError;
}

/**
 * The batches of `part` with images of their own, from `streamed`, whose next image is row `cursor.imageAt`'s (moved on
 * as images are taken).
 */
async function* streamedBatches(streamed: PagedValues, cursor: { imageAt: number }, part: StretchPart, maxBatchBytes: number, fail: StreamFailures): AsyncGenerator<GroupBatch> {
  const { from, to, at, rows, data, imagePaths } = part;
  // Images of their own, taken a row at a time (the reader holds no more than the batch it fills): a batch is
  // cut where its images would pass maxBatchBytes (a row alone may). Rows between stretches are passed over.
  let start = from;
  let held = 0;
  try {
    if ((await streamed.skip(from - cursor.imageAt)) !== from - cursor.imageAt) throw fail.endedAt(cursor.imageAt);
  } catch (error) {
    throw error instanceof InputError ? error : fail.bytes(error);
  }
  for (let row = from; row < to; row++) {
    let value: Uint8Array | string | null | undefined;
    try {
      [value] = await streamed.take(1);
    } catch (error) {
      throw fail.bytes(error);
    }
    if (value === undefined) throw fail.endedAt(row);
    cursor.imageAt = row + 1;
    const image = value instanceof Uint8Array ? value : null;
    const imagePath = imagePaths[row - at] ?? null;
    const source = data[row - at];
    if (source !== undefined) source.image = image === null && imagePath === null ? null : { bytes: image, path: imagePath };
    const size = image?.byteLength ?? 0;
    if (row > start && held + size > maxBatchBytes) {
      yield { rows: row - start, data: data.slice(start - at, row - at), offset: start };
      start = row;
      held = 0;
    }
    held += size;
  }
  yield { rows: to - start, data: start === at && to === at + rows ? data : data.slice(start - at, to - at), offset: start };
}

/**
 * Reads the stretches of a row group (in order) with its image column paged: the text columns are read once from the
 * first stretch to the end of the last, and the rows between stretches dropped.
 */
export async function* pagedGroupBatches(
  input: InputFile,
  group: InputRowGroup,
  batchSize: number,
  paged: { handle: FileHandle; footer: FileMetaData },
  stretches: readonly Stretch[],
  limits: { maxBatchBytes?: number; onHeld?: (delta: number) => void },
): AsyncGenerator<GroupBatch> {
  const maxBatchBytes = limits.maxBatchBytes ?? MAX_BATCH_BYTES;
  const first = stretches[0];
  const last = stretches.at(-1);
  if (first === undefined || last === undefined) return;
  // The image bytes are left in the file: only their pages are listed here, and each worker reads its own.
  const leaves = imageLeaves(input.layout);
  if (leaves === null) throw dataError(input.path, group.index, new Error('its image column cannot be read by pages'));
  const bytesColumn = `the column ${leaves.bytes.join('.')}`;
  let bytes: ColumnPages;
  try {
    bytes = await scanColumnPages(paged.handle, paged.footer, group.index, leaves.bytes);
  } catch (error) {
    throw dataError(input.path, group.index, error, bytesColumn);
  }
  const paths = leaves.path === null ? null : new PagedValues(readColumnPages(paged.handle, paged.footer, group.index, leaves.path));
  // Pages too large for each worker to read its own share of are read once, here, a chunk at a time, and each batch
  // gets its images in buffers of its own (see pagesForWorkers).
  const streamed = pagesForWorkers(bytes, batchSize, limits.maxBatchBytes) ? null : new PagedValues(streamColumnValues(paged.handle, bytes, limits.onHeld));
  /** The row of the row group whose image the stream gives next. */
  const cursor = { imageAt: 0 };
  try {
    await paths?.skip(first.offset);
  } catch (error) {
    throw dataError(input.path, group.index, error, `the column ${leaves.path?.join('.') ?? ''}`);
  }
  const span = { offset: first.offset, rows: last.offset + last.rows - first.offset };
  const fail: StreamFailures = {
    endedAt: (row) => dataError(input.path, group.index, new Error(`the image column ended after ${row - first.offset} of ${span.rows} rows`)),
    bytes: (error) => dataError(input.path, group.index, error, bytesColumn),
  };
  let at = first.offset;
  let next = 0;
  try {
    for await (const batch of wasmBatches(input.path, group, batchSize, columnsOf(input.layout, true), span)) {
      const rows = batch.rows;
      let imagePaths: (string | null)[];
      try {
        imagePaths = paths === null ? Array.from({ length: rows }, () => null) : (await paths.take(rows)).map((value) => (typeof value === 'string' ? value : null));
      } catch (error) {
        throw dataError(input.path, group.index, error, `the column ${leaves.path?.join('.') ?? ''}`);
      }
      if (imagePaths.length !== rows) throw fail.endedAt(at + imagePaths.length);
      const data = readSourceRows(batch.ipc, { bytes: [], paths: imagePaths }, input.layout);
      // The parts of this batch that lie in stretches, each a batch of its own.
      for (; next < stretches.length; next++) {
        const stretch = stretches[next] as Stretch;
        const from = Math.max(stretch.offset, at);
        const to = Math.min(stretch.offset + stretch.rows, at + rows);
        if (from >= at + rows) break;
        if (from < to && streamed === null) {
          let imagePages: ImagePageRange;
          try {
            imagePages = pageRange(input.path, bytes, from, to - from);
          } catch (error) {
            throw fail.bytes(error);
          }
          yield { rows: to - from, data: from === at && to === at + rows ? data : data.slice(from - at, to - at), imagePages, offset: from };
        } else if (from < to && streamed !== null) {
          yield* streamedBatches(streamed, cursor, { from, to, at, rows, data, imagePaths }, maxBatchBytes, fail);
        }
        if (stretch.offset + stretch.rows > at + rows) break;
      }
      at += rows;
    }
  } finally {
    // A row group left before its end (a retry reads one batch) lets go of what its reader holds.
    await streamed?.close();
  }
}
