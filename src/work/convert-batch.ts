import { Piscina } from 'piscina';
import { toConversational, type ConversationalRow } from '../output/to-conversational.js';
import { encodeSplit, transferables } from '../write/encode-split.js';
import { readTaskRows } from './task-rows.js';
import { beat, type BatchStats, type ConvertResult, type ConvertTask } from './protocol.js';
import { loadImageFile } from './load-image-file.js';
import type { RejectedRow, SourceRow } from '../source/source-row.js';
import { SharedImages, imageKey } from '../image/shared-images.js';
import { ImageStore } from '../image/image-store.js';
import { prepareImage, type PreparedImage } from '../image/prepare-image.js';
import { osThreadId, threadCpuSeconds } from '../util/measure-cpu.js';

const THREAD = osThreadId();

let cache: { channel: string; images: SharedImages; store: ImageStore | null } | null = null;

/** This worker's cache of prepared images for the run the task belongs to, and the persistent one. */
function cacheFor(task: ConvertTask): { images: SharedImages; store: ImageStore | null } {
  if (cache?.channel !== task.cacheChannel) {
    cache?.store?.close();
    cache = { channel: task.cacheChannel, images: new SharedImages(task.cacheChannel, undefined, task.keptImages), store: task.store === null ? null : new ImageStore(task.store) };
  }
  return cache;
}

/** A copy of the row whose image bytes no longer point into the task's shared IPC buffer. */
function detached(row: SourceRow): SourceRow {
  if (row.image?.bytes == null) return row;
  return { ...row, image: { ...row.image, bytes: row.image.bytes.slice() } };
}

/** Why a row's texts cannot be converted (a code and a message), or null when all three are there and not blank. */
function textProblem(row: SourceRow): { code: RejectedRow['code']; message: string } | null {
  const missing = (['question', 'chosen', 'rejected'] as const).filter((name) => row[name] === null);
  if (missing.length > 0) return { code: 'missing_text', message: `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} null` };
  const empty = (['question', 'chosen', 'rejected'] as const).filter((name) => row[name]?.trim() === '');
  if (empty.length > 0) return { code: 'empty_text', message: `${empty.join(', ')} ${empty.length === 1 ? 'is' : 'are'} empty` };
  return null;
}

/**
 * The image of these bytes, prepared under the task's policy: taken from another worker of the run that prepared the
 * same bytes, else from the persistent cache, else prepared here (and then offered to both). Counts which in `stats`.
 */
async function prepareRowImage(bytes: Uint8Array, key: string, task: ConvertTask, caches: ReturnType<typeof cacheFor>, stats: BatchStats): Promise<PreparedImage> {
  const { images, store } = caches;
  let image = images.get(key, bytes);
  if (image !== undefined) {
    stats.imagesReused++;
    return image;
  }
  image = store?.get(key, bytes);
  if (image !== undefined) stats.imagesFromCache++;
  else {
    image = await prepareImage(bytes, task.image);
    stats.imagesValidated++;
    store?.set(key, image);
  }
  images.set(key, image);
  return image;
}

/** A batch's figures before any row is converted. */
function emptyStats(): BatchStats {
  return { imagesKept: 0, imagesReencoded: 0, imagesReused: 0, imagesFromCache: 0, imagesValidated: 0, imageMs: 0, formatMs: 0, imageBytesIn: 0, thread: null };
}

/**
 * Converts one batch of source rows: validates and prepares every image, builds the conversational rows, and returns
 * them per split, their image buffers transferred, not copied. Rows that cannot be converted come back as data with a
 * stable code.
 */
export async function convertBatch(task: ConvertTask): Promise<ConvertResult> {
  beat(task);
  const source = readTaskRows(task);
  const train: ConversationalRow[] = [];
  const test: ConversationalRow[] = [];
  const rejects: RejectedRow[] = [];
  const stats = emptyStats();
  // Joined at the start of every batch, images or none: the run's sharing channel hears the other workers from then on.
  const caches = cacheFor(task);
  const imageKeys: string[] = [];

  for (const [offset, given] of source.entries()) {
    const index = task.firstRow + offset;
    const loaded = task.imageDir === undefined ? null : loadImageFile(task.imageDir, task.imageRoot ?? task.imageDir, given);
    const row = loaded?.row ?? given;
    source[offset] = row;
    const refuse = (code: RejectedRow['code'], message: string): void => {
      rejects.push({ index, code, message, row: detached(row) });
    };
    const text = textProblem(row);
    if (text !== null) {
      refuse(text.code, text.message);
      continue;
    }
    if (row.image === null || row.image.bytes === null) {
      refuse('missing_image', loaded?.error ?? (row.image === null ? 'the image is null' : `the image has no bytes (path ${JSON.stringify(row.image.path)})`));
      continue;
    }
    stats.imageBytesIn += row.image.bytes.byteLength;
    beat(task);
    const started = performance.now();
    const key = imageKey(row.image.bytes);
    imageKeys.push(key);
    const image = await prepareRowImage(row.image.bytes, key, task, caches, stats);
    stats.imageMs += performance.now() - started;
    if (!image.ok) {
      refuse(image.code, image.message);
      continue;
    }
    if (image.reencoded) stats.imagesReencoded++;
    else stats.imagesKept++;
    const converted = toConversational(row.question ?? '', row.chosen ?? '', row.rejected ?? '', {
      bytes: image.bytes,
      path: null,
    });
    (task.testMask[offset] === 1 ? test : train).push(converted);
  }
  return batchResult(task, source, { train, test, rejects, stats, imageKeys });
}

/**
 * The batch's result: its rows of each split encoded, with the worker's CPU so far, returned with the buffers of the
 * images this worker read itself moved rather than copied.
 */
function batchResult(
  task: ConvertTask,
  source: SourceRow[],
  { train, test, rejects, stats, imageKeys }: { train: ConversationalRow[]; test: ConversationalRow[]; rejects: RejectedRow[]; stats: BatchStats; imageKeys: string[] },
): ConvertResult {
  const started = performance.now();
  const result: ConvertResult = {
    seq: task.seq,
    rows: source.length,
    train: encodeSplit(train),
    test: encodeSplit(test),
    rejects,
    stats,
    imageKeys,
  };
  stats.formatMs = performance.now() - started;
  const cpu = threadCpuSeconds();
  stats.thread = THREAD === null || cpu === null ? null : { id: THREAD, cpu };
  const own = new Set<ArrayBufferLike>(source.map((row) => row.image?.bytes?.buffer).filter((buffer) => buffer !== undefined));
  return moveWith(result, transferables([result.train, result.test], (buffer) => own.has(buffer)));
}

/** Returns `value` to the main thread with `transferList` moved rather than copied. */
function moveWith<T extends object>(value: T, transferList: ArrayBuffer[]): T {
  const movable = {
    get [Piscina.transferableSymbol]() {
      return transferList;
    },
    get [Piscina.valueSymbol]() {
      return value;
    },
  };
  return Piscina.move(movable as unknown as Parameters<typeof Piscina.move>[0]) as unknown as T;
}
