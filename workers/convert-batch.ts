import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { Piscina } from 'piscina';
import { toConversational, type ConversationalRow } from '../src/output/to-conversational.js';
import { encodeSplit, transferables } from '../src/write/encode-split.js';
import { readTaskRows } from '../src/work/task-rows.js';
import type { BatchStats, ConvertResult, ConvertTask, RejectedRow, SourceRow } from '../src/types.js';
import { ImageCache, imageKey } from '../src/image/image-cache.js';
import { ImageStore } from '../src/image/image-store.js';
import { prepareImage } from '../src/image/prepare-image.js';
import { osThreadId, threadCpuSeconds } from '../src/util/measure-cpu.js';


const THREAD = osThreadId();

let cache: { channel: string; images: ImageCache; store: ImageStore | null } | null = null;

/** This worker's cache of prepared images for the run the task belongs to, and the persistent one. */
function cacheFor(task: ConvertTask): { images: ImageCache; store: ImageStore | null } {
  if (cache?.channel !== task.cacheChannel) {
    cache?.store?.close();
    cache = { channel: task.cacheChannel, images: new ImageCache(task.cacheChannel, undefined, task.keptImages), store: task.store === null ? null : new ImageStore(task.store) };
  }
  return cache;
}

/** A copy of the row whose image bytes no longer point into the task's shared IPC buffer. */
function detached(row: SourceRow): SourceRow {
  if (row.image?.bytes == null) return row;
  return { ...row, image: { ...row.image, bytes: row.image.bytes.slice() } };
}

/** Whether `file` is one of `roots` or lies inside one. */
function isWithin(file: string, roots: readonly string[]): boolean {
  return roots.some((root) => {
    const relative = path.relative(root, file);
    return relative !== '' && !relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative);
  });
}

/** The real path of the file open as `fd` (Linux tells it exactly); elsewhere, of `file` with its links resolved. */
function realPathOf(fd: number, file: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return realpathSync(file);
  }
}

const rootsOf = new Map<string, string[]>();

/**
 * Where image files of the dataset in `root` may really be: under `root` itself, links resolved; and, for a Hugging
 * Face cache snapshot (`<repo>/snapshots/<commit>/…`, whose files are links into `<repo>/blobs/`), in its blobs.
 */
function allowedRoots(root: string): string[] {
  let roots = rootsOf.get(root);
  if (roots === undefined) {
    const real = realpathSync(root);
    roots = [real];
    for (let at = real; path.dirname(at) !== at; at = path.dirname(at)) {
      if (path.basename(path.dirname(at)) === 'snapshots') {
        roots.push(path.join(path.dirname(path.dirname(at)), 'blobs'));
        break;
      }
    }
    rootsOf.set(root, roots);
  }
  return roots;
}

/** Image files larger than this are refused unread: no image of a dataset is, and reading one would take the memory. */
const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;

/**
 * The row with its image read from the file its path names, relative to `dir`, into a buffer of its own (it is
 * transferred with the result); or why it could not be. The file must be a regular file within `root`, the dataset's
 * directory, where it really is (links followed): a path that leads elsewhere (`../..`, `/etc/…`, a link to a file or
 * a folder outside) is refused, so that a dataset cannot pull other files into an output or its rejects.
 */
function loadImageFile(dir: string, root: string, row: SourceRow): { row: SourceRow; error: string | null } | null {
  const name = row.image?.path ?? null;
  if (row.image === null || row.image.bytes !== null || name === null) return null;
  const file = path.resolve(dir, name);
  const inside = path.relative(root, file);
  if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) {
    return { row, error: `the image path ${JSON.stringify(name)} leads outside the dataset's directory: it is not read` };
  }
  // Messages name files relative to the dataset's directory: a reject must not depend on where the dataset is mounted
  // (parts on hosts that mount it elsewhere put their rejects together into one machine's bytes).
  const where = inside.split(path.sep).join('/');
  let fd: number | null = null;
  try {
    // Not blocking: a FIFO opened for reading would wait for a writer, and a worker waiting there cannot be stopped.
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    // Where the file opened really is, links followed: a link inside the dataset to a file outside it is refused.
    if (!isWithin(realPathOf(fd, file), allowedRoots(root))) {
      return { row, error: `the image path ${JSON.stringify(name)} leads outside the dataset's directory through a link: it is not read` };
    }
    const info = fstatSync(fd);
    if (!info.isFile()) return { row, error: `the image path ${JSON.stringify(name)} is not a file (${where})` };
    if (info.size > MAX_IMAGE_FILE_BYTES) return { row, error: `the image file ${JSON.stringify(name)} is ${info.size} bytes, over the ${MAX_IMAGE_FILE_BYTES} an image may be` };
    const bytes = new Uint8Array(info.size);
    let done = 0;
    while (done < bytes.byteLength) {
      const read = readSync(fd, bytes, done, bytes.byteLength - done, done);
      if (read === 0) break;
      done += read;
    }
    return { row: { ...row, image: { bytes: done === bytes.byteLength ? bytes : bytes.slice(0, done), path: name } }, error: null };
  } catch (error) {
    return { row, error: `the image file ${JSON.stringify(name)} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'an error'}: ${where})` };
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Tells the main thread this task is moving on (see ConvertTask.heartbeat). */
export function beat(task: ConvertTask): void {
  if (task.heartbeat !== undefined) Atomics.store(task.heartbeat, 0, BigInt(Date.now()));
}

/**
 * Converts one batch of source rows: validates and prepares every image, builds the conversational rows, and returns
 * them per split, their image buffers transferred, not copied. Rows that cannot be converted come back as data with a
 * stable code.
 */
export default async function convertBatch(task: ConvertTask): Promise<ConvertResult> {
  beat(task);
  const source = readTaskRows(task);
  const train: ConversationalRow[] = [];
  const test: ConversationalRow[] = [];
  const rejects: RejectedRow[] = [];
  const stats = {
    imagesKept: 0,
    imagesReencoded: 0,
    imagesReused: 0,
    imagesFromCache: 0,
    imagesValidated: 0,
    imageMs: 0,
    formatMs: 0,
    imageBytesIn: 0,
    thread: null as BatchStats['thread'],
  };
  const { images, store } = cacheFor(task);
  const imageKeys: string[] = [];

  for (const [offset, given] of source.entries()) {
    const index = task.firstRow + offset;
    const loaded = task.imageDir === undefined ? null : loadImageFile(task.imageDir, task.imageRoot ?? task.imageDir, given);
    const row = loaded?.row ?? given;
    source[offset] = row;
    const refuse = (code: RejectedRow['code'], message: string): void => {
      rejects.push({ index, code, message, row: detached(row) });
    };
    const missing = (['question', 'chosen', 'rejected'] as const).filter((name) => row[name] === null);
    if (missing.length > 0) {
      refuse('missing_text', `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} null`);
      continue;
    }
    const empty = (['question', 'chosen', 'rejected'] as const).filter((name) => row[name]?.trim() === '');
    if (empty.length > 0) {
      refuse('empty_text', `${empty.join(', ')} ${empty.length === 1 ? 'is' : 'are'} empty`);
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
    let image = images.get(key, row.image.bytes);
    if (image !== undefined) stats.imagesReused++;
    else {
      image = store?.get(key, row.image.bytes);
      if (image !== undefined) stats.imagesFromCache++;
      else {
        image = await prepareImage(row.image.bytes, task.image);
        stats.imagesValidated++;
        store?.set(key, image);
      }
      images.set(key, image);
    }
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
