import { open } from 'node:fs/promises';
import path from 'node:path';
import { parquetReadObjects, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { fileBuffer } from '../parquet/read-column-pages.js';
import { createPool } from '../util/worker-pool.js';
import { workerUrl } from '../util/paths.js';
import type { VerifyProblem } from './problem.js';
import type { VerifyImagesResult, VerifyImagesTask } from './protocol.js';
import type { Shard } from './shards.js';

/** A row as verify reads it: only its images matter (every column is decoded all the same). */
type ImageRow = { images?: { bytes?: Uint8Array | null }[] | null };

/**
 * Reads every row group of the shards back as a consumer would: a row group that cannot be read is `shard_damaged`; a
 * row without an image, or whose image does not decode (checked in `numProc` worker threads), is `bad_image`. Counts
 * into `images`, and yields the rows read so far after each row group.
 */
export async function* checkRows(
  dir: string,
  shards: Shard[],
  options: { numProc: number; signal: AbortSignal | undefined },
  problems: VerifyProblem[],
  images: { checked: number; bad: number },
): AsyncGenerator<number, void> {
  const { numProc, signal } = options;
  const pool = createPool<VerifyImagesTask, VerifyImagesResult>({ filename: workerUrl('verify-images').href, minThreads: numProc, maxThreads: numProc, idleTimeout: 1000 });
  let done = 0;
  try {
    const inFlight: { shard: Shard; result: Promise<VerifyImagesResult> }[] = [];
    const take = async (): Promise<void> => {
      const head = inFlight.shift();
      if (head === undefined) return;
      for (const bad of (await head.result).bad) {
        images.bad++;
        problems.push({ code: 'bad_image', where: `${head.shard.file} row ${bad.row}`, message: `${head.shard.file}, row ${bad.row}: ${bad.message}` });
      }
    };
    for (const shard of shards) {
      const metadata = shard.metadata;
      if (metadata === null) continue;
      const handle = await open(path.join(dir, shard.file), 'r');
      try {
        const buffer = await fileBuffer(handle, shard.size);
        let rowStart = 0;
        for (const [index, group] of metadata.row_groups.entries()) {
          const rowEnd = rowStart + Number(group.num_rows);
          const read = await readRowGroup(shard, { buffer, metadata }, index, rowStart, rowEnd, problems);
          if (read === null) {
            rowStart = rowEnd;
            continue;
          }
          const task = imageTask(shard, read, rowStart, problems, images);
          const transfer = task.images.flatMap((bytes) => (bytes === null ? [] : [bytes.buffer as ArrayBuffer]));
          inFlight.push({ shard, result: pool.run(task, { transferList: transfer, signal: signal ?? null }) });
          while (inFlight.length >= 2 * numProc) await take();
          done += rowEnd - rowStart;
          rowStart = rowEnd;
          signal?.throwIfAborted();
          yield done;
        }
      } finally {
        await handle.close();
      }
    }
    while (inFlight.length > 0) await take();
  } finally {
    await pool.destroy();
  }
}

/** Rows `rowStart` to `rowEnd` (row group `index`) of a shard, or null, with a `shard_damaged` problem, when they cannot be read. */
async function readRowGroup(
  shard: Shard,
  file: { buffer: AsyncBuffer; metadata: FileMetaData },
  index: number,
  rowStart: number,
  rowEnd: number,
  problems: VerifyProblem[],
): Promise<ImageRow[] | null> {
  try {
    // Every column is decoded: a damaged text page is as much a damaged shard as a damaged image.
    const read = (await parquetReadObjects({ file: file.buffer, metadata: file.metadata, rowStart, rowEnd, compressors, utf8: false })) as ImageRow[];
    if (read.length !== rowEnd - rowStart) throw new Error(`it gave ${read.length} rows where its footer says ${rowEnd - rowStart}`);
    return read;
  } catch (error) {
    problems.push({ code: 'shard_damaged', where: `${shard.file} row group ${index}`, message: `${shard.file}: row group ${index} cannot be read (${String(error)})` });
    return null;
  }
}

/** A row group's images as a task for the checkers (copied, to be transferred); a row without one is `bad_image` here. */
function imageTask(shard: Shard, read: ImageRow[], rowStart: number, problems: VerifyProblem[], images: { checked: number; bad: number }): VerifyImagesTask {
  const task: VerifyImagesTask = { firstRow: rowStart, images: [] };
  for (const [offset, row] of read.entries()) {
    const bytes = row.images?.[0]?.bytes ?? null;
    if (bytes === null || bytes.byteLength === 0) {
      problems.push({ code: 'bad_image', where: `${shard.file} row ${rowStart + offset}`, message: `${shard.file}, row ${rowStart + offset}: the row has no image` });
      images.bad++;
    }
    task.images.push(bytes === null || bytes.byteLength === 0 ? null : bytes.slice());
  }
  images.checked += task.images.length;
  return task;
}
