import { rowNbytes, type ConversationalRow } from '../output/to-conversational.js';

/** The rows of one split out of one batch. */
export interface SplitPart {
  /**
   * The conversational rows. Their image bytes are views into buffers that are transferred with them between threads
   * (never copied): the pages a worker read them from.
   */
  data: ConversationalRow[];
  rows: number;
  /** Uncompressed size of the rows, computed per row so it does not depend on how rows were batched. */
  nbytes: number;
}

/** Conversational rows of one split, with their size as `datasets` counts it; null when there are none. */
export function encodeSplit(rows: ConversationalRow[]): SplitPart | null {
  if (rows.length === 0) return null;
  let nbytes = 0;
  for (const row of rows) nbytes += rowNbytes(row);
  return { data: rows, rows: rows.length, nbytes };
}

/**
 * The buffers to transfer with the rows: each image's buffer once (a page holds several images). An image is copied
 * into a buffer of its own first when its buffer is not this task's to give (a re-encoded image kept in the worker's
 * cache), or when the rows use less than half of it (a page shared with the next batch, or whose other rows were
 * rejected): an image waiting in the writer, as a test row can for thousands of rows, then holds only itself.
 */
export function transferables(parts: (SplitPart | null)[], owned: (buffer: ArrayBufferLike) => boolean): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const part of parts) {
    // Counted by part: a test row's page is mostly the train rows', and the test row waits far longer in the writer.
    const used = new Map<ArrayBufferLike, number>();
    for (const row of part?.data ?? []) for (const image of row.images) used.set(image.bytes.buffer, (used.get(image.bytes.buffer) ?? 0) + image.bytes.byteLength);
    for (const row of part?.data ?? []) {
      for (const image of row.images) {
        const buffer = image.bytes.buffer;
        if (!owned(buffer) || 2 * (used.get(buffer) ?? 0) < buffer.byteLength) image.bytes = image.bytes.slice();
        buffers.add(image.bytes.buffer as ArrayBuffer);
      }
    }
  }
  return [...buffers];
}
