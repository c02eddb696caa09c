import { openAsBlob } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { FileMetaData } from 'hyparquet';
import { ParquetFile, type RecordBatch as WasmRecordBatch } from 'parquet-wasm';
import { InputError } from './errors.js';
import type { InputFile, InputPlan, InputRowGroup } from './inspect-input.js';
import { SOURCE_COLUMNS, SOURCE_STRING_COLUMNS } from './output-schema.js';
import { pageRange } from './page-range.js';
import { readColumnPages, readFooter, scanColumnPages, type ColumnPages } from './read-column-pages.js';
import { readSourceRows } from './source-rows.js';
import type { ImagePageRange, SourceImages, SourceRow } from './types.js';

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
  file: string;
  /** Where the batch came from, so it can be read again (see {@link rereadBatch}) rather than kept. */
  origin: BatchOrigin;
}

export interface BatchOrigin {
  file: InputFile;
  group: InputRowGroup;
  batchSize: number;
  /** Position of the batch among its row group's batches. */
  index: number;
}

function dataError(file: string, group: number, error: unknown): InputError {
  return new InputError('ERR_PARQUET_DATA', `${file}: row group ${group} cannot be read (${String(error)}).`, { cause: error, file });
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
    while (out.length < count) {
      if (this.#at >= this.#page.length) {
        const next = await this.#pages.next();
        if (next.done === true) break;
        this.#page = next.value;
        this.#at = 0;
        continue;
      }
      const take = Math.min(count - out.length, this.#page.length - this.#at);
      out.push(...this.#page.slice(this.#at, this.#at + take));
      this.#at += take;
    }
    return out;
  }
}

/** Batches of a row group read by parquet-wasm, whole or without the image column. */
async function* wasmBatches(parquet: ParquetFile, file: string, group: InputRowGroup, batchSize: number, columns: string[]): AsyncGenerator<WasmRecordBatch> {
  let stream: ReadableStream<WasmRecordBatch>;
  try {
    stream = await parquet.stream({ rowGroups: [group.index], batchSize, columns });
  } catch (error) {
    throw dataError(file, group.index, error);
  }
  const reader = stream.getReader();
  for (;;) {
    let next;
    try {
      next = await reader.read();
    } catch (error) {
      throw dataError(file, group.index, error);
    }
    if (next.done) return;
    yield next.value;
  }
}

async function* readRowGroup(
  parquet: ParquetFile,
  input: InputFile,
  group: InputRowGroup,
  batchSize: number,
  paged: { handle: FileHandle; footer: FileMetaData } | null,
): AsyncGenerator<Omit<SourceBatch, 'firstRow' | 'file' | 'origin'>> {
  if (paged === null) {
    for await (const batch of wasmBatches(parquet, input.path, group, batchSize, [...SOURCE_COLUMNS])) {
      const rows = batch.numRows;
      // intoIPCStream consumes the wasm batch: its memory is released by the call.
      yield { rows, data: readSourceRows(batch.intoIPCStream(), undefined) };
    }
    return;
  }
  // The image bytes are left in the file: only their pages are listed here, and each worker reads its own.
  let bytes: ColumnPages;
  try {
    bytes = await scanColumnPages(paged.handle, paged.footer, group.index, ['image', 'bytes']);
  } catch (error) {
    throw dataError(input.path, group.index, error);
  }
  const paths = new PagedValues(readColumnPages(paged.handle, paged.footer, group.index, ['image', 'path']));
  let first = 0;
  for await (const batch of wasmBatches(parquet, input.path, group, batchSize, [...SOURCE_STRING_COLUMNS])) {
    const rows = batch.numRows;
    const ipc = batch.intoIPCStream();
    let images: SourceImages;
    let imagePages: ImagePageRange;
    try {
      imagePages = pageRange(input.path, bytes, first, rows);
      const imagePaths = (await paths.take(rows)).map((value) => (typeof value === 'string' ? value : null));
      images = { bytes: [], paths: imagePaths };
    } catch (error) {
      throw dataError(input.path, group.index, error);
    }
    if (images.paths.length !== rows) {
      throw dataError(input.path, group.index, new Error(`the image column ended after ${images.paths.length} of ${rows} rows`));
    }
    first += rows;
    yield { rows, data: readSourceRows(ipc, images), imagePages };
  }
}

/**
 * Reads the planned files in order, one row group at a time, and yields batches of at most `batchSize` rows of the
 * source columns, never crossing a row group. parquet-wasm loads a row group whole, so each is read exactly once; in
 * large row groups the image column is read a page at a time instead (see read-column-pages), which keeps memory near
 * one page however large the row group.
 *
 * @throws {InputError} when a file's data cannot be read although its footer could.
 */
export async function* readBatches(plan: InputPlan, batchSize: number): AsyncGenerator<SourceBatch> {
  for (const file of plan.files) {
    await plan.ready?.(file);
    const parquet = await ParquetFile.fromFile(await openAsBlob(file.path));
    let paged: { handle: FileHandle; footer: FileMetaData } | null = null;
    try {
      let firstRow = file.firstRow;
      for (const group of file.rowGroups) {
        if (group.streamImages && paged === null) {
          const handle = await open(file.path, 'r');
          paged = { handle, footer: await readFooter(handle, file.size) };
        }
        let read = 0;
        let index = 0;
        for await (const batch of readRowGroup(parquet, file, group, batchSize, group.streamImages ? paged : null)) {
          yield { ...batch, firstRow, file: file.path, origin: { file, group, batchSize, index: index++ } };
          firstRow += batch.rows;
          read += batch.rows;
        }
        if (read !== group.rows) {
          throw dataError(file.path, group.index, new Error(`it yielded ${read} rows but its footer says ${group.rows}`));
        }
      }
    } finally {
      parquet.free();
      await paged?.handle.close();
    }
  }
}

/**
 * Reads one batch again from its file, the same rows cut the same way, for a retry after its worker died with it.
 * Reads its row group up to the batch: slow, but only ever done for a batch that failed.
 */
export async function rereadBatch(batch: SourceBatch): Promise<SourceBatch> {
  const { file, group, batchSize, index } = batch.origin;
  const parquet = await ParquetFile.fromFile(await openAsBlob(file.path));
  let paged: { handle: FileHandle; footer: FileMetaData } | null = null;
  try {
    if (group.streamImages) {
      const handle = await open(file.path, 'r');
      paged = { handle, footer: await readFooter(handle, file.size) };
    }
    let position = 0;
    for await (const again of readRowGroup(parquet, file, group, batchSize, paged)) {
      if (position++ === index) return { ...again, firstRow: batch.firstRow, file: batch.file, origin: batch.origin };
    }
    throw dataError(file.path, group.index, new Error(`batch ${index} is no longer there`));
  } finally {
    parquet.free();
    await paged?.handle.close();
  }
}
