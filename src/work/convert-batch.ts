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

/**
 * Where a worker finds images prepared before: shared by the run's workers (`images`), kept by earlier runs (`store`),
 * and being prepared by this worker now (`preparing`, by key: the same bytes twice in a batch are prepared once).
 */
interface Caches {
  images: SharedImages;
  store: ImageStore | null;
  preparing: Map<string, Promise<PreparedImage>>;
}

let cache: (Caches & { channel: string }) | null = null;

/** This worker's caches of prepared images for the run the task belongs to. */
function cacheFor(task: ConvertTask): Caches {
  if (cache?.channel !== task.cacheChannel) {
    cache?.store?.close();
    cache = {
      channel: task.cacheChannel,
      images: new SharedImages(task.cacheChannel, undefined, task.keptImages),
      store: task.store === null ? null : new ImageStore(task.store),
      preparing: new Map(),
    };
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
async function prepareRowImage(bytes: Uint8Array, key: string, task: ConvertTask, caches: Caches, stats: BatchStats): Promise<PreparedImage> {
  const { images, preparing } = caches;
  let image = images.get(key, bytes);
  const same = preparing.get(key);
  if (image !== undefined || same !== undefined) {
    stats.imagesReused++;
    return image ?? (await (same as Promise<PreparedImage>));
  }
  const prepared = prepareNew(bytes, key, task, caches, stats);
  preparing.set(key, prepared);
  try {
    return await prepared;
  } finally {
    preparing.delete(key);
  }
}

/** An image no worker of the run has prepared: from the persistent cache, else prepared here, and offered to both. */
async function prepareNew(bytes: Uint8Array, key: string, task: ConvertTask, { images, store }: Caches, stats: BatchStats): Promise<PreparedImage> {
  let image = store?.get(key, bytes);
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
 * Images a worker prepares at once: sharp decodes and encodes on libuv's thread pool while this thread hashes, checks
 * and stores the others. Against one at a time, on the 2,000-row RLAIF-V-shaped sample with 2 workers (paired runs):
 * 3% less wall time with `--images jpeg`, 6% with `--max-side 640` as well, where more images go to sharp. Results
 * are still taken in row order.
 */
const PREPARE_AT_ONCE = 2;

/** What became of one row of a batch: refused, or converted into its split. */
type RowOutcome = { refused: { code: RejectedRow['code']; message: string } } | { converted: ConversationalRow } | undefined;

/**
 * Converts one batch of source rows: validates and prepares every image, builds the conversational rows, and returns
 * them per split, their image buffers transferred, not copied. Rows that cannot be converted come back as data with a
 * stable code.
 */
export async function convertBatch(task: ConvertTask): Promise<ConvertResult> {
  beat(task);
  const source = readTaskRows(task);
  const stats = emptyStats();
  // Joined at the start of every batch, images or none: the run's sharing channel hears the other workers from then on.
  const caches = cacheFor(task);
  const imageKeys: string[] = [];
  const outcomes: RowOutcome[] = new Array(source.length);
  const working = new Set<Promise<void>>();
  // The first error of an image's preparation (none is expected: prepareImage returns rejects), thrown once all settle.
  let failure: { error: unknown } | null = null;

  for (const [offset, given] of source.entries()) {
    const loaded = task.imageDir === undefined ? null : loadImageFile(task.imageDir, task.imageRoot ?? task.imageDir, given);
    const row = loaded?.row ?? given;
    source[offset] = row;
    const text = textProblem(row);
    if (text !== null) {
      outcomes[offset] = { refused: text };
      continue;
    }
    if (row.image === null || row.image.bytes === null) {
      const message = loaded?.error ?? (row.image === null ? 'the image is null' : `the image has no bytes (path ${JSON.stringify(row.image.path)})`);
      outcomes[offset] = { refused: { code: 'missing_image', message } };
      continue;
    }
    const bytes = row.image.bytes;
    stats.imageBytesIn += bytes.byteLength;
    beat(task);
    const started = performance.now();
    const key = imageKey(bytes);
    imageKeys.push(key);
    const work = prepareRowImage(bytes, key, task, caches, stats)
      .then((image) => {
        stats.imageMs += performance.now() - started;
        outcomes[offset] = image.ok ? { converted: convertedRow(row, image, stats) } : { refused: { code: image.code, message: image.message } };
      })
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => working.delete(work));
    working.add(work);
    if (working.size >= PREPARE_AT_ONCE) await Promise.race(working);
  }
  await Promise.all(working);
  if (failure !== null) throw (failure as { error: unknown }).error;

  const train: ConversationalRow[] = [];
  const test: ConversationalRow[] = [];
  const rejects: RejectedRow[] = [];
  for (const [offset, outcome] of outcomes.entries()) {
    const row = source[offset];
    if (outcome === undefined || row === undefined) continue;
    if ('refused' in outcome) rejects.push({ index: task.firstRow + offset, ...outcome.refused, row: detached(row) });
    else (task.testMask[offset] === 1 ? test : train).push(outcome.converted);
  }
  return batchResult(task, source, { train, test, rejects, stats, imageKeys });
}

/** The conversational row of a source row whose image was prepared (counted as kept or re-encoded). */
function convertedRow(row: SourceRow, image: Extract<PreparedImage, { ok: true }>, stats: BatchStats): ConversationalRow {
  if (image.reencoded) stats.imagesReencoded++;
  else stats.imagesKept++;
  return toConversational(row.question ?? '', row.chosen ?? '', row.rejected ?? '', { bytes: image.bytes, path: null });
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
