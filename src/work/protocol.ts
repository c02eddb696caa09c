import type { ImagePolicy } from '../image/image-policy.js';
import type { ImageStoreSettings } from '../image/image-store.js';
import type { ImagePageRange } from '../read/page-range.js';
import type { RejectedRow, SourceRow } from '../source/source-row.js';
import type { SplitPart } from '../write/encode-split.js';

/**
 * The messages of the convert pool (src/run/convert.ts, workers/convert-batch.ts): a batch of source rows goes to a
 * worker, its rows come back converted and split. Everything a worker receives or returns is plain,
 * structured-clonable data: class instances and error codes do not survive `postMessage`.
 */

/** One batch of source rows, sent to a worker. */
export interface ConvertTask {
  /** Position of the batch in input order; results are written in this order. */
  seq: number;
  /** Global index (over all input files) of the batch's first row. */
  firstRow: number;
  /**
   * The source rows as plain data, so a worker needs no Arrow library. Image bytes, when present, are views into
   * buffers transferred with the task; when `imagePages` is given, images hold only their paths and the worker reads
   * their bytes from the file.
   */
  data: SourceRow[];
  imagePages?: ImagePageRange | undefined;
  /** One byte per row of the batch: 1 when the row belongs to the test split. */
  testMask: Uint8Array;
  image: ImagePolicy;
  /**
   * Set when the images are paths to image files (an input whose image column is a string): the directory of the
   * parquet file, which the paths are relative to. The worker reads each file.
   */
  imageDir?: string | undefined;
  /** The directory the image files must be within (the input's, or the snapshot's): a path leading elsewhere is refused. */
  imageRoot?: string | undefined;
  /** Name of the BroadcastChannel the run's workers share prepared images on (unique per run). */
  cacheChannel: string;
  /** The run's table of images found whole and kept, in memory every worker shares (see workers/image-cache). */
  keptImages: SharedArrayBuffer;
  /** The persistent cache of image work shared by runs (see workers/image-store), or null when it is off. */
  store: ImageStoreSettings | null;
  /**
   * Shared with the main thread: the worker stores `Date.now()` here when it starts the task and before each image,
   * and the main thread stops a worker that has not moved on for `--image-timeout` (see run-batch.ts). Unset (0)
   * while the task waits for a worker.
   */
  heartbeat?: BigInt64Array | undefined;
}

export interface BatchStats {
  /** Images passed through byte for byte. */
  imagesKept: number;
  /** Images decoded and re-encoded. */
  imagesReencoded: number;
  /** Images not prepared again because identical bytes had been (by any worker). */
  imagesReused: number;
  /** Images taken from the persistent cache (prepared by an earlier run). */
  imagesFromCache: number;
  /** Images prepared (decoded) in this run. */
  imagesValidated: number;
  /** Milliseconds spent decoding, validating and encoding images. */
  imageMs: number;
  /** Milliseconds spent building the conversational rows and their Arrow encoding. */
  formatMs: number;
  /** Bytes of source image data in the batch. */
  imageBytesIn: number;
  /**
   * The worker thread that ran the batch: its kernel id and the CPU seconds it had used by the end of the batch (null
   * without /proc), so the run can tell the workers' CPU from the rest of the process's.
   */
  thread: { id: number; cpu: number } | null;
}

/** What a worker returns for one batch. */
export interface ConvertResult {
  seq: number;
  rows: number;
  train: SplitPart | null;
  test: SplitPart | null;
  rejects: RejectedRow[];
  stats: BatchStats;
  /** Content keys of the batch's images (rows with image bytes only), so the run can count distinct images. */
  imageKeys: string[];
}

/** Tells the main thread the task is moving on (see ConvertTask.heartbeat). */
export function beat(task: ConvertTask): void {
  if (task.heartbeat !== undefined) Atomics.store(task.heartbeat, 0, BigInt(Date.now()));
}
