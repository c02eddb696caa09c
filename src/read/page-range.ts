import { usesDictionary, type ColumnPages, type ColumnSpec, type PageRef } from '../parquet/read-column-pages.js';

/**
 * The pages of the image bytes column that hold a batch's images, for the worker to read from the file itself: image
 * bytes never pass through the main thread.
 */
export interface ImagePageRange {
  file: string;
  spec: ColumnSpec;
  /** The column chunk's dictionary page, when one of these pages is dictionary-encoded. */
  dictionary: PageRef | null;
  pages: PageRef[];
  /** Rows of the first page that come before the batch's first row. */
  skip: number;
  rows: number;
  /** The row group of the pages, for errors that say where. */
  rowGroup?: number;
}

/**
 * The pages of a column chunk that hold rows [first, first + rows) of its row group, as a worker reads them. Pages
 * are walked from the start: a row group's pages number in the hundreds at most, and batches come in order.
 *
 * @throws {RangeError} when the rows are not all in the column chunk.
 */
export function pageRange(file: string, column: ColumnPages, first: number, rows: number): ImagePageRange {
  const pages: PageRef[] = [];
  let start = 0;
  let skip = 0;
  for (const page of column.pages) {
    const end = start + page.rows;
    if (end > first && start < first + rows) {
      if (pages.length === 0) skip = first - start;
      pages.push(page);
    }
    if (end >= first + rows) break;
    start = end;
  }
  const covered = pages.reduce((sum, page) => sum + page.rows, 0) - skip;
  if (rows > 0 && covered < rows) throw new RangeError(`rows ${first}-${first + rows - 1} are not all in the column's pages`);
  const range: ImagePageRange = { file, spec: column.spec, dictionary: pages.some(usesDictionary) ? column.dictionary : null, pages, skip, rows };
  if (column.rowGroup !== undefined) range.rowGroup = column.rowGroup;
  return range;
}

/** Row `index` of a page range as a range of its own. */
export function rowOfRange(range: ImagePageRange, index: number): ImagePageRange {
  const column: ColumnPages = { spec: range.spec, dictionary: range.dictionary, pages: range.pages, ...(range.rowGroup === undefined ? {} : { rowGroup: range.rowGroup }) };
  return pageRange(range.file, column, range.skip + index, 1);
}

/** The most a batch's pages may hold in its worker, compressed and decompressed, for the worker to read them. */
export const MAX_BATCH_BYTES = 64 * 2 ** 20;
/** How many times over the column the workers may read it between them (a page two batches share is read twice). */
const WORKER_READ_FACTOR = 1.5;

/**
 * Whether the workers should read their batches' images from these pages themselves (each its own pages), rather than
 * the column be read once by the reader (see stream-column-values): when no batch would hold more than
 * `maxBatchBytes` of pages, nor the batches between them read the column more than 1.5 times over. Pages of about 1 MiB, as parquet-rs and datasets
 * write them, are best read by the workers: no image byte then passes through the main thread. Pages of 1,024 images
 * and their dictionary page, as pyarrow writes them by default (150 MB each at RLAIF-V's sizes), would be read whole
 * by every batch that has a row in them: eight times over at 128 rows a batch, and 300 MB held per batch.
 */
export function pagesForWorkers(column: ColumnPages, batchSize: number, maxBatchBytes = MAX_BATCH_BYTES): boolean {
  const rows = column.pages.reduce((sum, page) => sum + page.rows, 0);
  const dictionary = column.dictionary;
  let total = dictionary?.compressedSize ?? 0;
  for (const page of column.pages) total += page.compressedSize;
  let read = 0;
  for (let first = 0; first < rows; first += batchSize) {
    const range = pageRange('', column, first, Math.min(batchSize, rows - first));
    let held = 0;
    for (const page of range.pages) {
      held += page.compressedSize + page.header.uncompressed_page_size;
      read += page.compressedSize;
    }
    if (range.dictionary !== null) {
      held += range.dictionary.compressedSize + range.dictionary.header.uncompressed_page_size;
      read += range.dictionary.compressedSize;
    }
    if (held > maxBatchBytes) return false;
  }
  return read <= WORKER_READ_FACTOR * total;
}
