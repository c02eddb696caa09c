import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { RowGroup } from 'hyparquet';
import type { FileByteWriter } from './file-byte-writer.js';

/** How much of a copied row group is read at a time, into one buffer kept for all copies. */
const COPY_CHUNK_BYTES = 8 * 2 ** 20;
let copyBuffer: Uint8Array | null = null;

/**
 * Where a row group's column chunks lie in its file: from the first chunk's first page for the sum of their sizes.
 *
 * @throws {Error} when the chunks are not one contiguous stretch, or carry page indexes (which live elsewhere in the
 * file): such a row group cannot be copied as it is.
 */
export function rowGroupSpan(group: RowGroup): { start: bigint; length: number } {
  let start: bigint | null = null;
  let end = 0n;
  for (const column of group.columns) {
    const meta = column.meta_data;
    if (meta === undefined || column.offset_index_offset !== undefined || column.column_index_offset !== undefined) {
      throw new Error('a row group with page indexes or without column metadata cannot be copied');
    }
    const first = meta.dictionary_page_offset ?? meta.data_page_offset;
    if (start === null) start = first;
    else if (first !== end) throw new Error('the row group\'s column chunks are not contiguous');
    end = first + meta.total_compressed_size;
  }
  if (start === null) throw new Error('a row group without columns');
  return { start, length: Number(end - start) };
}

/**
 * Copies `length` bytes of `source` from `start` into `bytes`, a chunk at a time, each chunk written out at once.
 *
 * @throws {Error} when the source ends first.
 */
export function copyFileBytes(source: FileHandle, start: bigint, length: number, bytes: FileByteWriter): void {
  copyBuffer ??= new Uint8Array(COPY_CHUNK_BYTES);
  const chunk = copyBuffer;
  for (let done = 0; done < length; ) {
    // Read synchronously: the bytes are written synchronously right after, and a thread-pool round trip a chunk
    // only left the thread idle (a quarter of finalize's time on a 1 GB output).
    const bytesRead = readSync(source.fd, chunk, 0, Math.min(chunk.byteLength, length - done), Number(start) + done);
    if (bytesRead === 0) throw new Error(`the source ended ${length - done} bytes before the end of its row group`);
    bytes.appendBytes(chunk.subarray(0, bytesRead));
    bytes.flush();
    done += bytesRead;
  }
}

/** A copy of a row group's footer entry with every offset in it moved by `shift` bytes. */
export function shiftRowGroup(group: RowGroup, shift: bigint): RowGroup {
  const moved = structuredClone(group);
  for (const column of moved.columns) {
    column.file_offset += shift;
    const meta = column.meta_data;
    if (meta === undefined) continue;
    meta.data_page_offset += shift;
    if (meta.dictionary_page_offset !== undefined) meta.dictionary_page_offset += shift;
    if (meta.index_page_offset !== undefined) meta.index_page_offset += shift;
  }
  if (moved.file_offset !== undefined) moved.file_offset += shift;
  return moved;
}
