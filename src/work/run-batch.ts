import type { Piscina } from 'piscina';
import type { SourceBatch } from '../read/source-batch.js';
import { rowOfRange } from '../read/page-range.js';
import { readTaskRows } from './task-rows.js';
import { forgetDictionary, imagePagesError, readImagePages } from '../read/read-image-pages.js';
import type { ConvertResult, ConvertTask } from './protocol.js';
import type { RejectCode } from '../source/source-row.js';

export interface RunBatchOptions {
  /** Builds the task for a batch (or one row of it). */
  task: (batch: SourceBatch) => ConvertTask;
  /** Reads a batch again from its source: its data went to the worker that failed on it. */
  reread: (batch: SourceBatch) => Promise<SourceBatch>;
  /** Milliseconds one image may take: a worker that has not moved on to its next image for this long is stopped. */
  imageTimeoutMs: number;
}

/**
 * Runs a task in the pool, stopping its worker when the task's heartbeat (set by the worker at the start and before
 * each image) is older than `timeoutMs`: one image is bounded, whatever the batch size. A task still waiting for a
 * worker has no heartbeat and no deadline: it starts when a worker is free (a hung one is stopped in time).
 */
export function runWatched(pool: Piscina<ConvertTask, ConvertResult>, task: ConvertTask, transferList: ArrayBuffer[], timeoutMs: number): Promise<ConvertResult> {
  const heartbeat = new BigInt64Array(new SharedArrayBuffer(8));
  const controller = new AbortController();
  const watchdog = setInterval(() => {
    const last = Number(Atomics.load(heartbeat, 0));
    if (last !== 0 && Date.now() - last > timeoutMs) {
      controller.abort(new DOMException(`no progress for ${timeoutMs} ms`, 'TimeoutError'));
    }
  }, Math.max(10, Math.min(1000, timeoutMs / 4)));
  watchdog.unref();
  const result = pool.run({ ...task, heartbeat }, { transferList, signal: controller.signal });
  return result.finally(() => clearInterval(watchdog));
}

/** Sends a batch to the pool; its buffers are transferred, so the batch's data is gone from here afterwards. */
function send(pool: Piscina<ConvertTask, ConvertResult>, batch: SourceBatch, options: RunBatchOptions): Promise<ConvertResult> {
  const transferList = [...new Set(batch.data.flatMap((row) => (row.image?.bytes == null ? [] : [row.image.bytes.buffer as ArrayBuffer])))];
  return runWatched(pool, options.task(batch), transferList, options.imageTimeoutMs);
}

/** Row `index` of a batch as a batch of its own (its image copied, so it can be transferred alone). */
function rowOf(batch: SourceBatch, index: number): SourceBatch {
  const row = batch.data[index];
  const image = row?.image == null ? null : { bytes: row.image.bytes?.slice() ?? null, path: row.image.path };
  return {
    firstRow: batch.firstRow + index,
    rows: 1,
    file: batch.file,
    origin: batch.origin,
    data: row === undefined ? [] : [{ ...row, image }],
    imagePages: batch.imagePages === undefined ? undefined : rowOfRange(batch.imagePages, index),
  };
}

function describe(error: unknown): { code: RejectCode; message: string } {
  const timedOut = error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
  return timedOut
    ? { code: 'image_timeout', message: 'the worker took too long on this row and was stopped (--image-timeout)' }
    : { code: 'worker_failed', message: `the worker died on this row: ${String(error)}` };
}

/**
 * Reads a batch's image pages here, as its worker did: pages that do not read are the input file's data error
 * (ERR_PARQUET_DATA, exit 2, naming the file, column and row group), which no retry mends, not a row to reject.
 */
function checkImagePages(batch: SourceBatch): void {
  if (batch.imagePages === undefined) return;
  try {
    readImagePages(batch.imagePages);
  } catch (error) {
    throw imagePagesError(batch.imagePages, error);
  } finally {
    forgetDictionary();
  }
}

/** The result for a row no worker could convert: the row, rejected, with why. */
function rejectedRow(row: SourceBatch, seq: number, error: unknown): ConvertResult {
  // A row whose image a worker would have read from the file is read here, so the reject holds the row whole.
  checkImagePages(row);
  const [source] = readTaskRows(row);
  const { code, message } = describe(error);
  return {
    seq,
    rows: 1,
    train: null,
    test: null,
    rejects: source === undefined ? [] : [{ index: row.firstRow, code, message, row: source }],
    stats: { imagesKept: 0, imagesReencoded: 0, imagesReused: 0, imagesFromCache: 0, imagesValidated: 0, imageMs: 0, formatMs: 0, imageBytesIn: 0, thread: null },
    imageKeys: [],
  };
}

/**
 * Converts one batch in the pool, surviving a worker that crashes or hangs on it: the batch is read again from its
 * file and sent once more (to a fresh worker: the pool replaces one that died, and stops one that timed out), then row
 * by row, and a row that still fails is rejected (`worker_failed`, `image_timeout`) while the rest are converted.
 * Resolves with the results in row order: one for the batch, or one per row after a retry. Nothing of a batch is kept
 * while its worker has it, so retries cost no memory until they happen.
 */
export async function runBatch(
  pool: Piscina<ConvertTask, ConvertResult>,
  batch: SourceBatch,
  options: RunBatchOptions,
  first: Promise<ConvertResult>,
): Promise<ConvertResult[]> {
  try {
    return [await first];
  } catch {
    // The first try failed: send it again, to whichever fresh worker takes it, once its pages are known to read.
  }
  const again = await options.reread(batch);
  checkImagePages(again);
  try {
    return [await send(pool, again, options)];
  } catch (error) {
    if (batch.rows === 1) return [rejectedRow(await options.reread(batch), 0, error)];
  }
  const whole = await options.reread(batch);
  const results: ConvertResult[] = [];
  for (let index = 0; index < batch.rows; index++) {
    const row = rowOf(whole, index);
    const kept = rowOf(whole, index); // the copy sent is transferred away; this one stays for the reject
    try {
      results.push(await send(pool, row, options));
    } catch (error) {
      results.push(rejectedRow(kept, index, error));
    }
  }
  return results;
}

/** Sends a batch for its first try; pair with {@link runBatch}, which retries it. */
export function startBatch(pool: Piscina<ConvertTask, ConvertResult>, batch: SourceBatch, options: RunBatchOptions): Promise<ConvertResult> {
  const result = send(pool, batch, options);
  result.catch(() => undefined); // awaited by runBatch; this only silences the early rejection
  return result;
}
