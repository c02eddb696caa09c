import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FileMetaData } from 'hyparquet';
import { InputError } from '../errors.js';
import type { InputFile, InputPlan, InputRowGroup } from '../plan/inspect-input.js';
import { columnsOf, imageLeaves } from '../source/source-layout.js';
import { MAX_BATCH_BYTES, pageRange, pagesForWorkers } from './page-range.js';
import { readColumnPages, readFooter, scanColumnPages, type ColumnPages } from '../parquet/read-column-pages.js';
import { readRowGroupBatches, type IpcBatch } from '../parquet/parquet-reader.js';
import { readSourceRows } from './source-rows-from-arrow.js';
import { streamColumnValues } from '../parquet/stream-column-values.js';
import type { ImagePageRange } from './page-range.js';
import type { SourceRow } from '../source/source-row.js';

export interface SourceBatch {
  /** Global index of the first row. */
  firstRow: number;
  rows: number;
  /**
   * The source rows as plain data. Image bytes, when read here, are views into one buffer of the batch's own (safe to
   * transfer); with `imagePages`, images hold only their paths and the worker reads their bytes itself.
   */
  data: SourceRow[];
  imagePages?: ImagePageRange | undefined;
  /** Where the images' paths are taken from, when the image column holds paths to image files (see ConvertTask). */
  imageDir?: string | undefined;
  imageRoot?: string | undefined;
  file: string;
  /** Where the batch came from, so it can be read again (see {@link rereadBatch}) rather than kept. */
  origin: BatchOrigin;
}

export interface BatchOrigin {
  file: InputFile;
  group: InputRowGroup;
  batchSize: number;
  /** The batch's rows in its row group: from `offset`, `rows` of them. */
  stretch: Stretch;
}

/** Rows `offset` to `offset + rows` of a row group. */
interface Stretch {
  offset: number;
  rows: number;
}

/**
 * The memory a batch holds while it is converted: the pages its worker reads (compressed and decompressed, with their
 * dictionary), or the buffers its images are in.
 */
export function batchBytes(batch: Pick<SourceBatch, 'data' | 'imagePages'>): number {
  let total = 0;
  const pages = batch.imagePages;
  if (pages !== undefined) {
    for (const page of pages.dictionary === null ? pages.pages : [pages.dictionary, ...pages.pages]) total += page.compressedSize + page.header.uncompressed_page_size;
    return total;
  }
  const buffers = new Set<ArrayBufferLike>();
  for (const row of batch.data) {
    const bytes = row.image?.bytes;
    if (bytes == null || buffers.has(bytes.buffer)) continue;
    buffers.add(bytes.buffer);
    total += bytes.buffer.byteLength;
  }
  return total;
}

function dataError(file: string, group: number, error: unknown, column?: string): InputError {
  // parquet-wasm says no more than that it stopped (a Rust panic is a trap in WebAssembly).
  const reason = /\bunreachable\b/.test(String(error)) ? 'its data does not decode: parquet-wasm stopped on it' : String(error);
  return new InputError('ERR_PARQUET_DATA', `${file}: ${column === undefined ? '' : `${column} of `}row group ${group} cannot be read (${reason}).`, { cause: error, file });
}

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

/**
 * Which of `columns` (top-level names) in row group `group` of `file` does not decode, page by page with hyparquet:
 * parquet-wasm, reading them together, does not say. Null when each does (or the file cannot be opened).
 */
async function failingColumn(file: string, group: number, columns: readonly string[]): Promise<string | null> {
  const handle = await open(file, 'r').catch(() => null);
  if (handle === null) return null;
  try {
    const footer = await readFooter(handle, (await handle.stat()).size);
    const leaves = (footer.row_groups[group]?.columns ?? []).flatMap((chunk) => (chunk.meta_data === undefined ? [] : [chunk.meta_data.path_in_schema]));
    for (const leaf of leaves.filter((leaf) => columns.includes(leaf[0] ?? ''))) {
      try {
        for await (const _page of readColumnPages(handle, footer, group, leaf)) {
          // decoded, and let go
        }
      } catch {
        return leaf.join('.');
      }
    }
    return null;
  } catch {
    return null;
  } finally {
    await handle.close();
  }
}

