import type { ColumnSpec, PageRef } from './parquet/read-column-pages.js';
import type { ConversationalRow } from './output/to-conversational.js';

/**
 * Shapes that cross module and thread boundaries. Everything a worker receives or returns is plain,
 * structured-clonable data: class instances and error codes do not survive `postMessage`.
 */

/** How images are treated: `keep` passes already-normal images through byte for byte. */
export type ImageMode = 'keep' | 'jpeg' | 'png' | 'webp';

export interface ImagePolicy {
  mode: ImageMode;
  /** Encoder quality for `jpeg` and `webp` output (1-100). */
  quality: number;
  /** Longest side in pixels; larger images are shrunk keeping the aspect ratio. `null`: no limit. */
  maxSide: number | null;
  /** Images with more pixels than this are refused before they are decoded (a decompression-bomb guard). */
  maxPixels: number;
}

/**
 * The pages of the image bytes column that hold a batch's images, for the worker to read from the file itself: image
 * bytes never pass through the main thread.
 */
export interface ImagePageRange {
  file: string;
  spec: ColumnSpec;
  /** The column chunk's dictionary page, when one of these pages is dictionary-encoded. */
  dictionary: PageRef | null;
  pages: PageRef[];
  /** Rows of the first page that come before the batch's first row. */
  skip: number;
  rows: number;
  /** The row group of the pages, for errors that say where. */
  rowGroup?: number;
}

/** Where the persistent cache of image work is, and what of it a run uses (see workers/image-store). */
export interface ImageStoreSettings {
  dir: string;
  /** Key of the image policy (with the tool's and libvips' versions): entries of other policies are not used. */
  policy: string;
  /** This run's id, in the names of the files it writes. */
  run: string;
  /** The verdicts "found whole, kept" of earlier runs under this policy, as a shared table of keys. */
  kept: SharedArrayBuffer;
}

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

export interface SourceImages {
  bytes: (Uint8Array | null)[];
  paths: (string | null)[];
}

export interface SourceImage {
  bytes: Uint8Array | null;
  path: string | null;
}

/** A source row exactly as read, kept whole so a rejected row can be written out unchanged. */
export interface SourceRow {
  ds_name: string | null;
  image: SourceImage | null;
  question: string | null;
  chosen: string | null;
  rejected: string | null;
  origin_dataset: string | null;
  origin_split: string | null;
  idx: string | null;
  image_path: string | null;
}

/** Stable codes for rows that could not be converted. */
export type RejectCode =
  | 'missing_image'
  | 'empty_image'
  | 'unsupported_image'
  | 'corrupt_image'
  | 'image_too_large'
  | 'missing_text'
  | 'empty_text'
  | 'worker_failed'
  | 'image_timeout';

export interface RejectedRow {
  /** Global row index. */
  index: number;
  code: RejectCode;
  message: string;
  row: SourceRow;
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

/** A row group's images for `verify` to check: one per row (null where a row has none), from row `firstRow` of its file. */
export interface VerifyImagesTask {
  firstRow: number;
  images: (Uint8Array | null)[];
}

/** The rows (of their file) whose image does not decode, and why. */
export interface VerifyImagesResult {
  bad: { row: number; message: string }[];
}
