import { rowNbytes, type ConversationalRow } from '../src/to-conversational.js';
import type { SplitPart } from '../src/types.js';

/** Conversational rows of one split, with their size as `datasets` counts it; null when there are none. */
export function encodeSplit(rows: ConversationalRow[]): SplitPart | null {
  if (rows.length === 0) return null;
  let nbytes = 0;
  for (const row of rows) nbytes += rowNbytes(row);
  return { data: rows, rows: rows.length, nbytes };
}

/**
 * The buffers to transfer with the rows: each image's buffer once (a page holds several images). An image that does
 * not own a buffer of this task (a re-encoded image kept in the worker's cache) is copied first, so the cache keeps it.
 */
export function transferables(parts: (SplitPart | null)[], owned: (buffer: ArrayBufferLike) => boolean): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const part of parts) {
    for (const row of part?.data ?? []) {
      for (const image of row.images) {
        if (!owned(image.bytes.buffer)) image.bytes = image.bytes.slice();
        buffers.add(image.bytes.buffer as ArrayBuffer);
      }
    }
  }
  return [...buffers];
}
