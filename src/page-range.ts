import type { ColumnPages, PageRef } from './read-column-pages.js';
import type { ImagePageRange } from './types.js';

const DICTIONARY_ENCODINGS = new Set(['PLAIN_DICTIONARY', 'RLE_DICTIONARY']);

/** Whether a data page's values are indexes into the column chunk's dictionary page. */
export function usesDictionary(page: PageRef): boolean {
  const encoding = page.header.data_page_header?.encoding ?? page.header.data_page_header_v2?.encoding;
  return encoding !== undefined && DICTIONARY_ENCODINGS.has(encoding);
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
  return { file, spec: column.spec, dictionary: pages.some(usesDictionary) ? column.dictionary : null, pages, skip, rows };
}

/** Row `index` of a page range as a range of its own. */
export function rowOfRange(range: ImagePageRange, index: number): ImagePageRange {
  const column: ColumnPages = { spec: range.spec, dictionary: range.dictionary, pages: range.pages };
  return pageRange(range.file, column, range.skip + index, 1);
}
