import type { InputFile, InputRowGroup } from '../plan/inspect-input.js';
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
export interface Stretch {
  offset: number;
  rows: number;
}

/** A batch of a row group: its rows from `offset` (within the group). */
export type GroupBatch = Omit<SourceBatch, 'firstRow' | 'file' | 'origin'> & { offset: number };

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