/** Batches of a row group read by parquet-wasm (in its thread), whole or without the image column. */
async function* wasmBatches(file: string, group: InputRowGroup, batchSize: number, columns: string[], stretch: Stretch): AsyncGenerator<IpcBatch> {
  const batches = readRowGroupBatches(file, { rowGroup: group.index, batchSize, columns, offset: stretch.offset, limit: stretch.rows });
  for (;;) {
    let next;
    try {
      next = await batches.next();
    } catch (error) {
      const column = await failingColumn(file, group.index, columns);
      throw dataError(file, group.index, error, column === null ? `one of the columns ${columns.join(', ')}` : `the column ${column}`);
    }
    if (next.done === true) return;
    yield next.value;
  }
}

/** A batch of a row group: its rows from `offset` (within the group). */
type GroupBatch = Omit<SourceBatch, 'firstRow' | 'file' | 'origin'> & { offset: number };

/**
 * Reads the stretches of a row group (in order) in batches of at most `batchSize` rows, never across a stretch's end.
 * With the image column paged, the text columns are read once from the first stretch to the end of the last, and the
 * rows between stretches dropped; otherwise each stretch is read by itself (its batches hold the image bytes).
 */
async function* readRowGroup(
  input: InputFile,
  group: InputRowGroup,
  batchSize: number,
  paged: { handle: FileHandle; footer: FileMetaData } | null,
  stretches: readonly Stretch[],
  limits: Pick<ReadRange, 'maxBatchBytes' | 'onHeld'>,
): AsyncGenerator<GroupBatch> {
  const maxBatchBytes = limits.maxBatchBytes ?? MAX_BATCH_BYTES;
  const first = stretches[0];
  const last = stretches.at(-1);
  if (first === undefined || last === undefined) return;
  if (paged === null) {
    for (const stretch of stretches) {
      let offset = stretch.offset;
      for await (const batch of wasmBatches(input.path, group, batchSize, columnsOf(input.layout), stretch)) {
        const rows = batch.rows;
        yield { rows, data: readSourceRows(batch.ipc, undefined, input.layout), offset };
        offset += rows;
      }
    }
    return;
  }
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
  let imageAt = 0;
  try {
    await paths?.skip(first.offset);
  } catch (error) {
    throw dataError(input.path, group.index, error, `the column ${leaves.path?.join('.') ?? ''}`);
  }
  const span = { offset: first.offset, rows: last.offset + last.rows - first.offset };
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
      const ended = (read: number): InputError => dataError(input.path, group.index, new Error(`the image column ended after ${read} of ${span.rows} rows`));
      if (imagePaths.length !== rows) throw ended(at - first.offset + imagePaths.length);
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
            throw dataError(input.path, group.index, error, bytesColumn);
          }
          yield { rows: to - from, data: from === at && to === at + rows ? data : data.slice(from - at, to - at), imagePages, offset: from };
        } else if (from < to && streamed !== null) {
          // Images of their own, taken a row at a time (the reader holds no more than the batch it fills): a batch is
          // cut where its images would pass maxBatchBytes (a row alone may). Rows between stretches are passed over.
          let start = from;
          let held = 0;
          try {
            if ((await streamed.skip(from - imageAt)) !== from - imageAt) throw ended(imageAt - first.offset);
          } catch (error) {
            throw error instanceof InputError ? error : dataError(input.path, group.index, error, bytesColumn);
          }
          for (let row = from; row < to; row++) {
            let value: Uint8Array | string | null | undefined;
            try {
              [value] = await streamed.take(1);
            } catch (error) {
              throw dataError(input.path, group.index, error, bytesColumn);
            }
            if (value === undefined) throw ended(row - first.offset);
            imageAt = row + 1;
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
        if (stretch.offset + stretch.rows > at + rows) break;
      }
      at += rows;
    }
  } finally {
    // A row group left before its end (a retry reads one batch) lets go of what its reader holds.
    await streamed?.close();
  }
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
