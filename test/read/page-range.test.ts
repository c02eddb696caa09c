import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pageRange, rowOfRange } from '../../src/read/page-range.js';
import type { ColumnPages, PageRef } from '../../src/parquet/read-column-pages.js';

function page(offset: number, rows: number, encoding = 'PLAIN'): PageRef {
  return {
    offset,
    compressedSize: 10,
    rows,
    header: { type: 'DATA_PAGE', uncompressed_page_size: 10, compressed_page_size: 10, data_page_header: { num_values: rows, encoding } } as PageRef['header'],
  };
}

const dictionary = { ...page(0, 0), header: { type: 'DICTIONARY_PAGE', uncompressed_page_size: 10, compressed_page_size: 10 } } as PageRef;
// Rows 0-4 in a dictionary-encoded page, then 5-7, 8-8, 9-13 in plain pages.
const column: ColumnPages = {
  spec: { decoder: {} as ColumnPages['spec']['decoder'], maxDefinition: 2 },
  dictionary,
  pages: [page(100, 5, 'RLE_DICTIONARY'), page(200, 3), page(300, 1), page(400, 5)],
};

describe('pageRange', () => {
  it('names the pages that hold a run of rows, and the rows of the first page to skip', () => {
    const range = pageRange('f.parquet', column, 4, 5);
    assert.deepEqual(range.pages.map((p) => p.offset), [100, 200, 300]);
    assert.equal(range.skip, 4);
    assert.equal(range.rows, 5);
    assert.equal(range.file, 'f.parquet');
  });

  it('sends the dictionary page only with ranges that need it', () => {
    assert.equal(pageRange('f', column, 0, 2).dictionary, dictionary);
    assert.equal(pageRange('f', column, 5, 9).dictionary, null);
  });

  it('takes a range that ends exactly where a page ends, and one inside a single page', () => {
    assert.deepEqual(pageRange('f', column, 5, 3).pages.map((p) => p.offset), [200]);
    const inside = pageRange('f', column, 10, 2);
    assert.deepEqual([inside.pages.map((p) => p.offset), inside.skip], [[400], 1]);
  });

  it('refuses rows the column chunk does not hold', () => {
    assert.throws(() => pageRange('f', column, 12, 3), RangeError);
  });

  it('narrows a range to one of its rows', () => {
    const row = rowOfRange(pageRange('f', column, 3, 6), 3); // row 6 of the chunk
    assert.deepEqual([row.pages.map((p) => p.offset), row.skip, row.rows], [[200], 1, 1]);
  });
});
