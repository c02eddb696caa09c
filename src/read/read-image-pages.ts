import { closeSync, openSync } from 'node:fs';
import type { DecodedArray } from 'hyparquet/src/types.js';
import { decodeDataPage, decodeDictionaryPage, usesDictionary, type PageRef } from '../parquet/read-column-pages.js';
import type { ImagePageRange } from './page-range.js';
import { InputError } from '../errors.js';
import { readFully } from '../util/read-fully.js';

/**
 * The input's data error for pages of an image column that do not read (a page cut short, damaged compressed data, a
 * value outside its page): the file, the column and the row group, and what was wrong. Exit 2.
 */
export function imagePagesError(range: ImagePageRange, error: unknown): InputError {
  const where = `the column ${range.spec.decoder.pathInSchema.join('.')}${range.rowGroup === undefined ? '' : ` of row group ${range.rowGroup}`}`;
  const reason = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
  return new InputError('ERR_PARQUET_DATA', `${range.file}: ${where} cannot be read (${reason}).`, { cause: error, file: range.file });
}

/** The dictionary page last decoded, by file and offset: the batches of one row group come one after another. */
let lastDictionary: { key: string; values: DecodedArray | undefined } | null = null;

/** Lets go of the dictionary kept for the next batch (a thread that read pages once, to check them, keeps none). */
export function forgetDictionary(): void {
  lastDictionary = null;
}

function readAt(fd: number, page: PageRef): Uint8Array {
  const data = readFully(fd, page.compressedSize, page.offset);
  if (data.byteLength < page.compressedSize) throw new Error(`the file ends inside the page at byte ${page.offset}`);
  return data;
}

/**
 * Reads a batch's image bytes from its file, page by page: the worker's own reads, so image data never passes through
 * the main thread. Each image is a view into its decompressed page, not a copy (but for dictionary-encoded pages).
 * Null where a row has no image bytes.
 *
 * @throws {Error} when the file cannot be read or a page does not decode (the batch is then retried, then rejected).
 */
export function readImagePages(range: ImagePageRange): (Uint8Array | null)[] {
  const fd = openSync(range.file, 'r');
  try {
    let dictionary: DecodedArray | undefined;
    if (range.dictionary !== null) {
      const key = `${range.file}:${range.dictionary.offset}`;
      if (lastDictionary?.key !== key) lastDictionary = { key, values: decodeDictionaryPage(range.spec, range.dictionary, readAt(fd, range.dictionary)) };
      dictionary = lastDictionary.values;
    }
    const out: (Uint8Array | null)[] = [];
    for (const [index, page] of range.pages.entries()) {
      const values = decodeDataPage(range.spec, page, readAt(fd, page), dictionary);
      // Values of a dictionary-encoded page live in the dictionary, which is kept for the next batch: copy them, so
      // that every image's buffer belongs to this batch alone and can be transferred with it.
      const shared = usesDictionary(page);
      for (let row = index === 0 ? range.skip : 0; row < values.length && out.length < range.rows; row++) {
        const value = values[row];
        out.push(value instanceof Uint8Array ? (shared ? value.slice() : value) : null);
      }
    }
    if (out.length !== range.rows) throw new Error(`the pages held ${out.length} of the batch's ${range.rows} images`);
    return out;
  } finally {
    closeSync(fd);
  }
}
