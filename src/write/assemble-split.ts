import { open } from 'node:fs/promises';
import { parquetReadObjects, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { fileBuffer, readFooter } from '../parquet/read-column-pages.js';
import { rowGroupSpan } from './copy-row-group.js';
import type { ShardWriter, WrittenShard } from './shard-writer.js';
import type { ConversationalRow } from '../output/to-conversational.js';

/** A parquet file of output rows written by this tool: a shard, or a piece of one (from a part of a multi-machine run). */
export interface ShardSource {
  /** Absolute path. */
  path: string;
  rows: number;
  /** CRC-32 of the file, as its writer computed it. */
  crc: number;
}

/** What became of the rows of the sources: files taken whole, row groups copied byte for byte, rows encoded again. */
export interface AssembleStep {
  rows: number;
  how: 'linked' | 'copied' | 'rewritten';
}

/** Rows taken each way, summed over {@link AssembleStep}s. */
export type AssembleCounts = Record<AssembleStep['how'], number>;

function copyable(metadata: FileMetaData, group: number): boolean {
  const rowGroup = metadata.row_groups[group];
  if (rowGroup === undefined) return false;
  try {
    rowGroupSpan(rowGroup);
    return true;
  } catch {
    return false;
  }
}

/** Whether a file's row groups are all `rowGroupSize` rows but the last: cut as a shard of its own would be. */
function cutFromStart(metadata: FileMetaData, rowGroupSize: number): boolean {
  return metadata.row_groups.every((group, index) => Number(group.num_rows) === rowGroupSize || index === metadata.row_groups.length - 1);
}

/**
 * Writes the rows of `sources`, in order, through `writer` (which knows the shards to make), re-using what is already
 * encoded: a source that is exactly one of the writer's shards is taken whole (a hard link), a row group that lands
 * where one of the writer's own would is copied byte for byte, and only the rest is decoded and encoded again. The
 * bytes are those of writing every row anew, since a row group's bytes depend on its rows alone.
 *
 * Yields what became of each stretch of rows as it goes; returns the writer's shards.
 */
export async function* assembleSplit(sources: readonly ShardSource[], writer: ShardWriter, rowGroupSize: number): AsyncGenerator<AssembleStep, WrittenShard[]> {
  for (const source of sources) {
    if (source.rows === 0) continue;
    const handle = await open(source.path, 'r');
    let whole = false;
    try {
      const { size } = await handle.stat();
      const metadata = await readFooter(handle, size);
      if (Number(metadata.num_rows) !== source.rows) throw new Error(`${source.path} holds ${metadata.num_rows} rows, not the ${source.rows} it was written with`);
      whole = writer.wholeShardRows === source.rows && cutFromStart(metadata, rowGroupSize);
      if (!whole) {
        const buffer = await fileBuffer(handle, size);
        let rowStart = 0;
        for (const [index, group] of metadata.row_groups.entries()) {
          const rows = Number(group.num_rows);
          if (writer.canCopy(rows) && copyable(metadata, index)) {
            await writer.copyRowGroup(handle, group);
            yield { rows, how: 'copied' };
          } else {
            const data = (await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd: rowStart + rows, compressors, utf8: false })) as unknown as ConversationalRow[];
            await writer.write(data);
            yield { rows, how: 'rewritten' };
          }
          rowStart += rows;
        }
      }
    } finally {
      await handle.close();
    }
    if (whole) {
      await writer.takeWhole(source.path, source.crc);
      yield { rows: source.rows, how: 'linked' };
    }
  }
  return writer.finish();
}
